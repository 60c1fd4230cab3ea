//! What pentascope serves against what tifffile reads, computed by tifffile
//! in this test: physical sizes and units of every fixture that states
//! them, float16 images kept as float16, and MetaMorph STK, Zeiss LSM and
//! Olympus FluoView files (written here, as no registry package ships one)
//! read as tifffile reads them.
//!
//! Needs a Python with tifffile, imagecodecs and numpy
//! (`PENTASCOPE_TEST_PYTHON`, default the repository's `.venv`), so these
//! tests are ignored by a plain `cargo test`; `.ci/run` runs them with
//! `--ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::Digest;

use crate::util::{close, fixtures_dir, FixtureSet, Server};

fn python() -> PathBuf {
    crate::util::python::python_with("tifffile, imagecodecs, numpy")
}

/// The sha256 of image `id`'s samples (its `.npy` download's data), in
/// hex.
fn samples_sha256(server: &Server, id: &str) -> String {
    let npy = server
        .get(&format!("/images/{id}/download?format=npy"))
        .npy()
        .unwrap();
    sha2::Sha256::digest(&npy.data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `script` with `args`; its standard output parsed as JSON.
fn run(script: &str, args: &[&Path]) -> Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// Physical sizes as tifffile reads each flavour's metadata: OME
/// `PhysicalSize*`/`TimeIncrement` with their units (defaults µm and s),
/// ImageJ's resolution in pixels per `unit`, `spacing` and `finterval`,
/// ScanImage's stack step and frame period, and the TIFF resolution tags
/// with ResolutionUnit inch or centimeter. Units are named as UDUNITS
/// names them (`micrometer`), as NGFF asks.
const PHYSICAL_SIZES: &str = r#"
import json, sys, tifffile
NAMES = {"µm": "micrometer", "μm": "micrometer", "\\u00B5m": "micrometer", "um": "micrometer",
         "micron": "micrometer", "microns": "micrometer", "nm": "nanometer", "mm": "millimeter",
         "cm": "centimeter", "m": "meter", "in": "inch", "s": "second", "sec": "second",
         "ms": "millisecond", "min": "minute", "h": "hour"}
def size(value, unit):
    if value is None:
        return None
    return [float(value), NAMES.get(str(unit).strip(), str(unit).strip())]
def resolution(page, unit, yunit):
    if "XResolution" not in page.tags:
        return None, None
    rx, ry = page.get_resolution()
    return (size(1 / rx, unit) if rx > 0 else None, size(1 / ry, yunit) if ry > 0 else None)
out = {}
for path in sys.argv[1:]:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        x = y = z = t = None
        if tif.is_ome:
            image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
            pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
            get = lambda a, default: size(pixels.get(a), pixels.get(a + "Unit", default)) if a in pixels else None
            x, y, z, t = get("PhysicalSizeX", "µm"), get("PhysicalSizeY", "µm"), get("PhysicalSizeZ", "µm"), get("TimeIncrement", "s")
        elif tif.is_imagej:
            md = tif.imagej_metadata or {}
            unit = md.get("unit")
            if unit:
                x, y = resolution(page, unit, md.get("yunit", unit))
            if "spacing" in md:
                z = size(md["spacing"], md.get("zunit", unit or "pixel"))
            if "finterval" in md:
                t = size(md["finterval"], md.get("tunit", "second"))
        elif tif.is_scanimage:
            frame = tif.scanimage_metadata["FrameData"]
            series = tif.series[0]
            axes = dict(zip(series.axes, series.shape))
            step = frame.get("SI.hStackManager.actualStackZStepSize") or frame.get("SI.hStackManager.stackZStepSize")
            if axes.get("Z", 1) > 1 and isinstance(step, (int, float)) and step > 0:
                z = size(step, "micrometer")
            period = frame.get("SI.hRoiManager.scanFramePeriod")
            if axes.get("T", 1) > 1 and isinstance(period, (int, float)) and period > 0:
                t = size(period, "second")
        else:
            unit = {2: "inch", 3: "centimeter"}.get(int(page.resolutionunit))
            if unit:
                x, y = resolution(page, unit, unit)
        out[path] = {"x": x, "y": y, "z": z, "t": t}
print(json.dumps(out))
"#;

/// Every accepted fixture's physical sizes and units, as served, equal what
/// tifffile reads from its metadata.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn physical_sizes_equal_tifffiles_for_every_fixture() {
    let fixtures = fixtures_dir();
    let server = Server::start();
    let mut stated = 0;
    let mut failures = Vec::new();
    for set_name in ["tiff", "real"] {
        let set = FixtureSet::load(&fixtures, set_name);
        let accepted: Vec<&(String, Value)> = set
            .files
            .iter()
            .filter(|(_, e)| e["expect"] != "reject")
            .collect();
        let paths: Vec<PathBuf> = accepted.iter().map(|(n, _)| set.dir.join(n)).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let reference = run(PHYSICAL_SIZES, &refs);
        for ((name, _), path) in accepted.iter().zip(&paths) {
            let resp = server.upload(name, set.read(name), None);
            if resp.status != 200 {
                continue; // accept-or-reject files that are refused
            }
            let id = crate::util::image_id_of(&resp).unwrap();
            let served = &server.metadata(&id)["physical_sizes"];
            let want = &reference[path.to_str().unwrap()];
            for axis in ["x", "y", "z", "t"] {
                let (got, expected) = (&served[axis], &want[axis]);
                let same = match (got.is_null(), expected.is_null()) {
                    (true, true) => true,
                    (false, false) => {
                        stated += 1;
                        let value = got["value"].as_f64().unwrap();
                        close(value, expected[0].as_f64().unwrap(), 1e-9)
                            && got["unit"] == expected[1]
                    }
                    _ => false,
                };
                if !same {
                    failures.push(format!(
                        "{set_name}/{name} {axis}: served {got}, tifffile {expected}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        stated >= 20,
        "only {stated} physical sizes stated by the corpus"
    );
}

const FLOAT16: &str = r#"
import json, sys, numpy as np, tifffile
folder = sys.argv[1]
rng = np.random.default_rng(7)
data = (rng.standard_normal((4, 3, 33, 47)) * 120).astype(np.float16)
with_nan = data.copy()
with_nan[1, 2, 3, 4] = np.nan
files = {
    "f16_plain.tif": dict(data=data, kwargs=dict(metadata={"axes": "ZCYX"})),
    "f16_zstd_fpredict.tif": dict(data=data, kwargs=dict(compression="zstd", predictor=True, metadata={"axes": "ZCYX"})),
    "f16_tiled_deflate.tif": dict(data=data, kwargs=dict(compression="zlib", tile=(16, 16), metadata={"axes": "ZCYX"})),
    "f16_nan.tif": dict(data=with_nan, kwargs=dict(metadata={"axes": "ZCYX"})),
}
out = {}
for name, f in files.items():
    tifffile.imwrite(f"{folder}/{name}", f["data"], photometric="minisblack", **f["kwargs"])
    back = tifffile.imread(f"{folder}/{name}")
    a = back.astype(np.float64)
    channels = np.moveaxis(a.reshape(4, 3, -1), 1, 0).reshape(3, -1)
    out[name] = {
        "bytes": back.astype("<f2").tobytes().hex(),
        "mean": [None if np.isnan(v) else float(v) for v in channels.mean(axis=1)],
        "std": [None if np.isnan(v) else float(v) for v in channels.std(axis=1)],
        "min": [None if np.isnan(v) else float(v) for v in channels.min(axis=1)],
        "max": [None if np.isnan(v) else float(v) for v in channels.max(axis=1)],
    }
print(json.dumps(out))
"#;

/// float16 files (plain, Zstd with the floating-point predictor, tiled
/// Deflate, with a NaN) are served as float16 (`<f2` in `.npy`), equal
/// to tifffile's array sample for sample, with statistics in float64 as
/// NumPy computes them.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn float16_images_are_kept_as_float16() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(FLOAT16, &[dir.path()]);
    let server = Server::start();
    for (name, want) in reference.as_object().unwrap() {
        let id = server.upload_ok(name, std::fs::read(dir.path().join(name)).unwrap());
        let meta = server.metadata(&id);
        assert_eq!(meta["dtype"], "float16", "{name}");
        assert_eq!(
            meta["shape"],
            serde_json::json!([1, 4, 3, 33, 47]),
            "{name}"
        );
        let npy = server
            .get(&format!("/images/{id}/download?format=npy"))
            .npy()
            .unwrap();
        assert_eq!(npy.descr, "<f2", "{name}");
        let hex: String = npy.data.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            hex == want["bytes"].as_str().unwrap(),
            "{name}: samples differ"
        );
        let stats = server
            .get(&format!("/statistics?image_id={id}"))
            .ok_json()
            .unwrap();
        for key in ["mean", "std", "min", "max"] {
            for channel in 0..3 {
                let (got, expected) = (&stats[key][channel], &want[key][channel]);
                let same = match (got.as_f64(), expected.as_f64()) {
                    (Some(g), Some(e)) => close(g, e, 1e-9),
                    (None, None) => true,
                    _ => false,
                };
                assert!(same, "{name} {key}[{channel}]: {got} vs numpy {expected}");
            }
        }
        let png = server.get(&format!("/slice?image_id={id}&z=2&channel=1"));
        assert_eq!(png.status, 200, "{name}");
        let refused = server.get(&format!("/images/{id}/download?format=ome-tiff"));
        assert!(refused.error(&[415]).unwrap().contains("npy"), "{name}");
    }
}

const IMAGEJ_DISPLAY: &str = r##"
import json, sys, tifffile
out = {}
for path in sys.argv[1:]:
    with tifffile.TiffFile(path) as tif:
        if not tif.is_imagej:
            continue
        md = tif.imagej_metadata or {}
        n = int(md.get("channels", 1))
        ranges = md.get("Ranges")
        luts = md.get("LUTs")
        channels = []
        for c in range(n):
            entry = {}
            if ranges is not None and len(ranges) == 2 * n:
                entry["display_range"] = [ranges[2 * c], ranges[2 * c + 1]]
            elif n == 1 and "min" in md and "max" in md:
                entry["display_range"] = [float(md["min"]), float(md["max"])]
            if luts is not None and len(luts) == n:
                r, g, b = (int(v) for v in luts[c][:, 255])
                entry["color"] = f"#{r:02X}{g:02X}{b:02X}"
            channels.append(entry)
        out[path] = channels if any(channels) else []
print(json.dumps(out))
"##;

/// ImageJ files' display ranges (`Ranges`, or `min`/`max`) and LUT colours,
/// as tifffile reads them, are kept per channel and are the image's default
/// rendering.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn imagej_display_ranges_and_colours_equal_tifffiles() {
    let fixtures = fixtures_dir();
    let server = Server::start();
    let mut described = 0;
    for set_name in ["tiff", "real"] {
        let set = FixtureSet::load(&fixtures, set_name);
        let paths: Vec<PathBuf> = set
            .files
            .iter()
            .filter(|(_, e)| e["expect"] == "accept")
            .map(|(n, _)| set.dir.join(n))
            .collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let reference = run(IMAGEJ_DISPLAY, &refs);
        for (path, want) in reference.as_object().unwrap() {
            let name = Path::new(path).file_name().unwrap().to_str().unwrap();
            let id = server.upload_ok(name, set.read(name));
            let meta = server.metadata(&id);
            let got = meta["acquisition"]["channels"].clone();
            let got = if got.is_null() {
                Value::Array(Vec::new())
            } else {
                got
            };
            assert_eq!(&got, want, "{set_name}/{name}");
            for (c, channel) in want.as_array().unwrap().iter().enumerate() {
                described += 1;
                let shown = &meta["rendering"]["channels"][c];
                if let Some([low, high]) = channel["display_range"]
                    .as_array()
                    .map(|r| [r[0].as_f64().unwrap(), r[1].as_f64().unwrap()])
                {
                    if low < high {
                        assert_eq!(
                            [&shown["window"]["start"], &shown["window"]["end"]],
                            [&Value::from(low), &Value::from(high)],
                            "{name} channel {c}: the default window"
                        );
                    }
                }
                if let Some(color) = channel["color"].as_str() {
                    assert_eq!(
                        shown["color"],
                        color.trim_start_matches('#'),
                        "{name} channel {c}"
                    );
                }
            }
        }
    }
    assert!(
        described >= 6,
        "only {described} channels described by ImageJ fixtures"
    );
}

const STK: &str = r#"
import hashlib, json, os, struct, sys, numpy as np, tifffile
folder = sys.argv[1]
rng = np.random.default_rng(3)
out = {}

def stk(name, planes, zdistance, times, dtype=np.uint16):
    # MetaMorph's layout: one page; UIC1tag; UIC2tag typed RATIONAL whose
    # count is the number of planes, six LONGs each (ZDistance numerator and
    # denominator, creation date and time, modification date and time); the
    # other planes' samples follow the first page's, back to back
    data = rng.integers(0, 4000, (planes, 37, 53)).astype(dtype)
    path = os.path.join(folder, name)
    uic2 = []
    for (num, den), time in zip(zdistance, times):
        uic2 += [num, den, 2460000, time, 2460000, time]
    tifffile.imwrite(path, data[0], photometric="minisblack", metadata=None, extratags=[
        (33628, 4, 2, [0, 1], True),
        (33629, 5, 3 * planes, uic2, True),
    ])
    with tifffile.TiffFile(path) as t:
        page = t.pages.first
        uic1_entry, uic2_entry = page.tags[33628].offset, page.tags[33629].offset
        assert page.dataoffsets[0] + page.databytecounts[0] == os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(uic1_entry + 4); f.write(struct.pack("<I", 1))
        f.seek(uic2_entry + 4); f.write(struct.pack("<I", planes))
        f.seek(0, 2); f.write(data[1:].tobytes())
    with tifffile.TiffFile(path) as t:
        assert t.is_stk
        series = t.series[0]
        a = series.asarray()
    out[name] = {"axes": series.axes, "shape": list(a.shape),
                 "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}

stk("z_series.stk", 5, [(1, 2)] * 5, [0] * 5)
stk("time_series.stk", 4, [(0, 1)] * 4, [10, 20, 30, 40])
stk("unlabelled.stk", 3, [(0, 1)] * 3, [5, 5, 5])
stk("zero_over_zero.stk", 3, [(0, 0)] * 3, [5, 5, 5], dtype=np.uint8)
# hostile: UIC2tag claiming 2^31 - 1 planes
with open(os.path.join(folder, "z_series.stk"), "rb") as f:
    hostile = bytearray(f.read())
with tifffile.TiffFile(os.path.join(folder, "z_series.stk")) as t:
    entry = t.pages.first.tags[33629].offset
hostile[entry + 4:entry + 8] = struct.pack("<I", 2**31 - 1)
with open(os.path.join(folder, "hostile_count.bin"), "wb") as f:
    f.write(hostile)
print(json.dumps(out))
"#;

/// MetaMorph STK files, written by this test as MetaMorph lays them out:
/// their planes, back to back after the one page, are read along the axis
/// tifffile gives them (Z where every ZDistance is non-zero, T where every
/// plane was created at a new time, else unlabelled, which pentascope
/// maps to Z), sample for sample; a truncated one is refused naming what
/// is missing.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn metamorph_stk_files_read_as_tifffile_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(STK, &[dir.path()]);
    let server = Server::start();
    for (name, want) in reference.as_object().unwrap() {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        let id = server.upload_ok(name, bytes.clone());
        let meta = server.metadata(&id);
        assert_eq!(meta["flavour"], "stk", "{name}");
        let planes = want["shape"][0].as_u64().unwrap();
        let axis = want["axes"].as_str().unwrap().chars().next().unwrap();
        // TZCYX: T for tifffile's T, Z for its Z and for its unlabelled I
        let shape = match axis {
            'T' => [planes, 1, 1, 37, 53],
            _ => [1, planes, 1, 37, 53],
        };
        assert_eq!(meta["shape"], serde_json::json!(shape), "{name} ({axis})");
        assert_eq!(
            samples_sha256(&server, &id),
            want["sha256"].as_str().unwrap(),
            "{name}: samples"
        );
        // the last plane cut short: refused, not read past the end
        let truncated = &bytes[..bytes.len() - 100];
        let refused = server.upload(name, truncated.to_vec(), None);
        let message = refused.error(&[415, 422]).unwrap();
        assert!(message.contains("truncated"), "{name}: {message}");
    }
    // a plane count past the page limit is refused before anything is read
    let hostile = std::fs::read(dir.path().join("hostile_count.bin")).unwrap();
    let refused = server.upload("hostile.stk", hostile, None);
    let message = refused.error(&[413]).unwrap();
    assert!(
        message.contains("2147483647 planes") && message.contains("maximum"),
        "{message}"
    );
}

const LSM: &str = r#"
import hashlib, json, os, struct, sys, numpy as np, tifffile
folder = sys.argv[1]
rng = np.random.default_rng(5)
out = {}

def lsminfo(x, y, z, c, t, scan_type):
    # CZ_LSMINFO as LSM 2.0 lays it out (152 bytes), padded as Zen pads it
    head = struct.pack("<IiiiiiiiiiddddddHHIIIIIdIIIIIIII",
        0x0400494C, 152, x, y, z, c, t, 2, 16, 12,
        0.2e-6, 0.25e-6, 1.5e-6, 0.0, 0.0, 0.0,
        scan_type, 0, 0, 0, 0, 0, 0, 0.75, 0, 0, 0, 0, 0, 0, 0, 0)
    return head + bytes(500 - len(head))

def tzcyx(a, axes):
    for axis in "TZCYX":
        if axis not in axes:
            a, axes = a[np.newaxis], axis + axes
    return np.transpose(a, [axes.index(axis) for axis in "TZCYX"])

def lsm(name, t, z, c, scan_type, planar):
    # image pages, each followed by its RGB thumbnail, as Zen writes them
    data = rng.integers(0, 4095, (t, z, c, 48, 64)).astype(np.uint16)
    info = lsminfo(64, 48, z, c, t, scan_type)
    path = os.path.join(folder, name)
    with tifffile.TiffWriter(path) as w:
        for i, plane in enumerate(data.reshape(t * z, c, 48, 64)):
            page = plane if planar else np.moveaxis(plane, 0, -1)
            extratags = [(34412, 1, len(info), info, True)] if i == 0 else []
            w.write(page if c > 1 else page.reshape(48, 64), metadata=None, extratags=extratags,
                    photometric="minisblack" if c != 3 or planar else "rgb",
                    planarconfig="separate" if planar and c > 1 else None)
            w.write(np.zeros((12, 16, 3), np.uint8), photometric="rgb", subfiletype=1, metadata=None)
    if c == 2:
        # LSM writers store two BitsPerSample values at an offset although
        # they fit in the entry (tifffile reads them there): move them
        # (tifffile applies that reading on open, so the entries are found
        # by walking the IFDs here)
        entries = []
        with open(path, "rb") as f:
            raw = f.read()
        ifd = struct.unpack_from("<I", raw, 4)[0]
        while ifd:
            n = struct.unpack_from("<H", raw, ifd)[0]
            for k in range(n):
                at = ifd + 2 + 12 * k
                tag, _, count = struct.unpack_from("<HHI", raw, at)
                if tag == 258 and count == 2:
                    entries.append(at)
            ifd = struct.unpack_from("<I", raw, ifd + 2 + 12 * n)[0]
        with open(path, "r+b") as f:
            f.seek(0, 2)
            at = f.tell()
            f.write(struct.pack("<HH", 16, 16))
            for entry in entries:
                f.seek(entry + 8)
                f.write(struct.pack("<I", at))
    with tifffile.TiffFile(path) as f:
        assert f.is_lsm
        series = f.series[0]
        a = tzcyx(series.asarray(), series.axes)
        m = f.lsm_metadata
        out[name] = {"shape": list(a.shape), "axes": series.axes,
                     "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(),
                     "voxel_um": [m["VoxelSizeX"] * 1e6, m["VoxelSizeY"] * 1e6, m["VoxelSizeZ"] * 1e6],
                     "interval_s": m["TimeIntervall"]}

lsm("time_series_stack.lsm", 2, 3, 3, 6, True)
lsm("stack.lsm", 1, 4, 1, 0, False)
lsm("time_series_plane_rgb.lsm", 3, 1, 3, 3, False)
lsm("two_channel_stack.lsm", 1, 3, 2, 0, True)
print(json.dumps(out))
"#;

/// Zeiss LSM files, written by this test as Zen lays them out (CZ_LSMINFO,
/// every image page followed by its thumbnail, two channels' BitsPerSample
/// at an offset): the image pages along the scan type's axes, channels from
/// the samples (planar or interleaved), equal to tifffile's array; voxel
/// sizes and the time interval as physical sizes.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn zeiss_lsm_files_read_as_tifffile_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(LSM, &[dir.path()]);
    let server = Server::start();
    for (name, want) in reference.as_object().unwrap() {
        let id = server.upload_ok(name, std::fs::read(dir.path().join(name)).unwrap());
        let meta = server.metadata(&id);
        assert_eq!(meta["flavour"], "lsm", "{name}");
        assert_eq!(meta["shape"], want["shape"], "{name} ({})", want["axes"]);
        assert_eq!(
            samples_sha256(&server, &id),
            want["sha256"].as_str().unwrap(),
            "{name}: samples"
        );
        let p = &meta["physical_sizes"];
        for (axis, k) in [("x", 0), ("y", 1)] {
            let got = p[axis]["value"].as_f64().unwrap();
            assert!(
                close(got, want["voxel_um"][k].as_f64().unwrap(), 1e-9),
                "{name} {axis}"
            );
            assert_eq!(p[axis]["unit"], "micrometer", "{name} {axis}");
        }
        let shape: Vec<u64> = serde_json::from_value(want["shape"].clone()).unwrap();
        if shape[1] > 1 {
            let z = p["z"]["value"].as_f64().unwrap();
            assert!(
                close(z, want["voxel_um"][2].as_f64().unwrap(), 1e-9),
                "{name} z"
            );
        }
        if shape[0] > 1 {
            let t = p["t"]["value"].as_f64().unwrap();
            assert!(
                close(t, want["interval_s"].as_f64().unwrap(), 1e-9),
                "{name} t"
            );
            assert_eq!(p["t"]["unit"], "second", "{name} t");
        }
    }
}

const FLUOVIEW: &str = r#"
import hashlib, json, os, sys, numpy as np, tifffile
folder = sys.argv[1]
rng = np.random.default_rng(9)
out = {}

def tzcyx(a, axes):
    for axis in "TZCYX":
        if axis not in axes:
            a, axes = a[np.newaxis], axis + axes
    return np.transpose(a, [axes.index(axis) for axis in "TZCYX"])

def fluoview(name, dims):
    # MM_Header (tifffile's own record layout) naming the dimensions,
    # innermost first, the unused ones of size 1; MM_Stamp on every page
    header = np.zeros(1, dtype=np.dtype(tifffile.TIFF.MM_HEADER))
    header["ImageName"] = name.encode()
    d = header["Dimensions"][0]
    for i in range(10):
        label, size, resolution = dims[i] if i < len(dims) else ("", 1, 0.0)
        d[i]["Name"], d[i]["Size"] = label.encode(), size
        d[i]["Resolution"], d[i]["Unit"] = resolution, b"um"
    header["Dimensions"][0] = d
    sizes = [size for _, size, _ in dims]
    pages = int(np.prod(sizes[2:]))
    data = rng.integers(0, 4000, (pages, sizes[1], sizes[0])).astype(np.uint16)
    header = header.tobytes()
    stamp = (34362, 12, 8, [0.0] * 8, True)
    path = os.path.join(folder, name)
    with tifffile.TiffWriter(path) as w:
        for i, page in enumerate(data):
            tags = [(34361, 1, len(header), header, True), stamp] if i == 0 else [stamp]
            w.write(page, photometric="minisblack", metadata=None, extratags=tags)
    with tifffile.TiffFile(path) as f:
        assert f.is_fluoview
        series = f.series[0]
        a = tzcyx(series.asarray(), series.axes)
    out[name] = {"shape": list(a.shape), "axes": series.axes,
                 "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}

fluoview("z_time.tif", [("X", 40, 0.207), ("Y", 30, 0.207), ("Z", 3, 1.5), ("T", 2, 0.0)])
fluoview("channels_z.tif", [("X", 40, 0.5), ("Y", 30, 0.5), ("Ch", 2, 0.0), ("Z", 3, 2.0)])
print(json.dumps(out))
"#;

/// Olympus FluoView files, written by this test with MM_Header and
/// MM_Stamp: pages placed by the header's named dimensions, equal to
/// tifffile's array; the dimensions' resolutions as physical sizes.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn olympus_fluoview_files_read_as_tifffile_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(FLUOVIEW, &[dir.path()]);
    let server = Server::start();
    for (name, want) in reference.as_object().unwrap() {
        let id = server.upload_ok(name, std::fs::read(dir.path().join(name)).unwrap());
        let meta = server.metadata(&id);
        assert_eq!(meta["flavour"], "fluoview", "{name}");
        assert_eq!(meta["shape"], want["shape"], "{name} ({})", want["axes"]);
        assert_eq!(
            samples_sha256(&server, &id),
            want["sha256"].as_str().unwrap(),
            "{name}: samples"
        );
        let x = &meta["physical_sizes"]["x"];
        assert_eq!(x["unit"], "micrometer", "{name}");
        assert!(x["value"].as_f64().unwrap() > 0.2, "{name}: {x}");
    }
}
