//! Decodes every fixture TIFF with the core reader (no server) and compares
//! the canonical array's sha256 with what tifffile wrote in expected.json.
//!
//! JPEG-compressed files are decoded with libjpeg-turbo, as tifffile
//! decodes them, so they are exact too: the corpus's SVS by its hash here,
//! and JPEG TIFFs of every flavour that tifffile and imagecodecs write
//! (with ImageJ files stored as ImageJ stores them past 4 GB) sample for
//! sample against tifffile's own array, by a test that needs a Python with
//! tifffile, imagecodecs and numpy: ignored by a plain `cargo test`, run by
//! `.ci/run` with `--ignored`.

// the builder is shared with the hostile-input tests and the fuzz targets,
// which use the rest of the module
#[allow(dead_code)]
mod util;

use std::path::{Path, PathBuf};

use pentascope_tiff::{dispatch_dtype, Limits, Sample, TiffError};
use pentascope_tiff::{Flavour, TiffFile};
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
        h.update(pentascope_tiff::dtype::as_bytes(p));
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
                // a file either refused or read exactly
                ("accept-or-reject", Err(err)) if err == "sha256 differs" => {
                    failures.push(format!("{set}/{name}: {err}"))
                }
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

/// The whole canonical array (TZCYX, C order, little-endian samples).
fn canonical_bytes<T: Sample>(file: &TiffFile) -> Result<Vec<u8>, TiffError> {
    let series = file.series();
    let shape = series.shape;
    let plane = (shape.y * shape.x) as usize;
    let mut planes: Vec<Vec<T>> = vec![Vec::new(); shape.planes() as usize];
    for g in series.page_groups() {
        let mut bufs: Vec<Vec<T>> = vec![Vec::new(); g.planes.len()];
        match g.page {
            Some(p) => file.read_band(p, 0..shape.y as u32, &mut bufs)?,
            None => bufs.iter_mut().for_each(|b| *b = vec![T::default(); plane]),
        }
        for (pi, buf) in g.planes.iter().zip(bufs) {
            planes[shape.plane_linear(*pi) as usize] = buf;
        }
    }
    Ok(planes
        .iter()
        .flat_map(|p| pentascope_tiff::dtype::as_bytes(p).to_vec())
        .collect())
}

/// The Python for the tifffile cross-checks (tifffile, imagecodecs,
/// numpy): `PENTASCOPE_TEST_PYTHON`, default the repository's `.venv`
/// (which `.ci/run` makes). Missing is a failure: the test is ignored by a
/// plain `cargo test` instead.
fn tifffile_python() -> std::path::PathBuf {
    let python = std::env::var_os("PENTASCOPE_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = std::process::Command::new(&python)
        .args(["-c", "import numpy, tifffile, imagecodecs"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import numpy, tifffile and imagecodecs (.ci/run makes that venv)",
        python.display()
    );
    python
}

/// Writes the flavours and codecs the corpus lacks (JPEG in every layout,
/// ImageJ past 4 GB, SCIFIO, `QQQYX`, no PhotometricInterpretation, packed
/// bits) with tifffile, imagecodecs and Pillow into the folder given first,
/// then saves tifffile's canonical array (TZCYX, raw little-endian) of
/// each, and of every further file named, with a `manifest.json`
/// describing them. The HTTP test uploads the same files.
const TIFFFILE_SCRIPT: &str = include_str!("tifffile_reference.py");

/// How far two arrays of 8-bit samples differ: the largest difference
/// and how many samples differ at all.
fn difference(ours: &[u8], theirs: &[u8]) -> (u8, usize) {
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .fold((0, 0), |(max, n), d| (max.max(d), n + usize::from(d > 0)))
}

#[test]
#[ignore = "needs a Python venv with tifffile and imagecodecs; run with --ignored (.ci/run does)"]
fn generated_flavours_and_codecs_match_tifffile() {
    let python = tifffile_python();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tifffile_crosscheck");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // an ImageJ hyperstack past-4-GB style, built byte by byte
    let (width, height, counts) = (7u32, 5u32, (2u64, 3u64, 2u64));
    let planes: Vec<Vec<u16>> = (0..12u16)
        .map(|k| (0..35u16).map(|i| k * 1000 + i * 7).collect())
        .collect();
    let built = dir.join("imagej_contiguous_built.tif");
    std::fs::write(
        &built,
        util::imagej_contiguous((width, height), counts, &planes, None).build(),
    )
    .unwrap();
    let svs = fixtures_dir().join("real/svs_CMU-1-Small-Region_tiled_jpeg.svs");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(TIFFFILE_SCRIPT)
        .arg(&dir)
        .arg(&svs)
        .arg(&built)
        .output()
        .unwrap_or_else(|e| panic!("cannot run PENTASCOPE_TEST_PYTHON={python:?}: {e}"));
    assert!(
        out.status.success(),
        "the tifffile script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.len() >= 29, "{} files", manifest.len());
    let mut failures = Vec::new();
    let (mut jpeg_files, mut contiguous_files) = (0, 0);
    for entry in &manifest {
        let path = PathBuf::from(entry["file"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let theirs = std::fs::read(entry["expected"].as_str().unwrap()).unwrap();
        let file = match TiffFile::open(&path, &Limits::default(), None) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{name}: refused: {e}"));
                continue;
            }
        };
        let series = file.series();
        if entry["kind"] == "svs" && series.flavour != Flavour::Svs {
            failures.push(format!(
                "{name}: read as {:?}, not Aperio SVS",
                series.flavour
            ));
        }
        let shape: Vec<u64> = series.shape.to_array().to_vec();
        let want: Vec<u64> = entry["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        if shape != want || series.dtype.name() != entry["dtype"].as_str().unwrap() {
            failures.push(format!(
                "{name}: {shape:?} {} where tifffile has {want:?} {}",
                series.dtype, entry["dtype"]
            ));
            continue;
        }
        let ours = match dispatch_dtype!(series.dtype, T => canonical_bytes::<T>(&file)) {
            Ok(bytes) => bytes,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        assert_eq!(ours.len(), theirs.len(), "{name}");
        jpeg_files += usize::from(entry["compression"] == 7);
        let (max, n) = difference(&ours, &theirs);
        eprintln!(
            "{name}: {} bytes, {n} differ from tifffile's (by at most {max})",
            ours.len()
        );
        if ours != theirs {
            failures.push(format!(
                "{name}: {n} of {} bytes differ from tifffile's, by up to {max}",
                ours.len()
            ));
        }
        if name.starts_with("imagej") {
            contiguous_files += 1;
            // tifffile reads the planes from the one page, as ImageJ's
            // virtual (past 4 GB) hyperstack, and so does pentascope
            assert_eq!(
                (entry["pages"].as_u64(), entry["kind"].as_str()),
                (Some(1), Some("imagej")),
                "{name}: {entry}"
            );
            assert_eq!(series.flavour, Flavour::ImageJ, "{name}");
            assert!(series.contiguous().is_some(), "{name}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} files differ from tifffile:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        jpeg_files >= 17 && contiguous_files == 2,
        "{jpeg_files} {contiguous_files}"
    );
}

#[test]
fn twelve_bit_jpeg_fixture_is_refused_as_unsupported() {
    let path = fixtures_dir().join("real/ome_pyramid_jpeg_multiseries_u16.ome.tiff");
    match TiffFile::open(&path, &Limits::default(), None) {
        Err(TiffError::Unsupported(m)) => assert!(m.contains("12-bit JPEG"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(f) => panic!("accepted as {:?}", f.series()),
    }
}

/// Prints, for each file named, tifffile's series: for each, the rows and
/// columns of its own levels (`levels[1:]`).
const SERIES_LEVELS: &str = r#"
import json, sys, tifffile
out = {}
for path in sys.argv[1:]:
    try:
        with tifffile.TiffFile(path) as f:
            out[path] = [[[l.keyframe.imagelength, l.keyframe.imagewidth] for l in s.levels[1:]]
                         for s in f.series]
    except Exception as e:
        out[path] = str(e)
print(json.dumps(out))
"#;

/// Every fixture the reader accepts has tifffile's series, each with
/// tifffile's levels (an SVS's pyramid pages, OME-TIFF pyramids in
/// SubIFDs): as many series, and levels of the same sizes.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn every_fixtures_series_have_tifffiles_levels() {
    let python = tifffile_python();
    let root = fixtures_dir();
    let mut paths = Vec::new();
    for set in ["tiff", "real"] {
        for entry in std::fs::read_dir(root.join(set)).unwrap() {
            let path = entry.unwrap().path();
            if pentascope_tiff::is_tiff_name(&path) {
                paths.push(path);
            }
        }
    }
    paths.sort();
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(SERIES_LEVELS)
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (mut failures, mut pyramids) = (Vec::new(), 0);
    for path in &paths {
        let Ok(file) = TiffFile::open(path, &Limits::default(), None) else {
            continue;
        };
        let ours: Vec<Vec<[u64; 2]>> = file
            .all_series()
            .iter()
            .map(|s| s.levels.iter().map(|l| [l.height, l.width]).collect())
            .collect();
        let theirs = &want[path.display().to_string()];
        let theirs: Option<Vec<Vec<[u64; 2]>>> = serde_json::from_value(theirs.clone()).ok();
        pyramids += usize::from(ours.first().is_some_and(|levels| !levels.is_empty()));
        if theirs.as_ref() != Some(&ours) {
            failures.push(format!(
                "{}: {ours:?} != tifffile's {theirs:?}",
                path.display()
            ));
        }
    }
    assert!(pyramids >= 3, "only {pyramids} fixtures with levels");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
