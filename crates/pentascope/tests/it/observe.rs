//! What an operator watches: the server's log lines (request ids, routes,
//! users, never a secret; text or JSON).

use reqwest::Method;
use serde_json::{json, Value};

use crate::util::server::run_cli;
use crate::util::{fixtures_dir, FixtureSet, Server};

const FILE: &str = "ome_tczyx_u16.ome.tif";

/// A server with access control required and `env`, and an admin key made
/// with the command line.
fn server_with_key(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String) {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("PENTASCOPE_AUTH".into(), "required".into()));
    let cli_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_cli(dir, &cli_env, &["user", "create", "ada", "--admin"]);
    let key = run_cli(
        dir,
        &cli_env,
        &["token", "create", "--user", "ada", "--scope", "admin"],
    )
    .trim()
    .to_string();
    assert!(key.starts_with("ps_"), "not a key: {key:?}");
    (Server::start_configured(dir, &env), key)
}

/// The secret part of a signed link's prefix `/s/<image>.<expiry>.<sig>`.
fn link_signature(prefix: &str) -> String {
    prefix
        .trim_end_matches('/')
        .rsplit('.')
        .next()
        .unwrap()
        .to_string()
}

/// Requests with a key, a signed link, a wrong key and chosen request ids;
/// then every JSON log line parses, each request's line names its route
/// template, status, duration and user under the id the client got back,
/// and neither the key nor the link's signature appears anywhere.
#[test]
fn json_request_lines_carry_ids_and_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = server_with_key(dir.path(), &[("PENTASCOPE_LOG_FORMAT", "json")]);
    let image = server.upload_with_key(&key, FILE);
    let link = server.send(
        "POST links",
        server
            .request(Method::POST, &format!("/images/{image}/links"))
            .bearer_auth(&key)
            .json(&json!({"expires_in": 600})),
    );
    let link = link.ok_json().unwrap();
    let prefix = link["prefix"].as_str().unwrap().trim_end_matches('/');
    let signature = link_signature(prefix);
    assert!(signature.len() >= 32, "a signature: {prefix}");

    let by_link = server.send(
        "GET by link",
        server
            .request(Method::GET, &format!("{prefix}/metadata?image_id={image}"))
            .header("X-Request-Id", "client-chose-this-1"),
    );
    assert_eq!(by_link.status, 200, "{}", by_link.snippet());
    assert_eq!(
        by_link.headers["x-request-id"], "client-chose-this-1",
        "a sane id comes back as sent"
    );
    let by_key = server.send(
        "GET by key",
        server
            .request(Method::GET, &format!("/images/{image}"))
            .bearer_auth(&key)
            .header("X-Request-Id", "x".repeat(500)),
    );
    assert_eq!(by_key.status, 200);
    let generated = by_key.headers["x-request-id"].to_str().unwrap().to_string();
    assert!(
        !generated.is_empty() && generated.len() <= 128 && !generated.starts_with("xxx"),
        "an overlong id is replaced: {generated}"
    );
    // a wrong key's secret is not logged either
    let wrong_secret = "f".repeat(64);
    let wrong = server.send(
        "GET with a wrong key",
        server
            .request(Method::GET, "/images")
            .bearer_auth(format!("ps_1_{wrong_secret}")),
    );
    assert_eq!(wrong.status, 401);
    let wrong_id = wrong.headers["x-request-id"].to_str().unwrap().to_string();
    let page = server.send(
        "the index page with a key in the query",
        server.request(Method::GET, &format!("/?key={key}")),
    );
    assert_eq!(page.status, 200);

    // the last request's line is written after its response; give it a moment
    std::thread::sleep(std::time::Duration::from_millis(300));
    let lines = server.stderr_lines();
    let key_secret = key.rsplit('_').next().unwrap();
    let mut records = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        assert!(!line.contains(key_secret), "the key is logged: {line}");
        assert!(
            !line.contains(&signature),
            "a link's secret is logged: {line}"
        );
        assert!(
            !line.contains(&wrong_secret),
            "a wrong key is logged: {line}"
        );
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(record["timestamp"].is_string() && record["level"].is_string());
        records.push(record);
    }
    let request_line = |id: &str| {
        records
            .iter()
            .find(|r| r["message"] == "request" && r["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line with id {id}:\n{lines:#?}"))
    };
    let line = request_line("client-chose-this-1");
    assert_eq!(line["route"], "/metadata");
    assert_eq!(line["status"], 200);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["user"], "link");
    assert!(line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    let line = request_line(&generated);
    assert_eq!(line["route"], "/images/{id}", "the template, not the path");
    assert_eq!(line["user"], "ada");
    let line = request_line(&wrong_id);
    assert_eq!(
        (line["status"].as_u64(), line["user"].as_str()),
        (Some(401), Some("-"))
    );
    // lines logged within a request carry its id through the span
    let upload_line = records
        .iter()
        .find(|r| r["message"] == "upload published")
        .unwrap_or_else(|| panic!("no upload line:\n{lines:#?}"));
    assert!(
        upload_line["span"]["request_id"].is_string(),
        "{upload_line}"
    );
}

/// Text logs written to a pipe have no colour codes, and request lines
/// still name the request id and route; `pentascope config` shows the
/// setting.
#[test]
fn text_logs_to_a_pipe_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    let config = run_cli(dir.path(), &[], &["config", "--log-format", "json"]);
    assert!(
        config
            .lines()
            .any(|l| l.starts_with("PENTASCOPE_LOG_FORMAT")
                && l.contains("json")
                && l.contains("--log-format")),
        "{config}"
    );
    let (server, key) = server_with_key(dir.path(), &[]);
    let resp = server.send(
        "GET /images",
        server
            .request(Method::GET, "/images")
            .bearer_auth(&key)
            .header("X-Request-Id", "plain-text-7"),
    );
    assert_eq!(resp.status, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let lines = server.stderr_lines();
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI codes in a pipe:\n{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("request_id=plain-text-7")
            && l.contains("route=/images")
            && l.contains("status=200")
            && l.contains("user=ada")),
        "no request line:\n{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains(key.rsplit('_').next().unwrap())),
        "the key is logged"
    );
}

/// One sample of the text exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses Prometheus' text format (the subset any exporter writes: one
/// sample a line, label values quoted with `\\`, `\"` and `\n` escapes).
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("bad value in {line}: {e}")),
        };
        let (name, mut rest) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "bad metric name in {line}"
        );
        let mut labels = Vec::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => panic!("dangling escape in {line}"),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value in {line}"),
                }
            };
            labels.push((key.trim_start_matches(',').to_string(), value));
            rest = after[end + 1..].trim_start_matches(',');
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// The sum of the samples named `name` whose labels include `labels`.
fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .sum()
}

/// The metric names a PromQL expression reads: every name of this
/// service's families (`http_server_*`, `pentascope_*`).
fn referenced_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
            continue;
        }
        if token.starts_with("http_server_") || token.starts_with("pentascope_") {
            names.push(token.clone());
        }
        token.clear();
    }
    names
}

fn scrape(server: &Server, key: &str) -> Vec<Sample> {
    let resp = server.send(
        "GET /metrics",
        server.request(Method::GET, "/metrics").bearer_auth(key),
    );
    assert_eq!(resp.status, 200, "{}", resp.snippet());
    assert!(
        resp.content_type.starts_with("text/plain"),
        "{}",
        resp.content_type
    );
    parse_exposition(&String::from_utf8(resp.body).expect("UTF-8 metrics"))
}

/// A session (upload, slices, a render, a PCA and a PCA job), then
/// `/metrics`: admins only; request durations by method, route template
/// and status, requests in flight, bytes ingested, images by kind, jobs by
/// state and their durations by task and outcome, cache hits and misses,
/// storage durations by backend; counters move with more requests; no
/// label holds an image id; and every metric the Grafana dashboard reads
/// is exported.
#[test]
fn metrics_after_a_session_name_routes_not_images() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = server_with_key(dir.path(), &[]);
    let image = server.upload_with_key(&key, FILE);
    let get = |path: &str| {
        let resp = server.send(
            &format!("GET {path}"),
            server.request(Method::GET, path).bearer_auth(&key),
        );
        assert_eq!(resp.status, 200, "{path}: {}", resp.snippet());
        resp
    };
    let post = |path: &str, body: Value| {
        server.send(
            &format!("POST {path}"),
            server
                .request(Method::POST, path)
                .bearer_auth(&key)
                .json(&body),
        )
    };
    get(&format!("/slice?image_id={image}&z=1"));
    get(&format!("/slice?image_id={image}&z=1"));
    get(&format!("/render?image_id={image}&z=0"));
    let pca = post("/analyze", json!({"image_id": image, "components": 2}));
    assert_eq!(pca.status, 200, "{}", pca.snippet());
    let job = post(
        "/analyze",
        json!({"image_id": image, "components": 2, "async": true}),
    );
    wait_for_success(&job, |url| get(url).json().unwrap());
    let missing = server.send(
        "GET a missing image",
        server
            .request(Method::GET, "/images/image_987654")
            .bearer_auth(&key),
    );
    assert_eq!(missing.status, 404);

    // admins only
    let anonymous = server.send("GET /metrics", server.request(Method::GET, "/metrics"));
    assert_eq!(anonymous.status, 401);

    let first = scrape(&server, &key);
    const DURATION: &str = "http_server_request_duration_seconds";
    let slices = |samples: &[Sample]| {
        total(
            samples,
            &format!("{DURATION}_count"),
            &[
                ("http_request_method", "GET"),
                ("http_route", "/slice"),
                ("http_response_status_code", "200"),
            ],
        )
    };
    assert_eq!(slices(&first), 2.0, "two slices");
    for route in [
        "/upload",
        "/render",
        "/analyze",
        "/jobs/{id}",
        "/images/{id}",
    ] {
        assert!(
            total(
                &first,
                &format!("{DURATION}_count"),
                &[("http_route", route)]
            ) >= 1.0,
            "no request to {route} counted"
        );
    }
    assert_eq!(
        total(
            &first,
            &format!("{DURATION}_count"),
            &[
                ("http_route", "/images/{id}"),
                ("http_response_status_code", "404")
            ]
        ),
        1.0
    );
    let buckets = first
        .iter()
        .filter(|s| {
            s.name == format!("{DURATION}_bucket") && s.label("http_route") == Some("/slice")
        })
        .count();
    assert!(buckets > 5, "a histogram with buckets, not a summary");
    assert!(
        total(
            &first,
            "http_server_active_requests",
            &[("http_request_method", "GET")]
        ) >= 1.0,
        "the scrape itself is in flight"
    );
    let file_size = FixtureSet::load(&fixtures_dir(), "tiff").read(FILE).len() as f64;
    assert_eq!(
        total(&first, "pentascope_ingested_bytes_total", &[]),
        file_size
    );
    assert_eq!(
        total(&first, "pentascope_images", &[("kind", "upload")]),
        1.0
    );
    for kind in ["pca_scores", "labels"] {
        assert!(
            first
                .iter()
                .any(|s| s.name == "pentascope_images" && s.label("kind") == Some(kind)),
            "images of kind {kind} are not reported"
        );
    }
    assert!(total(&first, "pentascope_jobs", &[("state", "success")]) >= 1.0);
    // the scrape's own queries leave at least one connection open
    assert!(
        total(
            &first,
            "pentascope_db_pool_connections",
            &[("state", "idle")]
        ) + total(
            &first,
            "pentascope_db_pool_connections",
            &[("state", "in_use")]
        ) >= 1.0
    );
    assert_eq!(
        total(&first, "pentascope_jobs", &[("state", "pending")]),
        0.0
    );
    assert_eq!(
        total(
            &first,
            "pentascope_job_duration_seconds_count",
            &[("task", "heavy_pca"), ("outcome", "success")]
        ),
        1.0
    );
    let cache = |result: &str| {
        total(
            &first,
            "pentascope_cache_requests_total",
            &[("cache", "rendered"), ("result", result)],
        )
    };
    assert!(
        cache("hit") >= 1.0 && cache("miss") >= 1.0,
        "the repeated slice hit"
    );
    assert!(
        total(
            &first,
            "pentascope_storage_operation_duration_seconds_count",
            &[("backend", "local"), ("operation", "read")]
        ) >= 1.0
    );
    assert!(first.iter().any(
        |s| s.name == "pentascope_storage_errors_total" && s.label("backend") == Some("local")
    ));
    for sample in &first {
        for (label, value) in &sample.labels {
            assert!(
                !value.contains(&image) && !value.contains("image_987654"),
                "{} has an image id in label {label}={value}",
                sample.name
            );
        }
    }

    // counters move
    get(&format!("/slice?image_id={image}&z=1"));
    let second = scrape(&server, &key);
    assert_eq!(slices(&second), 3.0);

    // every metric the dashboard reads is exported
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/grafana-dashboard.json"),
        )
        .expect("deploy/grafana-dashboard.json"),
    )
    .expect("the dashboard is JSON");
    let exported: std::collections::BTreeSet<&str> =
        second.iter().map(|s| s.name.as_str()).collect();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = referenced_names(expr);
            assert!(
                !names.is_empty(),
                "{expr} reads none of the service's metrics"
            );
            for name in names {
                assert!(
                    exported.contains(name.as_str()),
                    "the dashboard reads {name}, which the service does not export: {expr}"
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 10, "{queries} queries");
}

/// A request whose client leaves before the answer still has its line:
/// route template, and status 499 (or 200 if the answer came first).
#[test]
fn a_request_whose_client_leaves_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_configured(
        dir.path(),
        &[
            ("PENTASCOPE_AUTH".into(), "off".into()),
            ("PENTASCOPE_LOG_FORMAT".into(), "json".into()),
        ],
    );
    // 48 planes of 512 × 512 uint16: seconds of segmentation in a debug build
    let file = crate::util::tiff::plain_tiff(512, 512, 16, 48, |p, i| {
        ((i.wrapping_mul(2_654_435_761) >> 9) as u8).wrapping_add(p as u8)
    });
    let id = server.upload_ok("noise.tif", file);
    let gone = server
        .request(Method::POST, "/segment")
        .header("X-Request-Id", "client-leaves-1")
        .json(&json!({"image_id": id, "scope": "volume"}))
        .timeout(std::time::Duration::from_millis(400))
        .send();
    // the client leaves (on a fast machine the answer may come first)
    let expected = if gone.is_err() { 499 } else { 200 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let line = loop {
        let found = server.stderr_lines().into_iter().find_map(|l| {
            let record: Value = serde_json::from_str(&l).ok()?;
            (record["message"] == "request" && record["request_id"] == "client-leaves-1")
                .then_some(record)
        });
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line for the request\n{}",
            server.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(line["route"], "/segment", "{line}");
    assert_eq!(line["status"], expected, "{line}");
}

/// Waits for the job `submitted` (a 202 answer) to succeed, reading its
/// status URL with `fetch`.
fn wait_for_success(submitted: &crate::util::Resp, fetch: impl Fn(&str) -> Value) {
    assert_eq!(submitted.status, 202, "{}", submitted.snippet());
    let status_url = submitted.json().unwrap()["status_url"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while fetch(&status_url)["state"] != "SUCCESS" {
        assert!(std::time::Instant::now() < deadline, "the job never ended");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A free port on the loopback interface (free when asked).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET http://addr/metrics` without a key, parsed.
fn scrape_without_key(addr: &str) -> Vec<Sample> {
    let resp = reqwest::blocking::get(format!("http://{addr}/metrics"))
        .unwrap_or_else(|e| panic!("scraping {addr}: {e}"));
    assert_eq!(resp.status(), 200);
    parse_exposition(&resp.text().unwrap())
}

/// `--metrics-addr`: metrics without a key on a second address, while the
/// API's `/metrics` still needs an admin key.
#[test]
fn metrics_addr_serves_metrics_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_addr = free_addr();
    let (server, key) = server_with_key(dir.path(), &[("PENTASCOPE_METRICS_ADDR", &metrics_addr)]);
    let listed = server.send(
        "GET /images",
        server.request(Method::GET, "/images").bearer_auth(&key),
    );
    assert_eq!(listed.status, 200);
    let samples = scrape_without_key(&metrics_addr);
    assert_eq!(
        total(
            &samples,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", "/images"),
                ("http_response_status_code", "200")
            ]
        ),
        1.0
    );
    let api = server.send("GET /metrics", server.request(Method::GET, "/metrics"));
    assert_eq!(api.status, 401, "the API's /metrics still needs a key");
}

/// A `pentascope worker` with `--metrics-addr` reports the jobs it ran, by
/// task and outcome; the API reports the jobs by state from the database.
#[test]
#[ignore = "needs PostgreSQL, Redis and an S3 server; run with --ignored (.ci/run does)"]
fn a_worker_serves_its_job_metrics() {
    crate::util::services::require_production_services();
    let dir = tempfile::tempdir().unwrap();
    let tag = crate::util::services::unique_tag("metrics");
    let mut env = crate::util::services::production_env(&tag);
    let server = Server::start_configured(dir.path(), &env);
    let worker_metrics = free_addr();
    env.push(("PENTASCOPE_METRICS_ADDR".into(), worker_metrics.clone()));
    let _worker = crate::util::Worker::start(dir.path(), &env);
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let image = server.upload_ok(FILE, set.read(FILE));
    let job = server.post_json(
        "/analyze",
        &json!({"image_id": image, "components": 2, "async": true}),
    );
    wait_for_success(&job, |url| server.get(url).json().unwrap());
    let worker = scrape_without_key(&worker_metrics);
    assert_eq!(
        total(
            &worker,
            "pentascope_job_duration_seconds_count",
            &[("task", "heavy_pca"), ("outcome", "success")]
        ),
        1.0
    );
    assert!(
        total(
            &worker,
            "pentascope_storage_operation_duration_seconds_count",
            &[("backend", "s3"), ("operation", "read")]
        ) >= 1.0,
        "the worker read the pixels from S3"
    );
    let api =
        parse_exposition(&String::from_utf8(server.get("/metrics").body).expect("UTF-8 metrics"));
    assert_eq!(total(&api, "pentascope_jobs", &[("state", "success")]), 1.0);
}

/// The parts of a `traceparent` value: trace id, parent id, flags; `None`
/// unless it is a well-formed version 00 value (checked independently of
/// the server's parser: lowercase hex of the right lengths, no id all
/// zeros).
fn traceparent_parts(value: &str) -> Option<(String, String, String)> {
    let fields: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let [version, trace, parent, flags] = fields[..] else {
        return None;
    };
    let valid = version == "00"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| (trace.into(), parent.into(), flags.into()))
}

/// The JSON log lines of `server` so far.
fn json_lines(server: &Server) -> Vec<Value> {
    server
        .stderr_lines()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// W3C `traceparent`: a valid one is continued (same trace id and flags, a
/// new parent id: the server's span) in the response and the request's log
/// lines; an invalid or missing one is replaced by a new trace; an async
/// job carries the submitting request's trace into the runner's lines and
/// its keyword arguments.
#[test]
fn traceparent_is_continued_into_logs_responses_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_configured(
        dir.path(),
        &[
            ("PENTASCOPE_AUTH".into(), "off".into()),
            ("PENTASCOPE_LOG_FORMAT".into(), "json".into()),
        ],
    );
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let image = server.upload_ok(FILE, set.read(FILE));
    let traced = |method: Method, path: &str, request_id: &str, traceparent: Option<&str>| {
        let mut request = server
            .request(method.clone(), path)
            .header("X-Request-Id", request_id);
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        if method == Method::POST {
            request = request.json(&json!({"image_id": image, "components": 2, "async": true}));
        }
        server.send(&format!("{method} {path}"), request)
    };

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sent = format!("00-{trace}-00f067aa0ba902b7-01");
    let resp = traced(
        Method::GET,
        &format!("/images/{image}"),
        "trace-valid",
        Some(&sent),
    );
    assert_eq!(resp.status, 200);
    let (returned, parent, flags) = traceparent_parts(resp.header("traceparent"))
        .unwrap_or_else(|| panic!("no valid traceparent: {:?}", resp.headers));
    assert_eq!((returned.as_str(), flags.as_str()), (trace, "01"));
    assert_ne!(parent, "00f067aa0ba902b7", "the server's span is a new one");

    // invalid ones (uppercase hex, a zero trace id, an unknown layout,
    // version ff) and none at all start new, distinct traces
    let mut replaced = Vec::new();
    for (n, bad) in [
        Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
        Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        None,
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let resp = traced(Method::GET, "/images", &format!("trace-new-{n}"), bad);
        assert_eq!(resp.status, 200);
        let (new, _, _) = traceparent_parts(resp.header("traceparent"))
            .unwrap_or_else(|| panic!("{bad:?}: no valid traceparent: {:?}", resp.headers));
        assert_ne!(new, trace, "{bad:?} was not replaced");
        replaced.push(new);
    }
    let distinct: std::collections::BTreeSet<_> = replaced.iter().collect();
    assert_eq!(distinct.len(), replaced.len(), "{replaced:?}");

    // an async job continues the request's trace
    let job_trace = "0af7651916cd43dd8448eb211c80319c";
    let job = traced(
        Method::POST,
        "/analyze",
        "trace-job",
        Some(&format!("00-{job_trace}-b7ad6b7169203331-00")),
    );
    let job_id = job.json().unwrap()["job_id"].as_str().unwrap().to_string();
    wait_for_success(&job, |url| server.get(url).json().unwrap());
    let kwargs = &server.get(&format!("/jobs/{job_id}")).json().unwrap()["kwargs"];
    let (kept, _, _) = traceparent_parts(kwargs["traceparent"].as_str().unwrap_or(""))
        .unwrap_or_else(|| panic!("no traceparent in the job's kwargs: {kwargs}"));
    assert_eq!(kept, job_trace);

    std::thread::sleep(std::time::Duration::from_millis(300));
    let records = json_lines(&server);
    let request_line = |id: &str| {
        records
            .iter()
            .find(|r| r["message"] == "request" && r["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line {id}:\n{}", server.logs()))
    };
    assert_eq!(request_line("trace-valid")["trace_id"], trace);
    for (n, new) in replaced.iter().enumerate() {
        assert_eq!(request_line(&format!("trace-new-{n}"))["trace_id"], *new);
    }
    assert_eq!(request_line("trace-job")["trace_id"], job_trace);
    // the runner's lines for the job, in its span
    for message in ["job started", "job succeeded"] {
        let line = records
            .iter()
            .find(|r| r["message"] == message && r["job"] == job_id.as_str())
            .unwrap_or_else(|| panic!("no {message:?} line:\n{}", server.logs()));
        assert_eq!(line["span"]["trace_id"], job_trace, "{line}");
    }
}
