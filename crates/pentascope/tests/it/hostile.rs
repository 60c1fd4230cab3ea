//! Hostile input over HTTP: every file in `fuzz/regressions/reader/` (the
//! attack classes of issue 7, built byte by byte), oversized declarations,
//! clients that leave mid-ingest, deletes racing analyses and slow-loris
//! connections. Each ends in a clear 4xx or a bounded, correct answer, with
//! the process alive, its peak memory bounded and nothing left behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::tiff::{described_tiff, plain_tiff};
use crate::util::{decode_gray_png, Server};

/// Peak resident memory the server may reach on any hostile input.
const MAX_PEAK_RSS_KIB: u64 = 1 << 20;

/// Ids reserved and never published, as the server's database holds them.
pub(crate) fn pending_rows(server: &Server) -> Vec<String> {
    let url = server.database_url().to_string();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let records = pentascope_store::records::connect(&url).await.unwrap();
            records
                .images
                .pending("9999")
                .await
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        })
}

/// Files left in the data directory's staging area and upload spool.
pub(crate) fn leftovers(server: &Server) -> Vec<PathBuf> {
    let dir = server.data_dir();
    [dir.join("images").join(".staging"), dir.join("spool")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .collect()
}

/// Waits up to `limit` for `done`.
pub(crate) fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

fn regression_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/reader");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression files in {}",
        dir.display()
    );
    files
}

/// The status each attack class must get, by a word of its file name.
fn expected_status(name: &str) -> &'static [u16] {
    if name.contains("nested") {
        &[415]
    } else if name.contains("samples-per-pixel") {
        &[413]
    } else if name.contains("2-pow-24-planes") {
        &[422]
    } else if name.contains("sharing") {
        &[415, 422]
    } else {
        // metadata that overflows falls back to the plain reading
        &[200, 400, 413, 415, 422]
    }
}

#[test]
fn hostile_files_get_4xx_with_the_process_alive_memory_bounded_and_nothing_left() {
    let server = Server::start();
    for path in regression_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let started = Instant::now();
        let resp = server.upload(&name, std::fs::read(&path).unwrap(), None);
        let allowed = expected_status(&name);
        assert!(
            allowed.contains(&resp.status),
            "{name}: {} not in {allowed:?}: {}",
            resp.status,
            resp.snippet()
        );
        if resp.status != 200 {
            let message = resp.client_error().unwrap();
            assert!(!message.is_empty(), "{name}: an error says why");
            if name.contains("samples-per-pixel") {
                // the front door names the limit's flag and variable
                assert!(
                    message.contains("(--max-channels / PENTASCOPE_MAX_CHANNELS)"),
                    "{message}"
                );
            }
        }
        eprintln!(
            "hostile {name}: {} in {:.2} s",
            resp.status,
            started.elapsed().as_secs_f64()
        );
        server.assert_healthy();
    }
    let peak = server.peak_rss_kib();
    eprintln!("hostile files: peak RSS {peak} KiB");
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
    assert!(pending_rows(&server).is_empty(), "pending rows left");
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));
}

/// A file past a configured limit: 413, and the JSON error names the
/// setting as the operator changes it, flag and variable (the layers below
/// the HTTP front door only say which limit it was).
#[test]
fn a_file_past_a_limit_gets_413_naming_its_flag_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_MAX_CHANNELS", "2")]);
    let set = crate::util::FixtureSet::load(&crate::util::fixtures_dir(), "tiff");
    let resp = server.upload("rgb_contig_u8.tif", set.read("rgb_contig_u8.tif"), None);
    let message = resp.error(&[413]).unwrap();
    assert!(
        message.contains("the image has 3 channels")
            && message.contains("maximum of 2")
            && message.ends_with("(--max-channels / PENTASCOPE_MAX_CHANNELS)"),
        "{message}"
    );
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));
}

#[test]
fn malformed_requests_get_the_specific_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_MAX_UPLOAD_BYTES", "100000")]);
    // a declared length over the limit is refused before the body is read
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: 1000000000\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    let file = plain_tiff(4, 4, 8, 1, |_, i| i as u8);
    let two_files = reqwest::blocking::multipart::Form::new()
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(file.clone()).file_name("a.tif"),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(file.clone()).file_name("b.tif"),
        );
    // refused before their bodies are read, so the server closes these
    // connections: a client without a connection pool sends them
    let unpooled = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = |path: &str| format!("http://{}{path}", server.addr());
    let resp = unpooled
        .post(url("/upload"))
        .multipart(two_files)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    let message = resp.text().unwrap();
    assert!(message.contains("more than one"), "{message}");

    let big_json = json!({"image_id": "image_1", "pad": "x".repeat(3 << 20)});
    let resp = unpooled
        .post(url("/analyze"))
        .json(&big_json)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 413, "{:?}", resp.text());

    let id = server.upload_ok("a.tif", file);
    let padded = id.replace("image_", "image_0");
    let resp = server.get(&format!("/metadata?image_id={padded}"));
    assert_eq!(resp.status, 404, "{padded} is not {id}: {}", resp.snippet());
    for window in ["min=5&max=5", "min=6&max=5"] {
        let resp = server.get(&format!("/slice?image_id={id}&{window}"));
        assert_eq!(resp.status, 400, "{window}: {}", resp.snippet());
        assert!(
            resp.client_error().unwrap().contains("less than"),
            "{window}"
        );
    }
    let resp = server.get(&format!("/slice?image_id={id}&t=1&c=2"));
    assert_eq!(resp.status, 400, "{}", resp.snippet());
    let message = resp.client_error().unwrap();
    assert!(
        message.contains("t, c") && message.contains("time"),
        "{message}"
    );
    server.assert_healthy();
}

#[test]
fn slices_of_planes_over_the_memory_budget_are_refused_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_SLICE_MEMORY_MIB", "48")]);
    // 4096 × 4096 uint16: 32 MiB a plane, about 64 MiB to render
    let big = server.upload_ok("big.tif", plain_tiff(4096, 4096, 16, 1, |_, i| i as u8));
    let resp = server.get(&format!("/slice?image_id={big}"));
    assert_eq!(resp.status, 413, "{}", resp.snippet());
    assert!(resp
        .client_error()
        .unwrap()
        .contains("PENTASCOPE_SLICE_MEMORY_MIB"));
    // 2048 × 2048 uint16: 8 MiB a plane, within the budget
    let small = server.upload_ok("small.tif", plain_tiff(2048, 2048, 16, 1, |_, i| i as u8));
    let resp = server.get(&format!("/slice?image_id={small}&format=npy"));
    assert_eq!(resp.status, 200, "{}", resp.snippet());
    server.assert_healthy();
}

/// One rendering at a time and nothing cached: every request renders, in turn.
const ONE_RENDERING_NO_CACHE: &[(&str, &str)] = &[
    ("PENTASCOPE_RENDER_CONCURRENCY", "1"),
    ("PENTASCOPE_SLICE_CACHE_MIB", "0"),
];

/// Planes of different sizes and types, rendered one after another on the
/// one rendering slot (so on threads that keep their last plane's buffer),
/// each come back as exactly their own samples, and 8-bit renderings of
/// them as their own windowed pixels.
#[test]
fn slices_of_different_planes_in_turn_are_each_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), ONE_RENDERING_NO_CACHE);
    let wide_fill = |page: u32, i: usize| (i as u32 * 13 + page * 71) as u8;
    let small_fill = |page: u32, i: usize| (i as u32 * 5 + page * 3 + 1) as u8;
    let wide = server.upload_ok("wide.tif", plain_tiff(640, 480, 16, 2, wide_fill));
    let small = server.upload_ok("small.tif", plain_tiff(200, 150, 8, 2, small_fill));
    let expected = |fill: &dyn Fn(u32, usize) -> u8, bytes: usize, page: u32| -> Vec<u8> {
        (0..bytes).map(|i| fill(page, i)).collect()
    };
    for round in 0..3 {
        for (id, fill, bytes, width) in [
            (
                &wide,
                &wide_fill as &dyn Fn(u32, usize) -> u8,
                640 * 480 * 2,
                640,
            ),
            (
                &small,
                &small_fill as &dyn Fn(u32, usize) -> u8,
                200 * 150,
                200,
            ),
        ] {
            let z = (round % 2) as u32;
            let npy = server
                .get(&format!("/slice?image_id={id}&z={z}&format=npy"))
                .npy()
                .unwrap();
            assert_eq!(
                npy.data,
                expected(fill, bytes, z),
                "{id} z={z} round {round}"
            );
            // an 8-bit window over the whole sample range: v * 255 / max
            let max = if bytes == 200 * 150 { 255.0 } else { 65535.0 };
            let resp = server.get(&format!("/slice?image_id={id}&z={z}&min=0&max={max}"));
            let png = decode_gray_png(&resp.body).unwrap();
            assert_eq!(png.width, width);
            let samples: Vec<f64> = if bytes == 200 * 150 {
                npy.data.iter().map(|&b| f64::from(b)).collect()
            } else {
                npy.data
                    .chunks_exact(2)
                    .map(|b| f64::from(u16::from_le_bytes([b[0], b[1]])))
                    .collect()
            };
            let windowed: Vec<u16> = samples
                .iter()
                .map(|v| (v * 255.0 / max + 0.5).floor() as u16)
                .collect();
            assert_eq!(png.samples, windowed, "{id} z={z} round {round}");
        }
    }
    server.assert_healthy();
}

/// With one rendering at a time, many slice and tile requests at once all
/// wait their turn and answer what they answer one by one: the slot is
/// given back by every path (no request left waiting for ever).
#[test]
fn renderings_beyond_the_concurrency_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), ONE_RENDERING_NO_CACHE);
    let id = server.upload_ok(
        "stack.tif",
        plain_tiff(600, 500, 16, 8, |page, i| (i as u32 * 7 + page * 31) as u8),
    );
    let paths: Vec<String> = (0..8)
        .flat_map(|z| {
            [
                format!("/slice?image_id={id}&z={z}"),
                format!("/render?image_id={id}&z={z}&tile=0,{},0", z % 2),
                format!("/slice?image_id={id}&z={z}&format=npy"),
            ]
        })
        .collect();
    let at_once: Vec<(u16, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .iter()
            .map(|path| scope.spawn(|| server.get(path)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let resp = h.join().unwrap();
                (resp.status, resp.body)
            })
            .collect()
    });
    for (path, (status, body)) in paths.iter().zip(at_once) {
        assert_eq!(status, 200, "{path}");
        let alone = server.get(path);
        assert_eq!(alone.status, 200, "{path}");
        assert!(body == alone.body, "{path}: a different answer when alone");
    }
    server.assert_healthy();
}

/// A connection to `server` that has sent the headers of `POST /upload` for
/// `file` as multipart field `file`, and the body still to send: the test
/// decides how much of it goes before the client leaves.
fn upload_by_hand(server: &Server, file: Vec<u8>) -> (TcpStream, Vec<u8>) {
    let boundary = "pentascope-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.tif\"\r\n\
         Content-Type: image/tiff\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    drop(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    (stream, body)
}

#[test]
fn a_client_that_leaves_mid_ingest_leaves_no_staged_pixels_and_no_pending_row() {
    let server = Server::start();
    // 96 pages of 2048 × 2048 uint16 (768 MiB): long enough to leave during
    let file = plain_tiff(2048, 2048, 16, 96, |p, i| (p as usize + i) as u8);
    let (mut stream, body) = upload_by_hand(&server, file);
    stream.write_all(&body).unwrap();
    // the whole body is sent: wait until the ingest has started, then leave
    assert!(
        within(Duration::from_secs(60), || server
            .logs()
            .contains("upload received")),
        "{}",
        server.logs()
    );
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    assert_abandoned_upload_left_nothing(&server);
}

/// Once a client has left mid-upload: within 5 s no pending row, staged
/// pixel or spool file is left, nothing was published, and the service is
/// healthy.
fn assert_abandoned_upload_left_nothing(server: &Server) {
    let left = Instant::now();
    let clean = within(Duration::from_secs(5), || {
        pending_rows(server).is_empty() && leftovers(server).is_empty()
    });
    assert!(
        clean,
        "after 5 s: pending {:?}, files {:?}\n{}",
        pending_rows(server),
        leftovers(server),
        server.logs()
    );
    eprintln!(
        "client left: cleaned up within {:.2} s",
        left.elapsed().as_secs_f64()
    );
    let images = server.get("/images").ok_json().unwrap();
    assert_eq!(images["count"], 0, "the abandoned upload was not published");
    server.assert_healthy();
}

#[test]
fn a_client_that_leaves_while_its_pages_are_stored_as_they_arrive_leaves_nothing() {
    let server = Server::start();
    // an ImageJ stack of 96 pages of 2048 × 2048 uint16 (768 MiB), all IFDs
    // first: each page is stored as its bytes pass
    let file = described_tiff(
        2048,
        2048,
        16,
        96,
        "ImageJ=1.54f\nimages=96\nslices=96\n",
        |p, i| (p as usize + i) as u8,
    );
    let (mut stream, body) = upload_by_hand(&server, file);
    // half the body: pages are being stored when the client goes
    stream.write_all(&body[..body.len() / 2]).unwrap();
    let staging = server.data_dir().join("images").join(".staging");
    assert!(
        within(Duration::from_secs(60), || std::fs::read_dir(&staging)
            .is_ok_and(|mut d| d.next().is_some())),
        "no pages were staged while the body arrived\n{}",
        server.logs()
    );
    drop(stream);
    assert_abandoned_upload_left_nothing(&server);
}

#[test]
fn delete_during_analyze_never_answers_with_data_of_a_deleted_image() {
    let server = Server::start();
    // an ImageJ hyperstack of 20 × 3 planes of 1024 × 1024 uint16
    let file = described_tiff(
        1024,
        1024,
        16,
        60,
        "ImageJ=1.54f\nimages=60\nchannels=3\nslices=20\nhyperstack=true\n",
        |p, i| ((p as usize * 7 + i * 13) % 251) as u8,
    );
    let id = server.upload_ok("stack.tif", file);
    let analysis = std::thread::scope(|scope| {
        let running =
            scope.spawn(|| server.post_json("/analyze", &json!({"image_id": id, "components": 2})));
        std::thread::sleep(Duration::from_millis(200));
        let deleted = server.delete(&format!("/images/{id}"));
        assert_eq!(deleted.status, 200, "{}", deleted.snippet());
        running.join().unwrap()
    });
    eprintln!("analyze raced by a delete: {}", analysis.snippet());
    match analysis.status {
        // it finished first: its scores went with the source
        200 => {
            let scores = analysis.json().unwrap()["scores_image_id"].clone();
            let resp = server.get(&format!("/metadata?image_id={}", scores.as_str().unwrap()));
            assert_eq!(resp.status, 404, "the scores image outlived its source");
        }
        404 | 409 => {}
        other => panic!("analyze answered {other}: {}", analysis.snippet()),
    }
    let images = server.get("/images").ok_json().unwrap();
    assert_eq!(images["count"], 0, "nothing is orphaned: {images}");
    server.assert_healthy();
}

#[test]
fn slow_loris_connections_are_closed_and_health_keeps_answering() {
    const SLOW: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_HEADER_TIMEOUT", "4")]);
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        // the slow clients trickle one header line each round
        for s in &mut slow {
            let _ = s.write_all(b"X-Slow: 1\r\n");
        }
        let asked = Instant::now();
        let resp = client
            .get(format!("http://{}/health", server.addr()))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        worst = worst.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("slow loris: /health answered within {worst:?} at worst");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    // past the header timeout the server has closed them
    let closed = slow
        .iter()
        .filter(|&s| {
            let mut s: &TcpStream = s;
            // an open, silent connection times out; a closed one reads EOF,
            // a reset or the server's last words
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 256];
            !matches!(
                s.read(&mut buf),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            )
        })
        .count();
    assert!(
        closed >= SLOW * 95 / 100,
        "{closed} of {SLOW} slow connections closed"
    );
}
