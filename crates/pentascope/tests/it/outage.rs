//! Failure behaviour: when PostgreSQL, Redis or the S3 server stops
//! answering, requests that need it get 503 with a JSON error naming it,
//! `/health` reports it, and the service recovers by itself when it comes
//! back, with nothing written before the outage lost.
//!
//! The services are reached through TCP proxies the test cuts and restores.
//! Needs PostgreSQL, Redis and an S3 server, like `scale_out.rs`.

use std::time::{Duration, Instant};

use crate::util::services::{production_env, require_production_services, Proxy};
use crate::util::{fixtures_dir, FixtureSet, Server};
use serde_json::json;

fn port_of(url: &str) -> u16 {
    let rest = url.split("://").nth(1).unwrap();
    let host = rest.split(['/', '?']).next().unwrap();
    let host = host.rsplit('@').next().unwrap();
    host.rsplit(':').next().unwrap().parse().unwrap()
}

fn with_port(url: &str, port: u16) -> String {
    format!("{}:{port}", url.rsplit_once(':').unwrap().0)
        + url
            .rsplit_once(':')
            .unwrap()
            .1
            .trim_start_matches(char::is_numeric)
}

/// Retries `check` for up to 30 s: recovery takes a reconnect.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs PostgreSQL, Redis and an S3 server; run with --ignored (.ci/run does)"]
fn outages_answer_503_naming_the_component_and_recover() {
    let fixtures = fixtures_dir();
    require_production_services();
    let mut env = production_env(&format!("outage_{}", std::process::id()));
    let mut proxies = Vec::new();
    for (key, value) in env.iter_mut() {
        if matches!(
            key.as_str(),
            "DATABASE_URL" | "AWS_ENDPOINT_URL" | "CELERY_BROKER_URL"
        ) {
            let proxy = Proxy::start(port_of(value));
            *value = with_port(value, proxy.port);
            proxies.push((key.clone(), proxy));
        }
    }
    let proxy = |k: &str| &proxies.iter().find(|(key, _)| key == k).unwrap().1;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_configured(dir.path(), &env);
    let set = FixtureSet::load(&fixtures, "tiff");
    let image = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let stats = server
        .get(&format!("/statistics?image_id={image}"))
        .ok_json()
        .unwrap();
    let plane = server.plane_npy(&image, 0, 0, 0).data;
    assert_eq!(server.get("/health").status, 200);

    for (component, key, request) in [
        (
            "database",
            "DATABASE_URL",
            format!("/metadata?image_id={image}"),
        ),
        (
            "S3",
            "AWS_ENDPOINT_URL",
            format!("/slice?image_id={image}&time=1&z=3&channel=2"),
        ),
    ] {
        proxy(key).down();
        let resp = server.get(&request);
        assert_eq!(resp.status, 503, "{component} down: {}", resp.snippet());
        let error = resp.json().unwrap()["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(component),
            "the error names {component}: {error}"
        );
        let health = server.get("/health");
        assert_eq!(health.status, 503, "{}", health.snippet());
        proxy(key).up();
        eventually(component, || server.get(&request).status == 200);
    }

    proxy("CELERY_BROKER_URL").down();
    let job = json!({"image_id": image, "components": 2, "async": true});
    let resp = server.post_json("/analyze", &job);
    assert_eq!(resp.status, 503, "Redis down: {}", resp.snippet());
    assert!(resp.snippet().contains("Redis"), "{}", resp.snippet());
    let health = server.get("/health").json().unwrap();
    assert_eq!(health["broker"]["status"], "unavailable", "{health}");
    proxy("CELERY_BROKER_URL").up();
    eventually("Redis", || server.post_json("/analyze", &job).status == 202);

    // nothing written before the outages was lost
    assert_eq!(
        server
            .get(&format!("/statistics?image_id={image}"))
            .ok_json()
            .unwrap(),
        stats
    );
    assert_eq!(server.plane_npy(&image, 0, 0, 0).data, plane);
}
