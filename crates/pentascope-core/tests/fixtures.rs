//! Decodes every fixture TIFF with the core reader (no server) and compares
//! the canonical array's sha256 with what tifffile wrote in expected.json.

use std::path::PathBuf;

use pentascope_core::tiff::TiffFile;
use pentascope_core::{dispatch_dtype, Limits, Sample};
use sha2::{Digest, Sha256};

/// The fixture corpus (`$PENTASCOPE_FIXTURES`, default `../shared/fixtures`
/// beside the repository); the test fails without it.
fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("PENTASCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    assert!(dir.is_dir(), "fixtures not found at {}", dir.display());
    dir
}

fn hash_series<T: Sample>(file: &TiffFile) -> Result<String, String> {
    let series = file.series();
    let groups = series.page_groups();
    let shape = series.shape;
    let plane = (shape.y * shape.x) as usize;
    // planes keyed by linear TZC index, filled page group by page group
    let mut planes: Vec<Vec<T>> = vec![Vec::new(); shape.planes() as usize];
    for g in &groups {
        let mut bufs: Vec<Vec<T>> = vec![Vec::new(); g.planes.len()];
        match g.page {
            Some(p) => file
                .read_band(p, 0..shape.y as u32, &mut bufs)
                .map_err(|e| e.to_string())?,
            None => bufs.iter_mut().for_each(|b| *b = vec![T::default(); plane]),
        }
        for (pi, buf) in g.planes.iter().zip(bufs) {
            planes[shape.plane_linear(*pi) as usize] = buf;
        }
    }
    let mut h = Sha256::new();
    // x86 and aarch64 are little-endian, as the expected hashes are
    for p in &planes {
        h.update(pentascope_core::dtype::as_bytes(p));
    }
    Ok(format!("{:x}", h.finalize()))
}

#[test]
fn every_fixture_decodes_to_tifffile_hash() {
    let root = fixtures_dir();
    let mut failures = Vec::new();
    let mut checked = 0;
    for set in ["tiff", "real"] {
        let dir = root.join(set);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        for (name, e) in expected["files"].as_object().unwrap() {
            let expect = e["expect"].as_str().unwrap();
            let result = TiffFile::open(&dir.join(name), &Limits::default(), None)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    let s = f.series();
                    let shape: Vec<u64> = s.shape.to_array().to_vec();
                    let want: Vec<u64> = e["shape"]
                        .as_array()
                        .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect())
                        .unwrap_or_default();
                    if shape != want {
                        return Err(format!("shape {shape:?} != {want:?} ({:?})", s.source_axes));
                    }
                    if s.dtype.name() != e["dtype"].as_str().unwrap_or("") {
                        return Err(format!("dtype {} != {}", s.dtype, e["dtype"]));
                    }
                    let hash = dispatch_dtype!(s.dtype, T => hash_series::<T>(&f))?;
                    if hash != e["sha256_tzcyx"].as_str().unwrap() {
                        return Err("sha256 differs".into());
                    }
                    Ok(())
                });
            checked += 1;
            match (expect, result) {
                ("accept", Err(err)) => failures.push(format!("{set}/{name}: {err}")),
                ("reject", Ok(())) => failures.push(format!("{set}/{name}: accepted")),
                ("accept-or-reject", Err(err)) => eprintln!("{set}/{name}: rejected: {err}"),
                (_, Err(err)) => eprintln!("{set}/{name}: rejected as expected: {err}"),
                _ => {}
            }
        }
    }
    assert!(checked > 50, "only {checked} fixtures found");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
