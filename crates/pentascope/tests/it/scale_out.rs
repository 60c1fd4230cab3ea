//! Scale-out: two API processes and two workers on one machine, sharing
//! PostgreSQL, an S3 server and Redis. An image uploaded through one API is
//! read through the other; PCA jobs submitted through both spread over both
//! workers; every result equals the embedded configuration's.
//!
//! Needs PostgreSQL, Redis and an S3 server (`PENTASCOPE_TEST_S3`, default
//! http://127.0.0.1:5055, e.g. `python -m moto.server -p 5055`), so it is
//! ignored by a plain `cargo test`; `.ci/run` runs it with `--ignored`.

use std::time::{Duration, Instant};

use crate::util::services::{production_env, require_production_services};
use crate::util::{close, f64s, fixtures_dir, FixtureSet, Server, Worker};
use serde_json::{json, Value};

const PCA_KEYS: [&str; 4] = [
    "explained_variance",
    "explained_variance_ratio",
    "components",
    "mean",
];

/// Submits `n` PCA jobs alternately through `apis` and waits for them all;
/// returns their results and the wall time.
fn run_jobs(apis: &[&Server], image: &str, n: usize) -> (Vec<Value>, Duration) {
    let started = Instant::now();
    let urls: Vec<(usize, String)> = (0..n)
        .map(|i| {
            let api = apis[i % apis.len()];
            let resp = api.post_json(
                "/analyze",
                &json!({"image_id": image, "components": 2, "async": true}),
            );
            assert_eq!(resp.status, 202, "{}", resp.snippet());
            let url = resp.json().unwrap()["status_url"]
                .as_str()
                .unwrap()
                .to_string();
            (i % apis.len(), url)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut results = Vec::new();
    for (api, url) in urls {
        loop {
            // poll through the other API than the one that took the job
            let job = apis[(api + 1) % apis.len()].get(&url).ok_json().unwrap();
            match job["state"].as_str().unwrap() {
                "SUCCESS" => {
                    results.push(job["result"].clone());
                    break;
                }
                "FAILURE" => panic!("job failed: {job}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "jobs did not finish: {job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (results, started.elapsed())
}

#[test]
#[ignore = "needs PostgreSQL, Redis and an S3 server; run with --ignored (.ci/run does)"]
fn two_apis_and_two_workers_share_postgres_s3_and_redis() {
    let fixtures = fixtures_dir();
    require_production_services();
    let set = FixtureSet::load(&fixtures, "real");
    let name = "ij_mitosis_crop_TZCYX_u16.tif";
    let expected = set.expected(name).clone();

    // the embedded configuration's answer, for comparison
    let embedded_dir = tempfile::tempdir().unwrap();
    let embedded = Server::start_configured(embedded_dir.path(), &[]);
    let reference_id = embedded.upload_ok(name, set.read(name));
    let reference = embedded
        .post_json(
            "/analyze",
            &json!({"image_id": reference_id, "components": 2}),
        )
        .ok_json()
        .unwrap();
    drop(embedded);

    let tag = format!("scale_{}", std::process::id());
    let env = production_env(&tag);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let api_a = Server::start_configured(dirs[0].path(), &env);
    let api_b = Server::start_configured(dirs[1].path(), &env);

    let image = api_a.upload_ok(name, set.read(name));
    let (meta_a, meta_b) = (api_a.metadata(&image), api_b.metadata(&image));
    assert_eq!(meta_a, meta_b);
    assert_eq!(meta_b["shape"], expected["shape"]);
    let stats_b = api_b
        .get(&format!("/statistics?image_id={image}"))
        .ok_json()
        .unwrap();
    for key in ["mean", "std", "min", "max"] {
        let got = f64s(&stats_b[key], key).unwrap();
        let want = f64s(&expected["statistics"][key], key).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(close(*g, *w, 1e-9), "{key}: {g} vs numpy {w}");
        }
    }
    // every plane through the second API equals the first API's
    let shape: Vec<u64> = meta_b["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    for t in 0..shape[0] {
        for z in 0..shape[1] {
            for c in 0..shape[2] {
                assert_eq!(
                    api_a.plane_npy(&image, t, z, c).data,
                    api_b.plane_npy(&image, t, z, c).data
                );
            }
        }
    }

    let logs: Vec<_> = (0..2)
        .map(|i| dirs[2 + i].path().join("worker.log"))
        .collect();
    let worker_one = Worker::start_logged(dirs[2].path(), &env, Some(&logs[0]));
    let (results, one) = run_jobs(&[&api_a, &api_b], &image, 6);
    let worker_two = Worker::start_logged(dirs[3].path(), &env, Some(&logs[1]));
    let (more, two) = run_jobs(&[&api_a, &api_b], &image, 12);
    for result in results.iter().chain(&more) {
        for key in PCA_KEYS {
            assert_eq!(result[key], reference[key], "{key}");
        }
    }
    drop((worker_one, worker_two));
    let started = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .matches("job started")
            .count()
    };
    let (by_one, by_two) = (started(&logs[0]), started(&logs[1]));
    assert!(
        by_two > 0,
        "the second worker ran no job ({by_one} by the first)"
    );
    assert_eq!(by_one + by_two, 18, "every job ran once");
    println!(
        "PCA jobs on {name}: 1 worker {:.2} jobs/s (6 in {:.2?}); 2 workers {:.2} jobs/s \
         (12 in {:.2?}; {by_one} on the first worker, {by_two} on the second)",
        6.0 / one.as_secs_f64(),
        one,
        12.0 / two.as_secs_f64(),
        two
    );
}
