//! The fixture corpus of `../shared/fixtures`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The fixture corpus directory (`$PENTASCOPE_FIXTURES`, default
/// `../shared/fixtures` beside the repository). The tests need it: a
/// missing corpus fails them.
pub fn fixtures_dir() -> PathBuf {
    let dir = match std::env::var_os("PENTASCOPE_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures"
        )),
    };
    assert!(
        dir.join("tiff").join("expected.json").is_file(),
        "fixture corpus not found at {} (set PENTASCOPE_FIXTURES)",
        dir.display()
    );
    dir
}

/// One fixture set (`tiff` or `real`): its directory and `expected.json`.
pub struct FixtureSet {
    /// The set's directory.
    pub dir: PathBuf,
    /// `files` from `expected.json`, sorted by name.
    pub files: Vec<(String, Value)>,
}

impl FixtureSet {
    /// Loads `<fixtures>/<name>/expected.json`.
    pub fn load(fixtures: &Path, name: &str) -> FixtureSet {
        let dir = fixtures.join(name);
        let path = dir.join("expected.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        let files = json["files"]
            .as_object()
            .unwrap_or_else(|| panic!("{} has no `files` object", path.display()));
        let mut files: Vec<(String, Value)> =
            files.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!files.is_empty(), "{} lists no files", path.display());
        FixtureSet { dir, files }
    }

    /// The expected entry of one file.
    pub fn expected(&self, name: &str) -> &Value {
        &self
            .files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("fixture {name} is not in expected.json"))
            .1
    }

    /// The bytes of one file.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.dir.join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }
}
