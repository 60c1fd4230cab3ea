//! The OpenAPI document against what the server really answers: every key
//! of every JSON response in a session is documented for that route and
//! status, and every documented route answers (is not the fallback).

use serde_json::{json, Value};

use crate::util::python::python_with;
use crate::util::server::run_cli;
use crate::util::{fixtures_dir, FixtureSet, Resp, Server};

/// The schema `schema` points at (following `$ref`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The property names a response schema documents (including `allOf` parts
/// and the items of an array).
fn documented_keys(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut keys: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        keys.extend(documented_keys(doc, part));
    }
    keys
}

/// Fails unless every top-level key of `resp`'s JSON body is documented for
/// `method path` at `resp.status`.
fn assert_documented(doc: &Value, method: &str, path: &str, resp: &Resp) {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let mut response = &op["responses"][resp.status.to_string()];
    if let Some(r) = response["$ref"].as_str() {
        response = &doc["components"]["responses"][r.rsplit('/').next().unwrap()];
    }
    assert!(
        response.is_object(),
        "{method} {path} answered {}, which is not documented",
        resp.status
    );
    let body = resp.json().unwrap();
    let schema = &response["content"]["application/json"]["schema"];
    let keys = documented_keys(doc, schema);
    for key in body.as_object().unwrap().keys() {
        assert!(
            keys.contains(key),
            "{method} {path} {}: key {key:?} is not in the documented schema {keys:?}",
            resp.status
        );
    }
}

#[test]
fn every_response_key_is_documented() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let doc = server.get("/openapi.json").ok_json().unwrap();
    let file = "ome_tczyx_u16.ome.tif";
    let upload = server.upload(file, set.read(file), None);
    assert_documented(&doc, "post", "/upload", &upload);
    let id = upload.json().unwrap()["image_id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = [
        (
            "get",
            "/metadata",
            server.get(&format!("/metadata?image_id={id}")),
        ),
        (
            "get",
            "/metadata",
            server.get("/metadata?image_id=image_999"),
        ),
        (
            "get",
            "/statistics",
            server.get(&format!("/statistics?image_id={id}")),
        ),
        ("get", "/images", server.get("/images")),
        ("get", "/images/{id}", server.get(&format!("/images/{id}"))),
        (
            "get",
            "/slice",
            server.get(&format!("/slice?image_id={id}&z=99")),
        ),
        (
            "get",
            "/slice",
            server.get(&format!("/slice?image_id={id}&t=1")),
        ),
        (
            "post",
            "/analyze",
            server.post_json("/analyze", &json!({"image_id": id, "components": 2})),
        ),
        (
            "post",
            "/analyze",
            server.post_json("/analyze", &json!({"image_id": id, "async": true})),
        ),
        ("get", "/jobs/{id}", server.get("/jobs/no-such-job")),
        ("get", "/health", server.get("/health")),
        (
            "post",
            "/upload",
            server.upload("empty.tif", Vec::new(), None),
        ),
        (
            "post",
            "/segment",
            server.post_json("/segment", &json!({"image_id": id, "z": 1, "channel": 2})),
        ),
        (
            "post",
            "/segment",
            server.post_json(
                "/segment",
                &json!({"image_id": id, "method": "kmeans", "n_clusters": 3, "scope": "volume"}),
            ),
        ),
        (
            "post",
            "/segment",
            server.post_json("/segment", &json!({"image_id": id, "z": 99})),
        ),
        (
            "post",
            "/segment",
            server.post_json("/segment", &json!({"image_id": id, "async": true})),
        ),
        // after the actions above, which it lists
        ("get", "/admin/audit", server.get("/admin/audit")),
    ];
    for (method, path, resp) in &session {
        assert_documented(&doc, method, path, resp);
    }
    for (_, path, resp) in &session[12..14] {
        assert_eq!(resp.status, 200, "{path}: {}", resp.snippet());
    }
    let labels = session[12].2.json().unwrap()["labels_image_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, status) in [
        (format!("/images/{labels}/objects?limit=2"), 200),
        (format!("/images/{id}/objects"), 400),
    ] {
        let resp = server.get(&path);
        assert_eq!(resp.status, status, "{path}: {}", resp.snippet());
        assert_documented(&doc, "get", "/images/{id}/objects", &resp);
    }
    let job = session[8].2.json().unwrap();
    let job_resp = server.get(job["status_url"].as_str().unwrap());
    assert_documented(&doc, "get", "/jobs/{id}", &job_resp);
    let deleted = server.delete(&format!("/images/{id}"));
    assert_documented(&doc, "delete", "/images/{id}", &deleted);

    // every documented route is served
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let url = path.replace("{id}", "image_1");
            let resp = match method.as_str() {
                "get" => server.get(&url),
                "delete" => server.delete(&url),
                _ => server.post_json(&url, &json!({})),
            };
            let text = String::from_utf8_lossy(&resp.body);
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path} is documented but not served"
            );
        }
    }
}

/// `pentascope openapi` prints the document the server serves, so a
/// client can be generated without running one.
#[test]
fn the_cli_prints_the_document_the_server_serves() {
    let server = Server::start();
    let served = server.get("/openapi.json").ok_json().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pentascope"))
        .arg("openapi")
        .output()
        .expect("run the pentascope binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, served);
    assert_eq!(printed["openapi"], "3.1.0");
}

/// schemathesis, with every check and every phase (examples, coverage,
/// fuzzing, and stateful sequences that follow the document's links), finds
/// nothing over every route of a server that requires keys, given an admin
/// key and two images to find. What the document cannot state is in
/// `schemathesis.toml`, each with its reason; how raw bytes are sent, in
/// `schemathesis_hooks.py`. The seed is fixed so that a
/// failure reproduces; change it to explore further.
#[test]
#[ignore = "needs the Python venv with schemathesis; run by .ci/run"]
fn schemathesis_finds_no_failure_over_every_route() {
    let python = python_with("schemathesis");
    let schemathesis = python.with_file_name("schemathesis");
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| run_cli(dir.path(), &[], args).trim().to_string();
    cli(&["user", "create", "schemathesis", "--admin"]);
    let key = cli(&[
        "token",
        "create",
        "--user",
        "schemathesis",
        "--scope",
        "admin",
    ]);
    let server =
        Server::start_configured(dir.path(), &[("PENTASCOPE_AUTH".into(), "required".into())]);
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    for file in ["ome_tczyx_u16.ome.tif", "plain_2d_u8.tif"] {
        let form = reqwest::blocking::multipart::Form::new().part(
            "file",
            reqwest::blocking::multipart::Part::bytes(set.read(file)).file_name(file),
        );
        let status = reqwest::blocking::Client::new()
            .post(server.url("/upload"))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200, "upload {file}");
    }
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it");
    let config = format!("{here}/schemathesis.toml");
    let out = std::process::Command::new(&schemathesis)
        .current_dir(dir.path())
        // schemathesis_hooks.py: how raw-bytes bodies are sent
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", here)
        .args(["--no-color", "--config-file", &config, "run"])
        .arg(server.url("/openapi.json"))
        .arg("--header")
        .arg(format!("Authorization: Bearer {key}"))
        .args(["--max-examples", "15", "--seed", "20261206"])
        .args(["--workers", "1", "--request-timeout", "60"])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    // "Test cases:" then "  12180 generated, …"
    let cases = report
        .lines()
        .find_map(|l| l.trim().split_once(" generated,")?.0.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cases >= 2000, "only {cases} cases ran:\n{report}");
    assert!(
        !server.logs().contains("panicked"),
        "the server panicked:\n{}",
        server.logs()
    );
}
