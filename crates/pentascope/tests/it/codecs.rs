//! The codecs beyond the classic ones (LZMA, CCITT, WebP, JPEG 2000,
//! JPEG XL, CMYK and old-style JPEG) over HTTP: files written by
//! tifffile + imagecodecs (CCITT by Pillow's libtiff) in
//! `codecs_reference.py`, uploaded, and their shape, sample type and
//! samples compared with tifffile's reading of them, computed by the same
//! script: equal, or within one unit where the codec decodes in floating
//! point (lossy JPEG XL, lossy 16-bit JPEG 2000). The same files with their
//! first strip or tile cut short are refused with 422.
//!
//! Needs a Python with tifffile, imagecodecs, numpy and Pillow
//! (`PENTASCOPE_TEST_PYTHON`, default the repository's `.venv`), so these
//! tests are ignored by a plain `cargo test`; `.ci/run` runs them with
//! `--ignored`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::Server;

const REFERENCE: &str = include_str!("codecs_reference.py");

/// Runs the reference script into `dir`; its manifest.
fn reference(dir: &Path) -> Vec<Value> {
    let python = crate::util::python::python_with("tifffile, imagecodecs, numpy, PIL");
    let out = Command::new(python)
        .arg("-c")
        .arg(REFERENCE)
        .arg(dir)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The largest difference between samples `got` and `want` (raw
/// little-endian bytes of `dtype`), or why they cannot be compared.
fn largest_difference(dtype: &str, got: &[u8], want: &[u8]) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!(
            "{} bytes served, tifffile {}",
            got.len(),
            want.len()
        ));
    }
    let pairs: Vec<(f64, f64)> = match dtype {
        "uint8" => got
            .iter()
            .zip(want)
            .map(|(a, b)| (*a as f64, *b as f64))
            .collect(),
        "uint16" => got
            .chunks_exact(2)
            .zip(want.chunks_exact(2))
            .map(|(a, b)| {
                let v = |x: &[u8]| f64::from(u16::from_le_bytes([x[0], x[1]]));
                (v(a), v(b))
            })
            .collect(),
        "float32" => got
            .chunks_exact(4)
            .zip(want.chunks_exact(4))
            .map(|(a, b)| {
                let v = |x: &[u8]| f64::from(f32::from_le_bytes([x[0], x[1], x[2], x[3]]));
                (v(a), v(b))
            })
            .collect(),
        other => return Err(format!("no comparison for {other}")),
    };
    Ok(pairs.iter().map(|(a, b)| (a - b).abs()).fold(0.0, f64::max))
}

/// Every file uploads, and its shape, type and samples are tifffile's
/// (within the manifest's tolerance); each codec and variant is covered.
#[test]
#[ignore = "needs a Python venv with tifffile, imagecodecs and Pillow; run with --ignored (.ci/run does)"]
fn every_codec_uploads_as_tifffile_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = reference(dir.path());
    let server = Server::start();
    let mut failures = Vec::new();
    let mut compressions = BTreeSet::new();
    for entry in &manifest {
        let path = PathBuf::from(entry["file"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let resp = server.upload(&name, std::fs::read(&path).unwrap(), None);
        let id = match crate::util::image_id_of(&resp) {
            Ok(id) => id,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let meta = server.metadata(&id);
        if meta["shape"] != entry["shape"] || meta["dtype"] != entry["dtype"] {
            failures.push(format!(
                "{name}: served {} {}, tifffile {} {}",
                meta["shape"], meta["dtype"], entry["shape"], entry["dtype"]
            ));
            continue;
        }
        let npy = server
            .get(&format!("/images/{id}/download?format=npy"))
            .npy()
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.logs()));
        let want = std::fs::read(entry["expected"].as_str().unwrap()).unwrap();
        let dtype = entry["dtype"].as_str().unwrap();
        let tolerance = entry["tolerance"].as_f64().unwrap();
        match largest_difference(dtype, &npy.data, &want) {
            Ok(d) if d <= tolerance => {
                compressions.insert(entry["compression"].as_u64().unwrap());
            }
            Ok(d) => failures.push(format!(
                "{name}: samples differ from tifffile's by up to {d} (allowed {tolerance})"
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let covered: Vec<u64> = compressions.into_iter().collect();
    assert_eq!(
        covered,
        [2, 3, 4, 6, 7, 33003, 33005, 34712, 34925, 34927, 50001, 50002, 52546],
        "compressions read as tifffile reads them"
    );
    let fill_order_2 = manifest.iter().filter(|e| e["fillorder"] == 2).count();
    let lossy = manifest.iter().filter(|e| e["tolerance"] != 0).count();
    assert!(fill_order_2 >= 2 && lossy >= 3, "{manifest:?}");
}

/// Writes a copy of each file of `manifest` whose first strip or tile
/// holds half its bytes; the copies' paths.
fn with_first_chunk_cut(dir: &Path, manifest: &[Value]) -> Vec<PathBuf> {
    const CUT: &str = r#"
import shutil, sys, tifffile
for path in sys.argv[1:]:
    cut = path + '.cut.tif'
    shutil.copy(path, cut)
    with tifffile.TiffFile(cut, mode='r+') as tif:
        tag = tif.pages.first.tags.get('StripByteCounts') or tif.pages.first.tags['TileByteCounts']
        counts = list(tag.value) if isinstance(tag.value, tuple) else [tag.value]
        counts[0] //= 2
        tag.overwrite(counts if len(counts) > 1 else counts[0])
    print(cut)
"#;
    let python = crate::util::python::python_with("tifffile");
    let out = Command::new(python)
        .arg("-c")
        .arg(CUT)
        .args(manifest.iter().map(|e| e["file"].as_str().unwrap()))
        .current_dir(dir)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Each codec's file with its first chunk cut in half is refused with 422
/// naming the strip or tile, and the server goes on serving.
#[test]
#[ignore = "needs a Python venv with tifffile, imagecodecs and Pillow; run with --ignored (.ci/run does)"]
fn a_cut_stream_of_every_codec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest: Vec<Value> = reference(dir.path())
        .into_iter()
        .filter(|e| e["compression"] != 7 && e["compression"] != 6)
        .collect();
    let server = Server::start();
    let mut failures = Vec::new();
    for path in with_first_chunk_cut(dir.path(), &manifest) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let resp = server.upload(&name, std::fs::read(&path).unwrap(), None);
        match resp.error(&[422]) {
            Ok(message) if message.contains("strip/tile 0") => {}
            Ok(message) => failures.push(format!("{name}: {message}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.assert_healthy();
}
