//! Shared machinery for the HTTP integration tests: starting and stopping the
//! `pentascope serve` binary, a small HTTP client, fixture discovery and
//! decoders for the `.npy` and PNG bodies the server returns.
// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code, unused_macros)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::{multipart, Client};
use serde_json::Value;

/// Returns `Err(format!(..))` from the enclosing function unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {{
        let ok: bool = $cond;
        if !ok {
            return Err(format!($($arg)+));
        }
    }};
}

pub mod conformance;
pub mod npy;

/// How long the server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-request timeout; generous because the largest fixture is a
/// 9600x9600 plane served by a debug build.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How many lines of server output to keep for failure messages.
const LOG_LINES: usize = 80;
/// The line the server prints once it accepts connections.
const LISTENING: &str = "pentascope listening on ";

// ---------------------------------------------------------------------------
// Fixtures

/// The fixture corpus directory, or `None` (after printing a notice) when it
/// is missing outside CI. Under `CI=true` a missing corpus is a failure.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("PENTASCOPE_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures"
        )),
    };
    if dir.join("tiff").join("expected.json").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "fixture corpus not found at {} (set PENTASCOPE_FIXTURES); it is required under CI=true",
            dir.display()
        );
    }
    // Written to the real stderr so that the test harness does not swallow it.
    let _ = writeln!(
        std::io::stderr(),
        "NOTICE: fixture corpus not found at {}; skipping this test (set PENTASCOPE_FIXTURES)",
        dir.display()
    );
    None
}

/// One fixture set (`tiff` or `real`): its directory and `expected.json`.
pub struct FixtureSet {
    /// The set's directory.
    pub dir: PathBuf,
    /// `files` from `expected.json`, sorted by name.
    pub files: Vec<(String, Value)>,
}

impl FixtureSet {
    /// Loads `<fixtures>/<name>/expected.json`.
    pub fn load(fixtures: &Path, name: &str) -> FixtureSet {
        let dir = fixtures.join(name);
        let path = dir.join("expected.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        let files = json["files"]
            .as_object()
            .unwrap_or_else(|| panic!("{} has no `files` object", path.display()));
        let mut files: Vec<(String, Value)> =
            files.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!files.is_empty(), "{} lists no files", path.display());
        FixtureSet { dir, files }
    }

    /// The expected entry of one file.
    pub fn expected(&self, name: &str) -> &Value {
        &self
            .files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("fixture {name} is not in expected.json"))
            .1
    }

    /// The bytes of one file.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.dir.join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }
}

// ---------------------------------------------------------------------------
// Server process

type Log = Arc<Mutex<VecDeque<String>>>;

fn push_log(log: &Log, line: String) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if log.len() == LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

/// Drains a child pipe line by line into `log` until EOF, forwarding each
/// line to `tx` while someone still listens.
fn drain<R: Read + Send + 'static>(
    pipe: R,
    prefix: &'static str,
    log: Log,
    tx: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if let Some(tx) = &tx {
                        // The receiver is gone once startup is over; keep draining.
                        let _ = tx.send(line.clone());
                    }
                    push_log(&log, format!("{prefix}{line}"));
                }
            }
        }
    });
}

/// The configuration the suite runs against, from `PENTASCOPE_TEST_BACKEND`:
/// unset for the embedded defaults (SQLite, local pixels, in-process jobs);
/// `postgres` for PostgreSQL records; `production` for PostgreSQL records,
/// pixels on S3 (`PENTASCOPE_TEST_S3`, default http://127.0.0.1:5055, any
/// S3-compatible server such as `moto_server`) and jobs on Redis
/// (`PENTASCOPE_TEST_REDIS`) run by a `pentascope worker` started beside
/// each server. Every name is derived from the data directory, so a restart
/// on the same directory finds the same database, bucket prefix and queue.
fn backend_env(data_dir: &Path) -> Vec<(String, String)> {
    let backend = std::env::var("PENTASCOPE_TEST_BACKEND").unwrap_or_default();
    if backend.is_empty() {
        return Vec::new();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&data_dir, &mut hasher);
    let tag = format!(
        "{}_{:x}",
        std::process::id(),
        std::hash::Hasher::finish(&hasher)
    );
    match backend.as_str() {
        "postgres" => vec![("DATABASE_URL".to_string(), postgres_database(&tag))],
        "production" => production_env(&tag),
        other => panic!("PENTASCOPE_TEST_BACKEND={other}: use postgres or production"),
    }
}

/// The production configuration's settings for the deployment named `tag`:
/// its own PostgreSQL database, S3 prefix and Redis queue.
pub fn production_env(tag: &str) -> Vec<(String, String)> {
    let endpoint =
        std::env::var("PENTASCOPE_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let bucket = "pentascope-test";
    // S3-compatible test servers create a bucket on an unsigned PUT
    let created = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .output()
        .expect("run curl");
    assert!(
        created.status.success(),
        "cannot create bucket at {endpoint}: {created:?}"
    );
    let redis = std::env::var("PENTASCOPE_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    [
        ("DATABASE_URL", postgres_database(tag)),
        ("STORAGE_URL", format!("s3://{bucket}/{tag}")),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("CELERY_BROKER_URL", redis),
        ("PENTASCOPE_CELERY_QUEUE", format!("pentascope-api-{tag}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Whether the services of the production configuration answer: PostgreSQL
/// (`psql`), Redis (`redis-cli`) and the S3 server. Missing services fail
/// the calling test under `CI=true` and skip it otherwise.
pub fn production_services() -> bool {
    let ok = |c: &mut Command| c.output().map(|o| o.status.success()).unwrap_or(false);
    let admin = std::env::var("PENTASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let s3 = std::env::var("PENTASCOPE_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let missing: Vec<&str> = [
        (
            "PostgreSQL",
            ok(Command::new("psql").args([admin.as_str(), "-c", "SELECT 1"])),
        ),
        ("Redis", ok(Command::new("redis-cli").arg("ping"))),
        (
            "S3",
            ok(Command::new("curl").args(["-sf", "-o", "/dev/null", &s3])),
        ),
    ]
    .into_iter()
    .filter(|(_, up)| !up)
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{missing:?} must be running under CI=true");
    }
    eprintln!("{missing:?} not running; skipping");
    false
}

/// A `pentascope worker` child with the given settings, killed on drop.
pub struct Worker(Child);

impl Worker {
    /// Starts a worker on `data_dir` with `env`.
    pub fn start(data_dir: &Path, env: &[(String, String)]) -> Worker {
        Worker::start_logged(data_dir, env, None)
    }

    /// Starts a worker whose log (stderr) goes to `log`, if given.
    pub fn start_logged(data_dir: &Path, env: &[(String, String)], log: Option<&Path>) -> Worker {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create worker log")),
            None => Stdio::null(),
        };
        Worker(
            Command::new(env!("CARGO_BIN_EXE_pentascope"))
                .arg("worker")
                .arg("--data-dir")
                .arg(data_dir)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("spawn pentascope worker"),
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh PostgreSQL database named after `tag` (created on first use) on
/// `PENTASCOPE_TEST_POSTGRES` (default: the local server, database `test`).
fn postgres_database(tag: &str) -> String {
    let admin = std::env::var("PENTASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("pentascope_api_{tag}");
    let exists = Command::new("psql")
        .arg(&admin)
        .args([
            "-tAc",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        ])
        .output()
        .expect("run psql (PENTASCOPE_TEST_BACKEND needs the PostgreSQL client)");
    assert!(exists.status.success(), "psql {admin} failed: {exists:?}");
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        let created = Command::new("psql")
            .arg(&admin)
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("run psql");
        assert!(created.status.success(), "creating {name}: {created:?}");
    }
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// A running `pentascope serve` child process, killed on drop.
pub struct Server {
    child: Child,
    /// The `pentascope worker` beside it, in the production configuration.
    _worker: Option<Worker>,
    base: String,
    data_dir: PathBuf,
    log: Log,
    client: Client,
    // Dropped after `Drop::drop` has killed the child.
    _own_dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("pentascope-test-")
            .tempdir()
            .expect("create temporary data dir");
        let mut server = Server::start_in(dir.path());
        server._own_dir = Some(dir);
        server
    }

    /// Starts a server on `data_dir`, which the caller keeps alive (used to
    /// restart on the same data).
    pub fn start_in(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// Starts a server on `data_dir` with exactly the settings `env`
    /// (ignoring `PENTASCOPE_TEST_BACKEND`), and no worker beside it.
    pub fn start_configured(data_dir: &Path, env: &[(String, String)]) -> Server {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::launch(data_dir, Vec::new(), None, &env)
    }

    /// Starts a server on `data_dir` with extra environment variables.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let backend = backend_env(data_dir);
        let worker = backend
            .iter()
            .any(|(k, _)| k == "CELERY_BROKER_URL")
            .then(|| Worker::start(data_dir, &backend));
        Server::launch(data_dir, backend, worker, env)
    }

    fn launch(
        data_dir: &Path,
        backend: Vec<(String, String)>,
        worker: Option<Worker>,
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pentascope"));
        command
            .envs(backend.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .arg("serve");
        let mut child = command
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the pentascope binary");
        let log: Log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("child stdout"),
            "",
            log.clone(),
            Some(tx),
        );
        drain(
            child.stderr.take().expect("child stderr"),
            "[stderr] ",
            log.clone(),
            None,
        );
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("build HTTP client");
        let mut server = Server {
            child,
            _worker: worker,
            base: String::new(),
            data_dir: data_dir.to_path_buf(),
            log,
            client,
            _own_dir: None,
        };

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "pentascope did not print `{LISTENING}http://...` within {STARTUP_TIMEOUT:?}\n{}",
                    server.logs()
                );
            }
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(pos) = line.find(LISTENING) {
                        let url = line[pos + LISTENING.len()..].trim();
                        assert!(
                            url.starts_with("http://127.0.0.1:"),
                            "unexpected listening line {line:?}"
                        );
                        server.base = url.trim_end_matches('/').to_string();
                        return server;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process has exited or is about to.
                    let status = server.child.wait().ok();
                    panic!(
                        "pentascope exited ({status:?}) before listening\n{}",
                        server.logs()
                    );
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                thread::sleep(Duration::from_millis(100)); // let the drains finish
                panic!(
                    "pentascope exited ({status}) before listening\n{}",
                    server.logs()
                );
            }
        }
    }

    /// The data directory the server was started on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The last lines of server output, for failure messages.
    pub fn logs(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from("--- last server output ---\n");
        for line in log.iter() {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("--- end of server output ---");
        out
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited within
    /// ten seconds. The data directory is left in place.
    pub fn stop(mut self) {
        // Close our keep-alive connections first so a graceful shutdown
        // does not wait for them.
        drop(std::mem::replace(&mut self.client, Client::new()));
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        // Drop kills and reaps it.
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn finish(&self, what: &str, result: reqwest::Result<reqwest::blocking::Response>) -> Resp {
        let resp =
            result.unwrap_or_else(|e| panic!("{what}: request failed: {e}\n{}", self.logs()));
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp
            .bytes()
            .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}\n{}", self.logs()))
            .to_vec();
        Resp {
            what: what.to_string(),
            status,
            content_type,
            body,
        }
    }

    /// `GET path` (path includes the query string).
    pub fn get(&self, path: &str) -> Resp {
        self.finish(
            &format!("GET {path}"),
            self.client.get(self.url(path)).send(),
        )
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Resp {
        self.finish(
            &format!("DELETE {path}"),
            self.client.delete(self.url(path)).send(),
        )
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.finish(
            &format!("POST {path} {body}"),
            self.client.post(self.url(path)).json(body).send(),
        )
    }

    /// `POST path` with a raw body and content type.
    pub fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        self.finish(
            &format!("POST {path} ({content_type})"),
            self.client
                .post(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send(),
        )
    }

    /// `POST path` with a multipart form.
    pub fn post_form(&self, path: &str, what: &str, form: multipart::Form) -> Resp {
        self.finish(
            &format!("POST {path} {what}"),
            self.client.post(self.url(path)).multipart(form).send(),
        )
    }

    /// Uploads `bytes` as the multipart field `file` named `filename`, with
    /// an optional `axes` multipart field.
    pub fn upload(&self, filename: &str, bytes: Vec<u8>, axes: Option<&str>) -> Resp {
        let part = multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str("image/tiff")
            .expect("mime type");
        let mut form = multipart::Form::new().part("file", part);
        if let Some(axes) = axes {
            form = form.text("axes", axes.to_string());
        }
        self.post_form("/upload", &format!("file={filename} axes={axes:?}"), form)
    }

    /// Uploads a file that must be accepted and returns its image id.
    pub fn upload_ok(&self, filename: &str, bytes: Vec<u8>) -> String {
        let resp = self.upload(filename, bytes, None);
        image_id_of(&resp).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// `GET /metadata?image_id=id`, which must succeed.
    pub fn metadata(&self, id: &str) -> Value {
        let resp = self.get(&format!("/metadata?image_id={id}"));
        resp.ok_json()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// One plane as `.npy`, which must succeed.
    pub fn plane_npy(&self, id: &str, t: u64, z: u64, c: u64) -> npy::Npy {
        let resp = self.get(&format!(
            "/slice?image_id={id}&time={t}&z={z}&channel={c}&format=npy"
        ));
        resp.npy()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Asserts that `/health` answers 200 with `"status": "ok"`.
    pub fn assert_healthy(&self) {
        let health = self
            .get("/health")
            .ok_json()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        assert_eq!(
            health["status"],
            "ok",
            "/health body {health}\n{}",
            self.logs()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Responses

/// A fully read HTTP response.
pub struct Resp {
    /// Method and path, for messages.
    pub what: String,
    /// Status code.
    pub status: u16,
    /// The `Content-Type` header ("" when absent).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body, shortened for messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]);
        if self.body.len() > 400 {
            format!("{text}... ({} bytes)", self.body.len())
        } else {
            text.into_owned()
        }
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "{}: status {}, body is not JSON ({e}): {}",
                self.what,
                self.status,
                self.snippet()
            )
        })
    }

    /// The JSON body of a 200 response.
    pub fn ok_json(&self) -> Result<Value, String> {
        ensure!(
            self.status == 200,
            "{}: expected 200, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        self.json()
    }

    /// Checks that this is an error response with a status in `allowed` and
    /// a JSON body `{"error": "<non-empty message>"}`; returns the message.
    pub fn error(&self, allowed: &[u16]) -> Result<String, String> {
        ensure!(
            allowed.contains(&self.status),
            "{}: expected status {allowed:?}, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        self.error_message()
    }

    /// Like [`Resp::error`] with any 4xx status.
    pub fn client_error(&self) -> Result<String, String> {
        ensure!(
            (400..500).contains(&self.status),
            "{}: expected a 4xx status, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        self.error_message()
    }

    fn error_message(&self) -> Result<String, String> {
        let json = self.json()?;
        match json.get("error").and_then(Value::as_str) {
            Some(msg) if !msg.trim().is_empty() => Ok(msg.to_string()),
            _ => Err(format!(
                "{}: status {} but the body has no non-empty `error` string: {}",
                self.what,
                self.status,
                self.snippet()
            )),
        }
    }

    /// The body of a 200 `application/octet-stream` response parsed as `.npy`.
    pub fn npy(&self) -> Result<npy::Npy, String> {
        ensure!(
            self.status == 200,
            "{}: expected 200, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        ensure!(
            self.content_type.starts_with("application/octet-stream"),
            "{}: content-type {:?}, expected application/octet-stream",
            self.what,
            self.content_type
        );
        npy::Npy::parse(&self.body).map_err(|e| format!("{}: {e}", self.what))
    }

    /// Checks a 200 `image/png` response and returns its IHDR.
    pub fn png_header(&self) -> Result<PngHeader, String> {
        ensure!(
            self.status == 200,
            "{}: expected 200, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        ensure!(
            self.content_type.starts_with("image/png"),
            "{}: content-type {:?}, expected image/png",
            self.what,
            self.content_type
        );
        PngHeader::parse(&self.body).map_err(|e| format!("{}: {e}", self.what))
    }
}

/// Extracts the image id from an upload response, checking its form.
pub fn image_id_of(resp: &Resp) -> Result<String, String> {
    ensure!(
        resp.status == 200 || resp.status == 201,
        "{}: expected 200 or 201, got {}: {}",
        resp.what,
        resp.status,
        resp.snippet()
    );
    let json = resp.json()?;
    ensure!(
        json["message"] == "File uploaded successfully",
        "{}: unexpected message in {json}",
        resp.what
    );
    let id = json["image_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no image_id string in {json}", resp.what))?;
    ensure!(
        id.strip_prefix("image_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "{}: image_id {id:?} is not of the form image_<n>",
        resp.what
    );
    Ok(id.to_string())
}

// ---------------------------------------------------------------------------
// PNG

/// The IHDR fields of a PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngHeader {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per sample.
    pub bit_depth: u8,
    /// PNG colour type (0 = grayscale).
    pub color_type: u8,
}

impl PngHeader {
    /// Parses the signature and the IHDR chunk by hand.
    pub fn parse(bytes: &[u8]) -> Result<PngHeader, String> {
        const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
        ensure!(
            bytes.len() >= 33 && bytes.starts_with(SIGNATURE),
            "not a PNG (no signature)"
        );
        ensure!(&bytes[12..16] == b"IHDR", "PNG does not start with IHDR");
        let be32 = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Ok(PngHeader {
            width: be32(16),
            height: be32(20),
            bit_depth: bytes[24],
            color_type: bytes[25],
        })
    }
}

/// A decoded grayscale PNG: samples widened to `u16` (8- or 16-bit).
pub struct GrayPng {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 8 or 16.
    pub bit_depth: u8,
    /// Row-major samples.
    pub samples: Vec<u16>,
}

/// Decodes a grayscale PNG with the `png` crate.
pub fn decode_gray_png(bytes: &[u8]) -> Result<GrayPng, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("PNG decode: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or("PNG output buffer size overflows")?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("PNG decode: {e}"))?;
    ensure!(
        info.color_type == png::ColorType::Grayscale,
        "PNG colour type {:?}, expected Grayscale",
        info.color_type
    );
    let (width, height) = (info.width as usize, info.height as usize);
    let samples: Vec<u16> = match info.bit_depth {
        png::BitDepth::Eight => (0..height)
            .flat_map(|y| {
                let row = &buf[y * info.line_size..y * info.line_size + width];
                row.iter().map(|&v| u16::from(v))
            })
            .collect(),
        png::BitDepth::Sixteen => (0..height)
            .flat_map(|y| {
                let row = &buf[y * info.line_size..y * info.line_size + 2 * width];
                row.chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
            })
            .collect(),
        other => return Err(format!("PNG bit depth {other:?}, expected 8 or 16")),
    };
    Ok(GrayPng {
        width,
        height,
        bit_depth: if info.bit_depth == png::BitDepth::Eight {
            8
        } else {
            16
        },
        samples,
    })
}

// ---------------------------------------------------------------------------
// Numbers

/// `|a - b| <= tol * max(|b|, 1)`.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// A JSON array of numbers as `Vec<f64>`.
pub fn f64s(value: &Value, what: &str) -> Result<Vec<f64>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array: {value}"))?
        .iter()
        .map(|v| {
            v.as_f64()
                .ok_or_else(|| format!("{what} holds a non-number: {v}"))
        })
        .collect()
}

/// A JSON array of arrays of numbers.
pub fn f64_rows(value: &Value, what: &str) -> Result<Vec<Vec<f64>>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array: {value}"))?
        .iter()
        .enumerate()
        .map(|(i, row)| f64s(row, &format!("{what}[{i}]")))
        .collect()
}

/// A JSON array of five non-negative integers (a `TZCYX` shape).
pub fn shape5(value: &Value, what: &str) -> Result<[u64; 5], String> {
    let dims: Vec<u64> = value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array: {value}"))?
        .iter()
        .map(|v| v.as_u64().ok_or_else(|| format!("{what} holds {v}")))
        .collect::<Result<_, _>>()?;
    dims.try_into()
        .map_err(|d: Vec<u64>| format!("{what} has {} dims, expected 5", d.len()))
}

/// All unsigned integers written in `text` (runs of ASCII digits).
pub fn numbers_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A TCP proxy to a local service that a test can cut and restore, to
/// simulate the service going down and coming back.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:target`, up.
    pub fn start(target: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the service is "down"
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut open = open2.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, open }
    }

    /// Cuts every connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
