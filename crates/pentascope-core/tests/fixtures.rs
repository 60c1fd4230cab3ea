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

use pentascope_core::tiff::{Flavour, TiffFile};
use pentascope_core::{dispatch_dtype, CoreError, Limits, Sample};
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
fn canonical_bytes<T: Sample>(file: &TiffFile) -> Result<Vec<u8>, CoreError> {
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
        .flat_map(|p| pentascope_core::dtype::as_bytes(p).to_vec())
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

/// Writes JPEG-compressed TIFFs and an ImageJ file past-4-GB style with
/// tifffile + imagecodecs into the folder given first, then saves tifffile's
/// canonical array (TZCYX, raw little-endian) of each, and of every further
/// file named, with a `manifest.json` describing them.
const TIFFFILE_SCRIPT: &str = r#"
"""Writes JPEG-compressed TIFFs with tifffile + imagecodecs and, for those
and every file named after the output folder, tifffile's array in TZCYX
order (raw, C order, little-endian) and a manifest.json describing them."""
import io
import json
import os
import struct
import sys

import imagecodecs
import numpy
import tifffile
from PIL import Image

out = sys.argv[1]
rng = numpy.random.default_rng(1)


def picture(height, width, samples=None):
    """Gradients, edges and noise: every DCT coefficient gets some energy."""
    y, x = numpy.mgrid[0:height, 0:width].astype(numpy.float64)
    planes = []
    for k in range(samples or 1):
        p = 128 + 70 * numpy.sin(x / (5.0 + 2 * k)) * numpy.cos(y / (7.0 + k))
        p += numpy.where((x // 13 + y // 11 + k) % 2 == 0, 40, -40)
        p += rng.normal(0, 25, (height, width))
        planes.append(numpy.clip(p, 0, 255))
    a = numpy.stack(planes, axis=-1) if samples else planes[0]
    return a.astype(numpy.uint8)


def segments(jpeg):
    """(marker, whole segment bytes) up to and including SOS; then the rest."""
    i, out = 2, []
    while i < len(jpeg):
        assert jpeg[i] == 0xFF, i
        m = jpeg[i + 1]
        n = struct.unpack('>H', jpeg[i + 2:i + 4])[0]
        out.append((m, jpeg[i:i + 2 + n]))
        i += 2 + n
        if m == 0xDA:
            return out, jpeg[i:]
    raise ValueError('no SOS')


def renumber(m, seg):
    """Component identifiers 'R', 'G', 'B' (libjpeg's for RGB) as 0, 1, 2."""
    seg = bytearray(seg)
    ids = {0x52: 0, 0x47: 1, 0x42: 2}
    if m in (0xC0, 0xC1, 0xC2):
        for k in range(seg[9]):
            seg[10 + 3 * k] = ids.get(seg[10 + 3 * k], seg[10 + 3 * k])
    elif m == 0xDA:
        for k in range(seg[4]):
            seg[5 + 2 * k] = ids.get(seg[5 + 2 * k], seg[5 + 2 * k])
    return bytes(seg)


def abbreviate(jpeg, drop_app=False):
    """Tables-only stream (DQT, DHT) and the stream without them; with
    `drop_app`, also without APP markers (JFIF, Adobe) and with numbered
    components, as Aperio writes RGB."""
    segs, scan = segments(jpeg)
    if drop_app:
        segs = [(m, renumber(m, s)) for m, s in segs]
    tables = b''.join(s for m, s in segs if m in (0xDB, 0xC4))
    rest = b''.join(
        s for m, s in segs
        if m not in (0xDB, 0xC4) and not (drop_app and 0xE0 <= m <= 0xEF)
    )
    return b'\xff\xd8' + tables + b'\xff\xd9', b'\xff\xd8' + rest + scan


def chunks(image, tile=None, rows=None):
    """Tiles (edge tiles padded by repeating the edge) or strips."""
    h, w = image.shape[:2]
    if tile:
        th, tw = tile
        for y in range(0, h, th):
            for x in range(0, w, tw):
                t = image[y:y + th, x:x + tw]
                pad = [(0, th - t.shape[0]), (0, tw - t.shape[1])]
                pad += [(0, 0)] * (image.ndim - 2)
                yield numpy.pad(t, pad, mode='edge')
    else:
        for y in range(0, h, rows):
            yield image[y:y + rows]


def with_tables(name, image, encode, photometric, tile=None, rows=None,
                subsampling=None, drop_app=False):
    """Writes `image` as abbreviated JPEG chunks sharing JPEGTables."""
    tables, data = None, []
    for c in chunks(image, tile, rows):
        t, d = abbreviate(encode(c), drop_app)
        assert tables in (None, t), 'chunks with different tables'
        tables = t
        data.append(d)
    kwargs = dict(tile=tile) if tile else dict(rowsperstrip=rows)
    if subsampling:
        kwargs['subsampling'] = subsampling
    if photometric == 'rgb':
        kwargs['compressionargs'] = {'outcolorspace': 2}
    tifffile.imwrite(
        os.path.join(out, name), iter(data), shape=image.shape,
        dtype=numpy.uint8, compression='jpeg', photometric=photometric,
        jpegtables=tables, **kwargs,
    )


gray = picture(75, 97)
rgb = picture(90, 100, 3)
files = []


def write(name, data, **kwargs):
    tifffile.imwrite(os.path.join(out, name), data, **kwargs)
    files.append(os.path.join(out, name))


# whole JPEG streams in every chunk, as tifffile writes them
write('jpeg_gray_strips.tif', gray, compression='jpeg', rowsperstrip=16,
      photometric='minisblack')
write('jpeg_gray_tiles_3pages.tif', numpy.stack([gray, gray[::-1], 255 - gray]),
      compression='jpeg', tile=(32, 48), photometric='minisblack')
write('jpeg_ycbcr420_tiles.tif', rgb, compression='jpeg', tile=(32, 32),
      photometric='rgb')
write('jpeg_ycbcr422_strips.tif', rgb, compression='jpeg', rowsperstrip=16,
      photometric='ycbcr', subsampling=(2, 1))
write('jpeg_ycbcr444_strips.tif', rgb, compression='jpeg', rowsperstrip=24,
      photometric='ycbcr', subsampling=(1, 1))
write('jpeg_rgb_adobe_tiles.tif', rgb, compression='jpeg', tile=(32, 32),
      photometric='rgb', compressionargs={'outcolorspace': 2})
write('jpeg_rgb_planar.tif', numpy.moveaxis(rgb, -1, 0), compression='jpeg',
      rowsperstrip=32, photometric='rgb', planarconfig='separate')

# abbreviated chunks with JPEGTables, as libtiff writes them
def enc_gray(c):
    return imagecodecs.jpeg8_encode(c, level=85)

def enc_ycbcr(sub):
    return lambda c: imagecodecs.jpeg8_encode(
        c, level=85, colorspace='RGB', outcolorspace='YCBCR', subsampling=sub)

def enc_rgb(c):
    # RGB stored without colour conversion, as Aperio does
    return imagecodecs.jpeg8_encode(c, level=85, colorspace='RGB',
                                    outcolorspace='RGB')

for name, image, encode, photometric, layout in [
    ('tables_gray_strips.tif', gray, enc_gray, 'minisblack', dict(rows=16)),
    ('tables_gray_tiles.tif', gray, enc_gray, 'minisblack', dict(tile=(32, 32))),
    ('tables_ycbcr420_tiles.tif', rgb, enc_ycbcr('420'), 'ycbcr',
     dict(tile=(32, 32), subsampling=(2, 2))),
    ('tables_ycbcr422_strips.tif', rgb, enc_ycbcr('422'), 'ycbcr',
     dict(rows=16, subsampling=(2, 1))),
    ('tables_rgb_no_marker_tiles.tif', rgb, enc_rgb, 'rgb',
     dict(tile=(48, 32), drop_app=True)),
    ('tables_rgb_adobe_strips.tif', rgb, enc_rgb, 'rgb', dict(rows=32)),
]:
    with_tables(name, image, encode, photometric, **layout)
    files.append(os.path.join(out, name))

# whole streams from another encoder (Pillow's libjpeg): progressive scans
# (a DHT before each), restart markers, 4:2:0 and 4:4:4, JFIF (YCbCr) RGB
def enc_pillow(**options):
    def encode(c):
        b = io.BytesIO()
        Image.fromarray(c).save(b, 'JPEG', quality=85, **options)
        return b.getvalue()
    return encode

for name, image, encode, photometric, layout in [
    ('pillow_progressive_tiles.tif', rgb, enc_pillow(progressive=True, subsampling=2),
     'rgb', dict(tile=(32, 48))),
    ('pillow_restarts_strips.tif', rgb, enc_pillow(subsampling=0, restart_marker_rows=1),
     'rgb', dict(rowsperstrip=32)),
    ('pillow_progressive_gray_strips.tif', gray, enc_pillow(progressive=True),
     'minisblack', dict(rowsperstrip=16)),
]:
    tifffile.imwrite(
        os.path.join(out, name), iter([encode(c) for c in chunks(
            image, layout.get('tile'), layout.get('rowsperstrip'))]),
        shape=image.shape, dtype=numpy.uint8, compression='jpeg',
        photometric=photometric, **layout)
    files.append(os.path.join(out, name))

# an ImageJ hyperstack as ImageJ stores files past 4 GB: one IFD
hyper = rng.integers(0, 4096, (2, 3, 2, 20, 30), dtype=numpy.uint16)
write('imagej_truncated.tif', hyper, imagej=True, truncate=True,
      metadata={'axes': 'TZCYX'})

LETTERS = 'TZC'


def canonical(series):
    """The series as pentascope presents it: TZCYX, samples as channels,
    unlabelled page axes lettered from the free ones among T, Z, C."""
    data = series.asarray()
    axes = series.axes
    if 'S' in axes:
        assert 'C' not in axes, axes
        axes = axes.replace('S', 'C')
    unlabelled = [a for a in axes if a in 'IQ']
    free = [a for a in LETTERS if a not in axes]
    if len(unlabelled) == 1 and 'Z' in free:
        free = ['Z']
    for a, b in zip(unlabelled, free):
        axes = axes.replace(a, b, 1)
    for a in 'TZCYX':
        if a not in axes:
            data = data[numpy.newaxis]
            axes = a + axes
    data = numpy.transpose(data, [axes.index(a) for a in 'TZCYX'])
    return numpy.ascontiguousarray(data.astype(data.dtype.newbyteorder('<')))


manifest = []
for path in files + sys.argv[2:]:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = tif.pages.first
        data = canonical(series)
        raw = os.path.join(out, os.path.basename(path) + '.tifffile.raw')
        data.tofile(raw)
        manifest.append(dict(
            file=path, expected=raw, shape=list(data.shape),
            dtype=str(data.dtype), pages=len(tif.pages),
            kind=series.kind, is_imagej=tif.is_imagej,
            compression=int(page.compression), photometric=int(page.photometric),
            jpegtables=page.jpegtables is not None, is_jfif=page.is_jfif,
            axes=series.axes,
        ))
with open(os.path.join(out, 'manifest.json'), 'w') as f:
    json.dump(manifest, f, indent=1)
for m in manifest:
    print(os.path.basename(m['file']), m['axes'], m['shape'], m['kind'],
          m['pages'], m['compression'], m['photometric'], m['jpegtables'],
          m['is_jfif'])
"#;

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
fn jpeg_and_contiguous_imagej_files_match_tifffile() {
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
    assert!(manifest.len() >= 15, "{} files", manifest.len());
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
        Err(CoreError::Unsupported(m)) => assert!(m.contains("12-bit JPEG"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(f) => panic!("accepted as {:?}", f.series()),
    }
}
