//! Celery interoperability: the real `celery` package from PyPI sends
//! `heavy_pca` to a `pentascope worker` through Redis and reads the result
//! with `AsyncResult.get()`; a task whose worker died is redelivered.
//!
//! Needs Redis (`PENTASCOPE_TEST_REDIS`, default redis://127.0.0.1:6379/0)
//! and a Python with `celery` and `redis` (`PENTASCOPE_TEST_PYTHON`,
//! default the repository's `.venv`), so it is ignored by a plain
//! `cargo test`; `.ci/run` runs it with `--ignored`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::server::run_cli;
use crate::util::{fixtures_dir, FixtureSet, Server, Worker};
use serde_json::{json, Value};

fn redis_url() -> String {
    let url = std::env::var("PENTASCOPE_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let ok = Command::new("redis-cli")
        .args(["-u", &url, "ping"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
        .unwrap_or(false);
    assert!(ok, "Redis does not answer at {url}");
    url
}

fn python() -> PathBuf {
    crate::util::python::python_with("celery, redis, kombu.transport.redis")
}

/// Runs a Python snippet that prints one JSON document.
fn run_python(python: &PathBuf, code: &str, env: &[(&str, &str)]) -> Value {
    let out = Command::new(python)
        .args(["-c", code])
        .envs(env.iter().copied())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const CLIENT: &str = r#"
import json, os
from celery import Celery
app = Celery(broker=os.environ["BROKER"], backend=os.environ["BROKER"])
queue = os.environ["QUEUE"]
ok = app.send_task("heavy_pca", kwargs={"image_id": os.environ["IMAGE"], "n_components": 2}, queue=queue)
result = ok.get(timeout=120)
bad = app.send_task("heavy_pca", kwargs={"image_id": "image_999999", "n_components": 2}, queue=queue)
def raised(kwargs):
    try:
        app.send_task("heavy_pca", kwargs=kwargs, queue=queue).get(timeout=120)
        return None
    except Exception as e:
        return {"type": type(e).__name__, "message": str(e)}
try:
    bad.get(timeout=120)
    error = None
except Exception as e:
    error = {"type": type(e).__name__, "message": str(e)}
# a value the image cannot answer, and arguments a call cannot take
too_many = raised({"image_id": os.environ["IMAGE"], "n_components": 9})
unknown = raised({"image_id": os.environ["IMAGE"], "colour": "red"})
print(json.dumps({"id": ok.id, "state": ok.state, "result": result, "error": error, "bad_state": bad.state,
                  "too_many": too_many, "unknown": unknown}))
"#;

#[test]
#[ignore = "needs Redis and a Python venv with celery; run with --ignored (.ci/run does)"]
fn python_celery_client_drives_pentascope_workers() {
    let (fixtures, broker, python) = (fixtures_dir(), redis_url(), python());
    let queue = format!("pentascope-test-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CELERY_BROKER_URL", broker.as_str()),
        ("PENTASCOPE_CELERY_QUEUE", queue.as_str()),
        ("PENTASCOPE_VISIBILITY_TIMEOUT", "3"),
    ];
    let server = Server::start_with(dir.path(), &env);
    let set = FixtureSet::load(&fixtures, "tiff");
    let image = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let expected = server
        .post_json("/analyze", &json!({"image_id": image, "components": 2}))
        .ok_json()
        .unwrap();
    let health = server.get("/health").ok_json().unwrap();
    assert_eq!(health["broker"]["status"], "ok", "{health}");

    // A task that a worker took and then died with: kombu's unacknowledged
    // record of it, older than the visibility timeout. A live worker must
    // deliver it again.
    let orphan = uuid_like();
    let orphan_job = server.post_json(
        "/analyze",
        &json!({"image_id": image, "components": 1, "async": true}),
    );
    assert_eq!(orphan_job.status, 202);
    let orphan_job = orphan_job.json().unwrap();
    let message = redis(&broker, &["RPOP", &queue]);
    assert!(
        message.contains("heavy_pca"),
        "the API queued a Celery message: {message}"
    );
    let record = json!([serde_json::from_str::<Value>(&message).unwrap(), "", queue]).to_string();
    redis(&broker, &["HSET", "unacked", &orphan, &record]);
    redis(&broker, &["ZADD", "unacked_index", "1", &orphan]);

    let owned: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _workers = [
        Worker::start(dir.path(), &owned),
        Worker::start(dir.path(), &owned),
    ];

    let out = run_python(
        &python,
        CLIENT,
        &[
            ("BROKER", broker.as_str()),
            ("QUEUE", queue.as_str()),
            ("IMAGE", image.as_str()),
        ],
    );
    assert_eq!(out["state"], "SUCCESS", "{out}");
    for key in [
        "explained_variance",
        "explained_variance_ratio",
        "components",
        "mean",
    ] {
        assert_eq!(out["result"][key], expected[key], "{key}");
    }
    assert_eq!(out["bad_state"], "FAILURE");
    assert_eq!(out["error"]["type"], "LookupError", "{out}");
    // as docs/deployment.md says: ValueError for a value the image cannot
    // answer, TypeError for arguments the task does not take
    assert_eq!(out["too_many"]["type"], "ValueError", "{out}");
    assert!(
        out["too_many"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("between 1 and 3")),
        "{out}"
    );
    assert_eq!(out["unknown"]["type"], "TypeError", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{out}"
    );
    // the task sent from Python is a job row too
    let job = server
        .get(&format!("/jobs/{}", out["id"].as_str().unwrap()))
        .ok_json()
        .unwrap();
    assert_eq!(job["state"], "SUCCESS", "{job}");

    // the orphaned task was redelivered and finished
    let status_url = orphan_job["status_url"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = server.get(status_url).ok_json().unwrap();
        if job["state"] == "SUCCESS" {
            assert_eq!(job["result"]["n_components"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orphaned task never redelivered: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = redis(&broker, &["DEL", &queue]);
}

fn redis(url: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn uuid_like() -> String {
    format!(
        "orphan-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

const OWNED_CLIENT: &str = r#"
import json, os
from celery import Celery
app = Celery(broker=os.environ["BROKER"], backend=os.environ["BROKER"])
out = {}
for name, extra in [("bob", {"owner": "bob"}), ("carol", {"owner": "carol"}), ("none", {})]:
    task = app.send_task("heavy_pca", kwargs={"image_id": os.environ["IMAGE"], "n_components": 2, **extra}, queue=os.environ["QUEUE"])
    try:
        out[name] = {"state": "SUCCESS", "n_components": task.get(timeout=120)["n_components"], "id": task.id}
    except Exception as e:
        out[name] = {"state": task.state, "type": type(e).__name__, "message": str(e), "id": task.id}
print(json.dumps(out))
"#;

/// With access control, Celery tasks act for the user their `owner`
/// keyword argument names, and tasks naming none act as the workers'
/// service user: another user's private image is not found for them.
#[test]
#[ignore = "needs Redis and a Python venv with celery; run with --ignored (.ci/run does)"]
fn celery_tasks_act_for_their_owner() {
    let (fixtures, broker, python) = (fixtures_dir(), redis_url(), python());
    let queue = format!("pentascope-test-owned-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("CELERY_BROKER_URL", broker.as_str()),
        ("PENTASCOPE_CELERY_QUEUE", queue.as_str()),
        ("PENTASCOPE_AUTH", "required"),
        ("PENTASCOPE_SERVICE_USER", "carol"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let server = Server::start_configured(dir.path(), &env);
    let cli_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for user in ["bob", "carol"] {
        run_cli(dir.path(), &cli_env, &["user", "create", user]);
    }
    let key = |user: &str| {
        run_cli(
            dir.path(),
            &cli_env,
            &["token", "create", "--user", user, "--scope", "write"],
        )
        .trim()
        .to_string()
    };
    let (bob, carol) = (key("bob"), key("carol"));
    let set = FixtureSet::load(&fixtures, "tiff");
    let file = "ome_tczyx_u16.ome.tif";
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(set.read(file)).file_name(file),
    );
    let uploaded = server.send(
        "POST /upload",
        server
            .request(reqwest::Method::POST, "/upload")
            .bearer_auth(&bob)
            .multipart(form),
    );
    let image = crate::util::image_id_of(&uploaded).unwrap();
    let _worker = Worker::start(dir.path(), &env);

    // a job submitted over HTTP carries its owner to the worker
    let job = server
        .send(
            "POST /analyze",
            server
                .request(reqwest::Method::POST, "/analyze")
                .bearer_auth(&bob)
                .json(&json!({"image_id": image, "async": true})),
        )
        .json()
        .unwrap();
    let status_url = job["status_url"].as_str().unwrap().to_string();
    let as_user = |key: &str| {
        server.send(
            "GET job",
            server
                .request(reqwest::Method::GET, &status_url)
                .bearer_auth(key),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = as_user(&bob).ok_json().unwrap();
        if done["state"] == "SUCCESS" {
            assert_eq!(done["kwargs"]["owner"], "bob", "{done}");
            break;
        }
        assert!(
            done["state"] != "FAILURE" && Instant::now() < deadline,
            "{done}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(as_user(&carol).status, 404, "carol cannot see bob's job");

    let out = run_python(
        &python,
        OWNED_CLIENT,
        &[
            ("BROKER", broker.as_str()),
            ("QUEUE", queue.as_str()),
            ("IMAGE", image.as_str()),
        ],
    );
    assert_eq!(out["bob"]["state"], "SUCCESS", "{out}");
    assert_eq!(out["bob"]["n_components"], 2, "{out}");
    for refused in ["carol", "none"] {
        assert_eq!(out[refused]["state"], "FAILURE", "{refused}: {out}");
        assert_eq!(out[refused]["type"], "LookupError", "{refused}: {out}");
    }
    let _ = redis(&broker, &["DEL", &queue]);
}

const SEGMENT_CLIENT: &str = r#"
import json, os
from celery import Celery
app = Celery(broker=os.environ["BROKER"], backend=os.environ["BROKER"])
queue = os.environ["QUEUE"]
image = os.environ["IMAGE"]
otsu = app.send_task("heavy_segmentation", kwargs={"image_id": image, "z": 0, "t": 0, "c": 0, "method": "otsu"}, queue=queue)
kmeans = app.send_task("heavy_segmentation", kwargs={"image_id": image, "z": 0, "t": 0, "c": 0, "method": "kmeans", "n_clusters": 3}, queue=queue)
print(json.dumps({"otsu": otsu.get(timeout=120), "kmeans": kmeans.get(timeout=120)}))
"#;

/// `heavy_segmentation` with the reference's signature, sent by the real
/// `celery` package, answers what `POST /segment` answers.
#[test]
#[ignore = "needs Redis and a Python venv with celery; run with --ignored (.ci/run does)"]
fn celery_heavy_segmentation_matches_the_http_answer() {
    let (broker, python) = (redis_url(), python());
    let queue = format!("pentascope-segment-test-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CELERY_BROKER_URL", broker.as_str()),
        ("PENTASCOPE_CELERY_QUEUE", queue.as_str()),
    ];
    let server = Server::start_with(dir.path(), &env);
    // squares of several brightnesses on a dim background
    let tiff = crate::util::tiff::plain_tiff(64, 48, 8, 1, |_, i| {
        let (y, x) = (i / 64, i % 64);
        match (y / 12, x / 16) {
            (1, 1) => 200,
            (1, 3) | (3, 2) => 120 + (x % 3) as u8,
            _ => 10 + (y % 2) as u8,
        }
    });
    let image = server.upload_ok("squares.tif", tiff);
    let owned: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _worker = Worker::start(dir.path(), &owned);
    let http = |body: Value| {
        server
            .post_json("/segment", &body)
            .ok_json()
            .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()))
    };
    let otsu = http(json!({"image_id": image, "method": "otsu"}));
    let kmeans = http(json!({"image_id": image, "method": "kmeans", "n_clusters": 3}));
    let out = run_python(
        &python,
        SEGMENT_CLIENT,
        &[
            ("BROKER", broker.as_str()),
            ("QUEUE", queue.as_str()),
            ("IMAGE", image.as_str()),
        ],
    );
    assert_eq!(out["otsu"]["image_id"], json!(image), "{out}");
    assert_eq!(out["otsu"]["method"], "otsu", "{out}");
    for key in ["foreground_fraction", "threshold", "n_objects", "objects"] {
        assert_eq!(out["otsu"][key], otsu[key], "{key}");
    }
    assert_eq!(otsu["n_objects"], 3, "{otsu}");
    assert_eq!(out["kmeans"]["method"], "kmeans", "{out}");
    assert_eq!(out["kmeans"]["n_clusters"], 3, "{out}");
    for key in ["label_counts", "cluster_centers", "inertia"] {
        assert_eq!(out["kmeans"][key], kmeans[key], "{key}");
    }
    let counts = out["kmeans"]["label_counts"].as_object().unwrap();
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["0", "1", "2"], "{out}");
    assert_eq!(
        counts.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        64 * 48
    );
    // each task made its own labels image, derived from the source
    for r in [&out["otsu"], &out["kmeans"]] {
        let labels = r["labels_image_id"].as_str().unwrap();
        let record = server.get(&format!("/images/{labels}")).ok_json().unwrap();
        assert_eq!(record["source_image_id"], json!(image), "{record}");
    }
    let _ = redis(&broker, &["DEL", &queue]);
}

const SPLIT_CLIENT: &str = r#"
import json, os
from celery import Celery
app = Celery(broker=os.environ["BROKER"], backend=os.environ["BROKER"])
queue = os.environ["QUEUE"]
out = {}
for image in os.environ["IMAGES"].split(","):
    stats = app.send_task("heavy_statistics", kwargs={"image_id": image}, queue=queue)
    out[image] = {"statistics": stats.get(timeout=300)}
    out.setdefault("ids", []).append(stats.id)
pca = app.send_task("heavy_pca", kwargs={"image_id": os.environ["PCA_IMAGE"], "n_components": 2}, queue=queue)
out["pca"] = pca.get(timeout=300)
out["ids"].append(pca.id)
missing = app.send_task("heavy_statistics", kwargs={"image_id": "image_999999"}, queue=queue)
try:
    missing.get(timeout=120)
    out["missing"] = None
except Exception as e:
    out["missing"] = type(e).__name__
print(json.dumps(out))
"#;

/// Lines of a worker's log that record a finished part.
fn parts_done(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("part done"))
        .count()
}

/// One statistics recompute or PCA split into part tasks over two
/// single-thread workers gives the same bits as this process computing it
/// whole (`GET /statistics?recompute=true`, synchronous `/analyze`), and
/// both workers take parts. A 16-bit image (exact histograms) and a 32-bit
/// one (sampled percentiles, whose merge depends on order) are checked.
#[test]
#[ignore = "needs Redis and a Python venv with celery; run with --ignored (.ci/run does)"]
fn one_job_split_over_two_workers_equals_one_process() {
    use crate::util::tiff::{described_tiff, plain_tiff};
    let (broker, python) = (redis_url(), python());
    let queue = format!("pentascope-split-test-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    // parts of one 256×256 plane, and no inline scores, so that both jobs split
    let env = [
        ("CELERY_BROKER_URL", broker.as_str()),
        ("PENTASCOPE_CELERY_QUEUE", queue.as_str()),
        ("PENTASCOPE_PART_PIXELS", "65536"),
        ("PENTASCOPE_INLINE_SCORES", "1000"),
    ];
    let server = Server::start_with(dir.path(), &env);
    let noise = |page: u32, i: usize| {
        let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(page) << 40;
        (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 56) as u8
    };
    let hyperstack = described_tiff(
        256,
        256,
        16,
        24,
        "ImageJ=1.54f\nimages=24\nchannels=3\nslices=8\nhyperstack=true\nmode=composite\n",
        |page, i| noise(page, i) / (1 + (page % 3) as u8),
    );
    let wide = plain_tiff(256, 256, 32, 6, noise);
    let u16_image = server.upload_ok("split_u16.tif", hyperstack);
    let u32_image = server.upload_ok("split_u32.tif", wide);
    let expected_pca = server
        .post_json("/analyze", &json!({"image_id": u16_image, "components": 2}))
        .ok_json()
        .unwrap();
    assert!(expected_pca["pca_result"].is_null(), "{expected_pca}");

    let logs = [
        dir.path().join("worker-a.log"),
        dir.path().join("worker-b.log"),
    ];
    let owned: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([
            ("RAYON_NUM_THREADS".to_string(), "1".to_string()),
            ("PENTASCOPE_JOB_RUNNERS".to_string(), "1".to_string()),
        ])
        .collect();
    let _workers = logs
        .iter()
        .map(|log| Worker::start_logged(dir.path(), &owned, Some(log)))
        .collect::<Vec<_>>();
    // both consume before the first part is sent
    let deadline = Instant::now() + Duration::from_secs(60);
    while !logs
        .iter()
        .all(|log| std::fs::read_to_string(log).is_ok_and(|text| text.contains("worker ready")))
    {
        assert!(Instant::now() < deadline, "the workers did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = run_python(
        &python,
        SPLIT_CLIENT,
        &[
            ("BROKER", broker.as_str()),
            ("QUEUE", queue.as_str()),
            ("IMAGES", &format!("{u16_image},{u32_image}")),
            ("PCA_IMAGE", u16_image.as_str()),
        ],
    );
    for image in [&u16_image, &u32_image] {
        let whole = server
            .get(&format!("/statistics?image_id={image}&recompute=true"))
            .ok_json()
            .unwrap();
        assert_eq!(out[image]["statistics"], whole, "{image}");
    }
    let split_pca = &out["pca"];
    for key in [
        "n_samples",
        "explained_variance",
        "explained_variance_ratio",
        "components",
        "mean",
    ] {
        assert_eq!(split_pca[key], expected_pca[key], "{key}");
    }
    // the scores images have the same statistics, bit for bit
    let scores = |result: &Value| {
        let id = result["scores_image_id"].as_str().unwrap();
        server
            .get(&format!("/statistics?image_id={id}"))
            .ok_json()
            .unwrap()
    };
    let (split_scores, whole_scores) = (scores(split_pca), scores(&expected_pca));
    for key in [
        "mean",
        "std",
        "min",
        "max",
        "display_min",
        "display_max",
        "histograms",
    ] {
        assert_eq!(split_scores[key], whole_scores[key], "{key}");
    }
    assert_eq!(out["missing"], "LookupError", "{out}");
    // 8 planes: 8 statistics parts each, 8 covariance and 8 scores parts
    let done: Vec<usize> = logs.iter().map(|log| parts_done(log)).collect();
    assert_eq!(done.iter().sum::<usize>(), 8 + 6 + 8 + 8, "{done:?}");
    assert!(
        done.iter().all(|&n| n > 0),
        "both workers took parts: {done:?}"
    );
    // the splits' state and partial results are gone from Redis
    for id in out["ids"].as_array().unwrap() {
        let left = redis(
            &broker,
            &[
                "KEYS",
                &format!("pentascope-split-{}*", id.as_str().unwrap()),
            ],
        );
        assert!(
            left.lines().all(|k| k.ends_with("-pass")),
            "left behind: {left}"
        );
    }
    let _ = redis(&broker, &["DEL", &queue]);
}

/// A job sent through Redis continues the submitting request's W3C trace:
/// its task message carries the request's `traceparent` in its headers,
/// and the worker's log lines for it have the trace id.
#[test]
#[ignore = "needs Redis; run with --ignored (.ci/run does)"]
fn task_messages_and_worker_lines_carry_the_trace() {
    let broker = redis_url();
    let queue = format!("pentascope-trace-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CELERY_BROKER_URL", broker.as_str()),
        ("PENTASCOPE_CELERY_QUEUE", queue.as_str()),
    ];
    let server = Server::start_with(dir.path(), &env);
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let image = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let job = server.send(
        "POST /analyze",
        server
            .request(reqwest::Method::POST, "/analyze")
            .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
            .json(&json!({"image_id": image, "components": 2, "async": true})),
    );
    assert_eq!(job.status, 202, "{}", job.snippet());
    let job = job.json().unwrap();
    let job_id = job["job_id"].as_str().unwrap();

    // no worker yet: the message waits in the queue
    let queued = redis(&broker, &["LRANGE", &queue, "0", "-1"]);
    let message: Value = serde_json::from_str(queued.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no task message queued ({e}): {queued}"));
    assert_eq!(message["headers"]["id"], job_id);
    let header = message["headers"]["traceparent"].as_str().unwrap_or("");
    assert_eq!(
        header.split('-').nth(1),
        Some(trace),
        "the message's traceparent header: {message}"
    );

    let log = dir.path().join("worker.log");
    let mut worker_env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    worker_env.push(("PENTASCOPE_LOG_FORMAT".into(), "json".into()));
    let _worker = Worker::start_logged(dir.path(), &worker_env, Some(&log));
    let status_url = job["status_url"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.get(status_url).ok_json().unwrap()["state"] != "SUCCESS" {
        assert!(Instant::now() < deadline, "the job never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    // the worker logs the outcome after recording it; give it a moment
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_job: Vec<&Value> = lines.iter().filter(|l| l["job"] == job_id).collect();
    assert!(
        of_job.iter().any(|l| l["message"] == "job started")
            && of_job.iter().any(|l| l["message"] == "job succeeded"),
        "the worker's lines:\n{text}"
    );
    for line in of_job {
        assert_eq!(line["span"]["trace_id"], trace, "{line}");
    }
    let _ = redis(&broker, &["DEL", &queue]);
}
