//! Upgrades: every fixture in `tests/fixtures/upgrade/` (a data directory
//! and a PostgreSQL dump made by an earlier release, see `make.py` there)
//! opens with the current binary, which migrates it and serves every image
//! with the samples recorded when it was made (sha256 of the `.npy`,
//! computed by tifffile from the source files for uploads) and the same
//! catalogue fields; `pentascope check --deep` finds nothing wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::check::pentascope_with;
use crate::util::services::unique_tag;
use crate::util::Server;

/// Every fixture directory, oldest first; there is at least one.
fn fixtures() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/upgrade");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixture in {}", root.display());
    dirs
}

fn expected(fixture: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap()
}

/// Copies a directory tree (fixtures are read-only in place).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The server serves every image of `images` (one backend's part of
/// `expected.json`) as recorded, and no other.
fn serves_as_recorded(server: &Server, images: &Value, fixture: &Path) {
    let images = images.as_object().unwrap();
    let listed = server.get("/images?limit=1000").ok_json().unwrap();
    assert_eq!(
        listed["count"].as_u64(),
        Some(images.len() as u64),
        "{}: {listed}",
        fixture.display()
    );
    for (id, want) in images {
        let what = format!("{} {id}", fixture.display());
        assert_eq!(
            server.samples_sha256(id),
            want["sha256"].as_str().unwrap(),
            "{what}: pixels differ ({})",
            want["sha256_by"]
        );
        let got = server.get(&format!("/images/{id}")).ok_json().unwrap();
        for field in [
            "kind",
            "shape",
            "dtype",
            "name",
            "description",
            "tags",
            "annotations",
        ] {
            assert_eq!(got[field], want[field], "{what}: {field}");
        }
        let mut datasets: Vec<&str> = got["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        datasets.sort();
        assert_eq!(
            serde_json::json!(datasets),
            want["datasets"],
            "{what}: datasets"
        );
    }
}

fn check_clean(env: &[(String, String)], data_dir: &Path) {
    let out = pentascope_with(data_dir, env, &["check", "--deep"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("clean"), "{said}");
}

#[test]
fn data_directories_of_earlier_releases_open_and_serve_every_image_exactly() {
    for fixture in fixtures() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture.join("sqlite"), dir.path());
        check_clean(&[], dir.path());
        let server = Server::start_configured(dir.path(), &[]);
        serves_as_recorded(&server, &expected(&fixture)["sqlite"], &fixture);
    }
}

#[test]
#[ignore = "needs PostgreSQL (psql); .ci/run runs it"]
fn postgres_dumps_of_earlier_releases_restore_migrate_and_serve_every_image_exactly() {
    let admin = std::env::var("PENTASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    for fixture in fixtures() {
        let name = unique_tag("pentascope_upgrade");
        let psql = |url: &str, args: &[&str]| {
            let out = Command::new("psql")
                .arg(url)
                .args(["-q", "-v", "ON_ERROR_STOP=1"])
                .args(args)
                .output()
                .expect("psql is installed");
            assert!(
                out.status.success(),
                "psql {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        psql(&admin, &["-c", &format!("CREATE DATABASE {name}")]);
        let url = format!("{base}/{name}");
        let dump = fixture.join("postgres/dump.sql");
        psql(&url, &["-f", dump.to_str().unwrap()]);
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        copy_dir(&fixture.join("postgres/images"), &images);
        let env = [
            ("DATABASE_URL".to_string(), url.clone()),
            ("STORAGE_URL".to_string(), images.display().to_string()),
        ];
        let server = Server::start_configured(dir.path(), &env);
        serves_as_recorded(&server, &expected(&fixture)["postgres"], &fixture);
        drop(server);
        check_clean(&env, dir.path());
        psql(&admin, &["-c", &format!("DROP DATABASE {name}")]);
    }
}
