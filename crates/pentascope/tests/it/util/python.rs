//! The Python the reference computations run in: `PENTASCOPE_TEST_PYTHON`,
//! default the repository's `.venv` (which `.ci/run` makes).

use std::path::PathBuf;
use std::process::Command;

/// The Python, checked to import `modules` (comma-separated, as `import`
/// takes them); missing is a failure, since tests that need it are
/// ignored by a plain `cargo test`.
pub fn python_with(modules: &str) -> PathBuf {
    let python = std::env::var_os("PENTASCOPE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import {modules} (.ci/run makes that venv)",
        python.display()
    );
    python
}

/// Runs `code` with `args` in `python`, which must succeed; the JSON it
/// prints.
pub fn run_json(python: &std::path::Path, code: &str, args: &[String]) -> serde_json::Value {
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
