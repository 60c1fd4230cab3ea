//! An upload stored while it arrives equals the same file stored from disk:
//! for every file of the fixture corpus (valid and hostile), the fuzzers'
//! seeds and regressions, and files cut short, each cut into pieces of
//! several sizes, both ways give the same series, statistics and stored
//! samples, or both refuse.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use pentascope_core::{Axes, Limits, PlaneIndex};
use pentascope_passes::cancel::Cancel;
use pentascope_passes::ingest::{ingest_tiff, Ingested, TiffSource};
use pentascope_passes::stream::{ingest_stream, Target, UploadBody};
use pentascope_passes::PassError;
use pentascope_store::pixels::{CompressionSetting, Durability, LocalStore, PixelStore};
use pentascope_store::ImageId;

/// A file handed over in pieces of `piece` bytes.
struct Pieces {
    bytes: Bytes,
    at: usize,
    piece: usize,
}

impl UploadBody for Pieces {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, PassError> {
        if self.at >= self.bytes.len() {
            return Ok(None);
        }
        let end = (self.at + self.piece).min(self.bytes.len());
        let chunk = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(Some(chunk))
    }

    fn axes(&self) -> Option<Axes> {
        None
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_none_or(|e| e != "json" && e != "md") {
            out.push(path);
        }
    }
}

fn inputs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixtures = std::env::var_os("PENTASCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/fixtures"));
    assert!(
        fixtures.is_dir(),
        "fixtures not found at {}",
        fixtures.display()
    );
    let mut files = Vec::new();
    files_under(&fixtures, &mut files);
    files_under(&root.join("fuzz/seeds/reader"), &mut files);
    files_under(&root.join("fuzz/regressions/reader"), &mut files);
    files.sort();
    assert!(files.len() > 30, "{} files", files.len());
    files
}

/// The series, statistics and every stored sample of an ingest, or its
/// error.
fn outcome(store: &LocalStore, id: ImageId, staged: Result<Ingested, PassError>) -> String {
    let ingested = match staged {
        Ok(i) => i,
        Err(e) => return format!("error: {e}"),
    };
    let series = &ingested.series;
    let summary = format!(
        "{:?} {} {:?} {:?} {:?} {:?}",
        series.shape.to_array(),
        series.dtype,
        series.flavour,
        series.channel_names,
        series.physical_sizes,
        rounded(serde_json::to_value(&ingested.statistics).unwrap())
    );
    ingested.writer.commit().unwrap();
    let reader = store.open(id).unwrap();
    let shape = series.shape;
    let row = (shape.x as usize) * series.dtype.size();
    let mut samples = Vec::new();
    let mut plane = vec![0u8; row * shape.y as usize];
    for t in 0..shape.t {
        for z in 0..shape.z {
            for c in 0..shape.c {
                reader
                    .read_rows(PlaneIndex::new(t, z, c), 0..shape.y, &mut plane)
                    .unwrap();
                samples.extend_from_slice(&plane);
            }
        }
    }
    store.delete(id).unwrap();
    format!("{summary} {} samples {:x}", samples.len(), hash(&samples))
}

/// `value` with its fractional numbers to 12 significant digits: channels
/// are summed in whichever order their planes finish, from disk as from an
/// upload, so means and deviations may differ in their last bits.
fn rounded(value: serde_json::Value) -> String {
    use serde_json::Value;
    fn walk(v: Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => {
                Value::String(format!("{:.11e}", n.as_f64().unwrap()))
            }
            Value::Array(a) => Value::Array(a.into_iter().map(walk).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, walk(v))).collect()),
            other => other,
        }
    }
    walk(value).to_string()
}

/// FNV-1a: enough to tell two sample arrays apart in a message.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn streamed_uploads_equal_files_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(&dir.path().join("store"), Durability::Os).unwrap();
    let limits = Limits::default();
    let cancel = Cancel::new();
    let mut id = 0i64;
    let mut compared = 0;
    // comparisons where pages were stored as they arrived
    let mut streamed_files = 0;
    for path in inputs() {
        let whole = std::fs::read(&path).unwrap();
        // the file as it is, and cut short within its first pages
        let mut versions = vec![("whole", whole.clone())];
        if whole.len() > 64 {
            versions.push(("cut", whole[..whole.len() * 2 / 3].to_vec()));
        }
        for (version, bytes) in versions {
            let file = dir.path().join("file.tif");
            std::fs::write(&file, &bytes).unwrap();
            id += 1;
            let source = TiffSource {
                path: &file,
                name: "file.tif",
                axes: None,
                compression: CompressionSetting::default(),
            };
            let from_disk = ingest_tiff(&store, ImageId(id), &source, &limits, &|_, _| {}, &cancel);
            let want = outcome(&store, ImageId(id), from_disk);
            let bytes = Bytes::from(bytes);
            let pieces: &[usize] = if bytes.len() < (2 << 20) {
                &[1 << 16, 4093, 61]
            } else {
                &[1 << 16, 4093]
            };
            for &piece in pieces {
                let spool = dir.path().join("spool");
                std::fs::write(&spool, b"").unwrap();
                id += 1;
                let mut body = Pieces {
                    bytes: bytes.clone(),
                    at: 0,
                    piece,
                };
                let target = Target {
                    store: &store,
                    id: ImageId(id),
                    name: "file.tif",
                    compression: CompressionSetting::default(),
                    limits: &limits,
                    progress: &|_, _| {},
                    cancel: &cancel,
                };
                let streamed =
                    ingest_stream(&target, &mut body, &spool, bytes.len() as u64).map(|s| {
                        if s.streamed_pages > 0 {
                            streamed_files += 1;
                        }
                        s.ingested
                    });
                let got = outcome(&store, ImageId(id), streamed);
                // an empty upload is refused by the ingest itself
                if bytes.is_empty() {
                    assert!(got.contains("is empty"), "{}: {got}", path.display());
                    continue;
                }
                assert_eq!(
                    got,
                    want,
                    "{} ({version}) in pieces of {piece} bytes",
                    path.display()
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "{compared} comparisons");
    eprintln!("{compared} comparisons, {streamed_files} with pages stored as they arrived");
    assert!(
        streamed_files >= 20,
        "{streamed_files} of {compared} streamed"
    );
}
