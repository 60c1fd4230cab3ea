//! The audit trail against the real binary: every action that changes
//! something, done over HTTP with access control required, is listed by
//! `GET /admin/audit` (and `pentascope audit`) with who did it (user and
//! key id), what, to which object and from which address, and no secret
//! appears in it; filters and cursor pages select and walk it; only
//! admins read it; entries past the retention are swept.

use reqwest::Method;
use serde_json::{json, Value};

use crate::access::Lab;
use crate::util::{fixtures_dir, FixtureSet, Server};

/// The id in a key `ps_<id>_<secret>`.
fn key_id(key: &str) -> i64 {
    key.strip_prefix("ps_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a key: {key}"))
}

/// The secret part of a key.
fn secret(key: &str) -> &str {
    key.rsplit('_').next().unwrap()
}

#[test]
fn every_action_is_audited_with_who_what_and_where_and_no_secret() {
    let lab = Lab::start(&[]);
    let ada = lab.key("ada", "admin", &[]);
    let bob = lab.key("bob", "write", &[]);
    let call = |method: Method, path: &str, key: &str, body: Option<Value>| {
        let resp = lab.call(method.clone(), path, Some(key), body.as_ref());
        assert!(
            (200..300).contains(&resp.status),
            "{method} {path}: {} {}",
            resp.status,
            resp.snippet()
        );
        resp.json().unwrap_or(Value::Null)
    };

    // an admin's actions
    call(
        Method::POST,
        "/admin/users",
        &ada,
        Some(json!({"name": "dave"})),
    );
    let dave = call(
        Method::POST,
        "/admin/tokens",
        &ada,
        Some(json!({"user": "dave", "scope": "read"})),
    );
    let dave_key = dave["key"].as_str().unwrap().to_string();
    let dave_id = key_id(&dave_key);
    call(
        Method::DELETE,
        &format!("/admin/tokens/{dave_id}"),
        &ada,
        None,
    );

    // a user's actions on an image, a dataset and a job
    let image = lab.server.upload_with_key(&bob, "ome_tczyx_u16.ome.tif");
    let path = format!("/images/{image}");
    call(
        Method::PATCH,
        &path,
        &bob,
        Some(json!({"name": "brain", "add_tags": ["dapi"]})),
    );
    call(Method::PATCH, &path, &bob, Some(json!({"public": true})));
    let channels = lab.get(&path, Some(&bob)).ok_json().unwrap()["Channels"]
        .as_u64()
        .unwrap();
    let looks: Vec<Value> = (0..channels)
        .map(|_| json!({"color": "00FF00", "active": true}))
        .collect();
    call(
        Method::PATCH,
        &path,
        &bob,
        Some(json!({"rendering": {"channels": looks}})),
    );
    let link = call(Method::POST, &format!("{path}/links"), &bob, None);
    // the prefix is /s/<image>.<expiry>.<signature>/
    let prefix = link["prefix"].as_str().unwrap().trim_end_matches('/');
    let link_signature = prefix.rsplit('.').next().unwrap().to_string();
    assert_eq!(link_signature.len(), 64, "{link}");
    let dataset = call(
        Method::POST,
        "/datasets",
        &bob,
        Some(json!({"name": "study"})),
    );
    let dataset = dataset["dataset_id"].as_str().unwrap().to_string();
    let dataset_path = format!("/datasets/{dataset}");
    call(
        Method::PATCH,
        &dataset_path,
        &bob,
        Some(json!({"description": "the 2026 cohort"})),
    );
    call(
        Method::PUT,
        &format!("{dataset_path}/images/{image}"),
        &bob,
        None,
    );
    call(
        Method::DELETE,
        &format!("{dataset_path}/images/{image}"),
        &bob,
        None,
    );
    call(Method::DELETE, &dataset_path, &bob, None);
    let job = call(
        Method::POST,
        "/analyze",
        &bob,
        Some(json!({"image_id": image, "components": 2, "async": true})),
    );
    let job = job["job_id"].as_str().unwrap().to_string();
    call(Method::DELETE, &path, &bob, None);

    // the trail, newest first
    let trail = lab
        .get("/admin/audit?limit=1000", Some(&ada))
        .ok_json()
        .unwrap();
    let entries = trail["entries"].as_array().unwrap().clone();
    assert_eq!(trail["count"].as_u64(), Some(entries.len() as u64));
    assert!(trail["next_cursor"].is_null(), "{trail}");
    let (ada_id, bob_id, dave_id) = (key_id(&ada), key_id(&bob), dave_id.to_string());
    let expected: Vec<(&str, &str, &str, Option<i64>)> = vec![
        ("user.create", "dave", "ada", Some(ada_id)),
        ("token.create", dave_id.as_str(), "ada", Some(ada_id)),
        ("token.revoke", dave_id.as_str(), "ada", Some(ada_id)),
        ("image.upload", image.as_str(), "bob", Some(bob_id)),
        ("image.update", image.as_str(), "bob", Some(bob_id)),
        ("image.visibility", image.as_str(), "bob", Some(bob_id)),
        ("image.rendering", image.as_str(), "bob", Some(bob_id)),
        ("link.create", image.as_str(), "bob", Some(bob_id)),
        ("dataset.create", dataset.as_str(), "bob", Some(bob_id)),
        ("dataset.update", dataset.as_str(), "bob", Some(bob_id)),
        ("dataset.link", dataset.as_str(), "bob", Some(bob_id)),
        ("dataset.unlink", dataset.as_str(), "bob", Some(bob_id)),
        ("dataset.delete", dataset.as_str(), "bob", Some(bob_id)),
        ("job.submit", job.as_str(), "bob", Some(bob_id)),
        ("image.delete", image.as_str(), "bob", Some(bob_id)),
    ];
    // over HTTP, in the order done, after the command line's keys
    let http: Vec<&Value> = entries
        .iter()
        .rev()
        .filter(|e| !e["address"].is_null())
        .collect();
    let seen: Vec<(&str, &str, &str, Option<i64>)> = http
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["object_id"].as_str().unwrap(),
                e["user"].as_str().unwrap_or("-"),
                e["key_id"].as_i64(),
            )
        })
        .collect();
    assert_eq!(seen, expected, "{trail:#}");
    for e in &http {
        assert_eq!(e["address"], "127.0.0.1", "{e}");
        assert!(e["link"].is_null(), "{e}");
        // each action's object kind: its prefix, an image for a link
        let prefix = e["action"].as_str().unwrap().split('.').next().unwrap();
        let kind = if prefix == "link" { "image" } else { prefix };
        assert_eq!(e["object_kind"], kind, "{e}");
    }
    let detail = |action: &str| -> String {
        http.iter()
            .find(|e| e["action"] == action)
            .map(|e| e["detail"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(detail("image.update"), "name, add_tags");
    assert_eq!(detail("image.visibility"), "public");
    assert_eq!(detail("token.create"), "for dave, scope read");
    assert!(detail("link.create").starts_with("until 20"), "{trail}");
    // the keys the command line made: by nobody in particular, from no
    // address
    let local: Vec<&Value> = entries.iter().filter(|e| e["address"].is_null()).collect();
    assert!(
        local
            .iter()
            .filter(|e| e["action"] == "token.create")
            .count()
            >= 2
            && local.iter().all(|e| e["user"].is_null()),
        "{trail:#}"
    );
    // no secret: not a key's, not the link's signature
    let text = trail.to_string();
    for (what, secret) in [
        ("ada's key", secret(&ada)),
        ("bob's key", secret(&bob)),
        ("dave's key", secret(&dave_key)),
        ("the link's signature", link_signature.as_str()),
    ] {
        assert!(!text.contains(secret), "{what} is in the trail: {text}");
    }

    // filters
    let count = |query: &str| -> u64 {
        lab.get(&format!("/admin/audit?{query}"), Some(&ada))
            .ok_json()
            .unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("user=ada"), 3);
    assert_eq!(count("user=bob"), 12);
    assert_eq!(count("action=image.delete"), 1);
    assert_eq!(count(&format!("kind=dataset&object={dataset}")), 5);
    assert_eq!(count(&format!("kind=image&object={image}")), 6);
    assert_eq!(count("before=2000-01-01"), 0);
    assert_eq!(count("after=2000-01-01"), entries.len() as u64);
    let refused = lab.get("/admin/audit?action=image.steal", Some(&ada));
    assert!(
        refused.error(&[400]).unwrap().contains("image.upload"),
        "names the valid actions"
    );
    // cursor pages walk every entry once, newest first
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/admin/audit?user=bob&limit=5&cursor={c}"),
            None => "/admin/audit?user=bob&limit=5".to_string(),
        };
        let page = lab.get(&query, Some(&ada)).ok_json().unwrap();
        walked.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let bobs: Vec<i64> = entries
        .iter()
        .filter(|e| e["user"] == "bob")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(walked, bobs);
    let other_query = lab.get(
        &format!(
            "/admin/audit?user=ada&cursor={}",
            lab.get("/admin/audit?user=bob&limit=5", Some(&ada))
                .ok_json()
                .unwrap()["next_cursor"]
                .as_str()
                .unwrap()
        ),
        Some(&ada),
    );
    assert!(other_query.error(&[400]).unwrap().contains("another query"));

    // admins only
    assert_eq!(lab.get("/admin/audit", Some(&bob)).status, 403);
    assert_eq!(lab.get("/admin/audit", None).status, 401);

    // the command line shows the same trail
    let lines = lab.cli(&["audit", "--json", "--user", "bob", "--limit", "1000"]);
    let ids: Vec<i64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, bobs);
    let text = lab.cli(&["audit", "--action", "image.delete"]);
    assert!(
        text.contains(&format!(
            "bob (key {bob_id})  from 127.0.0.1  image.delete  image {image}"
        )),
        "{text}"
    );
}

/// Entries older than `--audit-retention` are swept away (a server sweeps
/// when it starts, then every ten minutes); younger ones stay.
#[test]
fn entries_past_the_retention_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let count = |server: &Server| -> u64 {
        server.get("/admin/audit").ok_json().unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start_configured(dir.path(), &[]);
    server.upload_ok("plain_2d_u8.tif", set.read("plain_2d_u8.tif"));
    assert_eq!(count(&server), 1);
    drop(server);
    // the default (365 days) keeps it
    let server = Server::start_configured(dir.path(), &[]);
    assert_eq!(count(&server), 1);
    drop(server);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let retention = [("PENTASCOPE_AUDIT_RETENTION".to_string(), "1s".to_string())];
    let server = Server::start_configured(dir.path(), &retention);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&server) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not swept: {}",
            server.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        server.logs().contains("audit entries past the retention"),
        "{}",
        server.logs()
    );
}

/// Behind a trusted proxy (`--trusted-proxies`) the trail records the
/// client `X-Forwarded-For` names; from any other peer the header is
/// ignored, so a client cannot choose the address it is recorded under.
#[test]
fn x_forwarded_for_counts_from_trusted_proxies_only() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let upload_from = |server: &Server, forwarded: &str| {
        let part = reqwest::blocking::multipart::Part::bytes(set.read("plain_2d_u8.tif"))
            .file_name("plain_2d_u8.tif");
        let resp = server.send(
            "POST /upload",
            server
                .request(Method::POST, "/upload")
                .header("x-forwarded-for", forwarded)
                .multipart(reqwest::blocking::multipart::Form::new().part("file", part)),
        );
        assert_eq!(resp.status, 200, "{}", resp.snippet());
        let trail = server.get("/admin/audit?limit=1").ok_json().unwrap();
        trail["entries"][0]["address"].as_str().unwrap().to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let direct = Server::start_configured(dir.path(), &[]);
    assert_eq!(upload_from(&direct, "203.0.113.9"), "127.0.0.1");
    drop(direct);
    let proxies = [(
        "PENTASCOPE_TRUSTED_PROXIES".to_string(),
        "127.0.0.1,10.0.0.2".to_string(),
    )];
    let proxied = Server::start_configured(dir.path(), &proxies);
    // the client, then two proxies: the nearest untrusted entry is the client
    assert_eq!(
        upload_from(&proxied, "198.51.100.1, 203.0.113.9, 10.0.0.2"),
        "203.0.113.9"
    );
    // garbage where the client should be: the proxy's own address
    assert_eq!(upload_from(&proxied, "not-an-address"), "127.0.0.1");
}
