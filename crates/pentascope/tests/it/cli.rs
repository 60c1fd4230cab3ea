//! The command line: `pentascope ingest` imports a folder through the same
//! use case as `POST /upload`, and what it imports is served as uploads are.

use std::process::Command;

use crate::util::{fixtures_dir, shape5, FixtureSet, Server};

fn pentascope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pentascope"))
}

/// Each subcommand offers the settings it uses and no other: the HTTP
/// server's (`--port`, `--cors-origins`) only where there is one, the job
/// transport's only where jobs run, the stores' everywhere.
#[test]
fn each_subcommand_offers_only_its_own_settings() {
    let offers = |args: &[&str]| {
        let out = pentascope().args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let has = |help: &str, flag: &str| help.lines().any(|l| l.contains(&format!("{flag} ")));
    let cases: [(&[&str], &[&str], &[&str]); 7] = [
        (
            &["serve"],
            &[
                "--port",
                "--cors-origins",
                "--celery-broker-url",
                "--max-samples",
                "--data-dir",
            ],
            &[],
        ),
        (
            &["worker"],
            &["--celery-broker-url", "--max-samples", "--data-dir"],
            &["--port", "--cors-origins"],
        ),
        (
            &["ingest"],
            &["--max-samples", "--compression", "--data-dir"],
            &["--port", "--cors-origins", "--celery-broker-url"],
        ),
        (
            &["check"],
            &["--data-dir", "--storage-url"],
            &["--port", "--max-samples", "--celery-broker-url"],
        ),
        (
            &["migrate"],
            &["--database-url"],
            &["--port", "--max-samples"],
        ),
        (
            &["user", "create"],
            &["--data-dir"],
            &["--port", "--max-samples", "--celery-broker-url"],
        ),
        (
            &["token", "create"],
            &["--data-dir"],
            &["--port", "--max-samples", "--celery-broker-url"],
        ),
    ];
    for (args, offered, not_offered) in cases {
        let help = offers(args);
        for flag in offered {
            assert!(has(&help, flag), "{args:?} does not offer {flag}:\n{help}");
        }
        for flag in not_offered {
            assert!(!has(&help, flag), "{args:?} offers {flag}:\n{help}");
        }
    }
}

/// `--help` lists every subcommand, and its description (the text above
/// `Usage:`, also shown by `-h`) names each of them.
#[test]
fn help_names_every_subcommand() {
    const SUBCOMMANDS: [&str; 12] = [
        "serve", "worker", "ingest", "check", "migrate", "config", "user", "token", "audit",
        "backup", "restore", "openapi",
    ];
    for flag in ["--help", "-h"] {
        let out = pentascope().arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let description = help.split("Usage:").next().unwrap_or_default();
        for sub in SUBCOMMANDS {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
                "{flag} does not list {sub}:\n{help}"
            );
            assert!(
                description
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| word == sub),
                "{flag}'s description does not name {sub}:\n{description}"
            );
        }
    }
}

#[test]
fn ingest_imports_the_fixture_folder_and_reports_each_failure() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let data = tempfile::tempdir().unwrap();
    let out = pentascope()
        .arg("ingest")
        .arg(&set.dir)
        .arg("--data-dir")
        .arg(data.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let accepted: Vec<&(String, serde_json::Value)> = set
        .files
        .iter()
        .filter(|(_, e)| e["expect"] == "accept")
        .collect();
    let rejected: Vec<&str> = set
        .files
        .iter()
        .filter(|(_, e)| e["expect"] == "reject")
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(!rejected.is_empty(), "the corpus has broken files");
    assert!(
        !out.status.success(),
        "failures must give a non-zero exit status:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "imported {} of {} files",
            accepted.len(),
            set.files.len()
        )),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = stdout.split("\nfailed:\n").nth(1).unwrap_or_default();
    for name in &rejected {
        assert!(
            failed.lines().any(|l| l.contains(name) && l.contains(": ")),
            "{name} is not reported with a reason:\n{stdout}"
        );
    }

    // the imported images are served like uploads
    let server = Server::start_configured(data.path(), &[]);
    let listed = server.get("/images").ok_json().unwrap();
    let images = listed["images"].as_array().unwrap();
    assert_eq!(images.len(), accepted.len());
    for (name, expected) in accepted {
        let image = images
            .iter()
            .find(|i| i["original_filename"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} is not listed"));
        assert_eq!(
            shape5(&image["shape"], "shape").unwrap(),
            shape5(&expected["shape"], "expected shape").unwrap(),
            "{name}"
        );
        assert_eq!(image["dtype"], expected["dtype"], "{name}");
    }
}

#[test]
fn ingest_of_good_files_exits_zero_with_their_ids() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let good: Vec<_> = set
        .files
        .iter()
        .filter(|(_, e)| e["expect"] == "accept")
        .take(2)
        .map(|(n, _)| set.dir.join(n))
        .collect();
    let data = tempfile::tempdir().unwrap();
    let out = pentascope()
        .arg("ingest")
        .args(&good)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("→ image_1 ") && stdout.contains("→ image_2 "),
        "{stdout}"
    );
    assert!(stdout.contains("imported 2 of 2 files"), "{stdout}");
}

/// A file past a limit fails `ingest` with the message naming the flag and
/// the variable that raise it, as the HTTP API's 413 does.
#[test]
fn ingest_names_the_setting_of_a_limit_a_file_exceeds() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let data = tempfile::tempdir().unwrap();
    let out = pentascope()
        .arg("ingest")
        .arg(set.dir.join("rgb_contig_u8.tif"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--max-channels", "2"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("maximum of 2 (--max-channels / PENTASCOPE_MAX_CHANNELS)"),
        "{stdout}"
    );
}
