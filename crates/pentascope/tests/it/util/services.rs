//! The services of the production configuration (PostgreSQL, S3, Redis)
//! and a proxy that cuts them.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

/// The configuration the suite runs against, from `PENTASCOPE_TEST_BACKEND`:
/// unset for the embedded defaults (SQLite, local pixels, in-process jobs);
/// `postgres` for PostgreSQL records; `production` for PostgreSQL records,
/// pixels on S3 (`PENTASCOPE_TEST_S3`, default http://127.0.0.1:5055, any
/// S3-compatible server such as `moto_server`) and jobs on Redis
/// (`PENTASCOPE_TEST_REDIS`) run by a `pentascope worker` started beside
/// each server. Every name is derived from the data directory, so a restart
/// on the same directory finds the same database, bucket prefix and queue.
pub fn backend_env(data_dir: &Path) -> Vec<(String, String)> {
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

/// A name no other test run uses (for a deployment's database, bucket
/// prefix and queue): `prefix`, this process and the time.
pub fn unique_tag(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Fails the calling test unless the services of the production
/// configuration answer: PostgreSQL (`psql`), Redis (`redis-cli`) and the
/// S3 server.
pub fn require_production_services() {
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
    assert!(
        missing.is_empty(),
        "{missing:?} not running: start them as .ci/run does"
    );
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
