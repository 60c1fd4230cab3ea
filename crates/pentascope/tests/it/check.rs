//! `pentascope check`: faults planted on purpose in the pixels, the records
//! and beside them (chunks deleted, truncated and overwritten, a group
//! removed, array metadata and stored statistics changed, a record deleted,
//! staged and spooled leftovers, an upload that never finished) are each
//! found, by the quick check or only by the deep one; `--repair` removes
//! the orphans and marks the broken images, keeping every record.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::fixtures_dir;
use crate::util::services::{production_env, require_production_services, unique_tag};

const FILE: &str = "ome_tczyx_u16.ome.tif";

fn pentascope(data: &Path, args: &[&str]) -> Output {
    pentascope_with(data, &[], args)
}

/// Runs `pentascope ARGS --data-dir DATA` with the settings `env`.
pub(crate) fn pentascope_with(data: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pentascope"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the pentascope binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `sql` on the embedded database (with Python's sqlite3 module,
/// which every machine of the suite has); its rows, `|` between columns.
fn sql(data: &Path, sql: &str) -> String {
    const RUN: &str = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        rows = db.execute(sys.argv[2]).fetchall()\n\
        db.commit()\n\
        print('\\n'.join('|'.join(str(v) for v in row) for row in rows))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(RUN)
        .arg(data.join("pentascope.sqlite"))
        .arg(sql)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The chunk files of level 0 of image `n`, sorted.
fn chunks(data: &Path, n: u32) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&group(data, n).join("0").join("c"), &mut out);
    out.sort();
    assert!(!out.is_empty(), "image_{n} has no chunks");
    out
}

fn group(data: &Path, n: u32) -> PathBuf {
    data.join("images").join(format!("image_{n}.zarr"))
}

/// The lines of a check's report about `subject` (`image_3`, `spool`).
fn about<'a>(report: &'a str, subject: &str) -> Vec<&'a str> {
    report
        .lines()
        .filter(|l| l.starts_with(&format!("{subject}: ")))
        .collect()
}

#[test]
fn check_finds_every_planted_fault_and_repair_keeps_records() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let file = fixtures_dir().join("tiff").join(FILE);
    for _ in 0..7 {
        let out = pentascope(data, &["ingest", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stdout(&out));
    }
    let clean = pentascope(data, &["check", "--deep"]);
    assert!(
        clean.status.success(),
        "a fresh installation is clean: {}{}",
        stdout(&clean),
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(stdout(&clean).contains("checked 7 image records and 7 pixel groups"));

    // faults only a deep check sees
    std::fs::remove_file(&chunks(data, 1)[0]).unwrap();
    let truncated = &chunks(data, 2)[1];
    let len = std::fs::metadata(truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let overwritten = &chunks(data, 3)[0];
    let mut bytes = std::fs::read(overwritten).unwrap();
    bytes[..16].fill(0xA5);
    std::fs::write(overwritten, bytes).unwrap();
    sql(
        data,
        "UPDATE images SET statistics = json_set(statistics, '$[0].max', \
         json_extract(statistics, '$[0].max') + 1) WHERE id = 6",
    );
    // faults a quick check sees
    std::fs::remove_dir_all(group(data, 4)).unwrap();
    let array = group(data, 5).join("0").join("zarr.json");
    let meta = std::fs::read_to_string(&array).unwrap();
    assert!(meta.contains("\"uint16\""), "{meta}");
    std::fs::write(&array, meta.replace("\"uint16\"", "\"int16\"")).unwrap();
    sql(data, "DELETE FROM images WHERE id = 7");
    std::fs::create_dir_all(data.join("images/.staging/image_900.zarr")).unwrap();
    sql(
        data,
        "INSERT INTO images (state, kind, created_at) \
         VALUES ('pending', 'upload', '2000-01-01T00:00:00.000Z')",
    );
    let stale_pending = sql(data, "SELECT MAX(id) FROM images");
    let spooled = data.join("spool").join("upload-left-behind");
    std::fs::create_dir_all(data.join("spool")).unwrap();
    std::fs::write(&spooled, b"half an upload").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&spooled)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(86_400))
        .unwrap();
    // an upload in progress is not a fault
    std::fs::write(data.join("spool").join("upload-in-progress"), b"x").unwrap();

    let quick = pentascope(data, &["check"]);
    let report = stdout(&quick);
    assert!(
        !quick.status.success(),
        "faults give a non-zero exit:\n{report}"
    );
    let expect = |report: &str, subject: &str, text: &str| {
        let lines = about(report, subject);
        assert!(
            lines.iter().any(|l| l.contains(text)),
            "{subject} should be reported with {text:?}:\n{report}"
        );
    };
    expect(&report, "image_4", "its record has no pixels");
    expect(&report, "image_5", "not its record's");
    expect(&report, "image_7", "pixels without a record");
    expect(&report, "image_900", "staged pixels");
    expect(&report, &format!("image_{stale_pending}"), "never finished");
    expect(&report, "spool", "upload-left-behind");
    assert!(!report.contains("upload-in-progress"), "{report}");
    for n in [1, 2, 3, 6] {
        assert!(
            about(&report, &format!("image_{n}")).is_empty(),
            "a quick check does not read chunks:\n{report}"
        );
    }
    assert!(report.contains(": 6 problems"), "{report}");

    let deep = pentascope(data, &["check", "--deep", "--threads", "1"]);
    let report = stdout(&deep);
    assert!(!deep.status.success());
    expect(&report, "image_1", "missing");
    expect(&report, "image_2", "do not read");
    // an overwritten chunk fails its CRC32C, whatever its compression
    expect(&report, "image_3", "do not read");
    expect(&report, "image_6", "differ from what was stored");
    assert!(report.contains(": 10 problems"), "{report}");

    let repair = pentascope(data, &["check", "--deep", "--repair"]);
    let report = stdout(&repair);
    assert!(!repair.status.success(), "broken images stay a fault");
    expect(&report, "image_7", "[repair: removed]");
    expect(&report, "image_4", "[repair: marked broken");
    assert!(!group(data, 7).exists(), "the orphan group is removed");
    assert!(!data.join("images/.staging/image_900.zarr").exists());
    assert!(!spooled.exists());
    assert_eq!(
        sql(data, "SELECT COUNT(*) FROM images WHERE state = 'pending'"),
        "0"
    );
    // every record is kept, each broken one says so
    assert_eq!(
        sql(data, "SELECT group_concat(id) FROM images ORDER BY id"),
        "1,2,3,4,5,6"
    );
    for n in 1..=6 {
        let metadata = sql(data, &format!("SELECT metadata FROM images WHERE id = {n}"));
        assert!(
            metadata.contains("broken (pentascope check): "),
            "image_{n} is not marked: {metadata}"
        );
    }

    // what is left: the six broken images, marked once
    let again = pentascope(data, &["check", "--deep", "--repair"]);
    let report = stdout(&again);
    assert!(report.contains(": 6 problems"), "{report}");
    expect(&report, "image_1", "[repair: already marked broken]");
}

/// The keys under `prefix` in the test bucket of the S3 server at
/// `endpoint` (one page of a V2 listing is enough for a few images).
fn s3_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let out = Command::new("curl")
        .args([
            "-sf",
            &format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}"),
        ])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "listing {prefix}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
        .collect()
}

/// On PostgreSQL and S3: a deleted chunk object is found by the deep check
/// only, a deleted record's objects are orphans, removed by `--repair`.
#[test]
#[ignore = "needs PostgreSQL and an S3 server; run with --ignored (.ci/run does)"]
fn check_finds_faults_on_postgresql_and_s3() {
    require_production_services();
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let tag = unique_tag("check");
    // records and pixels only: no broker
    let env: Vec<(String, String)> = production_env(&tag)
        .into_iter()
        .filter(|(k, _)| !k.contains("CELERY"))
        .collect();
    let setting = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (endpoint, database) = (setting("AWS_ENDPOINT_URL"), setting("DATABASE_URL"));
    let bucket = "pentascope-test";
    let file = fixtures_dir().join("tiff").join(FILE);
    for _ in 0..3 {
        let out = pentascope_with(data, &env, &["ingest", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stdout(&out));
    }
    let clean = pentascope_with(data, &env, &["check", "--deep"]);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(stdout(&clean).contains("checked 3 image records and 3 pixel groups"));

    let chunk = s3_keys(&endpoint, bucket, &format!("{tag}/image_1.zarr/0/c/"))
        .into_iter()
        .next()
        .expect("a chunk object of image_1");
    // a signed request, with the suite's credentials
    let deleted = Command::new("curl")
        .args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!(
            "{}:{}",
            setting("AWS_ACCESS_KEY_ID"),
            setting("AWS_SECRET_ACCESS_KEY")
        ))
        .args(["-X", "DELETE", &format!("{endpoint}/{bucket}/{chunk}")])
        .status()
        .unwrap();
    assert!(deleted.success());
    let dropped = Command::new("psql")
        .args([database.as_str(), "-c", "DELETE FROM images WHERE id = 3"])
        .output()
        .unwrap();
    assert!(dropped.status.success(), "{dropped:?}");

    let quick = pentascope_with(data, &env, &["check"]);
    let report = stdout(&quick);
    assert!(!quick.status.success());
    assert!(
        about(&report, "image_3")
            .iter()
            .any(|l| l.contains("pixels without a record")),
        "{report}"
    );
    assert!(about(&report, "image_1").is_empty(), "{report}");
    let deep = pentascope_with(data, &env, &["check", "--deep", "--repair"]);
    let report = stdout(&deep);
    assert!(
        about(&report, "image_1")
            .iter()
            .any(|l| l.contains("missing") && l.contains("marked broken")),
        "{report}"
    );
    assert!(
        s3_keys(&endpoint, bucket, &format!("{tag}/image_3.zarr/")).is_empty(),
        "the orphan's objects are removed"
    );
    assert!(about(&report, "image_2").is_empty(), "{report}");
}
