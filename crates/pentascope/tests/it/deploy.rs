//! The deployable units in `deploy/`: the systemd unit passes
//! `systemd-analyze verify` without a warning and keeps its hardening; the
//! Containerfile runs the service as its own user with the data on a
//! volume and a health check.

use std::path::PathBuf;
use std::process::Command;

fn deploy_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `key=` in a unit, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
#[ignore = "needs systemd-analyze (Debian's systemd package; .ci/run installs it)"]
fn the_systemd_unit_verifies_cleanly_and_is_hardened() {
    let unit = deploy_file("pentascope.service");
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ReadWritePaths", "/var/lib/pentascope"),
        ("StateDirectory", "pentascope"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(values(&unit, key), [value], "{key}=");
    }
    // the one writable path is the data directory the service uses
    let environment = values(&unit, "Environment").join(" ");
    assert!(
        environment.contains("PENTASCOPE_DATA_DIR=/var/lib/pentascope"),
        "{environment}"
    );
    assert_eq!(
        values(&unit, "ExecStart"),
        ["/usr/local/bin/pentascope serve"]
    );
    // verified with the binary under test where the unit expects it
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pentascope.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/pentascope",
            env!("CARGO_BIN_EXE_pentascope"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (apt-get install systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on unknown keys and bad values: its words count
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    // and it does catch a misspelt key
    std::fs::write(&path, unit.replace("ProtectSystem=", "ProtectSytem=")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ProtectSytem"),
        "{out:?}"
    );
}

#[test]
fn the_containerfile_runs_as_its_own_user_with_a_volume_and_a_health_check() {
    let file = deploy_file("Containerfile");
    let instructions: Vec<&str> = file
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && !l.trim().is_empty())
        .collect();
    let first = |word: &str| {
        instructions
            .iter()
            .find(|l| l.split_whitespace().next() == Some(word))
            .unwrap_or_else(|| panic!("no {word} in {file}"))
            .to_string()
    };
    assert_eq!(first("USER"), "USER pentascope");
    assert_eq!(first("VOLUME"), "VOLUME /data");
    assert!(first("HEALTHCHECK").contains("--interval"));
    assert!(file.contains("GET /health"));
    assert!(file.contains("PENTASCOPE_DATA_DIR=/data"));
    assert_eq!(
        first("ENTRYPOINT"),
        r#"ENTRYPOINT ["/usr/local/bin/pentascope"]"#
    );
    // the user comes before it is switched to
    let position = |text: &str| file.find(text).unwrap();
    assert!(position("useradd") < position("USER pentascope"));
}
