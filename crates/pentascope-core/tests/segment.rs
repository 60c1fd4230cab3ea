//! Segmentation (`pentascope_core::segment`) against scikit-image and
//! scikit-learn, computed by this test: it writes generated images (2D and
//! 3D; uint8, uint16, int16, int32, float32, float64; random blobs, a
//! constant image, 90,000 isolated pixels, more than 2^24 samples) to a
//! temporary directory, runs `segment_check.py` with the Python named by
//! `PENTASCOPE_TEST_PYTHON` (numpy, scipy, scikit-image, scikit-learn), and
//! compares, using the streaming API plane by plane as the service does:
//!
//! - Otsu's threshold: equal to the bit to `threshold_otsu(data)`, and the
//!   foreground (`data > threshold`) the same size;
//! - labels: equal, pixel for pixel, to `skimage.measure.label(foreground)`;
//! - region properties: area and bounding box equal, centroid within 1e-9
//!   (relative), minimum and maximum intensity equal, mean intensity within
//!   1e-9 of a float64 mean (and of `regionprops`' own for integer data;
//!   it averages float32 data in float32, so within 1e-6 there);
//! - k-means: inertia at most scikit-learn's `KMeans(k, random_state=42)`
//!   inertia × (1 + 1e-9), and equal (1e-9) to the inertia recomputed here
//!   from the model's own assignment.
//!
//! The comparison is ignored by a plain `cargo test`; `.ci/run` runs it
//! with `--ignored` and its venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use pentascope_core::segment::kmeans::{
    KMeansHistogram, KMeansModel, LloydPass, DEFAULT_KMEANS_BINS, DEFAULT_MAX_PASSES,
};
use pentascope_core::segment::label::{Labeler, DEFAULT_MAX_PROVISIONAL_LABELS};
use pentascope_core::segment::otsu::{OtsuHistogram, DEFAULT_MAX_INTEGER_BINS};
use pentascope_core::segment::{RangeAccumulator, SampleRange};
use pentascope_core::{CoreError, DType, Sample};
use serde_json::Value;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal (Irwin–Hall with 4 terms), mean 0, sd 1.
    fn normal(&mut self) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * 3f64.sqrt()
    }
}

/// Conversion of a generated value into a sample type (saturating).
trait FromF64: Sample {
    fn from_f64(v: f64) -> Self;
}

macro_rules! from_f64 {
    ($($t:ty),*) => {$(
        impl FromF64 for $t {
            fn from_f64(v: f64) -> Self {
                v.round() as $t
            }
        }
    )*};
}
from_f64!(u8, u16, i16, i32);

impl FromF64 for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl FromF64 for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Samples of one case.
enum Data {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the typed samples of `$data`.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::U8($v) => $body,
            Data::U16($v) => $body,
            Data::I16($v) => $body,
            Data::I32($v) => $body,
            Data::F32($v) => $body,
            Data::F64($v) => $body,
        }
    };
}

struct Case {
    name: &'static str,
    /// `[planes, height, width]`; a 2D case has `planes == 1` and is written
    /// with two axes.
    shape: [usize; 3],
    two_d: bool,
    data: Data,
    label: bool,
    clusters: Vec<usize>,
}

impl Case {
    fn dtype(&self) -> DType {
        with_data!(&self.data, v => element_dtype(v))
    }
}

fn element_dtype<T: Sample>(_: &[T]) -> DType {
    T::DTYPE
}

/// Spheres (discs in 2D) of random centre and radius.
struct Blobs(Vec<[f64; 4]>);

impl Blobs {
    fn new(rng: &mut Rng, n: usize, shape: [usize; 3], radius: (f64, f64)) -> Blobs {
        Blobs(
            (0..n)
                .map(|_| {
                    [
                        rng.unit() * shape[0] as f64,
                        rng.unit() * shape[1] as f64,
                        rng.unit() * shape[2] as f64,
                        radius.0 + rng.unit() * (radius.1 - radius.0),
                    ]
                })
                .collect(),
        )
    }

    fn inside(&self, z: usize, y: usize, x: usize, two_d: bool) -> bool {
        self.0.iter().any(|b| {
            let dz = if two_d { 0.0 } else { z as f64 - b[0] };
            let (dy, dx) = (y as f64 - b[1], x as f64 - b[2]);
            dz * dz + dy * dy + dx * dx <= b[3] * b[3]
        })
    }
}

/// An image of blobs at `fg` on a background at `bg`, both with normal
/// noise of `sd`.
fn blobs<T: FromF64>(
    seed: u64,
    shape: [usize; 3],
    two_d: bool,
    n: usize,
    (bg, fg, sd): (f64, f64, f64),
    clamp: (f64, f64),
) -> Vec<T> {
    let mut rng = Rng(seed);
    let b = Blobs::new(&mut rng, n, shape, (2.0, 9.0));
    let mut out = Vec::with_capacity(shape.iter().product());
    for z in 0..shape[0] {
        for y in 0..shape[1] {
            for x in 0..shape[2] {
                let level = if b.inside(z, y, x, two_d) { fg } else { bg };
                let v = (level + sd * rng.normal()).clamp(clamp.0, clamp.1);
                out.push(T::from_f64(v));
            }
        }
    }
    out
}

fn cases() -> Vec<Case> {
    let case = |name, shape: [usize; 3], data, label, clusters: &[usize]| Case {
        name,
        shape,
        two_d: shape[0] == 1,
        data,
        label,
        clusters: clusters.to_vec(),
    };
    let s2 = |h, w| [1, h, w];
    let mut rng = Rng(2024);
    let lognormal_f64: Vec<f64> = (0..128 * 128).map(|_| (1.5 * rng.normal()).exp()).collect();
    let lognormal_f32: Vec<f32> = (0..200 * 200)
        .map(|_| (2.0 * rng.normal()).exp() as f32 * 1e-3)
        .collect();
    // 90,000 isolated pixels (every other row and column), above a noisy
    // background: more objects than a uint16 label holds.
    let isolated: Vec<u8> = (0..600 * 600)
        .map(|i| {
            let (y, x) = (i / 600, i % 600);
            if y % 2 == 0 && x % 2 == 0 {
                150 + (rng.next() % 100) as u8
            } else {
                (rng.next() % 20) as u8
            }
        })
        .collect();
    // More than 2^24 samples: scikit-image's float32 counts round.
    let big: Vec<u8> = (0..4100 * 4100)
        .map(|i| {
            let r = rng.next();
            if i % 7 < 3 {
                (r % 60) as u8 + 10
            } else {
                (r % 90) as u8 + 120
            }
        })
        .collect();
    vec![
        case(
            "u8_blobs_2d",
            s2(256, 256),
            Data::U8(blobs(
                1,
                s2(256, 256),
                true,
                40,
                (30.0, 150.0, 25.0),
                (0.0, 255.0),
            )),
            true,
            &[2, 3],
        ),
        case(
            "u16_blobs_3d",
            [12, 64, 64],
            Data::U16(blobs(
                2,
                [12, 64, 64],
                false,
                25,
                (500.0, 3000.0, 400.0),
                (0.0, 65535.0),
            )),
            true,
            &[2, 4],
        ),
        case(
            "i16_blobs_2d",
            s2(200, 300),
            Data::I16(blobs(
                3,
                s2(200, 300),
                true,
                60,
                (-800.0, 300.0, 250.0),
                (-32768.0, 32767.0),
            )),
            true,
            &[2],
        ),
        case(
            "i32_wide_2d",
            s2(128, 128),
            Data::I32(blobs(
                4,
                s2(128, 128),
                true,
                20,
                (-40000.0, 50000.0, 9000.0),
                (-1e9, 1e9),
            )),
            true,
            &[2],
        ),
        case(
            "f32_blobs_2d",
            s2(256, 256),
            Data::F32(blobs(
                5,
                s2(256, 256),
                true,
                40,
                (0.2, 0.7, 0.12),
                (-10.0, 10.0),
            )),
            true,
            &[2, 3],
        ),
        case(
            "f32_blobs_3d",
            [10, 48, 48],
            Data::F32(blobs(
                6,
                [10, 48, 48],
                false,
                20,
                (100.0, 180.0, 30.0),
                (-1e9, 1e9),
            )),
            true,
            &[2],
        ),
        case(
            "f64_lognormal_2d",
            s2(128, 128),
            Data::F64(lognormal_f64),
            true,
            &[2, 5],
        ),
        case(
            "f32_lognormal_2d",
            s2(200, 200),
            Data::F32(lognormal_f32),
            true,
            &[2],
        ),
        case(
            "u8_isolated_600",
            s2(600, 600),
            Data::U8(isolated),
            true,
            &[2],
        ),
        case(
            "u8_constant",
            s2(32, 32),
            Data::U8(vec![7; 32 * 32]),
            true,
            &[],
        ),
        case(
            "u8_over_2p24_samples",
            s2(4100, 4100),
            Data::U8(big),
            false,
            &[],
        ),
    ]
}

/// Small images of every kind and of awkward distributions (values on the
/// bin edges, few distinct values, heavy tails, negative ranges), to probe
/// the exactness of the threshold and the labelling: `n` of them.
fn small_cases(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let shape = if i % 3 == 2 { [4, 24, 20] } else { [1, 48, 40] };
            let len = shape.iter().product::<usize>();
            let distribution = (i / 6) % 4;
            let scale = [1.0, 1e-3, 1e4, 37.0][(i / 24) % 4];
            let values: Vec<f64> = (0..len)
                .map(|_| {
                    let u = rng.unit();
                    match distribution {
                        // Uniform on a grid of 1/256 steps: samples on the
                        // float bin edges.
                        0 => (u * 256.0).floor() / 256.0 * scale,
                        // Two modes.
                        1 => {
                            if rng.unit() < 0.3 {
                                (5.0 + rng.normal()) * scale
                            } else {
                                (-2.0 + 0.5 * rng.normal()) * scale
                            }
                        }
                        // Heavy tail.
                        2 => (2.5 * rng.normal()).exp() * scale,
                        // Few distinct values.
                        _ => f64::from((u * 4.0) as u8) * scale - scale,
                    }
                })
                .collect();
            let ints = |offset: f64, unit: f64| -> Vec<f64> {
                values.iter().map(|v| offset + v / scale * unit).collect()
            };
            let data = match i % 6 {
                0 => Data::U8(
                    ints(40.0, 20.0)
                        .into_iter()
                        .map(|v| u8::from_f64(v.clamp(0.0, 255.0)))
                        .collect(),
                ),
                1 => Data::U16(
                    ints(3000.0, 700.0)
                        .into_iter()
                        .map(|v| u16::from_f64(v.clamp(0.0, 65535.0)))
                        .collect(),
                ),
                2 => Data::I16(
                    ints(0.0, 300.0)
                        .into_iter()
                        .map(|v| i16::from_f64(v.clamp(-32768.0, 32767.0)))
                        .collect(),
                ),
                3 => Data::I32(
                    ints(-7.0, 5000.0)
                        .into_iter()
                        .map(|v| i32::from_f64(v.clamp(-1e7, 1e7)))
                        .collect(),
                ),
                4 => Data::F32(values.iter().map(|&v| v as f32).collect()),
                _ => Data::F64(values),
            };
            let name: &'static str = Box::leak(format!("small_{i}").into_boxed_str());
            Case {
                name,
                shape,
                two_d: shape[0] == 1,
                data,
                label: true,
                clusters: if i % 4 == 0 { vec![2 + i % 3] } else { vec![] },
            }
        })
        .collect()
}

/// The Python with numpy, scipy, scikit-image and scikit-learn:
/// `PENTASCOPE_TEST_PYTHON`, default the repository's `.venv` (which
/// `.ci/run` makes). Missing is a failure: the test is ignored by a plain
/// `cargo test` instead.
fn python() -> PathBuf {
    let python = std::env::var_os("PENTASCOPE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import numpy, scipy, skimage, sklearn"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import numpy, scipy, skimage and sklearn (.ci/run makes that venv)",
        python.display()
    );
    python
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("pentascope-segment-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn le_bytes<T: Sample>(samples: &[T]) -> Vec<u8> {
    // Every machine this runs on is little-endian; swap otherwise.
    if cfg!(target_endian = "little") {
        pentascope_core::dtype::as_bytes(samples).to_vec()
    } else {
        let swapped: Vec<T> = samples.iter().map(|v| v.swap_bytes()).collect();
        pentascope_core::dtype::as_bytes(&swapped).to_vec()
    }
}

#[test]
#[ignore = "needs a Python venv with scikit-image and scikit-learn; run with --ignored (.ci/run does)"]
fn matches_scikit_image_and_scikit_learn() {
    let python = python();
    let dir = TempDir::new();
    // PENTASCOPE_SEGMENT_CASES=N checks N small cases instead of 24 (a
    // longer search for disagreements).
    let small = std::env::var("PENTASCOPE_SEGMENT_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut cases = cases();
    cases.extend(small_cases(small, 77));
    let mut manifest = Vec::new();
    for c in &cases {
        let bytes = with_data!(&c.data, v => le_bytes(v));
        std::fs::write(dir.0.join(format!("{}.raw", c.name)), bytes).unwrap();
        let shape: Vec<usize> = if c.two_d {
            c.shape[1..].to_vec()
        } else {
            c.shape.to_vec()
        };
        manifest.push(serde_json::json!({
            "name": c.name,
            "dtype": c.dtype().name(),
            "shape": shape,
            "label": c.label,
            "clusters": c.clusters,
        }));
    }
    std::fs::write(
        dir.0.join("manifest.json"),
        serde_json::json!({ "cases": manifest }).to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/segment_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&dir.0)
        .output()
        .unwrap_or_else(|e| panic!("cannot run PENTASCOPE_TEST_PYTHON={python:?}: {e}"));
    assert!(
        output.status.success(),
        "segment_check.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for c in &cases {
        let text = std::fs::read_to_string(dir.0.join(format!("{}.ref.json", c.name))).unwrap();
        let reference: Value = serde_json::from_str(&text).unwrap();
        with_data!(&c.data, v => check_case(c, v, &reference, &dir.0));
    }
}

/// The planes of a case, in Z order.
fn planes<'a, T>(c: &Case, samples: &'a [T]) -> impl Iterator<Item = &'a [T]> {
    samples.chunks(c.shape[1] * c.shape[2])
}

fn check_case<T: Sample>(c: &Case, samples: &[T], reference: &Value, dir: &Path) {
    let name = c.name;
    // Pass 1, split in two halves that are merged.
    let mut range = RangeAccumulator::new();
    let mut other = RangeAccumulator::new();
    for (i, plane) in planes(c, samples).enumerate() {
        let half = plane.len() / 2;
        range.add(&plane[..half]);
        other.add(&plane[half..]);
        if i % 2 == 1 {
            range.merge(&other);
            other = RangeAccumulator::new();
        }
    }
    range.merge(&other);
    let range: SampleRange<T> = range.finish().unwrap();

    if reference["constant"].as_bool().unwrap() {
        let e = OtsuHistogram::new(&range, DEFAULT_MAX_INTEGER_BINS).unwrap_err();
        assert!(matches!(e, CoreError::InvalidRequest(_)), "{name}: {e}");
        assert!(e.to_string().contains("constant image"), "{name}: {e}");
        let hist = KMeansHistogram::new(&range, DEFAULT_KMEANS_BINS).unwrap();
        let e = hist.solve(2).unwrap_err().to_string();
        assert!(e.contains("at least 2 distinct values"), "{name}: {e}");
        eprintln!("{name}: constant image refused");
        return;
    }

    // Otsu, pass 2.
    let mut hist = OtsuHistogram::new(&range, DEFAULT_MAX_INTEGER_BINS).unwrap();
    for plane in planes(c, samples) {
        hist.add(plane);
    }
    let threshold = hist.threshold().unwrap();
    let expected = float(&reference["threshold"]);
    assert_eq!(
        threshold.to_f64().to_bits(),
        expected.to_bits(),
        "{name}: Otsu threshold {threshold:?}, scikit-image {expected}"
    );
    let foreground = samples.iter().filter(|&&v| v > threshold).count() as u64;
    assert_eq!(
        foreground,
        reference["foreground"].as_u64().unwrap(),
        "{name}"
    );
    eprintln!(
        "{name}: threshold {threshold:?} = scikit-image's; foreground {:.4}",
        foreground as f64 / samples.len() as f64
    );

    if c.label {
        check_labels(c, samples, threshold, reference, dir);
    }
    for &k in &c.clusters {
        check_kmeans(c, samples, &range, k, reference);
    }
}

fn check_labels<T: Sample>(c: &Case, samples: &[T], threshold: T, reference: &Value, dir: &Path) {
    let name = c.name;
    let [_, h, w] = c.shape;
    let mut labeler = Labeler::new(h, w, DEFAULT_MAX_PROVISIONAL_LABELS).unwrap();
    // The caller's store: provisional labels, plane by plane.
    let mut stored: Vec<Vec<u32>> = Vec::new();
    for plane in planes(c, samples) {
        let mut out = vec![0u32; h * w];
        labeler
            .add_plane(plane, |v| v > threshold, &mut out)
            .unwrap();
        stored.push(out);
    }
    let labels = labeler.finish();
    if c.two_d {
        assert!(
            labels.is_identity(),
            "{name}: one plane needs no relabelling"
        );
    }
    for plane in &mut stored {
        labels.relabel(plane);
    }
    let ours: Vec<u32> = stored.concat();
    let bytes = std::fs::read(dir.join(format!("{name}.labels.raw"))).unwrap();
    let expected: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(ours.len(), expected.len());
    if let Some(i) = (0..ours.len()).find(|&i| ours[i] != expected[i]) {
        panic!(
            "{name}: label {} at sample {i}, scikit-image {}",
            ours[i], expected[i]
        );
    }

    let p = &reference["props"];
    let n = p["label"].as_array().unwrap().len();
    assert_eq!(labels.count() as usize, n, "{name}: objects");
    assert_eq!(labels.regions.len(), n);
    // Integers are JSON numbers, floats text.
    let number = |v: &Value| v.as_f64().unwrap_or_else(|| float(v));
    let column =
        |key: &str| -> Vec<f64> { p[key].as_array().unwrap().iter().map(number).collect() };
    let columns = |key: &str, a: usize| -> Vec<f64> {
        p[key][a].as_array().unwrap().iter().map(number).collect()
    };
    let (area, mean, lo, hi) = (column("area"), column("mean"), column("min"), column("max"));
    let label = column("label");
    let centroid: Vec<Vec<f64>> = (0..3).map(|a| columns("centroid", a)).collect();
    let bbox: Vec<Vec<f64>> = (0..6).map(|a| columns("bbox", a)).collect();
    let skimage_mean: Option<Vec<f64>> = reference
        .get("skimage_mean")
        .map(|m| m.as_array().unwrap().iter().map(float).collect());
    let float32 = T::DTYPE == DType::F32;
    for (i, r) in labels.regions.iter().enumerate() {
        let what = format!("{name}: object {}", r.label);
        assert_eq!(f64::from(r.label), label[i], "{what}");
        assert_eq!(r.area as f64, area[i], "{what}: area");
        for (ours, theirs) in r.centroid.iter().zip(&centroid) {
            assert!(
                close(*ours, theirs[i], 1e-9),
                "{what}: centroid {:?}, scikit-image {}",
                r.centroid,
                theirs[i]
            );
        }
        for (ours, theirs) in r.bbox.iter().zip(&bbox) {
            assert_eq!(*ours as f64, theirs[i], "{what}: bbox {:?}", r.bbox);
        }
        assert_eq!(r.min_intensity, lo[i], "{what}: min");
        assert_eq!(r.max_intensity, hi[i], "{what}: max");
        assert!(
            close(r.mean_intensity, mean[i], 1e-9),
            "{what}: mean {} vs {}",
            r.mean_intensity,
            mean[i]
        );
        if let Some(m) = &skimage_mean {
            let tolerance = if float32 { 1e-6 } else { 1e-9 };
            assert!(
                close(r.mean_intensity, m[i], tolerance),
                "{what}: mean {} vs regionprops {}",
                r.mean_intensity,
                m[i]
            );
        }
    }
    eprintln!(
        "{name}: {n} objects, labels and properties equal to scikit-image's{}",
        if skimage_mean.is_some() {
            " (regionprops)"
        } else {
            " (vectorised, regionprops-checked)"
        }
    );
}

fn check_kmeans<T: Sample>(
    c: &Case,
    samples: &[T],
    range: &SampleRange<T>,
    k: usize,
    reference: &Value,
) {
    let name = c.name;
    let mut hist = KMeansHistogram::new(range, DEFAULT_KMEANS_BINS).unwrap();
    for plane in planes(c, samples) {
        // Each plane in its own histogram, merged: as parallel workers would.
        let mut part = KMeansHistogram::new(range, DEFAULT_KMEANS_BINS).unwrap();
        part.add(plane);
        hist.merge(&part).unwrap();
    }
    let mut model: KMeansModel = hist.solve(k).unwrap();
    let exact = hist.is_exact();
    let mut passes = 0;
    while !model.converged && passes < DEFAULT_MAX_PASSES {
        let mut pass = LloydPass::new(&model).unwrap();
        for plane in planes(c, samples) {
            pass.add(plane);
        }
        model = pass.finish();
        passes += 1;
    }
    assert!(
        model.converged,
        "{name}: k={k} not converged in {passes} passes"
    );
    assert!(model.centres.windows(2).all(|w| w[0] < w[1]), "{name}");
    assert_eq!(model.counts.iter().sum::<u64>(), samples.len() as u64);

    // The reported inertia is that of the model's own assignment.
    let assigner = model.assigner();
    let mut counts = vec![0u64; k];
    let mut direct = 0.0;
    for &v in samples {
        let x = v.to_f64();
        let j = assigner.cluster_of(x);
        counts[j] += 1;
        direct += (x - model.centres[j]) * (x - model.centres[j]);
    }
    assert_eq!(counts, model.counts, "{name}: k={k}");
    assert!(
        close(direct, model.inertia, 1e-9),
        "{name}: k={k}: inertia {} reported, {direct} recomputed",
        model.inertia
    );

    let sk = &reference["kmeans"][k.to_string()];
    let sk_inertia = float(&sk["inertia"]);
    assert!(
        model.inertia <= sk_inertia * (1.0 + 1e-9),
        "{name}: k={k}: inertia {} > scikit-learn's {sk_inertia} (centres {:?} vs {})",
        model.inertia,
        model.centres,
        sk["centres"]
    );
    eprintln!(
        "{name}: k-means k={k}: inertia {:.10e} vs scikit-learn {:.10e} ({}, {passes} Lloyd passes)",
        model.inertia,
        sk_inertia,
        if exact { "exact histogram" } else { "binned" }
    );
}

/// A float that `segment_check.py` wrote as text (exact round trip).
fn float(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a float as text: {v}"))
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn wide_integer_ranges_name_the_limit() {
    let data = [0u32, 5, 3_000_000_000];
    let range = SampleRange::of_slice(&data).unwrap();
    let e = OtsuHistogram::new(&range, DEFAULT_MAX_INTEGER_BINS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_integer_bins"), "{e}");
    // A raised limit is honoured up to the data's span.
    let data = [-3i32, 0, 0, 9];
    let range = SampleRange::of_slice(&data).unwrap();
    assert!(OtsuHistogram::new(&range, 12).is_err());
    let mut h = OtsuHistogram::new(&range, 13).unwrap();
    h.add(&data);
    assert_eq!(h.threshold().unwrap(), 0);
}

#[test]
fn kmeans_refuses_hostile_requests() {
    let data = [1u8, 2, 3, 200];
    let range = SampleRange::of_slice(&data).unwrap();
    let mut hist = KMeansHistogram::new(&range, DEFAULT_KMEANS_BINS).unwrap();
    hist.add(&data);
    for k in [0, 1, 257, 1 << 40] {
        let e = hist.solve(k).unwrap_err().to_string();
        assert!(e.contains("2..=256"), "{e}");
    }
    let e = hist.solve(5).unwrap_err().to_string();
    assert!(e.contains("the data have 4"), "{e}");
    let m = hist.solve(4).unwrap();
    assert_eq!(m.inertia, 0.0);
    assert_eq!(m.centres, vec![1.0, 2.0, 3.0, 200.0]);
}
