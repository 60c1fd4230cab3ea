//! The `pentascope serve` and `pentascope worker` processes under test.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::{multipart, Client};
use serde_json::Value;

use super::npy;
use super::resp::{image_id_of, Resp};
use super::services::backend_env;

/// How long the server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-request timeout; generous because the largest fixture is a
/// 9600x9600 plane served by a debug build.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How many lines of server output to keep for failure messages.
const LOG_LINES: usize = 80;
/// The line the server prints once it accepts connections.
const LISTENING: &str = "pentascope listening on ";

type Log = Arc<Mutex<VecDeque<String>>>;

fn push_log(log: &Log, line: String) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if log.len() == LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

/// Drains a child pipe line by line into `log` (and all of it into `all`,
/// if given) until EOF, forwarding each line to `tx` while someone still
/// listens.
fn drain<R: Read + Send + 'static>(
    pipe: R,
    prefix: &'static str,
    log: Log,
    all: Option<Arc<Mutex<Vec<String>>>>,
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
                    if let Some(all) = &all {
                        all.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(line.clone());
                    }
                    push_log(&log, format!("{prefix}{line}"));
                }
            }
        }
    });
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
        end_child(&mut self.0);
    }
}

/// Whether this is a coverage run (`cargo llvm-cov` sets
/// `LLVM_PROFILE_FILE`): only a process that exits writes its coverage
/// counters, so children are stopped rather than killed.
fn coverage_run() -> bool {
    std::env::var_os("LLVM_PROFILE_FILE").is_some()
}

/// Ends a child process: at once (SIGKILL), except in a coverage run,
/// where it gets a SIGTERM and a few seconds to exit.
fn end_child(child: &mut Child) {
    if coverage_run() {
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A running `pentascope serve` child process, killed on drop.
pub struct Server {
    child: Child,
    /// The `pentascope worker` beside it, in the production configuration.
    _worker: Option<Worker>,
    base: String,
    data_dir: PathBuf,
    database_url: String,
    log: Log,
    /// Every line of the server's standard error (its log).
    stderr: Arc<Mutex<Vec<String>>>,
    client: Client,
    /// The suite's admin key, when access control is required.
    token: Option<String>,
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
        let database_url = backend
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter().copied())
            .filter(|(k, _)| *k == "DATABASE_URL")
            .map(|(_, v)| v.to_string())
            .next_back()
            .unwrap_or_else(|| {
                format!("sqlite://{}", data_dir.join("pentascope.sqlite").display())
            });
        let all_env: Vec<(&str, &str)> = backend
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter().copied())
            .collect();
        // the whole suite can run with access control required, as the
        // suite's own admin (made with the command line, as a lab admin
        // would); tests that set PENTASCOPE_AUTH themselves are left alone
        let token = (std::env::var("PENTASCOPE_TEST_AUTH").as_deref() == Ok("required")
            && !all_env.iter().any(|(k, _)| *k == "PENTASCOPE_AUTH"))
        .then(|| {
            // a restart on the same data finds the user made the first time
            let users = run_cli(data_dir, &all_env, &["user", "list"]);
            if !users
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("suite-admin"))
            {
                run_cli(
                    data_dir,
                    &all_env,
                    &["user", "create", "suite-admin", "--admin"],
                );
            }
            run_cli(
                data_dir,
                &all_env,
                &[
                    "token",
                    "create",
                    "--user",
                    "suite-admin",
                    "--scope",
                    "admin",
                ],
            )
            .trim()
            .to_string()
        });
        let mut command = Command::new(env!("CARGO_BIN_EXE_pentascope"));
        command
            .envs(backend.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .arg("serve");
        if token.is_some() {
            command.env("PENTASCOPE_AUTH", "required");
        }
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
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("child stdout"),
            "",
            log.clone(),
            None,
            Some(tx),
        );
        drain(
            child.stderr.take().expect("child stderr"),
            "[stderr] ",
            log.clone(),
            Some(stderr.clone()),
            None,
        );
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("a header value"),
            );
        }
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()
            .expect("build HTTP client");
        let mut server = Server {
            child,
            _worker: worker,
            base: String::new(),
            data_dir: data_dir.to_path_buf(),
            database_url,
            log,
            stderr,
            client,
            token,
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

    /// The metadata database the server was started with.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The server's address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The server process's peak resident memory (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
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

    /// Sends SIGTERM, leaving this handle's own connections open.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }

    /// Waits up to `within` for the process to exit: its exit status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Every line the server has written to standard error so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request to `path` with nothing set (no key): for tests of access
    /// control and headers. Send it with [`Server::send`].
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("build HTTP client")
            .request(method, self.url(path))
    }

    /// A request to `path` with the suite's key (if any), like [`Server::get`]'s.
    pub fn keyed(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// The `Authorization` header value the suite's requests carry, if any.
    pub fn authorization(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    /// Kills the process at once (SIGKILL), as a crash or power loss would
    /// stop it; the data directory is left in place.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a request made with [`Server::request`].
    pub fn send(&self, what: &str, request: reqwest::blocking::RequestBuilder) -> Resp {
        self.finish(what, request.send())
    }

    fn finish(&self, what: &str, result: reqwest::Result<reqwest::blocking::Response>) -> Resp {
        let resp =
            result.unwrap_or_else(|e| panic!("{what}: request failed: {e}\n{}", self.logs()));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
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
            headers,
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

    /// Uploads fixture `file` (of the `tiff` set) with `key`, which must be
    /// accepted; its image id.
    pub fn upload_with_key(&self, key: &str, file: &str) -> String {
        let set = super::FixtureSet::load(&super::fixtures_dir(), "tiff");
        let part = multipart::Part::bytes(set.read(file))
            .file_name(file.to_string())
            .mime_str("image/tiff")
            .expect("mime type");
        let resp = self.send(
            "POST /upload",
            self.request(reqwest::Method::POST, "/upload")
                .bearer_auth(key)
                .multipart(multipart::Form::new().part("file", part)),
        );
        image_id_of(&resp).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Uploads a file that must be accepted and returns its image id.
    pub fn upload_ok(&self, filename: &str, bytes: Vec<u8>) -> String {
        let resp = self.upload(filename, bytes, None);
        image_id_of(&resp).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// The sha256 of image `id`'s samples (its `.npy` download's data), in
    /// hex.
    pub fn samples_sha256(&self, id: &str) -> String {
        use sha2::Digest;
        let npy = self
            .get(&format!("/images/{id}/download?format=npy"))
            .npy()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        sha2::Sha256::digest(&npy.data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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

/// Runs `pentascope ARGS --data-dir DIR` with `env`, which must succeed;
/// its standard output.
pub fn run_cli(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pentascope"))
        .envs(env.iter().copied())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run the pentascope binary");
    assert!(
        out.status.success(),
        "pentascope {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        if coverage_run() {
            // a graceful shutdown would wait for our keep-alive connections
            drop(std::mem::replace(&mut self.client, Client::new()));
        }
        end_child(&mut self.child);
    }
}
