//! What pentascope serves against what tifffile reads, computed by tifffile
//! in this test: physical sizes and units of every fixture that states
//! them, float16 images kept as float16, and MetaMorph STK, Zeiss LSM,
//! Olympus FluoView and Micro-Manager files (written here, as no registry
//! package ships one) read as tifffile reads them.
//!
//! Needs a Python with tifffile, imagecodecs and numpy
//! (`PENTASCOPE_TEST_PYTHON`, default the repository's `.venv`), so these
//! tests are ignored by a plain `cargo test`; `.ci/run` runs them with
//! `--ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::util::server::run_cli;
use crate::util::{close, fixtures_dir, FixtureSet, Server};

fn python() -> PathBuf {
    crate::util::python::python_with("tifffile, imagecodecs, numpy")
}

/// Runs `script` with `args`; its standard output parsed as JSON.
pub(crate) fn run(script: &str, args: &[&Path]) -> Value {
    serde_json::from_slice(&run_printing(script, args)).expect("python printed JSON")
}

/// Runs `script` with `args`, which must succeed; what it printed.
fn run_printing(script: &str, args: &[&Path]) -> Vec<u8> {
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
    out.stdout
}

/// Physical sizes as tifffile reads each flavour's metadata: OME
/// `PhysicalSize*`/`TimeIncrement` with their units (defaults µm and s),
/// ImageJ's resolution in pixels per `unit`, `spacing` and `finterval`,
/// ScanImage's stack step and frame period, and the TIFF resolution tags
/// with ResolutionUnit inch or centimeter, and an Aperio SVS's `MPP` in
/// micrometres (tifffile's `svs_description_metadata`). Units are named as UDUNITS
/// names them (`micrometer`), as NGFF asks.
const PHYSICAL_SIZES: &str = r#"
import json, sys, tifffile
from tifffile.tifffile import svs_description_metadata
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
        elif tif.is_svs:
            mpp = svs_description_metadata(page.description).get("MPP")
            x = y = size(mpp, "µm") if mpp else None
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
            server.samples_sha256(&id),
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
            server.samples_sha256(&id),
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
            server.samples_sha256(&id),
            want["sha256"].as_str().unwrap(),
            "{name}: samples"
        );
        let x = &meta["physical_sizes"]["x"];
        assert_eq!(x["unit"], "micrometer", "{name}");
        assert!(x["value"].as_f64().unwrap() > 0.2, "{name}: {x}");
    }
}

pub(crate) const MICROMANAGER: &str = r#"
import hashlib, json, os, struct, sys, numpy as np, tifffile
folder = sys.argv[1]
rng = np.random.default_rng(11)
out = {}
pixel_offsets = {}

def tzcyx(a, axes):
    for axis in "TZCYX":
        if axis not in axes:
            a, axes = a[np.newaxis], axis + axes
    return np.transpose(a, [axes.index(axis) for axis in "TZCYX"])

def summary_of(data, names, **extra):
    t, z, c, y, x = data.shape
    s = {"Prefix": "acquisition", "Source": "Micro-Manager", "MicroManagerVersion": "1.4.23 20180220",
         "MetadataVersion": 10, "Width": x, "Height": y, "PixelType": "GRAY16", "BitDepth": 16,
         "IJType": 1, "Frames": t, "Slices": z, "Channels": c, "Positions": 1,
         "SlicesFirst": True, "TimeFirst": False, "ChNames": names, "ChColors": [-16776961] * c,
         "PixelSize_um": 0.65, "PixelAspect": 1, "z-step_um": 1.5, "Interval_ms": 500,
         "Date": "2026-11-27", "Time": "2026-11-27 05:00:00 +0000", "Comment": ""}
    s.update(extra)
    return s

def micromanager(name, data, order, summary, description=None, index=None, display=None,
                 ndtiff=False):
    # Micro-Manager's MultipageTiffWriter layout: its header at offset 8
    # (index map, display settings and comments, each a magic number and an
    # offset; the summary's magic number and length, then its JSON); every
    # page's IFD of 13 entries (14 with the first page's ImageDescription),
    # its pixels right after it (offset + 162, where tifffile reads them),
    # its resolution and its MicroManagerMetadata JSON (tag 51123); then the
    # index map, one (channel, slice, frame, position, IFD offset) per image,
    # the display settings and the comments. NDTiff (`ndtiff` 2 or 3): its
    # header (the version, then the summary) and the pages; its index is
    # another file, from the pixels' offsets this leaves in `pixel_offsets`
    t_, z_, c_, height, width = data.shape
    js = json.dumps(summary).encode()
    buf = bytearray(b"II*\0" + bytes(4))
    if ndtiff == 3:
        buf += struct.pack("<5I", 483729, 3, 0, 2355492, len(js)) + js
    elif ndtiff == 2:
        buf += struct.pack("<4I", 483729, 2, 2355492, len(js)) + js
    else:
        buf += struct.pack("<8I", 54773648, 0, 483765892, 0, 99384722, 0, 2355492, len(js)) + js
    pixel_offsets[name] = []
    entries, link = [], 4
    for i, (t, z, c) in enumerate(order):
        buf += bytes(len(buf) % 2)
        ifd = len(buf)
        struct.pack_into("<I", buf, link, ifd)
        desc = description.encode() + b"\0" if i == 0 and description else b""
        tags = 13 + bool(desc)
        pixels = data[t, z, c].tobytes()
        at = ifd + 2 + 12 * tags + 4 + len(pixels)
        meta = json.dumps({"ChannelIndex": c, "SliceIndex": z, "FrameIndex": t, "PositionIndex": 0,
                           "Channel": summary["ChNames"][c], "Width": width, "Height": height,
                           "PixelType": "GRAY16", "PixelSizeUm": 0.65,
                           "ElapsedTime-ms": 500.0 * t}).encode() + b"\0"
        entry = [(256, 4, width), (257, 4, height), (258, 3, 16), (259, 3, 1), (262, 3, 1)]
        if desc:
            entry.append((270, 2, len(desc), at + 16 + len(meta)))
        entry += [(273, 4, ifd + 2 + 12 * tags + 4), (277, 3, 1), (278, 4, height), (279, 4, len(pixels)),
                  (282, 5, 1, at), (283, 5, 1, at + 8), (296, 3, 3), (51123, 2, len(meta), at + 16)]
        buf += struct.pack("<H", tags)
        for tag, kind, *value in entry:
            count, value = value if len(value) == 2 else (1, value[0])
            buf += struct.pack("<HHIHH" if kind == 3 else "<HHII", tag, kind, count, value, *([0] if kind == 3 else []))
        link = len(buf)
        pixel_offsets[name].append(len(buf) + 4)
        buf += bytes(4) + pixels + struct.pack("<4I", 15384, 1, 15384, 1) + meta + desc
        entries.append([c, z, t, 0, ifd])
    if ndtiff:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(buf)
        return
    entries = index(entries, len(buf)) if index else entries
    buf += bytes(len(buf) % 2)
    struct.pack_into("<I", buf, 12, len(buf))
    buf += struct.pack("<II", 3453623, len(entries)) + b"".join(struct.pack("<5I", *e) for e in entries)
    display = display or json.dumps([{"Color": -16776961, "Min": 0, "Max": 4095, "Gamma": 1.0}] * c_).encode()
    struct.pack_into("<I", buf, 20, len(buf))
    buf += struct.pack("<II", 347834724, len(display)) + display
    comments = json.dumps({"Summary": "", "ImageComments": {}}).encode()
    struct.pack_into("<I", buf, 28, len(buf))
    buf += struct.pack("<II", 84720485, len(comments)) + comments
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(buf)
    return path

def reference(name, path, data, order, missing=()):
    with tifffile.TiffFile(path) as f:
        assert f.is_micromanager
        series = f.series[0]
        assert series.kind == "mmstack", series.kind
        a = tzcyx(series.asarray(), series.axes)
        # the pages hold the planes written, as any TIFF reader reads them,
        # and tifffile's series places them where they were written from
        pages = [p.asarray() for p in f.pages]
        assert all(np.array_equal(p, data[i]) for p, i in zip(pages, order))
        expected = data.copy()
        for i in missing:
            # tifffile warns that it zeroes an image the index map places
            # past the end of the file, but reads the file's first bytes
            # into it (a frame at offset 0 of 0 bytes): zeros, as it means
            expected[i] = a[i] = 0
        assert np.array_equal(a, expected)
        mm = f.micromanager_metadata
        s = mm["Summary"]
        first = f.pages.first
        image_metadata = first.tags[51123].value
        assert isinstance(image_metadata, dict), image_metadata
        original = {"Summary": s, "DisplaySettings": mm.get("DisplaySettings"),
                    "Comments": mm.get("Comments"), "ImageMetadata": image_metadata,
                    "Description": first.tags[270].value if 270 in first.tags else None}
    out[name] = {"shape": list(a.shape), "axes": series.axes, "kind": series.kind,
                 "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(),
                 "channel_names": s["ChNames"], "pixel_um": s["PixelSize_um"],
                 "z_um": s["z-step_um"], "interval_ms": s["Interval_ms"],
                 "original": original}

def pixels(t, z, c, y, x):
    return rng.integers(0, 4095, (t, z, c, y, x)).astype(np.uint16)

def imagej(t, z, c):
    return f"ImageJ=1.43c\nimages={t * z * c}\nchannels={c}\nslices={z}\nframes={t}\nhyperstack=true\nmode=composite\n"

# (a) Micro-Manager's usual order (slices outside channels: C fastest),
# with the ImageJ description it also writes
data = pixels(2, 3, 2, 24, 32)
order = [(t, z, c) for t in range(2) for z in range(3) for c in range(2)]
reference("tzc.tif", micromanager("tzc.tif", data, order,
    summary_of(data, ["DAPI", "GFP"]), imagej(2, 3, 2)), data, order)

# (b) channels outside slices (Z fastest), the index map's rows shuffled,
# and an OME-XML whose DimensionOrder disagrees: tifffile places the pages
# by the index map
data = pixels(3, 4, 2, 20, 28)
order = [(t, z, c) for t in range(3) for c in range(2) for z in range(4)]
ome = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
       '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="28" SizeY="20" '
       'SizeZ="4" SizeC="2" SizeT="3"><Channel ID="Channel:0:0"/><Channel ID="Channel:0:1"/></Pixels></Image></OME>')
shuffle = lambda entries, end: [entries[i] for i in rng.permutation(len(entries))]
reference("slices_inner.tif", micromanager("slices_inner.tif", data, order,
    summary_of(data, ["Cy5", "mCherry"], SlicesFirst=False, TimeFirst=True, **{"z-step_um": 0.3, "PixelSize_um": 0.108}),
    ome, index=shuffle), data, order)

# an image the index map places past the end of the file (truncated):
# that plane is zeros
data = pixels(2, 2, 1, 16, 16)
order = [(t, z, 0) for t in range(2) for z in range(2)]
def lose_last(entries, end):
    entries[-1][4] = end + 4096
    return entries
# display settings cut short, as Micro-Manager often leaves them: not JSON,
# which tifffile leaves out
reference("missing_plane.tif", micromanager("missing_plane.tif", data, order,
    summary_of(data, ["BF"]), index=lose_last, display=b'[{"Color": -16776961, "Mi'),
    data, order, [order[-1]])

# a summary declaring far more frames than the index map lists (the other
# files of a dataset): the index map's extent
data = pixels(2, 1, 3, 16, 24)
order = [(t, 0, c) for t in range(2) for c in range(3)]
reference("subset.tif", micromanager("subset.tif", data, order,
    summary_of(data, ["A", "B", "C"], Frames=2**31 - 1)), data, order)

# a dataset in three files, as Micro-Manager splits an acquisition (each
# file with the summary and its own index map), beside a file of another
# dataset: tifffile reads all three from the first, or from any of them
data = pixels(4, 2, 2, 16, 20)
order = [(t, z, c) for t in range(4) for z in range(2) for c in range(2)]
os.makedirs(os.path.join(folder, "dataset"))
s = summary_of(data, ["DAPI", "GFP"])
names = [f"dataset/acquisition_MMStack_Pos0{k}.ome.tif" for k in ("", "_1", "_2")]
for name, part in zip(names, (order[:8], order[8:12], order[12:])):
    micromanager(name, data, part, s)
micromanager("dataset/other_MMStack_Pos0.ome.tif", pixels(1, 1, 1, 8, 8), [(0, 0, 0)],
             summary_of(pixels(1, 1, 1, 8, 8), ["A"], Prefix="other", Frames=3))
for name in names[::2]:
    with tifffile.TiffFile(os.path.join(folder, name)) as f:
        series = f.series[0]
        assert series.kind == "mmstack" and len(series.pages) == 16, series
        a = tzcyx(series.asarray(), series.axes)
        assert np.array_equal(a, data)
out["dataset"] = {"files": names, "shape": list(a.shape),
                  "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}

# an NDTiff dataset in two files (headers of version 3 and 2), listed by
# the NDTiff.index beside them: coordinates time, channel (by name) and z,
# in acquisition order (z fastest), the first image listed twice (the
# later wins)
data = pixels(3, 2, 2, 12, 18)
order = [(t, z, c) for t in range(3) for c in range(2) for z in range(2)]
os.makedirs(os.path.join(folder, "nd"))
s = summary_of(data, ["DAPI", "GFP"])
nd_names = ["nd/acq_NDTiffStack.tif", "nd/acq_NDTiffStack_1.tif"]
index = b""
for name, part, version in zip(nd_names, (order[:8], order[8:]), (3, 2)):
    micromanager(name, data, part, s, ndtiff=version)
    for (t, z, c), offset in zip(part, pixel_offsets[name]):
        coordinates = json.dumps({"time": t, "channel": ["DAPI", "GFP"][c], "z": z}).encode()
        filename = os.path.basename(name).encode()
        index += struct.pack("<I", len(coordinates)) + coordinates
        index += struct.pack("<I", len(filename)) + filename
        index += struct.pack("<IiiiiIii", offset, 18, 12, 1, 0, 0, 0, 0)
first_entry = index[:index.index(b"acq_NDTiffStack.tif") + len(b"acq_NDTiffStack.tif") + 32]
with open(os.path.join(folder, "nd", "NDTiff.index"), "wb") as f:
    f.write(index + first_entry)
with tifffile.TiffFile(os.path.join(folder, nd_names[1])) as f:
    assert f.is_ndtiff
    series = f.series[0]
    assert series.kind == "ndtiff", series.kind
    axes = series.axes
    a = tzcyx(series.asarray(), axes)
    assert np.array_equal(a, data)
    nd_summary = f.micromanager_metadata["Summary"]
out["ndtiff"] = {"files": nd_names, "shape": list(a.shape), "axes": axes, "summary": nd_summary,
                 "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}

# hostile indexes beside the dataset's first file: naming a file outside
# its folder, coordinates of 2^31 bytes, an image past the end of its file,
# an index cut inside an entry, two images 2^64 - 1 frames apart,
# forty entries of 4000-byte names (over a 64 KiB metadata limit)
def entry(filename, offset, coordinates=b'{"time": 0}', length=None):
    return (struct.pack("<I", len(coordinates) if length is None else length) + coordinates
            + struct.pack("<I", len(filename)) + filename
            + struct.pack("<IiiiiIii", offset, 18, 12, 1, 0, 0, 0, 0))
good = pixel_offsets[nd_names[0]][0]
for case, index in [
    ("nd_outside", entry(b"../tzc.tif", good)),
    ("nd_huge_coordinates", entry(b"acq_NDTiffStack.tif", good, length=2**31)),
    ("nd_past_end", entry(b"acq_NDTiffStack.tif", 2**32 - 100)),
    ("nd_cut", entry(b"acq_NDTiffStack.tif", good)[:-7]),
    ("nd_far_apart", entry(b"acq_NDTiffStack.tif", good, b'{"time": -9223372036854775808}')
     + entry(b"acq_NDTiffStack.tif", good, b'{"time": 9223372036854775807}')),
    ("nd_long_names", b"".join(entry(b"x" * 4000, good, b'{"time": %d}' % t) for t in range(40))),
]:
    os.makedirs(os.path.join(folder, case))
    with open(os.path.join(folder, nd_names[0]), "rb") as f:
        tiff = f.read()
    with open(os.path.join(folder, case, "acq_NDTiffStack.tif"), "wb") as f:
        f.write(tiff)
    with open(os.path.join(folder, case, "NDTiff.index"), "wb") as f:
        f.write(index)

# a summary that is not an acquisition's (no Frames): tifffile reads the
# ImageJ description instead
data = pixels(1, 3, 2, 16, 16)
order = [(0, z, c) for z in range(3) for c in range(2)]
s = summary_of(data, ["A", "B"])
del s["Frames"]
path = micromanager("no_frames.tif", data, order, s, imagej(1, 3, 2))
with tifffile.TiffFile(path) as f:
    series = f.series[0]
    assert f.is_micromanager and series.kind == "imagej", series.kind
    a = tzcyx(series.asarray(), series.axes)
out["no_frames.tif"] = {"shape": list(a.shape), "axes": series.axes, "kind": series.kind,
                        "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}

# hostile: an index map counting 2^31 - 1 images; one whose every image is
# past the end of the file; one whose index map is past the end
data = pixels(1, 2, 1, 8, 8)
order = [(0, z, 0) for z in range(2)]
s = summary_of(data, ["A"])
path = micromanager("hostile_count.bin", data, order, s)
raw = bytearray(open(path, "rb").read())
at = struct.unpack_from("<I", raw, 12)[0]
struct.pack_into("<I", raw, at + 4, 2**31 - 1)
open(path, "wb").write(raw)
micromanager("hostile_offsets.bin", data, order, s,
             index=lambda entries, end: [e[:4] + [end + 10**6 + i] for i, e in enumerate(entries)])
path = micromanager("hostile_index.bin", data, order, s)
raw = bytearray(open(path, "rb").read())
struct.pack_into("<I", raw, 12, len(raw) - 4)
open(path, "wb").write(raw)
print(json.dumps(out))
"#;

/// Micro-Manager (MMStack) files, written by this test byte by byte as
/// Micro-Manager's MultipageTiffWriter lays them out (some with the ImageJ
/// or OME-XML description Micro-Manager also writes): images placed by
/// the index map (in Micro-Manager's usual order, Z fastest with the rows
/// shuffled, one image past the end of the file, a summary declaring more
/// frames than the file holds), equal to tifffile's `mmstack` series; the
/// summary's channel names and pixel, Z and time steps. A summary that is
/// not an acquisition's gives way to the ImageJ description, as in
/// tifffile. The original metadata is Micro-Manager's JSON (summary,
/// display settings, a truncated one left out, comments, the first image's
/// metadata) as tifffile reads it. Hostile index maps are refused with 4xx.
///
/// Imported from disk (`pentascope ingest`): an MMStack dataset split over
/// three files, from its first file, its last, or its folder (the others
/// not imported again); an NDTiff v3 dataset of two files with its
/// `NDTiff.index`, from either file, channel names from the index's
/// channel coordinate; hostile NDTiff indexes refused with the reason.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn micromanager_files_read_as_tifffile_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(MICROMANAGER, &[dir.path()]);
    let server = Server::start();
    for (name, want) in reference.as_object().unwrap() {
        if name == "dataset" || name == "ndtiff" {
            continue;
        }
        let id = server.upload_ok(name, std::fs::read(dir.path().join(name)).unwrap());
        let meta = server.metadata(&id);
        let mmstack = want["kind"] == "mmstack";
        let flavour = if mmstack { "micromanager" } else { "imagej" };
        assert_eq!(meta["flavour"], flavour, "{name} ({})", want["kind"]);
        assert_eq!(meta["shape"], want["shape"], "{name} ({})", want["axes"]);
        assert_eq!(
            server.samples_sha256(&id),
            want["sha256"].as_str().unwrap(),
            "{name}: samples"
        );
        if !mmstack {
            continue;
        }
        assert_eq!(meta["channel_names"], want["channel_names"], "{name}");
        let p = &meta["physical_sizes"];
        for (axis, key, unit) in [
            ("x", "pixel_um", "micrometer"),
            ("y", "pixel_um", "micrometer"),
            ("z", "z_um", "micrometer"),
            ("t", "interval_ms", "millisecond"),
        ] {
            let got = p[axis]["value"].as_f64().unwrap_or(f64::NAN);
            assert!(
                close(got, want[key].as_f64().unwrap(), 1e-9),
                "{name} {axis}: {p}"
            );
            assert_eq!(p[axis]["unit"], unit, "{name} {axis}");
        }
        // Micro-Manager's JSON, as tifffile's micromanager_metadata and the
        // first page's MicroManagerMetadata tag have it, with the
        // description Micro-Manager also wrote
        let original = server.get(&format!("/images/{id}/original-metadata"));
        assert_eq!(original.status, 200, "{name}");
        assert_eq!(original.header("x-metadata-format"), "micromanager");
        assert_eq!(original.content_type, "application/json");
        let document = original.json().unwrap();
        let want_original = &want["original"];
        for key in ["Summary", "DisplaySettings", "Comments", "ImageMetadata"] {
            assert_eq!(document[key], want_original[key], "{name}: {key}");
        }
        // as written; tifffile strips the trailing newline
        assert_eq!(
            document["Description"].as_str().map(str::trim_end),
            want_original["Description"].as_str(),
            "{name}"
        );
        let description_format = match name.as_str() {
            "tzc.tif" => json!("imagej"),
            "slices_inner.tif" => json!("ome-xml"),
            _ => Value::Null,
        };
        assert_eq!(document["DescriptionFormat"], description_format, "{name}");
        let warnings = meta["warnings"].to_string();
        match name.as_str() {
            "missing_plane.tif" => assert!(warnings.contains("zeros"), "{name}: {warnings}"),
            "subset.tif" => assert!(warnings.contains("Frames 2147483647"), "{name}: {warnings}"),
            _ => {}
        }
    }
    // a dataset of three files, imported from disk: from its first file,
    // from its last, and as a folder, where the other two are not imported
    // again (nor is the other dataset's file read with them)
    let dataset = &reference["dataset"];
    let files: Vec<PathBuf> = dataset["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| dir.path().join(name.as_str().unwrap()))
        .collect();
    for (from, imports) in [
        (files[0].clone(), 1),
        (files[2].clone(), 1),
        (dir.path().join("dataset"), 2),
    ] {
        let data_dir = tempfile::tempdir().unwrap();
        let out = run_cli(data_dir.path(), &[], &["ingest", from.to_str().unwrap()]);
        let ids: Vec<&str> = out
            .split_whitespace()
            .filter(|word| word.starts_with("image_"))
            .collect();
        assert_eq!(ids.len(), imports, "{}: {out}", from.display());
        if imports == 2 {
            assert!(
                out.contains("imported 2 of 4 files (2 read with another)"),
                "{out}"
            );
        }
        let server = Server::start_in(data_dir.path());
        let meta = server.metadata(ids[0]);
        assert_eq!(meta["flavour"], "micromanager", "{}", from.display());
        assert_eq!(meta["shape"], dataset["shape"], "{}", from.display());
        assert_eq!(
            server.samples_sha256(ids[0]),
            dataset["sha256"].as_str().unwrap(),
            "{}",
            from.display()
        );
        assert_eq!(meta["warnings"], json!([]), "{}", from.display());
    }

    // an NDTiff dataset of two files, from either file: tifffile's array,
    // with the channel coordinate's names as channel names
    let nd = &reference["ndtiff"];
    for file in nd["files"].as_array().unwrap() {
        let path = dir.path().join(file.as_str().unwrap());
        let data_dir = tempfile::tempdir().unwrap();
        let out = run_cli(data_dir.path(), &[], &["ingest", path.to_str().unwrap()]);
        let id = out
            .split_whitespace()
            .find(|word| word.starts_with("image_"))
            .unwrap_or_else(|| panic!("{out}"));
        let server = Server::start_in(data_dir.path());
        let meta = server.metadata(id);
        assert_eq!(meta["flavour"], "ndtiff", "{file}");
        assert_eq!(meta["shape"], nd["shape"], "{file}");
        assert_eq!(meta["channel_names"], json!(["DAPI", "GFP"]), "{file}");
        assert_eq!(
            server.samples_sha256(id),
            nd["sha256"].as_str().unwrap(),
            "{file}"
        );
        assert_eq!(meta["warnings"], json!([]), "{file}");
        let original = server.get(&format!("/images/{id}/original-metadata"));
        assert_eq!(original.header("x-metadata-format"), "micromanager");
        assert_eq!(original.json().unwrap()["Summary"], nd["summary"], "{file}");
    }

    // hostile indexes: refused with the reason, nothing imported
    for (case, words) in [
        ("nd_outside", "not a file of its folder"),
        ("nd_huge_coordinates", "2147483648 bytes of coordinates"),
        ("nd_past_end", "run past the end"),
        ("nd_cut", "truncated"),
        ("nd_far_apart", "far more planes than it lists"),
    ] {
        let data_dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(case).join("acq_NDTiffStack.tif");
        let out = Command::new(env!("CARGO_BIN_EXE_pentascope"))
            .args(["ingest", path.to_str().unwrap(), "--data-dir"])
            .arg(data_dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{case}: {stdout}");
        assert!(
            stdout.contains("FAILED") && stdout.contains(words),
            "{case}: {stdout}"
        );
    }

    // many entries of long names add up: bounded by the metadata limit
    let data_dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nd_long_names").join("acq_NDTiffStack.tif");
    let out = Command::new(env!("CARGO_BIN_EXE_pentascope"))
        .args(["ingest", path.to_str().unwrap(), "--data-dir"])
        .arg(data_dir.path())
        .env("PENTASCOPE_MAX_METADATA_BYTES", "65536")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAILED") && stdout.contains("maximum of 65536 bytes of metadata"),
        "{stdout}"
    );

    // an index map counting more images than the page limit, one whose
    // images all lie past the end of the file, one itself past the end
    for (name, status, words) in [
        ("hostile_count.bin", 413, "2147483647 images"),
        ("hostile_offsets.bin", 422, "0 of the image's 2 planes"),
        ("hostile_index.bin", 422, "truncated"),
    ] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        let refused = server.upload(name, bytes, None);
        let message = refused.error(&[status]).unwrap();
        assert!(message.contains(words), "{name}: {message}");
    }
}

/// The files of the core reader's tifffile reference script, which the
/// shared corpus lacks: JPEG in every layout (strips, tiles, JPEGTables,
/// YCbCr 4:2:0/4:2:2/4:4:4, RGB as stored, Pillow's progressive and
/// restart-marker streams), an ImageJ hyperstack stored past-4-GB style,
/// a SCIFIO hyperstack, tifffile's shaped `QQQYX`, pages without
/// PhotometricInterpretation, 1-, 2-, 4- and 12-bit packed samples, and the
/// corpus's SVS.
const TIFFFILE_REFERENCE: &str =
    include_str!("../../../pentascope-tiff/tests/tifffile_reference.py");

/// Each of those files uploaded: its shape, sample type and every sample
/// equal to tifffile's array (JPEG included: both decode with
/// libjpeg-turbo).
#[test]
#[ignore = "needs a Python venv with tifffile, imagecodecs and Pillow; run with --ignored (.ci/run does)"]
fn flavours_and_codecs_upload_exactly_as_tifffile_reads_them() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let svs = fixtures_dir().join("real/svs_CMU-1-Small-Region_tiled_jpeg.svs");
    // it writes manifest.json and prints a summary
    run_printing(TIFFFILE_REFERENCE, &[dir.path(), &svs]);
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let server = Server::start();
    let (mut jpeg, mut svs) = (0, 0);
    for entry in &manifest {
        let path = PathBuf::from(entry["file"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let id = server.upload_ok(&name, std::fs::read(&path).unwrap());
        let meta = server.metadata(&id);
        assert_eq!(meta["shape"], entry["shape"], "{name}");
        assert_eq!(meta["dtype"], entry["dtype"], "{name}");
        let expected = std::fs::read(entry["expected"].as_str().unwrap()).unwrap();
        let want: String = sha2::Sha256::digest(&expected)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(server.samples_sha256(&id), want, "{name}: samples");
        jpeg += usize::from(entry["compression"] == 7);
        if entry["kind"] == "svs" {
            svs += 1;
            assert_eq!(meta["flavour"], "svs", "{name}");
        }
    }
    assert!(
        manifest.len() >= 28 && jpeg >= 17 && svs >= 3,
        "{} files",
        manifest.len()
    );
}

/// An OME-TIFF written by tifffile with named channels, colours and
/// wavelengths, and those channels as tifffile's `xml2dict` reads them
/// back: colours as `#RRGGBB` from OME's signed RGBA, wavelengths in
/// nanometres (OME's default unit).
const OME_CHANNELS: &str = r##"
import json, os, sys, numpy as np, tifffile
path = os.path.join(sys.argv[1], "channels.ome.tif")
tifffile.imwrite(path, np.arange(3 * 8 * 9, dtype=np.uint16).reshape(3, 8, 9), ome=True,
                 metadata={"axes": "CYX", "Channel": {
                     "Name": ["DAPI", "GFP", "Cy5"], "Color": [-16776961, 16711935, 65535],
                     "ExcitationWavelength": [405.0, 488.0, 640.0],
                     "ExcitationWavelengthUnit": ["nm", "nm", "µm"],
                     "EmissionWavelength": [450.0, 510.0, 670.0]}})
with tifffile.TiffFile(path) as f:
    channels = tifffile.xml2dict(f.ome_metadata)["OME"]["Image"]["Pixels"]["Channel"]
def colour(c):
    rgba = c & 0xFFFFFFFF
    return "#%02X%02X%02X" % (rgba >> 24, (rgba >> 16) & 255, (rgba >> 8) & 255)
units = {"nm": "nanometer", "µm": "micrometer"}
print(json.dumps([{"name": c["Name"], "color": colour(c["Color"]),
                   "excitation": [c["ExcitationWavelength"], units[c.get("ExcitationWavelengthUnit", "nm")]],
                   "emission": [c["EmissionWavelength"], units[c.get("EmissionWavelengthUnit", "nm")]]}
                  for c in channels]))
"##;

/// OME channel names, colours and excitation and emission wavelengths
/// (with their units, as NGFF names them) as tifffile reads them; the
/// colours are the default rendering's.
#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn ome_channel_names_colours_and_wavelengths_equal_tifffiles() {
    let dir = tempfile::tempdir().unwrap();
    let want = run(OME_CHANNELS, &[dir.path()]);
    let want = want.as_array().unwrap();
    let server = Server::start();
    let bytes = std::fs::read(dir.path().join("channels.ome.tif")).unwrap();
    let id = server.upload_ok("channels.ome.tif", bytes);
    let meta = server.metadata(&id);
    assert_eq!(want.len(), 3);
    for (k, channel) in want.iter().enumerate() {
        assert_eq!(meta["channel_names"][k], channel["name"], "{meta}");
        let got = &meta["acquisition"]["channels"][k];
        assert_eq!(got["color"], channel["color"], "{got}");
        assert_eq!(
            meta["rendering"]["channels"][k]["color"],
            channel["color"].as_str().unwrap().trim_start_matches('#'),
            "{meta}"
        );
        for (key, field) in [
            ("excitation", "excitation_wavelength"),
            ("emission", "emission_wavelength"),
        ] {
            assert_eq!(
                got[field],
                json!({"value": channel[key][0], "unit": channel[key][1]}),
                "{got}"
            );
        }
    }
}
