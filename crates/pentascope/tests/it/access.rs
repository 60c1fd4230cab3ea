//! Access control over HTTP against the real binary: the 401/403/200
//! matrix per route and scope, ownership and public images, revoked and
//! expired keys, signed links, CORS, and the defaults per listening
//! address. Users and keys are made with the command line, as a lab admin
//! makes them.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::util::server::run_cli;
use crate::util::services::backend_env;
use crate::util::{fixtures_dir, FixtureSet, Resp, Server};

const FILE: &str = "ome_tczyx_u16.ome.tif";

/// A server with access control required, its users made with the CLI
/// (and a worker, when jobs go to a Celery broker).
pub(crate) struct Lab {
    pub(crate) server: Server,
    _worker: Option<crate::util::Worker>,
    _dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Lab {
    pub(crate) fn start(extra: &[(&str, &str)]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut env = backend_env(dir.path());
        env.push(("PENTASCOPE_AUTH".into(), "required".into()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let worker = env
            .iter()
            .any(|(k, _)| k == "CELERY_BROKER_URL")
            .then(|| crate::util::Worker::start(dir.path(), &env));
        let lab = Lab {
            server: Server::start_configured(dir.path(), &env),
            _worker: worker,
            _dir: dir,
            env,
        };
        lab.cli(&["user", "create", "ada", "--admin"]);
        lab.cli(&["user", "create", "bob"]);
        lab.cli(&["user", "create", "carol"]);
        lab
    }

    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_cli(self.server.data_dir(), &env, args)
    }

    /// A key made with `pentascope token create`.
    pub(crate) fn key(&self, user: &str, scope: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--user", user, "--scope", scope];
        args.extend_from_slice(extra);
        let key = self.cli(&args).trim().to_string();
        assert!(key.starts_with("ps_"), "not a key: {key:?}");
        key
    }

    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut request = self.server.request(method.clone(), path);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.server.send(&format!("{method} {path}"), request)
    }

    pub(crate) fn get(&self, path: &str, key: Option<&str>) -> Resp {
        self.call(Method::GET, path, key, None)
    }

    fn upload(&self, key: &str) -> String {
        self.server.upload_with_key(key, FILE)
    }
}

fn status(resp: &Resp) -> u16 {
    resp.status
}

/// Every route, from the API description, without a key, with a read, a
/// write and an admin key: 401 without (with `WWW-Authenticate: Bearer`),
/// 403 with too small a scope, neither with enough; only health and the
/// API description are public.
#[test]
fn every_route_answers_401_403_or_serves_by_scope() {
    let lab = Lab::start(&[]);
    let keys = [
        ("read", lab.key("bob", "read", &[])),
        ("write", lab.key("bob", "write", &[])),
        ("admin", lab.key("ada", "admin", &[])),
    ];
    let image = lab.upload(&keys[1].1);
    let doc = lab.get("/openapi.json", None).ok_json().unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let url = match path.as_str() {
                "/admin/tokens/{id}" => "/admin/tokens/999".to_string(),
                "/metadata" | "/statistics" | "/slice" => format!("{path}?image_id={image}"),
                _ => path.replace("{id}", &image).replace("{key}", "zarr.json"),
            };
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let needed = if public {
                None
            } else if path.starts_with("/admin/") || path == "/metrics" {
                Some("admin")
            } else if method == Method::GET {
                Some("read")
            } else {
                Some("write")
            };
            // a body that no route accepts: reaching the handler gives 400,
            // so the access decision is all that is tested
            let body = json!({"not_a_field": true});
            let anonymous = lab.call(method.clone(), &url, None, Some(&body));
            // HEAD answers carry no body to read a message from
            let has_body = method != Method::HEAD;
            match needed {
                None => assert!(
                    (200..300).contains(&status(&anonymous)),
                    "{method} {url} is public"
                ),
                Some(_) => {
                    assert_eq!(status(&anonymous), 401, "{method} {url} without a key");
                    assert_eq!(
                        anonymous.header("www-authenticate"),
                        "Bearer realm=\"pentascope\""
                    );
                    if has_body {
                        let message = anonymous.error(&[401]).unwrap();
                        assert!(message.contains("Bearer"), "{message}");
                    }
                }
            }
            for (scope, key) in &keys {
                let resp = lab.call(method.clone(), &url, Some(key), Some(&body));
                let enough = matches!(
                    (needed, *scope),
                    (None | Some("read"), _)
                        | (Some("write"), "write" | "admin")
                        | (Some("admin"), "admin")
                );
                if enough {
                    assert!(
                        ![401, 403].contains(&resp.status),
                        "{method} {url} with a {scope} key: {} {}",
                        resp.status,
                        resp.snippet()
                    );
                } else {
                    assert_eq!(
                        resp.status,
                        403,
                        "{method} {url} with a {scope} key: {}",
                        resp.snippet()
                    );
                    if has_body {
                        let message = resp.error(&[403]).unwrap();
                        assert!(message.contains("needs scope"), "{message}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 19,
        "only {checked} routes in the API description"
    );
    // health without a key says nothing about the dependencies
    let health = lab.get("/health", None).ok_json().unwrap();
    assert!(health.get("database").is_none(), "{health}");
    let health = lab.get("/health", Some(&keys[0].1)).ok_json().unwrap();
    assert_eq!(health["database"]["status"], "ok");
}

/// Two users see and delete only their own images, plus public ones;
/// another user's private image and job look unknown (404).
#[test]
fn users_see_their_own_and_public_images_only() {
    let lab = Lab::start(&[]);
    let bob = lab.key("bob", "write", &[]);
    let carol = lab.key("carol", "write", &[]);
    let ada = lab.key("ada", "admin", &[]);
    let bobs = lab.upload(&bob);
    let carols = lab.upload(&carol);
    let listed = |key: &str| -> Vec<String> {
        lab.get("/images?sort=created", Some(key))
            .ok_json()
            .unwrap()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["image_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&bob), vec![bobs.clone()]);
    assert_eq!(listed(&carol), vec![carols.clone()]);
    assert_eq!(listed(&ada), vec![bobs.clone(), carols.clone()]);
    let meta = lab
        .get(&format!("/images/{bobs}"), Some(&bob))
        .ok_json()
        .unwrap();
    assert_eq!(
        (meta["owner"].as_str(), meta["public"].as_bool()),
        (Some("bob"), Some(false))
    );

    // another user's private image: every route says it does not exist
    let unknown = lab.get("/images/image_999", Some(&carol));
    assert_eq!(unknown.status, 404);
    for path in [
        format!("/images/{bobs}"),
        format!("/metadata?image_id={bobs}"),
        format!("/slice?image_id={bobs}"),
        format!("/statistics?image_id={bobs}"),
        format!("/images/{bobs}/download?format=npy"),
    ] {
        let resp = lab.get(&path, Some(&carol));
        assert_eq!(resp.status, 404, "{path}: {}", resp.snippet());
        assert_eq!(
            resp.error(&[404]).unwrap().replace(&bobs, "X"),
            unknown.error(&[404]).unwrap().replace("image_999", "X"),
            "{path}: a forbidden image reads as an unknown one"
        );
    }
    let analyze = json!({"image_id": bobs, "components": 2});
    assert_eq!(
        lab.call(Method::POST, "/analyze", Some(&carol), Some(&analyze))
            .status,
        404
    );
    assert_eq!(
        lab.call(
            Method::DELETE,
            &format!("/images/{bobs}"),
            Some(&carol),
            None
        )
        .status,
        404
    );
    let public = json!({"public": true});
    assert_eq!(
        lab.call(
            Method::PATCH,
            &format!("/images/{bobs}"),
            Some(&carol),
            Some(&public)
        )
        .status,
        404
    );

    // bob's job is bob's
    let job = lab
        .call(
            Method::POST,
            "/analyze",
            Some(&bob),
            Some(&json!({"image_id": bobs, "async": true})),
        )
        .json()
        .unwrap();
    let status_url = job["status_url"].as_str().unwrap().to_string();
    assert_eq!(lab.get(&status_url, Some(&carol)).status, 404);
    assert_eq!(lab.get(&status_url, Some(&ada)).status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let bobs_scores = loop {
        let done = lab.get(&status_url, Some(&bob)).ok_json().unwrap();
        if done["state"] == "SUCCESS" {
            break done["result"]["scores_image_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(
            done["state"] != "FAILURE" && std::time::Instant::now() < deadline,
            "{done}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // public: every user reads it, only its owner (or an admin) changes it
    let made_public = lab.call(
        Method::PATCH,
        &format!("/images/{bobs}"),
        Some(&bob),
        Some(&public),
    );
    assert_eq!(made_public.ok_json().unwrap()["public"], true);
    assert_eq!(
        listed(&carol),
        vec![bobs.clone(), carols.clone(), bobs_scores]
    );
    assert_eq!(
        lab.get(&format!("/slice?image_id={bobs}"), Some(&carol))
            .status,
        200
    );
    let refused = lab.call(
        Method::DELETE,
        &format!("/images/{bobs}"),
        Some(&carol),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.snippet());
    assert!(refused.error(&[403]).unwrap().contains("owner"));
    assert_eq!(
        lab.call(
            Method::PATCH,
            &format!("/images/{bobs}"),
            Some(&carol),
            Some(&json!({"public": false}))
        )
        .status,
        403
    );
    // derived images inherit owner and visibility
    let pca = lab
        .call(Method::POST, "/analyze", Some(&carol), Some(&analyze))
        .ok_json()
        .unwrap();
    let scores = pca["scores_image_id"].as_str().unwrap();
    let derived = lab
        .get(&format!("/images/{scores}"), Some(&carol))
        .ok_json()
        .unwrap();
    assert_eq!(
        (derived["owner"].as_str(), derived["public"].as_bool()),
        (Some("bob"), Some(true))
    );
    lab.call(
        Method::PATCH,
        &format!("/images/{bobs}"),
        Some(&bob),
        Some(&json!({"public": false})),
    )
    .ok_json()
    .unwrap();
    assert_eq!(
        lab.get(&format!("/images/{scores}"), Some(&carol)).status,
        404
    );
    assert_eq!(listed(&carol), vec![carols.clone()]);

    // deletes: one's own with a write key, anyone's with an admin key
    let deleted = lab.call(
        Method::DELETE,
        &format!("/images/{carols}"),
        Some(&carol),
        None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.snippet());
    let deleted = lab.call(Method::DELETE, &format!("/images/{bobs}"), Some(&ada), None);
    let derived = deleted.ok_json().unwrap()["derived_images_deleted"].clone();
    assert!(
        derived.as_array().unwrap().contains(&json!(scores)),
        "{derived}"
    );
    assert!(listed(&ada).is_empty());
}

/// A revoked key and an expired key are refused from the next request on;
/// keys are listed without secrets, with when they were last used.
#[test]
fn revoked_and_expired_keys_are_refused_at_once() {
    let lab = Lab::start(&[]);
    let ada = lab.key("ada", "admin", &[]);
    let bob = lab.key("bob", "read", &["--name", "laptop"]);
    assert_eq!(lab.get("/images", Some(&bob)).status, 200);
    // the scheme is case-insensitive
    let lower = lab.server.send(
        "GET /images",
        lab.server
            .request(Method::GET, "/images")
            .header("Authorization", format!("bearer {bob}")),
    );
    assert_eq!(lower.status, 200);
    let tokens = lab
        .get("/admin/tokens?user=bob", Some(&ada))
        .ok_json()
        .unwrap();
    let listed = &tokens["tokens"][0];
    assert_eq!(
        (listed["name"].as_str(), listed["scope"].as_str()),
        (Some("laptop"), Some("read"))
    );
    assert!(listed["last_used"].is_string(), "{listed}");
    let text = tokens.to_string();
    let secret = bob.rsplit('_').next().unwrap();
    assert!(!text.contains(secret), "a secret is listed");
    let cli_list = lab.cli(&["token", "list"]);
    assert!(
        cli_list.contains("laptop") && !cli_list.contains(secret),
        "{cli_list}"
    );

    // revoked over HTTP: refused by the very next request
    let id = listed["id"].as_i64().unwrap();
    let revoked = lab.call(
        Method::DELETE,
        &format!("/admin/tokens/{id}"),
        Some(&ada),
        None,
    );
    assert!(revoked.ok_json().unwrap()["revoked_at"].is_string());
    let refused = lab.get("/images", Some(&bob));
    assert_eq!(refused.status, 401);
    assert!(refused.error(&[401]).unwrap().contains("revoked"));

    // revoked with the command line
    let carol = lab.key("carol", "write", &[]);
    assert_eq!(lab.get("/images", Some(&carol)).status, 200);
    let carol_id = carol.split('_').nth(1).unwrap();
    lab.cli(&["token", "revoke", carol_id]);
    assert_eq!(lab.get("/images", Some(&carol)).status, 401);

    // expired
    let brief = lab.key("bob", "read", &["--expires", "2s"]);
    assert_eq!(lab.get("/images", Some(&brief)).status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let expired = lab.get("/images", Some(&brief));
    assert_eq!(expired.status, 401);
    assert!(expired.error(&[401]).unwrap().contains("expired"));

    // forged and malformed keys
    let mut forged = ada.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in [forged.as_str(), "ps_1", "nonsense", "ps_x_y"] {
        let resp = lab.get("/images", Some(bad));
        assert_eq!(resp.status, 401, "{bad}");
    }
    // admin keys only for admins; users and keys over HTTP
    let made = lab.call(
        Method::POST,
        "/admin/tokens",
        Some(&ada),
        Some(&json!({"user": "bob", "scope": "admin"})),
    );
    assert_eq!(made.status, 400, "{}", made.snippet());
    let user = lab.call(
        Method::POST,
        "/admin/users",
        Some(&ada),
        Some(&json!({"name": "dan"})),
    );
    assert_eq!(user.status, 201, "{}", user.snippet());
    assert_eq!(
        lab.call(
            Method::POST,
            "/admin/users",
            Some(&ada),
            Some(&json!({"name": "dan"}))
        )
        .status,
        409
    );
    let made = lab
        .call(
            Method::POST,
            "/admin/tokens",
            Some(&ada),
            Some(&json!({"user": "dan", "scope": "write", "expires": "90d"})),
        )
        .json()
        .unwrap();
    let dan = made["key"].as_str().unwrap();
    assert_eq!(lab.get("/images", Some(dan)).status, 200);
    assert_eq!(lab.get("/admin/users", Some(dan)).status, 403);
}

/// A signed link opens its image's GET routes without a key, nothing else,
/// and stops at its expiry; a tampered link is refused.
#[test]
fn signed_links_open_one_image_until_they_expire() {
    let lab = Lab::start(&[]);
    let bob = lab.key("bob", "write", &[]);
    let reader = lab.key("bob", "read", &[]);
    let mine = lab.upload(&bob);
    let other = lab.upload(&bob);
    let refused = lab.call(
        Method::POST,
        &format!("/images/{mine}/links"),
        Some(&reader),
        None,
    );
    assert_eq!(refused.status, 403, "a read key cannot hand out links");
    let out_of_range = lab.call(
        Method::POST,
        &format!("/images/{mine}/links"),
        Some(&bob),
        Some(&json!({"expires_in": 0})),
    );
    assert!(out_of_range.error(&[400]).unwrap().contains("1 to 2592000"));
    let link = lab
        .call(
            Method::POST,
            &format!("/images/{mine}/links"),
            Some(&bob),
            Some(&json!({"expires_in": 3})),
        )
        .ok_json()
        .unwrap();
    let prefix = link["prefix"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    assert!(link["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{prefix}/")));

    // its image's GET routes, with no header
    for path in [
        format!("/images/{mine}"),
        format!("/metadata?image_id={mine}"),
        format!("/statistics?image_id={mine}"),
        format!("/images/{mine}/download?format=npy"),
    ] {
        let resp = lab.get(&format!("{prefix}{path}"), None);
        assert_eq!(resp.status, 200, "{path}: {}", resp.snippet());
    }
    let zarr = lab.get(&format!("{prefix}/zarr/{mine}/0/zarr.json"), None);
    assert_eq!(
        zarr.status,
        200,
        "the Zarr group by link: {}",
        zarr.snippet()
    );
    let png = lab.get(&format!("{prefix}/slice?image_id={mine}&z=1"), None);
    assert_eq!((png.status, png.content_type.as_str()), (200, "image/png"));
    let direct = lab.get(&format!("/slice?image_id={mine}&z=1"), Some(&bob));
    assert_eq!(png.body, direct.body, "the link serves the same plane");
    for (resp, by) in [(&png, "link"), (&direct, "key"), (&zarr, "link")] {
        assert_eq!(
            resp.header("cache-control"),
            "private, no-cache",
            "by {by}: no shared cache may serve it to another caller"
        );
    }

    // nothing else
    assert_eq!(
        lab.get(&format!("{prefix}/slice?image_id={other}"), None)
            .status,
        404
    );
    assert_eq!(lab.get(&format!("{prefix}/images"), None).status, 403);
    assert_eq!(lab.get(&format!("{prefix}/admin/users"), None).status, 403);
    for (method, path) in [
        (Method::DELETE, format!("/images/{mine}")),
        (Method::POST, "/analyze".to_string()),
        (Method::POST, format!("/images/{mine}/links")),
    ] {
        let resp = lab.call(
            method.clone(),
            &format!("{prefix}{path}"),
            None,
            Some(&json!({"image_id": mine})),
        );
        assert_eq!(resp.status, 403, "{method} {path}: {}", resp.snippet());
    }
    // tampered
    let mut tampered = prefix.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let resp = lab.get(&format!("{tampered}/images/{mine}"), None);
    assert_eq!(resp.status, 401);
    let other_image = prefix.replace(&mine, &other);
    assert_eq!(
        lab.get(&format!("{other_image}/images/{other}"), None)
            .status,
        401
    );
    // expired
    std::thread::sleep(Duration::from_millis(3500));
    let expired = lab.get(&format!("{prefix}/images/{mine}"), None);
    assert_eq!(expired.status, 401);
    assert!(expired.error(&[401]).unwrap().contains("expired"));
}

/// Preflights from an allowed origin are answered with what a browser
/// needs; another origin is refused; `*` never allows credentials.
#[test]
fn cors_preflight_for_allowed_origins_only() {
    let lab = Lab::start(&[(
        "PENTASCOPE_CORS_ORIGINS",
        "https://lab.example.org,http://localhost:8080",
    )]);
    let key = lab.key("bob", "write", &[]);
    let image = lab.upload(&key);
    let preflight = |origin: &str| {
        lab.server.send(
            "OPTIONS /slice",
            lab.server
                .request(Method::OPTIONS, "/slice")
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "GET")
                .header("Access-Control-Request-Headers", "authorization,range"),
        )
    };
    let allowed = preflight("https://lab.example.org");
    assert_eq!(allowed.status, 204, "{}", allowed.snippet());
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        "https://lab.example.org"
    );
    let headers = allowed
        .header("access-control-allow-headers")
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("range"),
        "{headers}"
    );
    assert!(allowed
        .header("access-control-allow-methods")
        .contains("GET"));
    assert!(allowed
        .header("access-control-allow-credentials")
        .is_empty());

    let refused = preflight("https://evil.example.com");
    assert_eq!(refused.status, 403);
    assert!(refused.header("access-control-allow-origin").is_empty());
    assert!(refused
        .error(&[403])
        .unwrap()
        .contains("PENTASCOPE_CORS_ORIGINS"));

    let get = lab.server.send(
        "GET /slice",
        lab.server
            .request(Method::GET, &format!("/slice?image_id={image}"))
            .bearer_auth(&key)
            .header("Origin", "http://localhost:8080"),
    );
    assert_eq!(get.status, 200);
    assert_eq!(
        get.header("access-control-allow-origin"),
        "http://localhost:8080"
    );
    assert!(get
        .header("access-control-expose-headers")
        .contains("Content-Range"));
    let other = lab.server.send(
        "GET /slice",
        lab.server
            .request(Method::GET, &format!("/slice?image_id={image}"))
            .bearer_auth(&key)
            .header("Origin", "https://evil.example.com"),
    );
    assert!(other.header("access-control-allow-origin").is_empty());

    let any = Lab::start(&[("PENTASCOPE_CORS_ORIGINS", "*")]);
    let resp = any.server.send(
        "OPTIONS /images",
        any.server
            .request(Method::OPTIONS, "/images")
            .header("Origin", "https://anywhere.example")
            .header("Access-Control-Request-Method", "GET"),
    );
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), "*");
    assert!(resp.header("access-control-allow-credentials").is_empty());
}

/// On loopback, access control is off by default and refuses nothing;
/// `pentascope config` says which mode is in effect and why.
#[test]
fn loopback_defaults_to_off_and_config_says_why() {
    let server = Server::start();
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let id = server.upload_ok(FILE, set.read(FILE));
    let no_key = |method: Method, path: &str| {
        server.send(
            &format!("{method} {path}"),
            server.request(method.clone(), path),
        )
    };
    assert_eq!(no_key(Method::GET, "/images").status, 200);
    assert_eq!(
        no_key(Method::GET, &format!("/slice?image_id={id}")).status,
        200
    );
    assert_eq!(no_key(Method::GET, "/admin/users").status, 200);
    assert_eq!(no_key(Method::DELETE, &format!("/images/{id}")).status, 200);
    let health = no_key(Method::GET, "/health").ok_json().unwrap();
    assert_eq!(health["database"]["status"], "ok");

    let dir = tempfile::tempdir().unwrap();
    let config = |args: &[&str]| {
        let mut all = vec!["config"];
        all.extend_from_slice(args);
        run_cli(dir.path(), &[], &all)
    };
    let line = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("PENTASCOPE_AUTH "))
            .unwrap_or_else(|| panic!("no PENTASCOPE_AUTH line:\n{out}"))
            .to_string()
    };
    let loopback = line(&config(&[]));
    assert!(
        loopback.contains(" off ") && loopback.contains("loopback"),
        "{loopback}"
    );
    let open = line(&config(&["--host", "0.0.0.0"]));
    assert!(
        open.contains(" required ") && open.contains("not a loopback"),
        "{open}"
    );
    let explicit = line(&config(&["--host", "0.0.0.0", "--auth", "off"]));
    assert!(
        explicit.contains(" off ") && explicit.contains("--auth"),
        "{explicit}"
    );
}

/// Starting on a non-loopback address with access control off must be
/// asked for, and is warned about.
#[test]
fn auth_off_on_a_public_address_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pentascope"))
        .args([
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--auth",
            "off",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = String::new();
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut stdout, &mut lines).unwrap();
    }
    assert!(
        lines.contains("listening") && lines.contains("access control off (set with --auth"),
        "{lines}"
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("access control is off on a non-loopback address"),
        "{log}"
    );
}

/// The server's output without terminal colours.
fn plain_logs(server: &Server) -> String {
    let logs = server.logs();
    let mut out = String::with_capacity(logs.len());
    let mut chars = logs.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every refused upload leaves a WARN line with its status and reason
/// (no body, not a TIFF, a read key, an unknown key, a signed link, an
/// unknown query parameter), and no key, key secret or link token is
/// ever in the log.
#[test]
fn refused_uploads_are_logged_with_why_and_without_secrets() {
    let lab = Lab::start(&[]);
    let bob = lab.key("bob", "write", &[]);
    let reader = lab.key("bob", "read", &[]);
    let mine = lab.upload(&bob);
    let link = lab
        .call(
            Method::POST,
            &format!("/images/{mine}/links"),
            Some(&bob),
            Some(&json!({"expires_in": 600})),
        )
        .ok_json()
        .unwrap();
    let prefix = link["prefix"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let token = prefix.trim_start_matches("/s/").to_string();
    let forged = "ps_999_averysecretsecretthatmustnotleak";
    let not_tiff = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(b"hello, not a TIFF".to_vec()).file_name("a.tif"),
    );
    let sent =
        |what: &str, request: reqwest::blocking::RequestBuilder| lab.server.send(what, request);
    let post = |path: &str| lab.server.request(Method::POST, path);
    // (the request, its status, words its log line must have)
    let cases: Vec<(Resp, u16, &str)> = vec![
        (
            sent("no body", post("/upload").bearer_auth(&bob)),
            400,
            "No file part in the request",
        ),
        (
            sent(
                "not a TIFF",
                post("/upload").bearer_auth(&bob).multipart(not_tiff),
            ),
            415,
            "TIFF",
        ),
        (
            sent("a read key", post("/upload").bearer_auth(&reader)),
            403,
            "scope write",
        ),
        (
            sent("a forged key", post("/upload").bearer_auth(forged)),
            401,
            "invalid API key",
        ),
        (sent("no key", post("/upload")), 401, "needs an API key"),
        (
            sent("a signed link", post(&format!("{prefix}/upload"))),
            403,
            "signed link",
        ),
        (
            sent("a bad link", post("/s/1.2.abcdef/upload")),
            401,
            "invalid signed link",
        ),
        (
            sent(
                "an unknown parameter",
                post(&format!("/upload?key={bob}")).bearer_auth(&bob),
            ),
            400,
            "unknown query parameter",
        ),
    ];
    for (resp, status, reason) in &cases {
        assert_eq!(resp.status, *status, "{}: {}", resp.what, resp.snippet());
        let wanted = format!("status={status}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let logs = plain_logs(&lab.server);
            let logged = logs.lines().any(|line| {
                line.contains("WARN")
                    && line.contains("/upload refused")
                    && line.contains(&wanted)
                    && line.contains(reason)
            });
            if logged {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: no WARN line with {wanted} and {reason:?}:\n{logs}",
                resp.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let logs = plain_logs(&lab.server);
    for key in [&bob, &reader] {
        let secret = key.rsplit('_').next().unwrap();
        assert!(!logs.contains(secret), "a key's secret is logged:\n{logs}");
    }
    assert!(
        !logs.contains("averysecretsecret"),
        "a forged key is logged:\n{logs}"
    );
    assert!(!logs.contains(&token), "a link's token is logged:\n{logs}");
}
