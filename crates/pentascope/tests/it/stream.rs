//! Uploads stored while they arrive (`pentascope_passes::stream`): files
//! written by tifffile and ImageJ, and one whose IFDs follow their data,
//! must be stored exactly as tifffile reads them, whichever of their pages
//! could be placed as they passed; a file whose first IFD lies, an axes
//! field sent after the file, and a truncated upload are refused and leave
//! nothing behind.
//!
//! Needs a Python with tifffile and numpy (`PENTASCOPE_TEST_PYTHON`,
//! default the repository's `.venv`): ignored by a plain `cargo test`,
//! run by `.ci/run`.

use std::process::Command;

use reqwest::blocking::multipart;
use serde_json::Value;

use crate::hostile::leftovers;
use crate::util::Server;

const FILES: &str = r#"
import hashlib, json, struct, sys, numpy as np, tifffile
out_dir = sys.argv[1]
rng = np.random.default_rng(7)
out = {}

def keep(name, canonical, streamed):
    # canonical: the array in pentascope's TZCYX order
    out[name] = {"sha256": hashlib.sha256(np.ascontiguousarray(canonical).tobytes()).hexdigest(),
                 "shape": list(canonical.shape), "streamed": streamed}

a = rng.integers(0, 65535, (2, 3, 2, 64, 48), dtype=np.uint16)
tifffile.imwrite(f"{out_dir}/imagej.tif", a, imagej=True)
assert (tifffile.imread(f"{out_dir}/imagej.tif") == a).all()
keep("imagej.tif", a, 12)

b = rng.normal(0, 1, (5, 40, 33)).astype(np.float32)
tifffile.imwrite(f"{out_dir}/shaped_zlib.tif", b, compression="zlib", predictor=True)
keep("shaped_zlib.tif", b[None, :, None], 5)

c = rng.integers(0, 255, (5, 50, 40), dtype=np.uint8)
tifffile.imwrite(f"{out_dir}/tiled_bigtiff.tif", c, bigtiff=True, tile=(16, 16))
keep("tiled_bigtiff.tif", c[None, :, None], 5)

d = rng.integers(0, 255, (3, 32, 30, 3), dtype=np.uint8)
tifffile.imwrite(f"{out_dir}/rgb.tif", d, photometric="rgb")
keep("rgb.tif", d.transpose(0, 3, 1, 2)[None], 3)

o = rng.integers(0, 65535, (3, 2, 4, 30, 20), dtype=np.uint16)
# tifffile writes the OME-XML last: nothing is known before the end
tifffile.imwrite(f"{out_dir}/ome.ome.tif", o, ome=True, metadata={"axes": "TCZYX"})
keep("ome.ome.tif", o.transpose(0, 2, 1, 3, 4), 0)
# OME-XML in the first IFD, before the planes
ox = tifffile.OmeXml()
ox.addimage(o.dtype, o.shape, (24, 1, 1, 30, 20, 1), axes="TCZYX")
for name, kwargs in [("ome_first.ome.tif", {}), ("ome_first_zlib.ome.tif", {"compression": "zlib"})]:
    tifffile.imwrite(f"{out_dir}/{name}", o.reshape(24, 30, 20), description=ox.tostring(),
                     metadata=None, photometric="minisblack", **kwargs)
    assert (tifffile.imread(f"{out_dir}/{name}") == o).all()
    keep(name, o.transpose(0, 2, 1, 3, 4), 24)

# ImageJ's own layout: the planes right after the header, the IFDs last
e = rng.integers(0, 65535, (4, 20, 24), dtype=np.uint16)
n, h, w = e.shape
desc = b"ImageJ=1.54f\nimages=4\nslices=4\n\0"
f = bytearray(b"II*\0\0\0\0\0")
data_at = len(f)
f += e.astype("<u2").tobytes()
desc_at = len(f)
f += desc
ifds, nexts = [], []
for k in range(n):
    if len(f) % 2:
        f += b"\0"
    ifds.append(len(f))
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 16), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, data_at + k * h * w * 2), (277, 3, 1, 1), (278, 3, 1, h),
               (279, 4, 1, h * w * 2)]
    if k == 0:
        entries.append((270, 2, len(desc), desc_at))
    entries.sort()
    f += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        f += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind, count, value)
    nexts.append(len(f))
    f += b"\0\0\0\0"
struct.pack_into("<I", f, 4, ifds[0])
for k in range(n - 1):
    struct.pack_into("<I", f, nexts[k], ifds[k + 1])
open(f"{out_dir}/ifds_last.tif", "wb").write(f)
assert (tifffile.imread(f"{out_dir}/ifds_last.tif") == e).all()
keep("ifds_last.tif", e[None, :, None], 0)

# a first IFD that declares 4 planes for a file of 6 (read from a file,
# the shape would be taken from the pages, with a warning)
g = rng.integers(0, 65535, (6, 16, 16), dtype=np.uint16)
tifffile.imwrite(f"{out_dir}/lying.tif", g)
lying = open(f"{out_dir}/lying.tif", "rb").read()
assert b'"shape": [6, 16, 16]' in lying
open(f"{out_dir}/lying.tif", "wb").write(lying.replace(b'"shape": [6, 16, 16]', b'"shape": [4, 16, 16]', 1))

# a plain stack to read as a time series
p = rng.integers(0, 65535, (6, 20, 20), dtype=np.uint16)
tifffile.imwrite(f"{out_dir}/series.tif", p)
keep("series.tif", p[:, None, None], 6)
print(json.dumps(out))
"#;

/// How many pages the server said it stored as they arrived for image `id`.
pub(crate) fn streamed_pages(server: &Server, id: &str) -> Option<u64> {
    let logs = server.logs();
    // the log is coloured: drop the escape sequences
    let mut plain = String::with_capacity(logs.len());
    let mut chars = logs.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    let line = plain
        .lines()
        .find(|l| l.contains("pages stored as they arrived") && l.contains(&format!("id={id} ")))?;
    line.split("pages=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn form(name: &str, bytes: Vec<u8>) -> multipart::Part {
    multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str("image/tiff")
        .expect("mime type")
}

#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn uploads_are_stored_as_they_arrive_exactly_as_tifffile_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let python = crate::util::python::python_with("tifffile, numpy");
    let out = Command::new(python)
        .arg("-c")
        .arg(FILES)
        .arg(dir.path())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let server = Server::start();
    for (name, want) in reference.as_object().unwrap() {
        if name == "series.tif" {
            continue;
        }
        let id = server.upload_ok(name, read(name));
        let meta = server.metadata(&id);
        assert_eq!(meta["shape"], want["shape"], "{name}");
        assert_eq!(server.samples_sha256(&id), want["sha256"], "{name}");
        assert_eq!(
            streamed_pages(&server, &id),
            want["streamed"].as_u64(),
            "{name}: pages stored as they arrived\n{}",
            server.logs()
        );
    }

    // axes as a query parameter or a field before the file: stored as
    // they arrive, as a time series
    let want = &reference["series.tif"];
    for (path, form) in [
        (
            "/upload?axes=TYX",
            multipart::Form::new().part("file", form("series.tif", read("series.tif"))),
        ),
        (
            "/upload",
            multipart::Form::new()
                .text("axes", "TYX")
                .part("file", form("series.tif", read("series.tif"))),
        ),
    ] {
        let resp = server.post_form(path, "series.tif", form);
        let id = resp.ok_json().unwrap()["image_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(server.metadata(&id)["shape"], want["shape"], "{path}");
        assert_eq!(server.samples_sha256(&id), want["sha256"], "{path}");
        assert_eq!(streamed_pages(&server, &id), Some(6), "{path}");
    }
    // an axes field after the file comes too late for pages already stored
    let late = multipart::Form::new()
        .part("file", form("series.tif", read("series.tif")))
        .text("axes", "TYX");
    let message = server
        .post_form("/upload", "series.tif, axes after", late)
        .error(&[400])
        .unwrap();
    assert!(message.contains("send axes before the file"), "{message}");

    // a first IFD that lies about the pages after it
    let message = server
        .upload("lying.tif", read("lying.tif"), None)
        .error(&[422])
        .unwrap();
    assert!(
        message.contains("disagrees with what its first IFD declares"),
        "{message}"
    );

    // an upload cut short in the middle of its pages
    let mut cut = read("imagej.tif");
    cut.truncate(cut.len() * 3 / 5);
    let message = server.upload("cut.tif", cut, None).error(&[422]).unwrap();
    assert!(message.contains("truncated"), "{message}");
    assert_eq!(leftovers(&server), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        server.get("/images").ok_json().unwrap()["images"]
            .as_array()
            .map(Vec::len),
        Some(reference.as_object().unwrap().len() + 1),
        "only the accepted uploads are listed"
    );
}
