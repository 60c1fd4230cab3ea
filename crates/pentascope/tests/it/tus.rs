//! Resumable uploads with tus 1.0.0 at `/uploads`: the protocol's answers
//! (versions, offsets, content types, checksums, termination, expiry,
//! another user's upload), and uploads cut by a client that leaves
//! mid-body, a reset connection and a killed server, which resume and end
//! with the pixels of the file: here files built byte by byte whose planes
//! the test knows; with `--ignored`, a large file written by tifffile,
//! compared with tifffile's reading of it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use sha2::Digest;

use crate::access::Lab;
use crate::hostile::within;
use crate::util::tiff::plain_tiff;
use crate::util::{Resp, Server};

const VERSION: &str = "1.0.0";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// An 8-bit stack of `pages` planes of 64 × 48 whose samples the test
/// knows: sample `i` of page `p` is `(p * 31 + i * 7) % 251`.
fn stack(pages: u32) -> Vec<u8> {
    plain_tiff(64, 48, 8, pages, sample)
}

fn sample(page: u32, i: usize) -> u8 {
    ((page as usize * 31 + i * 7) % 251) as u8
}

/// Fails unless image `id` holds [`stack`]'s planes as a Z-stack.
fn assert_stack(server: &Server, id: &str, pages: u32) {
    let meta = server.metadata(id);
    assert_eq!(meta["shape"], serde_json::json!([1, pages, 1, 48, 64]));
    for z in [0, pages / 2, pages - 1] {
        let plane = server.plane_npy(id, 0, u64::from(z), 0);
        let want: Vec<u8> = (0..64 * 48).map(|i| sample(z, i)).collect();
        assert!(plane.data == want, "plane z={z} of {id} differs");
    }
}

/// `Upload-Metadata` for `pairs`.
fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", STANDARD.encode(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn tus(server: &Server, method: Method, path: &str) -> reqwest::blocking::RequestBuilder {
    server.keyed(method, path).header("Tus-Resumable", VERSION)
}

/// Creates an upload of `length` bytes; its path.
fn create(server: &Server, length: usize, meta: &str) -> String {
    let resp = server.send(
        "POST /uploads",
        tus(server, Method::POST, "/uploads")
            .header("Upload-Length", length.to_string())
            .header("Upload-Metadata", meta),
    );
    assert_eq!(resp.status, 201, "{}", resp.snippet());
    assert_eq!(resp.header("tus-resumable"), VERSION);
    assert!(!resp.header("upload-expires").is_empty());
    let location = resp.header("location").to_string();
    assert!(location.starts_with("/uploads/"), "{location}");
    location
}

fn patch(server: &Server, upload: &str, offset: usize, bytes: &[u8]) -> Resp {
    server.send(
        &format!("PATCH {upload} at {offset}"),
        tus(server, Method::PATCH, upload)
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", OFFSET_STREAM)
            .body(bytes.to_vec()),
    )
}

fn head(server: &Server, upload: &str) -> Resp {
    server.send(&format!("HEAD {upload}"), tus(server, Method::HEAD, upload))
}

fn offset_of(server: &Server, upload: &str) -> usize {
    let resp = head(server, upload);
    assert_eq!(resp.status, 200, "HEAD {upload}");
    resp.header("upload-offset").parse().unwrap()
}

/// The image id in the answer of the request that brought the last byte
/// (200 to a PATCH, 201 to a creation with the whole file).
fn image_of(resp: &Resp) -> String {
    assert!([200, 201].contains(&resp.status), "{}", resp.snippet());
    let body = resp.json().unwrap();
    assert_eq!(body["message"], "File uploaded successfully", "{body}");
    body["image_id"].as_str().unwrap().to_string()
}

/// Starts `PATCH upload` at `offset` announcing twice `body`'s bytes, sends
/// `body` and leaves: with `reset`, by resetting the connection (RST),
/// otherwise by closing it.
fn patch_and_leave(server: &Server, upload: &str, offset: usize, body: &[u8], reset: bool) {
    patch_and_leave_from(server, upload, offset, body, body.len(), reset);
}

/// [`patch_and_leave`] with the `len` bytes `body` reads.
fn patch_and_leave_from(
    server: &Server,
    upload: &str,
    offset: usize,
    mut body: impl Read,
    len: usize,
    reset: bool,
) {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let auth = server
        .authorization()
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "PATCH {upload} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: {VERSION}\r\n\
         Content-Type: {OFFSET_STREAM}\r\nUpload-Offset: {offset}\r\n{auth}\
         Content-Length: {}\r\n\r\n",
        server.addr(),
        len * 2
    )
    .unwrap();
    let sent = std::io::copy(&mut body, &mut stream).unwrap();
    assert_eq!(sent, len as u64, "bytes sent");
    stream.flush().unwrap();
    if reset {
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        // let the bytes reach the server before the reset throws away what
        // it has not read
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(stream);
}

/// Waits until the upload's offset is `want` (the server notices a
/// client that left when it next reads).
fn wait_offset(server: &Server, upload: &str, want: usize) {
    let mut last = 0;
    let reached = within(Duration::from_secs(20), || {
        last = offset_of(server, upload);
        last == want
    });
    assert!(
        reached,
        "offset of {upload} is {last}, not {want}\n{}",
        server.logs()
    );
}

/// Leaves a PATCH from `offset` to `cut` (closing or resetting the
/// connection) and returns the offset the server kept: all of it when the
/// connection was closed; after a reset, what it had read (the reset
/// throws away the rest), which is more than before.
fn cut_at(
    server: &Server,
    upload: &str,
    file: &[u8],
    offset: usize,
    cut: usize,
    reset: bool,
) -> usize {
    patch_and_leave(server, upload, offset, &file[offset..cut], reset);
    offset_after_leaving(server, upload, offset, cut, reset)
}

/// The offset the server kept of a PATCH from `offset` that a client left
/// at `cut` (see [`cut_at`]).
fn offset_after_leaving(
    server: &Server,
    upload: &str,
    offset: usize,
    cut: usize,
    reset: bool,
) -> usize {
    if !reset {
        wait_offset(server, upload, cut);
        return cut;
    }
    // the offset moves while the server writes what it read (it is
    // persisted every few MiB): wait until it stays put
    let mut kept = offset;
    let moved = within(Duration::from_secs(30), || {
        let before = offset_of(server, upload);
        std::thread::sleep(Duration::from_secs(1));
        kept = offset_of(server, upload);
        kept > offset && kept == before
    });
    assert!(
        moved && kept <= cut,
        "offset {kept} after a reset at {cut}\n{}",
        server.logs()
    );
    kept
}

#[test]
fn tus_protocol_answers_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_MAX_UPLOAD_BYTES", "1000000")]);
    let file = stack(12);

    // discovery
    let resp = server.send(
        "OPTIONS /uploads",
        server.request(Method::OPTIONS, "/uploads"),
    );
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("tus-resumable"), VERSION);
    assert_eq!(resp.header("tus-version"), VERSION);
    let extensions: Vec<&str> = resp.header("tus-extension").split(',').collect();
    for ext in [
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(extensions.contains(&ext), "{extensions:?}");
    }
    assert_eq!(resp.header("tus-max-size"), "1000000");
    assert_eq!(resp.header("tus-checksum-algorithm"), "sha256");

    // another version, or none: 412 naming the one spoken
    for version in [Some("0.2.2"), None] {
        let mut request = server
            .keyed(Method::POST, "/uploads")
            .header("Upload-Length", "10");
        if let Some(v) = version {
            request = request.header("Tus-Resumable", v);
        }
        let resp = server.send("POST /uploads, another version", request);
        assert_eq!(resp.status, 412, "{}", resp.snippet());
        assert_eq!(resp.header("tus-version"), VERSION);
        assert_eq!(resp.header("tus-resumable"), VERSION);
    }

    // larger than the upload limit: 413 naming the setting
    let resp = server.send(
        "POST /uploads, too large",
        tus(&server, Method::POST, "/uploads").header("Upload-Length", "1000001"),
    );
    let message = resp.error(&[413]).unwrap();
    assert!(message.contains("PENTASCOPE_MAX_UPLOAD_BYTES"), "{message}");

    // metadata: the file's name, axes and catalogue fields
    let upload = create(
        &server,
        file.len(),
        &metadata(&[
            ("filename", "stack.tif"),
            ("name", "a resumed stack"),
            ("tag", "resumed\ntus"),
            ("annotation", "stain=DAPI"),
        ]),
    );
    let resp = head(&server, &upload);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("upload-offset"), "0");
    assert_eq!(resp.header("upload-length"), file.len().to_string());
    assert_eq!(resp.header("cache-control"), "no-store");
    assert_eq!(resp.header("tus-resumable"), VERSION);

    // not offset+octet-stream: 415; not at the offset: 409
    let resp = server.send(
        "PATCH, wrong type",
        tus(&server, Method::PATCH, &upload)
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/octet-stream")
            .body(file[..100].to_vec()),
    );
    assert_eq!(resp.status, 415, "{}", resp.snippet());
    assert_eq!(patch(&server, &upload, 5, &file[5..100]).status, 409);
    assert_eq!(offset_of(&server, &upload), 0);

    // a checksum that does not match: 460, and the chunk is discarded
    let part = 5000;
    let digest = |bytes: &[u8]| STANDARD.encode(sha2::Sha256::digest(bytes));
    let resp = server.send(
        "PATCH, wrong checksum",
        tus(&server, Method::PATCH, &upload)
            .header("Upload-Offset", "0")
            .header("Content-Type", OFFSET_STREAM)
            .header("Upload-Checksum", format!("sha256 {}", digest(b"other")))
            .body(file[..part].to_vec()),
    );
    assert_eq!(resp.status, 460, "{}", resp.snippet());
    assert_eq!(offset_of(&server, &upload), 0);
    let resp = server.send(
        "PATCH, right checksum",
        tus(&server, Method::PATCH, &upload)
            .header("Upload-Offset", "0")
            .header("Content-Type", OFFSET_STREAM)
            .header(
                "Upload-Checksum",
                format!("sha256 {}", digest(&file[..part])),
            )
            .body(file[..part].to_vec()),
    );
    assert_eq!(resp.status, 204, "{}", resp.snippet());
    assert_eq!(resp.header("upload-offset"), part.to_string());
    assert!(!resp.header("upload-expires").is_empty());

    // the last byte: the body is POST /upload's answer, and GET keeps it
    let resp = patch(&server, &upload, part, &file[part..]);
    assert_eq!(resp.status, 200, "{}", resp.snippet());
    assert_eq!(resp.header("upload-offset"), file.len().to_string());
    let id = image_of(&resp);
    assert_stack(&server, &id, 12);
    let image = server.get(&format!("/images/{id}")).ok_json().unwrap();
    assert_eq!(image["name"], "a resumed stack", "{image}");
    assert_eq!(image["original_filename"], "stack.tif", "{image}");
    let got = server.get(&upload).ok_json().unwrap();
    assert_eq!(got["image_id"], id.as_str());
    assert_eq!(got["published"], true);
    let resp = head(&server, &upload);
    assert_eq!(resp.header("upload-offset"), file.len().to_string());
    assert_eq!(resp.header("pentascope-image-id"), id);
    // the same bytes through POST /upload: the same samples
    let posted = server.upload_ok("stack.tif", file.clone());
    assert_eq!(server.samples_sha256(&posted), server.samples_sha256(&id));

    // creation-with-upload, with the whole file and axes
    let resp = server.send(
        "POST /uploads with the file",
        tus(&server, Method::POST, "/uploads")
            .header("Upload-Length", file.len().to_string())
            .header("Upload-Metadata", metadata(&[("axes", "TYX")]))
            .header("Content-Type", OFFSET_STREAM)
            .body(file.clone()),
    );
    assert_eq!(resp.status, 201, "{}", resp.snippet());
    assert_eq!(resp.header("upload-offset"), file.len().to_string());
    let id = image_of(&resp);
    assert_eq!(
        server.metadata(&id)["shape"],
        serde_json::json!([12, 1, 1, 48, 64])
    );

    // termination
    let upload = create(&server, file.len(), "");
    assert_eq!(patch(&server, &upload, 0, &file[..3000]).status, 204);
    let resp = server.send("DELETE", tus(&server, Method::DELETE, &upload));
    assert_eq!(resp.status, 204, "{}", resp.snippet());
    assert_eq!(head(&server, &upload).status, 404);
    assert_eq!(patch(&server, &upload, 3000, &file[3000..]).status, 404);
    assert_eq!(
        head(&server, "/uploads/0123456789abcdef0123456789abcdef").status,
        404
    );
    assert_eq!(head(&server, "/uploads/..%2Fpentascope.sqlite").status, 404);

    // a file the ingest refuses: the append that shows it answers why
    let upload = create(&server, 4000, "");
    let resp = patch(&server, &upload, 0, &[7u8; 4000]);
    assert_eq!(resp.status, 415, "{}", resp.snippet());
    assert_eq!(head(&server, &upload).status, 404);
    let staged = std::fs::read_dir(server.data_dir().join("uploads"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
        .count();
    assert_eq!(staged, 0, "the published and refused uploads keep no bytes");
}

#[test]
fn another_users_upload_is_not_found() {
    let lab = Lab::start(&[]);
    let bob = lab.key("bob", "write", &[]);
    let carol = lab.key("carol", "write", &[]);
    let file = stack(4);

    let created = lab.server.send(
        "POST /uploads",
        lab.server
            .request(Method::POST, "/uploads")
            .bearer_auth(&bob)
            .header("Tus-Resumable", VERSION)
            .header("Upload-Length", file.len().to_string()),
    );
    assert_eq!(created.status, 201, "{}", created.snippet());
    let upload = created.header("location").to_string();
    let as_user = |method: Method, path: &str, key: &str| {
        lab.server
            .request(method, path)
            .bearer_auth(key)
            .header("Tus-Resumable", VERSION)
    };
    let call = |method: Method, path: &str, key: &str| {
        lab.server.send(
            &format!("{method} {path}"),
            as_user(method.clone(), path, key),
        )
    };
    let append = |key: &str, body: Vec<u8>| {
        lab.server.send(
            "PATCH",
            as_user(Method::PATCH, &upload, key)
                .header("Upload-Offset", "0")
                .header("Content-Type", OFFSET_STREAM)
                .body(body),
        )
    };
    assert_eq!(call(Method::HEAD, &upload, &carol).status, 404);
    assert_eq!(call(Method::GET, &upload, &carol).status, 404);
    assert_eq!(call(Method::DELETE, &upload, &carol).status, 404);
    assert_eq!(append(&carol, file.clone()).status, 404);
    // without a key: 401, still naming the protocol
    let anonymous = lab.server.send(
        "HEAD without a key",
        lab.server
            .request(Method::HEAD, &upload)
            .header("Tus-Resumable", VERSION),
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("tus-resumable"), VERSION);
    // bob finishes it, and the image is his
    let id = image_of(&append(&bob, file));
    assert_eq!(lab.get(&format!("/images/{id}"), Some(&carol)).status, 404);
    assert_eq!(lab.get(&format!("/images/{id}"), Some(&bob)).status, 200);
}

#[test]
fn unfinished_uploads_expire_and_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_UPLOAD_EXPIRY", "2")]);
    let file = stack(6);
    let upload = create(&server, file.len(), "");
    assert_eq!(patch(&server, &upload, 0, &file[..2000]).status, 204);
    let staged = server.data_dir().join("uploads");
    assert_eq!(std::fs::read_dir(&staged).unwrap().count(), 2);
    let gone = within(Duration::from_secs(15), || {
        head(&server, &upload).status == 404
    });
    assert!(gone, "the expired upload is still there\n{}", server.logs());
    assert_eq!(std::fs::read_dir(&staged).unwrap().count(), 0);
    assert_eq!(patch(&server, &upload, 2000, &file[2000..]).status, 404);
}

#[test]
fn uploads_resume_after_the_client_leaves_mid_body() {
    let server = Server::start();
    let pages = 40;
    let file = stack(pages);
    let other = stack(7);
    let upload = create(&server, file.len(), &metadata(&[("filename", "a.tif")]));
    // a parallel upload, interleaved, must not mix with it
    let parallel = create(&server, other.len(), &metadata(&[("filename", "b.tif")]));
    let cuts = [file.len() / 5, file.len() / 2, file.len() * 4 / 5];
    let mut offset = 0;
    for (n, &cut) in cuts.iter().enumerate() {
        // the client sends up to the cut and leaves: closed, then reset
        offset = cut_at(&server, &upload, &file, offset, cut, n % 2 == 1);
        if n == 0 {
            assert_eq!(patch(&server, &parallel, 0, &other[..1000]).status, 204);
        }
    }
    let id = image_of(&patch(&server, &upload, offset, &file[offset..]));
    assert_stack(&server, &id, pages);
    let resp = patch(&server, &parallel, 1000, &other[1000..]);
    assert_stack(&server, &image_of(&resp), 7);
}

#[test]
fn uploads_resume_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path());
    let pages = 30;
    let file = stack(pages);
    let upload = create(&server, file.len(), &metadata(&[("filename", "r.tif")]));
    let first = file.len() / 3;
    assert_eq!(patch(&server, &upload, 0, &file[..first]).status, 204);
    // bytes of a request the server never finished: not counted
    patch_and_leave(&server, &upload, first, &file[first..first * 2], false);
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    let server = Server::start_in(dir.path());
    let offset = offset_of(&server, &upload);
    assert!(
        offset >= first && offset <= first * 2,
        "offset {offset} after the restart"
    );
    // a second restart after a completed part
    let second = file.len() * 3 / 4;
    assert_eq!(
        patch(&server, &upload, offset, &file[offset..second]).status,
        204
    );
    server.kill();
    let server = Server::start_in(dir.path());
    assert_eq!(offset_of(&server, &upload), second);
    let id = image_of(&patch(&server, &upload, second, &file[second..]));
    assert_stack(&server, &id, pages);
}

/// A tifffile-written file of about 200 MB (the issue asks for 2 GB; this
/// keeps CI within its time) uploaded in one PATCH per part and cut three
/// times: the client leaves, the connection is reset, the server is killed.
/// The image equals tifffile's reading of the file, and its pages were
/// stored as they arrived (the live ingest started again after the
/// restart, from the staged bytes).
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn a_large_upload_cut_three_times_equals_tifffile() {
    let work = tempfile::tempdir().unwrap();
    let python = crate::util::python::python_with("tifffile, numpy");
    let path = work.path().join("large.tif");
    let want = crate::util::python::run_json(
        &python,
        r#"
import hashlib, json, sys, numpy as np, tifffile
rng = np.random.default_rng(26)
a = rng.integers(0, 65535, (4, 25, 1, 1000, 1000), dtype=np.uint16)
tifffile.imwrite(sys.argv[1], a, imagej=True)
b = tifffile.imread(sys.argv[1])
print(json.dumps({"sha256": hashlib.sha256(np.ascontiguousarray(b).reshape(a.shape).tobytes()).hexdigest(),
                  "shape": list(a.shape)}))
"#,
        &[path.display().to_string()],
    );
    let file = std::fs::read(&path).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path());
    let upload = create(&server, file.len(), &metadata(&[("filename", "large.tif")]));
    let cuts = [
        file.len() / 4 + 12_345,
        file.len() / 2 + 777,
        file.len() * 5 / 6,
    ];
    let mut offset = 0;
    for (n, &cut) in cuts.iter().enumerate() {
        offset = match n {
            0 => cut_at(&server, &upload, &file, offset, cut, false),
            1 => cut_at(&server, &upload, &file, offset, cut, true),
            _ => {
                let resp = patch(&server, &upload, offset, &file[offset..cut]);
                assert_eq!(resp.status, 204, "{}", resp.snippet());
                server.kill();
                server = Server::start_in(data.path());
                let kept = offset_of(&server, &upload);
                assert_eq!(kept, cut, "the offset after the restart");
                kept
            }
        };
    }
    let resp = patch(&server, &upload, offset, &file[offset..]);
    let id = image_of(&resp);
    assert_eq!(server.metadata(&id)["shape"], want["shape"]);
    assert_eq!(server.samples_sha256(&id), want["sha256"]);
    assert_eq!(
        crate::stream::streamed_pages(&server, &id),
        Some(100),
        "pages stored as they arrived\n{}",
        server.logs()
    );
    assert_no_staged_bytes(server.data_dir());
}

fn assert_no_staged_bytes(data_dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(data_dir.join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Writes a 2 GiB ImageJ hyperstack (8 × 128 planes of 1024 × 1024 uint16,
/// each a ramp of its own) at `argv[1]` through tifffile's memory map, then
/// hashes tifffile's reading of it plane by plane from its memory map (the
/// file is never in memory whole).
const LARGE_TIFF: &str = r#"
import hashlib, json, sys, numpy as np, tifffile
path = sys.argv[1]
T, Z, Y, X = 8, 128, 1024, 1024
written = tifffile.memmap(path, shape=(T, Z, Y, X), dtype=np.uint16, imagej=True,
                          metadata={"axes": "TZYX"})
ramp = np.arange(Y * X, dtype=np.uint32).reshape(Y, X) * 7
for t in range(T):
    for z in range(Z):
        written[t, z] = (ramp + (t * Z + z) * 31) % 65521
written.flush()
del written
with tifffile.TiffFile(path) as f:
    series = f.series[0]
    assert series.axes == "TZYX" and series.shape == (T, Z, Y, X), (series.axes, series.shape)
read = tifffile.memmap(path, mode="r")
digest = hashlib.sha256()
for t in range(T):
    for z in range(Z):
        digest.update(np.ascontiguousarray(read[t, z]).tobytes())
print(json.dumps({"sha256": digest.hexdigest(), "shape": [T, Z, 1, Y, X]}))
"#;

/// tuspy sending the file at `argv[2]` to the upload at `argv[1]` from the
/// offset the server holds, in chunks of 32 MiB, never retrying: a client
/// process of its own, which the test may kill.
const TUSPY: &str = r#"
import sys
from tusclient.client import TusClient
from tusclient.uploader import Uploader
url, path, authorization = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {"Authorization": authorization} if authorization else {}
Uploader(file_path=path, url=url, client=TusClient(url, headers=headers),
         chunk_size=32 << 20).upload()
"#;

/// The issue's test: a 2 GiB file written by tifffile, sent by the real tus
/// client (tuspy, as its own process) and cut three times at random points
/// (the seed is printed; `PENTASCOPE_TUS_SEED` repeats it): the client
/// process is killed, the connection is reset, the server is killed and
/// started again while tuspy sends. tuspy then finishes from where the
/// server is, and the image's samples hash as tifffile's reading of the
/// file (both hashed as they stream); its pages were stored as they
/// arrived. About 2 minutes on 2 busy cores (debug build), a third of it
/// writing the file.
#[test]
#[ignore = "needs a Python venv with tifffile and tuspy; run with --ignored (.ci/run does)"]
fn a_2_gib_upload_cut_three_times_by_tuspy_equals_tifffile() {
    let started = std::time::Instant::now();
    let work = tempfile::tempdir().unwrap();
    let python = crate::util::python::python_with("tifffile, numpy, tusclient");
    let path = work.path().join("large.tif");
    let want = crate::util::python::run_json(&python, LARGE_TIFF, &[path.display().to_string()]);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    eprintln!(
        "{len} bytes written and hashed by tifffile in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let seed = std::env::var("PENTASCOPE_TUS_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                .into()
        });
    // xorshift64: a point between `from` and `to` of the file
    let mut state = seed | 1;
    let mut between = |from: f64, to: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        (len as f64 * (from + (to - from) * unit)) as usize
    };
    let cuts = [between(0.1, 0.3), between(0.4, 0.6), between(0.7, 0.9)];
    eprintln!("cuts at {cuts:?} (PENTASCOPE_TUS_SEED={seed})");

    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path());
    let upload = create(&server, len, &metadata(&[("filename", "large.tif")]));
    let tuspy = |server: &Server| {
        std::process::Command::new(&python)
            .arg("-c")
            .arg(TUSPY)
            .arg(server.url(&upload))
            .arg(&path)
            .arg(server.authorization().unwrap_or_default())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // waits until the server holds `cut` bytes, while `client` sends
    let past = |server: &Server, cut: usize, client: &mut std::process::Child| {
        let reached = within(Duration::from_secs(600), || {
            assert!(
                client.try_wait().unwrap().is_none(),
                "tuspy ended before offset {cut}\n{}",
                server.logs()
            );
            offset_of(server, &upload) >= cut
        });
        assert!(reached, "offset {cut} not reached\n{}", server.logs());
    };

    // 1: the client process is killed
    let mut client = tuspy(&server);
    past(&server, cuts[0], &mut client);
    client.kill().unwrap();
    client.wait().unwrap();
    let offset = offset_after_leaving(&server, &upload, 0, len, true);
    // 2: the connection is reset
    let mut file = std::fs::File::open(&path).unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset as u64)).unwrap();
    let sent = cuts[1].max(offset + 1) - offset;
    patch_and_leave_from(&server, &upload, offset, file.take(sent as u64), sent, true);
    let offset = offset_after_leaving(&server, &upload, offset, offset + sent, true);
    // 3: the server is killed while tuspy sends, and started again
    let mut client = tuspy(&server);
    past(&server, cuts[2].max(offset + 1), &mut client);
    server.kill();
    let ended = within(Duration::from_secs(60), || {
        client.try_wait().unwrap().is_some()
    });
    assert!(ended, "tuspy goes on without a server");
    server = Server::start_in(data.path());
    let kept = offset_of(&server, &upload);
    assert!(
        kept > offset,
        "offset {kept} after the restart, {offset} before"
    );
    eprintln!(
        "cut three times, offsets kept {offset} and {kept}, {:.1} s in",
        started.elapsed().as_secs_f64()
    );
    // the rest, by tuspy from where the server is
    let status = tuspy(&server).wait().unwrap();
    assert!(status.success(), "tuspy failed\n{}", server.logs());
    let got = server.get(&upload).ok_json().unwrap();
    assert_eq!(got["published"], true, "{got}");
    let id = got["image_id"].as_str().unwrap();
    assert_eq!(server.metadata(id)["shape"], want["shape"]);
    assert_eq!(streamed_samples_sha256(&server, id), want["sha256"]);
    assert_eq!(
        crate::stream::streamed_pages(&server, id),
        Some(8 * 128),
        "pages stored as they arrived (from the staged bytes after the restart)\n{}",
        server.logs()
    );
    assert_no_staged_bytes(server.data_dir());
    eprintln!(
        "2 GiB upload cut three times: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}

/// The sha256 of image `id`'s samples, hashed as its `.npy` download
/// streams in (2 GiB are not held in memory).
fn streamed_samples_sha256(server: &Server, id: &str) -> String {
    let mut resp = server
        .keyed(Method::GET, &format!("/images/{id}/download?format=npy"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // NumPy's header: magic, version, header length (2 bytes in version
    // 1, 4 after), the header
    let mut start = [0u8; 8];
    resp.read_exact(&mut start).unwrap();
    assert_eq!(&start[..6], b"\x93NUMPY");
    let header = if start[6] == 1 {
        let mut n = [0u8; 2];
        resp.read_exact(&mut n).unwrap();
        u64::from(u16::from_le_bytes(n))
    } else {
        let mut n = [0u8; 4];
        resp.read_exact(&mut n).unwrap();
        u64::from(u32::from_le_bytes(n))
    };
    std::io::copy(&mut (&mut resp).take(header), &mut std::io::sink()).unwrap();
    let mut digest = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = resp.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        digest.update(&buffer[..n]);
    }
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
