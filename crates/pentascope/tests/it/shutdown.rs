//! Graceful shutdown: on SIGTERM the server stops accepting connections,
//! finishes the requests in flight and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{fixtures_dir, FixtureSet, Server};

const FILE: &str = "ome_tczyx_u16.ome.tif";

/// An upload half sent when SIGTERM arrives: new connections are refused
/// at once, the upload is finished and answered 200, the process exits 0,
/// and the image is there after a restart.
#[test]
fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_configured(dir.path(), &[]);
    let addr = server.addr().to_string();
    let boundary = "pentascope-shutdown-test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{FILE}\"\r\n\
         Content-Type: image/tiff\r\n\r\n"
    )
    .into_bytes();
    body.extend(FixtureSet::load(&fixtures_dir(), "tiff").read(FILE));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let mut upload = TcpStream::connect(&addr).unwrap();
    write!(
        upload,
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let half = body.len() / 2;
    upload.write_all(&body[..half]).unwrap();
    upload.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    server.send_sigterm();
    assert_eq!(
        server.wait_exit(Duration::from_millis(700)),
        None,
        "the server left with a request in flight\n{}",
        server.logs()
    );
    assert!(
        TcpStream::connect(&addr).is_err(),
        "a new connection is accepted during shutdown"
    );
    upload.write_all(&body[half..]).unwrap();
    let mut response = String::new();
    upload
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    upload.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.contains("\"image_id\":\"image_1\""),
        "the upload in flight is finished: {response}\n{}",
        server.logs()
    );
    let status = server
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running\n{}", server.logs()));
    assert!(status.success(), "exit status {status}\n{}", server.logs());

    let again = Server::start_configured(dir.path(), &[]);
    let listed = again.get("/images").ok_json().unwrap();
    assert_eq!(listed["images"][0]["image_id"], "image_1", "{listed}");
}
