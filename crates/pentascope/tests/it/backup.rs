//! `pentascope backup` and `pentascope restore` against the real binary:
//! a backup taken while uploads run restores into an empty directory where
//! the binary serves every image it holds with the same pixels (the sha256
//! of each image's `.npy`), `pentascope check` finds nothing wrong, and a
//! non-empty target is refused. Embedded installations only (SQLite and
//! local pixels): PostgreSQL and S3 have their own tools.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::check::pentascope_with;
use crate::util::{fixtures_dir, FixtureSet, Server};

const FILES: [&str; 3] = [
    "ome_tczyx_u16.ome.tif",
    "imagej_zcyx_u8.tif",
    "ome_zcyx_f32_zstd_fpred.ome.tif",
];

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every image a server lists, by id, with the sha256 of its samples.
fn pixels_by_image(server: &Server) -> BTreeMap<String, String> {
    let list = server.get("/images?limit=1000").ok_json().unwrap();
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let id = i["image_id"].as_str().unwrap().to_string();
            let sha = server.samples_sha256(&id);
            (id, sha)
        })
        .collect()
}

fn dir_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `pentascope ARGS --data-dir DATA` on the embedded defaults.
fn pentascope(data: &Path, args: &[&str]) -> Output {
    pentascope_with(data, &[], args)
}

#[test]
fn a_backup_taken_during_uploads_restores_every_image_exactly() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let work = tempfile::tempdir().unwrap();
    let (data, backup, restored) = (
        work.path().join("data"),
        work.path().join("backup"),
        work.path().join("restored"),
    );
    // embedded, whatever PENTASCOPE_TEST_BACKEND says
    let server = Server::start_configured(&data, &[]);
    let mut before = Vec::new();
    for file in FILES {
        before.push(server.upload_ok(file, set.read(file)));
    }
    // a stored labels image and a virtual PCA scores image
    let segmented = server.post_json(
        "/segment",
        &json!({"image_id": before[0], "z": 1, "channel": 2}),
    );
    assert_eq!(segmented.status, 200, "{}", segmented.snippet());
    let analyzed = server.post_json("/analyze", &json!({"image_id": before[0], "components": 2}));
    assert_eq!(analyzed.status, 200, "{}", analyzed.snippet());

    let (backed_up, during) = std::thread::scope(|scope| {
        let uploads = scope.spawn(|| {
            (0..8)
                .map(|n| {
                    let file = FILES[n % FILES.len()];
                    server.upload_ok(file, set.read(file))
                })
                .collect::<Vec<_>>()
        });
        let out = pentascope(&data, &["backup", dir_arg(&backup)]);
        (out, uploads.join().unwrap())
    });
    assert!(backed_up.status.success(), "{}", text(&backed_up));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("pentascope-backup.json")).unwrap())
            .unwrap();
    assert!(
        manifest["linked_files"].as_u64().unwrap() > 0,
        "on one file system the pixels are linked: {manifest}"
    );
    let original = pixels_by_image(&server);
    assert_eq!(original.len(), before.len() + 2 + during.len());
    // a linked chunk is the same file as the original, not a copy of it
    let group = backup.join("images").join(format!("{}.zarr", before[0]));
    let zarr_json = group.join("0").join("zarr.json");
    assert!(std::fs::metadata(&zarr_json).unwrap().nlink() >= 2);

    // restore: refused into a directory that holds anything
    let refused = pentascope(&data, &["restore", dir_arg(&backup)]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));
    let not_a_backup = pentascope(&work.path().join("elsewhere"), &["restore", dir_arg(&data)]);
    assert!(!not_a_backup.status.success());
    assert!(
        text(&not_a_backup).contains("not a finished backup"),
        "{}",
        text(&not_a_backup)
    );
    let out = pentascope(&restored, &["restore", dir_arg(&backup)]);
    assert!(out.status.success(), "{}", text(&out));

    // the restored installation is clean and serves the same pixels
    let check = pentascope(&restored, &["check", "--deep"]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("clean"), "{}", text(&check));
    let copy = Server::start_configured(&restored, &[]);
    let restored_pixels = pixels_by_image(&copy);
    assert_eq!(
        restored_pixels.len() as u64,
        manifest["images"].as_u64().unwrap(),
        "{manifest}"
    );
    // everything there before the backup began, and some of what arrived
    // during it: each image exactly as the original serves it
    for id in &before {
        assert!(restored_pixels.contains_key(id), "{id} is missing");
    }
    assert!(restored_pixels.len() >= before.len() + 2);
    for (id, sha) in &restored_pixels {
        assert_eq!(Some(sha), original.get(id), "{id}'s pixels differ");
    }
    // the restored copy is independent of the backup
    drop(copy);
    std::fs::remove_dir_all(&backup).unwrap();
    let again = Server::start_configured(&restored, &[]);
    assert_eq!(pixels_by_image(&again), restored_pixels);
}

/// An image whose pixels are gone by the time the backup copies them (it
/// was deleted after the database was copied; here its group is removed
/// beforehand, which the backup cannot tell apart) is left out of the
/// backup, record and all, and said so; the rest restores clean.
#[test]
fn an_image_deleted_during_the_backup_is_left_out_whole() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let work = tempfile::tempdir().unwrap();
    let (data, backup, restored) = (
        work.path().join("data"),
        work.path().join("backup"),
        work.path().join("restored"),
    );
    let server = Server::start_configured(&data, &[]);
    let kept = server.upload_ok(FILES[0], set.read(FILES[0]));
    let gone = server.upload_ok(FILES[1], set.read(FILES[1]));
    let kept_pixels = server.samples_sha256(&kept);
    drop(server);
    std::fs::remove_dir_all(data.join("images").join(format!("{gone}.zarr"))).unwrap();
    let out = pentascope(&data, &["backup", dir_arg(&backup)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{gone} was deleted while the backup ran")),
        "{}",
        text(&out)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("pentascope-backup.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["images"], 1);
    assert_eq!(manifest["left_out"], json!([gone]));
    let out = pentascope(&restored, &["restore", dir_arg(&backup)]);
    assert!(out.status.success(), "{}", text(&out));
    let check = pentascope(&restored, &["check"]);
    assert!(check.status.success(), "{}", text(&check));
    let copy = Server::start_configured(&restored, &[]);
    assert_eq!(
        pixels_by_image(&copy),
        BTreeMap::from([(kept, kept_pixels)])
    );
}
