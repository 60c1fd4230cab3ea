//! `/render` and `/thumbnail` against a rendering of the same samples with
//! NumPy and Pillow, computed by this test: composites, greyscale,
//! projections, regions resized with Pillow's `BOX` filter, and, on a plane
//! over 2048 pixels on a side, pyramid tiles and scaled regions read from
//! the stored levels (means of 2^k × 2^k blocks, computed here from the
//! full-resolution samples), within ±1 per 8-bit value. The
//! samples are the image's download, whose sha256 equals tifffile's
//! canonical array (expected.json).
//!
//! Needs a Python with numpy and Pillow (`PENTASCOPE_TEST_PYTHON`, default
//! the repository's `.venv`), so ignored by a plain `cargo test`; `.ci/run`
//! runs it with `--ignored`.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::util::{fixtures_dir, FixtureSet, Server};

const REFERENCE: &str = r#"
import json, sys, numpy as np
from PIL import Image
arr = np.load(sys.argv[1])
cases = json.load(open(sys.argv[2]))

def level_of(plane, k):
    # level k of a block-aligned crop: means of 2^k blocks over the pixels
    # inside the plane, rounded half away from zero for integer types
    if k == 0:
        return plane.astype(np.float64)
    f = 2 ** k
    H, W = plane.shape
    oh, ow = -(-H // f), -(-W // f)
    sums = np.zeros((oh * f, ow * f)); sums[:H, :W] = plane
    ones = np.zeros((oh * f, ow * f)); ones[:H, :W] = 1
    m = sums.reshape(oh, f, ow, f).sum(axis=(1, 3)) / ones.reshape(oh, f, ow, f).sum(axis=(1, 3))
    if np.issubdtype(arr.dtype, np.integer):
        m = np.sign(m) * np.floor(np.abs(m) + 0.5)
    return m.astype(arr.dtype).astype(np.float64)

out = []
for case in cases:
    t, z = case["t"], case["z"]
    k = case.get("level", 0)
    f = 2 ** k
    x, y, w, h = case["region"]
    # the region's box at level k, and the level's pixels it touches
    bx0, by0, bx1, by1 = x / f, y / f, (x + w) / f, (y + h) / f
    cx0, cy0, cx1, cy1 = x // f, y // f, -(-(x + w) // f), -(-(y + h) // f)
    def source(z, c):
        return level_of(arr[t, z, c, cy0 * f:cy1 * f, cx0 * f:cx1 * f], k)
    planes = []
    for c, start, end, color in case["layers"]:
        if case["projection"]:
            kind, z0, z1 = case["projection"]
            stack = np.stack([source(zz, c) for zz in range(z0, z1 + 1)])
            data = {"intmax": stack.max(axis=0), "intmean": stack.mean(axis=0), "intsum": stack.sum(axis=0)}[kind]
        else:
            data = source(z, c)
        v = np.clip((data - start) / (end - start), 0, 1)
        planes.append((v, np.array(color, dtype=np.float64)))
    if case["mode"] == "g":
        picture = np.round(planes[0][0] * 255)
    else:
        rgb = sum(v[..., None] * color / 255 for v, color in planes)
        picture = np.round(np.clip(rgb, 0, 1) * 255)
    box = (bx0 - cx0, by0 - cy0, bx1 - cx0, by1 - cy0)
    H, W = picture.shape[:2]
    if case["out"] != [W, H] or box != (0, 0, W, H):
        image = Image.fromarray(picture.astype(np.uint8))
        picture = np.asarray(image.resize(tuple(case["out"]), Image.BOX, box=box)).astype(np.float64)
    out.append(picture.astype(np.uint8).reshape(-1).tolist())
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    crate::util::python::python_with("numpy, PIL")
}

/// A decoded 8-bit PNG: width, height, samples per pixel, samples.
fn decode(bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0u8; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Grayscale => 1,
        other => panic!("PNG colour type {other:?}"),
    };
    let (w, h) = (info.width as usize, info.height as usize);
    let pixels = (0..h)
        .flat_map(|y| buf[y * info.line_size..y * info.line_size + w * channels].to_vec())
        .collect();
    (w, h, channels, pixels)
}

/// One rendering: the query, and what the reference needs to know.
struct Case {
    query: String,
    reference: Value,
}

/// Image `id`'s samples as `.npy` (its download), saved in `dir` for the
/// reference: the file and its bytes.
fn save_samples(server: &Server, id: &str, dir: &std::path::Path) -> (PathBuf, Vec<u8>) {
    let download = server
        .get(&format!("/images/{id}/download?format=npy"))
        .body;
    let npy = dir.join("image.npy");
    std::fs::write(&npy, &download).unwrap();
    (npy, download)
}

fn check_file(server: &Server, set: &FixtureSet, file: &str, cases: impl Fn(&Value) -> Vec<Case>) {
    let expected = set.expected(file);
    let id = server.upload_ok(file, set.read(file));
    let dir = tempfile::tempdir().unwrap();
    let (npy, download) = save_samples(server, &id, dir.path());
    let data_at = usize::from(u16::from_le_bytes([download[8], download[9]])) + 10;
    let digest: String = Sha256::digest(&download[data_at..])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest, expected["sha256_tzcyx"],
        "{file}: tifffile's samples"
    );
    let meta = server.metadata(&id);
    let cases = cases(&meta);
    let references: Vec<Value> = cases.iter().map(|c| c.reference.clone()).collect();
    let spec = dir.path().join("cases.json");
    std::fs::write(&spec, serde_json::to_vec(&references).unwrap()).unwrap();
    let want: Vec<Vec<u8>> = serde_json::from_value(crate::util::python::run_json(
        &python(),
        REFERENCE,
        &[npy.display().to_string(), spec.display().to_string()],
    ))
    .unwrap();
    for (case, want) in cases.iter().zip(want) {
        let resp = server.get(&format!("/render?image_id={id}&{}", case.query));
        assert_eq!(
            resp.status,
            200,
            "{file} {}: {}",
            case.query,
            resp.snippet()
        );
        let (w, h, channels, got) = decode(&resp.body);
        let out = &case.reference["out"];
        assert_eq!(
            [w as u64, h as u64],
            [out[0].as_u64().unwrap(), out[1].as_u64().unwrap()],
            "{file} {}: size",
            case.query
        );
        assert_eq!(
            got.len(),
            want.len(),
            "{file} {}: {channels} channels",
            case.query
        );
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (i16::from(*a) - i16::from(*b)).abs())
            .max()
            .unwrap_or(0);
        assert!(worst <= 1, "{file} {}: off by {worst}", case.query);
    }
}

/// The default layers of the metadata's rendering, as the reference wants
/// them: `[channel, start, end, [r, g, b]]`.
fn default_layers(meta: &Value) -> Vec<Value> {
    meta["rendering"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(c, ch)| {
            let hex = ch["color"].as_str().unwrap();
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
            json!([
                c,
                ch["window"]["start"],
                ch["window"]["end"],
                [byte(0), byte(2), byte(4)]
            ])
        })
        .collect()
}

#[test]
#[ignore = "needs a Python venv with numpy and Pillow; run with --ignored (.ci/run does)"]
fn renderings_equal_numpy_and_pillow() {
    let fixtures = fixtures_dir();
    let tiff = FixtureSet::load(&fixtures, "tiff");
    let real = FixtureSet::load(&fixtures, "real");
    let server = Server::start();

    // T=2 Z=4 C=3, 36×52 uint16
    check_file(&server, &tiff, "ome_tczyx_u16.ome.tif", |meta| {
        let defaults = default_layers(meta);
        let whole = json!([0, 0, 52, 36]);
        let case = |query: &str, reference: Value| Case {
            query: query.to_string(),
            reference,
        };
        vec![
            case(
                "time=1&z=2",
                json!({"t": 1, "z": 2, "projection": null, "layers": defaults, "mode": "c", "region": whole, "out": [52, 36]}),
            ),
            case(
                "z=1&c=1|100:3000$FF0000,2|0:5000$00FF80,-3",
                json!({"t": 0, "z": 1, "projection": null, "mode": "c", "region": whole, "out": [52, 36],
                       "layers": [[0, 100, 3000, [255, 0, 0]], [1, 0, 5000, [0, 255, 128]]]}),
            ),
            case(
                "z=3&c=2|50:4000$FFFFFF,3$0000FF&m=g",
                json!({"t": 0, "z": 3, "projection": null, "mode": "g", "region": whole, "out": [52, 36],
                       "layers": [[1, 50, 4000, [255, 255, 255]]]}),
            ),
            case(
                "time=1&p=intmax",
                json!({"t": 1, "z": 0, "projection": ["intmax", 0, 3], "layers": defaults, "mode": "c", "region": whole, "out": [52, 36]}),
            ),
            case(
                "p=intmean|1:2&c=1|0:4000$FF00FF,3|0:9000$00FF00",
                json!({"t": 0, "z": 0, "projection": ["intmean", 1, 2], "mode": "c", "region": whole, "out": [52, 36],
                       "layers": [[0, 0, 4000, [255, 0, 255]], [2, 0, 9000, [0, 255, 0]]]}),
            ),
            case(
                "p=intsum|0:3&c=1|0:40000$FFFFFF",
                json!({"t": 0, "z": 0, "projection": ["intsum", 0, 3], "mode": "c", "region": whole, "out": [52, 36],
                       "layers": [[0, 0, 40000, [255, 255, 255]]]}),
            ),
            case(
                "z=2&region=7,5,30,20",
                json!({"t": 0, "z": 2, "projection": null, "layers": defaults, "mode": "c", "region": [7, 5, 30, 20], "out": [30, 20]}),
            ),
            case(
                "z=2&region=7,5,30,20&size=13",
                json!({"t": 0, "z": 2, "projection": null, "layers": defaults, "mode": "c", "region": [7, 5, 30, 20], "out": [13, 9]}),
            ),
            case(
                "z=1&size=100,70",
                json!({"t": 0, "z": 1, "projection": null, "layers": defaults, "mode": "c", "region": whole, "out": [100, 70]}),
            ),
        ]
    });

    // 9600×9600 uint16, one channel: regions, sizes and tiles of a plane
    // larger than 2048 on a side
    check_file(
        &server,
        &real,
        "em_9600x9600_deflate_rps1_u16.tif",
        |meta| {
            let defaults = default_layers(meta);
            let levels = meta["levels"].as_array().unwrap();
            assert_eq!(levels.len(), 6, "9600 → 300 in five halvings: {levels:?}");
            let case = |query: &str, reference: Value| Case {
                query: query.to_string(),
                reference,
            };
            // a scaled region reads the coarsest level with a pixel per
            // output pixel: 900 / 300 = 3 → level 1 (its box may start
            // between level pixels); the whole plane at 256 → level 5
            let region = |query: &str, level: u32, region: [u64; 4], out: [u64; 2]| {
                case(
                    query,
                    json!({"t": 0, "z": 0, "projection": null, "layers": defaults, "mode": "c",
                           "level": level, "region": region, "out": out}),
                )
            };
            vec![
                region(
                    "region=4000,5000,900,700&size=300",
                    1,
                    [4000, 5000, 900, 700],
                    [300, 233],
                ),
                region(
                    "region=4001,5003,900,700&size=300",
                    1,
                    [4001, 5003, 900, 700],
                    [300, 233],
                ),
                region(
                    "region=123,77,4000,3000&size=640",
                    2,
                    [123, 77, 4000, 3000],
                    [640, 480],
                ),
                region("size=256", 5, [0, 0, 9600, 9600], [256, 256]),
                region("tile=0,3,5", 0, [1536, 2560, 512, 512], [512, 512]),
                region("tile=2,4,1", 2, [8192, 2048, 1408, 2048], [352, 512]),
                region("tile=5,0,0", 5, [0, 0, 9600, 9600], [300, 300]),
            ]
        },
    );

    // thumbnails: the longer side is `size`, middle Z, default rendering
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", tiff.read("ome_tczyx_u16.ome.tif"));
    let thumb = server.get(&format!("/thumbnail?image_id={id}&size=104"));
    let (w, h, channels, _) = decode(&thumb.body);
    assert_eq!((w, h, channels), (104, 72, 3));
    let same = server.get(&format!("/render?image_id={id}&z=2&size=104,72"));
    assert_eq!(thumb.body, same.body, "the thumbnail is the middle plane");
}

/// Pillow's reading of 8-bit slices, and NumPy's windowing of the samples
/// they come from: `[(mismatched pixels, pixels)]` per slice.
const SLICES_IN_PILLOW: &str = r#"
import json, sys, numpy as np
from PIL import Image
arr = np.load(sys.argv[1])
out = []
for path, z, lo, hi in json.load(open(sys.argv[2])):
    plane = arr[0, z, 0].astype(np.float64)
    want = np.clip(np.floor((plane - lo) * (255.0 / (hi - lo)) + 0.5), 0, 255)
    with Image.open(path) as im:
        got = np.asarray(im)
    out.append([int((got != want).sum()) if got.shape == want.shape else -1, int(want.size)])
print(json.dumps(out))
"#;

/// The type of the first deflate block of a PNG's image data (0 stored, 1
/// fixed codes, 2 codes of its own) and, for the last, how many
/// literal/length and distance codes its header declares.
fn first_deflate_block(png: &[u8]) -> (u8, u16, u16) {
    let idat = png
        .windows(4)
        .position(|w| w == b"IDAT")
        .expect("an IDAT chunk")
        + 4;
    // after the two bytes of zlib's header, least significant bit first
    let bits = u32::from_le_bytes(png[idat + 2..idat + 6].try_into().unwrap());
    let kind = ((bits >> 1) & 3) as u8;
    let (lengths, distances) = (
        257 + ((bits >> 3) & 31) as u16,
        1 + ((bits >> 8) & 31) as u16,
    );
    (kind, lengths, distances)
}

/// Slices of 1024 × 768 planes of three kinds, each of which the PNG
/// writer encodes its own way (camera-like structure under noise: a block
/// of literals; an object on a dark background: fdeflate; noise: stored
/// blocks), read by Pillow, equal NumPy's windowing of the samples.
#[test]
#[ignore = "needs a Python venv with numpy and Pillow; run with --ignored (.ci/run does)"]
fn slices_of_every_encoding_read_in_pillow_as_numpy_windows_them() {
    let (w, h) = (1024usize, 768usize);
    let noise = |i: usize, page: u32| -> f64 {
        // a sum of four hashed uniforms: roughly Gaussian, σ about 0.58
        let mut x = (i as u64 ^ u64::from(page) << 40).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (0..4)
            .map(|_| {
                x ^= x >> 29;
                x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                (x >> 40) as f64 / (1u64 << 24) as f64 - 0.5
            })
            .sum()
    };
    let sample = |page: u32, i: usize| -> u16 {
        let (x, y) = ((i % w) as f64, (i / w) as f64);
        let v = match page {
            0 => 12_000.0 + 8_000.0 * (x / 97.0).sin() * (y / 131.0).cos() + 600.0 * noise(i, page),
            1 if (x - 500.0).hypot(y - 400.0) < 150.0 => 30_000.0 + 600.0 * noise(i, page),
            1 => 100.0,
            _ => 32_768.0 + 60_000.0 * noise(i, page),
        };
        v.round().clamp(0.0, 65_535.0) as u16
    };
    let tiff = crate::util::tiff::plain_tiff(w as u32, h as u32, 16, 3, |page, byte| {
        sample(page, byte / 2).to_le_bytes()[byte % 2]
    });
    let server = Server::start();
    let id = server.upload_ok("kinds.tif", tiff);
    let dir = tempfile::tempdir().unwrap();
    let (npy, _) = save_samples(&server, &id, dir.path());
    let mut cases = Vec::new();
    // literals: a block of its own codes for the 256 bytes and the end,
    // and two distance codes never used; fdeflate: its codes for all 286
    // literals and lengths; stored: block type 0
    let planes = [
        (0, 4_000.5, 20_000.0, (2, 257, 2)),
        (1, 0.0, 31_000.0, (2, 286, 1)),
        (2, 1_000.0, 64_000.0, (0, 0, 0)),
    ];
    for (z, lo, hi, encoding) in planes {
        let resp = server.get(&format!("/slice?image_id={id}&z={z}&min={lo}&max={hi}"));
        assert_eq!(resp.status, 200, "{}", resp.snippet());
        let (kind, lengths, distances) = first_deflate_block(&resp.body);
        if kind == 0 {
            // a stored block's other bits are padding and its length
            assert_eq!(encoding.0, 0, "slice z={z} is stored");
        } else {
            assert_eq!(
                (kind, lengths, distances),
                encoding,
                "slice z={z}'s first block"
            );
        }
        let path = dir.path().join(format!("z{z}.png"));
        std::fs::write(&path, &resp.body).unwrap();
        cases.push(json!([path.display().to_string(), z, lo, hi]));
    }
    let spec = dir.path().join("cases.json");
    std::fs::write(&spec, serde_json::to_vec(&cases).unwrap()).unwrap();
    let counts: Vec<[i64; 2]> = serde_json::from_value(crate::util::python::run_json(
        &python(),
        SLICES_IN_PILLOW,
        &[npy.display().to_string(), spec.display().to_string()],
    ))
    .unwrap();
    for (z, [mismatched, pixels]) in counts.into_iter().enumerate() {
        assert_eq!((mismatched, pixels), (0, (w * h) as i64), "slice z={z}");
    }
}

/// `format=webp` is lossless: its pixels are the PNG's, colour and grey.
#[test]
fn webp_renderings_hold_the_pngs_pixels() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    for query in ["z=1", "z=2&m=g", "p=intmax&size=20"] {
        let png = server.get(&format!("/render?image_id={id}&{query}"));
        let webp = server.get(&format!("/render?image_id={id}&{query}&format=webp"));
        assert_eq!(webp.status, 200, "{query}: {}", webp.snippet());
        assert_eq!(webp.header("content-type"), "image/webp", "{query}");
        let (w, h, channels, want) = decode(&png.body);
        let mut decoder =
            image_webp::WebPDecoder::new(std::io::Cursor::new(webp.body.clone())).unwrap();
        assert_eq!(decoder.dimensions(), (w as u32, h as u32), "{query}");
        let mut rgb = vec![0u8; decoder.output_buffer_size().unwrap()];
        decoder.read_image(&mut rgb).unwrap();
        // the decoder gives RGB; a grey picture has equal channels
        let got: Vec<u8> = match channels {
            1 => rgb.chunks_exact(3).map(|p| p[0]).collect(),
            _ => rgb,
        };
        assert!(
            got == want,
            "{query}: the WebP's pixels differ from the PNG's"
        );
    }
    let refused = server.get(&format!("/render?image_id={id}&format=webp&q=0.5"));
    assert!(refused.error(&[400]).unwrap().contains("jpeg only"));
}

/// Requests the grammar refuses name what is wrong.
#[test]
fn render_requests_are_checked() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    for (query, says) in [
        ("c=4", "numbered 1 to 3"),
        ("c=1|9:2", "not below its end"),
        ("c=1$12345", "RRGGBB"),
        ("c=-1,-2", "no channel is active"),
        ("m=x", "m must be c"),
        ("p=intmin", "intmax, intmean or intsum"),
        ("p=intmax|2:9", "zend ≤ 3"),
        ("region=0,0,53,36", "within the 52×36 plane"),
        ("size=0", "1 to"),
        ("size=5000,5000", "4096×4096"),
        ("tile=1,0,0", "level must be 0 to 0"),
        ("tile=0,1,0", "columns 0 to 0"),
        ("tile=0,0,0&size=5", "cannot be combined"),
        ("format=gif", "png, jpeg or webp"),
        ("format=jpeg&q=2", "from 0 to 1"),
        ("z=4", "z 0 to 3"),
        ("t=1", "unknown query parameter"),
    ] {
        let resp = server.get(&format!("/render?image_id={id}&{query}"));
        let message = resp.error(&[400]).unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    let jpeg = server.get(&format!("/render?image_id={id}&format=jpeg&q=0.8"));
    assert_eq!(
        (jpeg.status, jpeg.content_type.as_str()),
        (200, "image/jpeg")
    );
    assert!(jpeg.body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let thumb = server.get(&format!("/thumbnail?image_id={id}&size=8"));
    assert!(thumb.error(&[400]).unwrap().contains("16 to 1024"));
    assert_eq!(server.get("/thumbnail?image_id=image_99").status, 404);
}

/// `PATCH /images/{id}` sets the default look: `/render` without `c`
/// draws it (renders cached with the old look are not served), the
/// metadata reports it, and the Zarr group's `omero` metadata carries it.
#[test]
fn the_default_look_can_be_changed() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let before = server.get(&format!("/render?image_id={id}&z=1")).body;
    let look = json!({"rendering": {"channels": [
        {"color": "FF8000", "window": {"start": 100.0, "end": 2000.0}},
        {"active": false},
        {"color": "0000FF", "window": {"start": 0.0, "end": 5000.0}},
    ]}});
    let patched = server
        .send(
            "PATCH",
            server
                .request(Method::PATCH, &format!("/images/{id}"))
                .json(&look),
        )
        .ok_json()
        .unwrap();
    let channels = &patched["rendering"]["channels"];
    assert_eq!(channels[0]["color"], "FF8000");
    assert_eq!(
        channels[0]["window"],
        json!({"start": 100.0, "end": 2000.0})
    );
    assert_eq!(channels[1]["active"], false);
    let after = server.get(&format!("/render?image_id={id}&z=1")).body;
    assert_ne!(
        before, after,
        "the cached picture of the old look is not served"
    );
    let explicit = server
        .get(&format!(
            "/render?image_id={id}&z=1&c=1|100:2000$FF8000,-2,3|0:5000$0000FF"
        ))
        .body;
    assert_eq!(after, explicit, "the new default is the look set");
    let group: Value = server.get(&format!("/zarr/{id}/zarr.json")).json().unwrap();
    let omero = &group["attributes"]["ome"]["omero"]["channels"];
    assert_eq!(omero[0]["color"], "FF8000");
    assert_eq!(omero[0]["window"]["start"], 100.0);
    assert_eq!(omero[1]["active"], false);
    for (body, says) in [
        (
            json!({"rendering": {"channels": [{}]}}),
            "one entry per channel (3)",
        ),
        (
            json!({"rendering": {"channels": [{"color": "red"}, {}, {}]}}),
            "RRGGBB",
        ),
        (
            json!({"rendering": {"channels": [{"window": {"start": 5.0, "end": 1.0}}, {}, {}]}}),
            "below end",
        ),
        (json!({}), "nothing to change"),
        (json!({"look": 1}), "expected a JSON body"),
    ] {
        let resp = server.send(
            "PATCH",
            server
                .request(Method::PATCH, &format!("/images/{id}"))
                .json(&body),
        );
        let message = resp.error(&[400]).unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
}

/// A rendering whose output would not fit in the memory budget renderings
/// share is refused, naming the setting; one that fits is served.
#[test]
fn renderings_share_the_memory_budget() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("PENTASCOPE_SLICE_MEMORY_MIB", "2")]);
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let big = server.get(&format!("/render?image_id={id}&size=1000,1000"));
    let message = big.error(&[413]).unwrap();
    assert!(message.contains("PENTASCOPE_SLICE_MEMORY_MIB"), "{message}");
    assert_eq!(
        server
            .get(&format!("/render?image_id={id}&size=200"))
            .status,
        200
    );
}
