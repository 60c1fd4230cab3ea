//! Every image as OME-Zarr over HTTP (`/zarr/{id}/…`), read by the real
//! readers: zarr-python v3 through fsspec's HTTP store equals the samples
//! (which equal tifffile's, by expected.json's hash), ome-zarr-models
//! validates every group as NGFF 0.5, and ome-zarr-py reads it by URL; the
//! pyramid levels of a plane over 2048 pixels on a side equal NumPy's block
//! means; a derived (PCA scores) image is served with the levels and chunks
//! of a stored one, computed on request.
//! Byte ranges, `HEAD`, missing keys and hostile keys over plain HTTP.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::util::python::run_json;
use crate::util::{fixtures_dir, FixtureSet, Server};

const READERS: &str = r#"
import json, sys, numpy as np, zarr
from ome_zarr_models import open_ome_zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
out = {}
for url, npy in zip(sys.argv[1::2], sys.argv[2::2]):
    expected = np.load(npy).transpose(0, 2, 1, 3, 4)  # TZCYX → NGFF's TCZYX
    group = zarr.open_group(url, mode="r")
    array = group["0"][...]
    model = open_ome_zarr(group, version="0.5")
    reader = Reader(parse_url(url))
    node = next(iter(reader()))
    via_ome_zarr = np.asarray(node.data[0])
    multiscale = group.attrs["ome"]["multiscales"][0]
    # each further level: means of 2^k blocks of the full-resolution
    # samples (inside the plane), rounded half away from zero for integers
    levels_equal = []
    for k, dataset in enumerate(multiscale["datasets"][1:], start=1):
        f = 2 ** k
        *lead, H, W = expected.shape
        oh, ow = -(-H // f), -(-W // f)
        sums = np.zeros((*lead, oh * f, ow * f)); sums[..., :H, :W] = expected
        ones = np.zeros((oh * f, ow * f)); ones[:H, :W] = 1
        m = sums.reshape(*lead, oh, f, ow, f).sum(axis=(-3, -1)) / ones.reshape(oh, f, ow, f).sum(axis=(1, 3))
        if np.issubdtype(expected.dtype, np.integer):
            m = np.sign(m) * np.floor(np.abs(m) + 0.5)
        level = group[dataset["path"]][...]
        scale = dataset["coordinateTransformations"][0]["scale"]
        levels_equal.append(bool(np.array_equal(level, m.astype(expected.dtype))
                                 and scale[3:] == [f * v for v in multiscale["datasets"][0]["coordinateTransformations"][0]["scale"][3:]]
                                 and len(node.data) == len(multiscale["datasets"])
                                 and np.array_equal(np.asarray(node.data[k]), level)))
    out[url] = {
        "levels_equal": levels_equal,
        "zarr_equal": bool(array.dtype == expected.dtype and np.array_equal(array, expected, equal_nan=True)),
        "ome_zarr_equal": bool(np.array_equal(via_ome_zarr, expected, equal_nan=True)),
        "model": type(model).__name__,
        "axes": [a["name"] for a in multiscale["axes"]],
        "scale": multiscale["datasets"][0]["coordinateTransformations"][0]["scale"],
        "units": [a.get("unit") for a in multiscale["axes"]],
    }
print(json.dumps(out))
"#;

#[test]
#[ignore = "needs a Python venv with zarr, fsspec, ome-zarr and ome-zarr-models; run with --ignored (.ci/run does)"]
fn zarr_python_ome_zarr_and_models_read_every_group_by_url() {
    let python =
        crate::util::python::python_with("zarr, fsspec, aiohttp, ome_zarr, ome_zarr_models");
    let fixtures = fixtures_dir();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = Vec::new();
    let mut images: Vec<(String, Value)> = Vec::new();
    for (set_name, file) in [
        ("tiff", "ome_tczyx_u16.ome.tif"),
        ("real", "ij_mitosis_crop_TZCYX_u16.tif"),
        ("tiff", "ome_zcyx_f32_zstd_fpred.ome.tif"),
    ] {
        let set = FixtureSet::load(&fixtures, set_name);
        let id = server.upload_ok(file, set.read(file));
        let body = server
            .get(&format!("/images/{id}/download?format=npy"))
            .body;
        let data_at = usize::from(u16::from_le_bytes([body[8], body[9]])) + 10;
        let digest: String = Sha256::digest(&body[data_at..])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, set.expected(file)["sha256_tzcyx"], "{file}");
        images.push((id.clone(), server.metadata(&id)));
        let npy = dir.path().join(format!("{id}.npy"));
        std::fs::write(&npy, &body).unwrap();
        args.push(server.url(&format!("/zarr/{id}")));
        args.push(npy.display().to_string());
    }
    // a plane over 2048 pixels on a side, in bands (over 16 MiB): stored
    // with four downsampled levels, odd-sized at every level; two channels,
    // so that its PCA scores are a derived image with levels too
    let id = server.upload_ok("big.tif", two_channel_big_tiff());
    let body = server
        .get(&format!("/images/{id}/download?format=npy"))
        .body;
    let npy = dir.path().join(format!("{id}.npy"));
    std::fs::write(&npy, &body).unwrap();
    images.push((id.clone(), server.metadata(&id)));
    args.push(server.url(&format!("/zarr/{id}")));
    args.push(npy.display().to_string());
    let big_id = id;

    // derived images, their chunks computed on request: of a small image
    // (no levels) and of the big one (its levels)
    let mut big_scores = String::new();
    for (source, name) in [
        (images[0].0.clone(), "scores.npy"),
        (big_id.clone(), "big_scores.npy"),
    ] {
        let pca = server
            .post_json("/analyze", &json!({"image_id": source, "components": 2}))
            .ok_json()
            .unwrap();
        let scores = pca["scores_image_id"].as_str().unwrap().to_string();
        let body = server
            .get(&format!("/images/{scores}/download?format=npy"))
            .body;
        let npy = dir.path().join(name);
        std::fs::write(&npy, &body).unwrap();
        images.push((scores.clone(), server.metadata(&scores)));
        args.push(server.url(&format!("/zarr/{scores}")));
        args.push(npy.display().to_string());
        big_scores = scores;
    }

    let read = run_json(&python, READERS, &args);
    for (id, meta) in &images {
        let got = &read[server.url(&format!("/zarr/{id}"))];
        assert_eq!(got["zarr_equal"], true, "{id}: zarr-python's array");
        let levels = if *id == big_id || *id == big_scores {
            4
        } else {
            0
        };
        assert_eq!(
            got["levels_equal"],
            json!(vec![true; levels]),
            "{id}: the stored levels equal NumPy's block means"
        );
        assert_eq!(got["ome_zarr_equal"], true, "{id}: ome-zarr-py's array");
        assert_eq!(got["model"], "Image", "{id}: ome-zarr-models");
        assert_eq!(got["axes"], json!(["t", "c", "z", "y", "x"]), "{id}");
        let p = &meta["physical_sizes"];
        let scale = |axis: &str| p[axis]["value"].as_f64().unwrap_or(1.0);
        assert_eq!(
            got["scale"],
            json!([scale("t"), 1.0, scale("z"), scale("y"), scale("x")]),
            "{id}: physical scale"
        );
        if let Some(unit) = p["x"]["unit"].as_str() {
            assert_eq!(got["units"][4], unit, "{id}: unit");
        }
    }
}

/// A two-channel image over 2048 pixels on a side (4099 × 2101, uint16,
/// so with four downsampled levels, odd-sized at every level), as
/// ImageJ writes it.
fn two_channel_big_tiff() -> Vec<u8> {
    let (width, height) = (4099u32, 2101u32);
    crate::util::tiff::described_tiff(
        width,
        height,
        16,
        2,
        "ImageJ=1.54f\nimages=2\nchannels=2\nhyperstack=true\n",
        |page, i| {
            let (x, y) = (i as u32 / 2 % width, i as u32 / 2 / width);
            ((x / 9 + y / 5 + page * 40) % 251) as u8 ^ (i as u8).wrapping_mul(29)
        },
    )
}

/// The mean of each `2^k`-block of a `height × width` plane (over its
/// pixels inside the plane), as float32: a downsampled level's definition.
fn block_means(plane: &[f32], width: usize, k: u32) -> Vec<f32> {
    let height = plane.len() / width;
    let f = 1usize << k;
    let (h, w) = (height.div_ceil(f), width.div_ceil(f));
    let mut out = Vec::with_capacity(h * w);
    for i in 0..h {
        for j in 0..w {
            let (mut sum, mut n) = (0f64, 0f64);
            for y in i * f..((i + 1) * f).min(height) {
                for x in j * f..((j + 1) * f).min(width) {
                    sum += f64::from(plane[y * width + x]);
                    n += 1.0;
                }
            }
            out.push((sum / n) as f32);
        }
    }
    out
}

/// A derived image (PCA scores) is served as a stored image of its shape
/// is: its group lists the same pyramid levels as its source's, each
/// level's chunks are no larger than the stored ones (no whole-plane
/// chunk), its chunks at the corners of every level hold the block means
/// of the full-resolution scores (computed here from their download),
/// edge chunks filled out with zeros, and the viewer's tiles render at
/// every level.
#[test]
fn derived_images_have_the_levels_and_chunks_of_stored_ones() {
    let server = Server::start();
    let id = server.upload_ok("two_channels.tif", two_channel_big_tiff());
    let pca = server
        .post_json("/analyze", &json!({"image_id": id, "components": 2}))
        .ok_json()
        .unwrap();
    let scores = pca["scores_image_id"].as_str().unwrap().to_string();
    let datasets = |id: &str| {
        let group = server
            .get(&format!("/zarr/{id}/zarr.json"))
            .ok_json()
            .unwrap();
        group["attributes"]["ome"]["multiscales"][0]["datasets"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(datasets(&id), 5, "the source has four downsampled levels");
    assert_eq!(datasets(&scores), 5, "the scores have its levels");
    let npy = crate::util::npy::Npy::parse(
        &server
            .get(&format!("/images/{scores}/download?format=npy"))
            .body,
    )
    .unwrap();
    assert_eq!(npy.shape, vec![1, 1, 2, 2101, 4099]);
    let full: Vec<f32> = npy
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (height, width) = (2101usize, 4099usize);
    for k in 0..5u32 {
        let array = server
            .get(&format!("/zarr/{scores}/{k}/zarr.json"))
            .ok_json()
            .unwrap();
        let stored = server
            .get(&format!("/zarr/{id}/{k}/zarr.json"))
            .ok_json()
            .unwrap();
        let chunk_of = |a: &Value| -> Vec<u64> {
            a["chunk_grid"]["configuration"]["chunk_shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        };
        let (chunk, stored_chunk) = (chunk_of(&array), chunk_of(&stored));
        assert_eq!(array["shape"], stored["shape"], "level {k}");
        assert!(
            chunk[3] <= stored_chunk[3].min(512) && chunk[4] <= stored_chunk[4].min(512),
            "level {k}: chunks {chunk:?}, stored {stored_chunk:?}"
        );
        let (level_h, level_w) = (height.div_ceil(1 << k), width.div_ceil(1 << k));
        let (cy, cx) = (chunk[3] as usize, chunk[4] as usize);
        for c in 0..2usize {
            let plane = &full[c * height * width..(c + 1) * height * width];
            let level = if k == 0 {
                plane.to_vec()
            } else {
                block_means(plane, width, k)
            };
            let last = ((level_h - 1) / cy, (level_w - 1) / cx);
            for (row, column) in [(0, 0), last] {
                let body = server
                    .get(&format!("/zarr/{scores}/{k}/c/0/{c}/0/{row}/{column}"))
                    .body;
                assert_eq!(body.len(), cy * cx * 4, "level {k} chunk {row},{column}");
                let got: Vec<f32> = body
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                for (i, value) in got.iter().enumerate() {
                    let (y, x) = (row * cy + i / cx, column * cx + i % cx);
                    let want = if y < level_h && x < level_w {
                        level[y * level_w + x]
                    } else {
                        0.0
                    };
                    assert!(
                        value.to_bits() == want.to_bits(),
                        "level {k}, channel {c}, pixel ({y}, {x}): {value}, want {want}"
                    );
                }
            }
            let tile = server.get(&format!(
                "/render?image_id={scores}&tile={k},{},{}",
                last.1.min((level_w - 1) / 512),
                last.0.min((level_h - 1) / 512)
            ));
            assert_eq!(tile.status, 200, "tile of level {k}: {}", tile.snippet());
            tile.png_header().unwrap();
        }
    }
}

/// `HEAD`, the three forms of byte ranges, 416, missing and hostile keys.
#[test]
fn zarr_keys_over_http_with_ranges() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let key = format!("/zarr/{id}/0/c/1/2/3/0/0");
    let whole = server.get(&key);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), "bytes");
    let n = whole.body.len();
    let head = server.send("HEAD", server.request(Method::HEAD, &key));
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), n.to_string());
    let ranged = |spec: &str| {
        server.send(
            spec,
            server.request(Method::GET, &key).header("Range", spec),
        )
    };
    for (spec, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=100-", 100, n - 1),
        ("bytes=-7", n - 7, n - 1),
        ("bytes=5-999999", 5, n - 1),
    ] {
        let part = ranged(spec);
        assert_eq!(part.status, 206, "{spec}");
        assert_eq!(part.body, whole.body[first..=last], "{spec}");
        assert_eq!(
            part.header("content-range"),
            format!("bytes {first}-{last}/{n}")
        );
    }
    let outside = ranged(&format!("bytes={n}-"));
    assert_eq!(outside.status, 416);
    assert_eq!(outside.header("content-range"), format!("bytes */{n}"));
    let metadata: Value = server
        .get(&format!("/zarr/{id}/0/zarr.json"))
        .json()
        .unwrap();
    assert_eq!(metadata["shape"], json!([2, 3, 4, 36, 52]));
    assert_eq!(
        metadata["dimension_names"],
        json!(["t", "c", "z", "y", "x"])
    );
    for missing in [
        format!("/zarr/{id}/0/c/9/0/0/0/0"),
        format!("/zarr/{id}/nothing"),
        format!("/zarr/{id}/.zattrs/../../x"),
        format!("/zarr/{id}/%2e%2e/%2e%2e/pentascope.sqlite"),
        "/zarr/image_999/zarr.json".to_string(),
    ] {
        let resp = server.get(&missing);
        assert_eq!(resp.status, 404, "{missing}: {}", resp.snippet());
    }
    keys_that_are_no_object_are_404(&server, &id);
}

/// Keys naming a folder of the group (`0`, `0/c`, …, which a filesystem
/// store would stat as a directory) and odd keys (`..`, empty segments,
/// a very long key) are a JSON 404, with `GET` and `HEAD`, never a 500.
fn keys_that_are_no_object_are_404(server: &Server, id: &str) {
    let long = "a/".repeat(4000) + "zarr.json";
    for key in [
        "0",
        "0/",
        "0/c",
        "0/c/0",
        "0/c/1/2/3/0",
        "0/c/1/2/3/0/0/",
        "/zarr.json",
        "0//zarr.json",
        "0/c//1/2/3/0/0",
        long.as_str(),
    ] {
        let path = format!("/zarr/{id}/{key}");
        let shown = &path[..path.len().min(60)];
        let resp = server.get(&path);
        assert_eq!(resp.status, 404, "GET {shown}: {}", resp.snippet());
        let body = resp.json().unwrap_or_else(|e| panic!("GET {shown}: {e}"));
        assert!(body["error"].is_string(), "GET {shown}: {body}");
        let head = server.send("HEAD", server.request(Method::HEAD, &path));
        assert_eq!(head.status, 404, "HEAD {shown}");
    }
    // dot segments, which an HTTP client would resolve before sending
    for key in [
        "..",
        "../zarr.json",
        "0/../zarr.json",
        "0/c/../zarr.json",
        "%2e%2e/zarr.json",
        ".",
        "./zarr.json",
        "0/./zarr.json",
    ] {
        let path = format!("/zarr/{id}/{key}");
        let (status, body) = raw_get(server, &path);
        assert_eq!(status, 404, "GET {path}: {body}");
        assert!(body.contains("\"error\""), "GET {path}: {body}");
    }
}

/// `GET path` sent as it is written (no dot segment resolved), without a
/// key: the status and the body.
fn raw_get(server: &Server, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The same keys against pixels on S3 (an S3-compatible server at
/// `PENTASCOPE_TEST_S3`, as `.ci/run` starts it): 404, as on a local disk.
#[test]
#[ignore = "needs an S3-compatible server (moto); run with --ignored (.ci/run does)"]
fn keys_that_are_no_object_are_404_on_s3() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("zarr_keys_{}", std::process::id());
    let env: Vec<(String, String)> = crate::util::services::production_env(&tag)
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_") || k == "STORAGE_URL")
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(dir.path(), &env);
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let chunk = server.get(&format!("/zarr/{id}/0/c/1/2/3/0/0"));
    assert_eq!(chunk.status, 200, "{}", chunk.snippet());
    keys_that_are_no_object_are_404(&server, &id);
}

/// zarr-python reads each `URL NPY` pair of its arguments: whether the
/// full-resolution array equals the NPY's samples (TZCYX) exactly.
const ZARR_READS: &str = r#"
import json, sys, numpy as np, zarr
out = {}
for url, npy in zip(sys.argv[1::2], sys.argv[2::2]):
    expected = np.load(npy).transpose(0, 2, 1, 3, 4)  # TZCYX → NGFF's TCZYX
    array = zarr.open_group(url, mode="r")["0"]
    out[url] = bool(array.dtype == expected.dtype and np.array_equal(array[...], expected))
print(json.dumps(out))
"#;

/// Every codec named in an array's `zarr.json` (inside sharding's too),
/// with its configuration.
fn codecs_of(metadata: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    let mut pending: Vec<&Value> = metadata["codecs"].as_array().unwrap().iter().collect();
    while let Some(codec) = pending.pop() {
        found.push(codec.clone());
        for nested in ["codecs", "index_codecs"] {
            if let Some(inner) = codec["configuration"][nested].as_array() {
                pending.extend(inner);
            }
        }
    }
    found
}

/// Each `--compression` setting stores images that read back exactly, by
/// pentascope and by zarr-python over HTTP, with the codec the setting
/// names in their metadata (`fast`: LZ4, with bit shuffle for an image
/// under camera noise); an image stored as `small` (the choice before
/// `fast` became the default) still reads exactly once the service runs
/// with the default.
#[test]
#[ignore = "needs a Python venv with zarr, fsspec and aiohttp; run with --ignored (.ci/run does)"]
fn each_compression_setting_round_trips_exactly_and_reads_by_url() {
    let python = crate::util::python::python_with("zarr, fsspec, aiohttp");
    let real = FixtureSet::load(&fixtures_dir(), "real");
    let mitosis = "ij_mitosis_crop_TZCYX_u16.tif";
    // smooth 16-bit structure plus a little noise, in bands of shards
    // with downsampled levels: what every codec shrinks
    let (width, height, pages) = (2300u32, 2101u32, 2u32);
    let smooth = |page: u32, i: usize| {
        let n = i / 2;
        let (x, y) = ((n % width as usize) as u32, (n / width as usize) as u32);
        let sample =
            9000 + (x * 3 + y * 5) / 4 + page * 100 + (n as u32).wrapping_mul(2654435761) % 7;
        (sample >> (8 * (i % 2))) as u8
    };
    // a slow gradient under camera noise (four uniform draws, sigma about
    // 230): only bit shuffle finds its high bits, so `fast` bit-shuffles it
    let camera = |page: u32, i: usize| {
        let n = (i / 2) as u32;
        let (x, y) = (n % width, n / width);
        let noise: u32 = (0..4u32)
            .map(|k| {
                let mut h = n ^ (page << 28) ^ k.wrapping_mul(0x9E37_79B9);
                h = (h ^ (h >> 16)).wrapping_mul(0x7FEB_352D);
                h = (h ^ (h >> 15)).wrapping_mul(0x846C_A68B);
                (h ^ (h >> 16)) % 400
            })
            .sum();
        let sample = 12000 + x * 3 + y * 2 + noise - 800;
        (sample >> (8 * (i % 2))) as u8
    };
    let sha_of = |sample_byte: &dyn Fn(u32, usize) -> u8| -> String {
        let mut digest = Sha256::new();
        for page in 0..pages {
            let bytes: Vec<u8> = (0..(width * height * 2) as usize)
                .map(|i| sample_byte(page, i))
                .collect();
            digest.update(&bytes);
        }
        digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let (smooth_sha, camera_sha) = (sha_of(&smooth), sha_of(&camera));
    let reads_by_url = |server: &Server, ids: &[&str], dir: &std::path::Path| -> Value {
        let mut args = Vec::new();
        for id in ids {
            let npy = dir.join(format!("{id}.npy"));
            std::fs::write(
                &npy,
                server
                    .get(&format!("/images/{id}/download?format=npy"))
                    .body,
            )
            .unwrap();
            args.push(server.url(&format!("/zarr/{id}")));
            args.push(npy.display().to_string());
        }
        run_json(&python, ZARR_READS, &args)
    };
    let npy_dir = tempfile::tempdir().unwrap();
    let mut small_store = None;
    for setting in ["fast", "small", "none"] {
        let data = tempfile::tempdir().unwrap();
        let server = Server::start_with(data.path(), &[("PENTASCOPE_COMPRESSION", setting)]);
        let ids = [
            server.upload_ok(mitosis, real.read(mitosis)),
            server.upload_ok(
                "smooth.tif",
                crate::util::tiff::plain_tiff(width, height, 16, pages, smooth),
            ),
            server.upload_ok(
                "camera.tif",
                crate::util::tiff::plain_tiff(width, height, 16, pages, camera),
            ),
        ];
        assert_eq!(
            server.samples_sha256(&ids[0]),
            real.expected(mitosis)["sha256_tzcyx"],
            "{setting}: {mitosis}"
        );
        assert_eq!(server.samples_sha256(&ids[1]), smooth_sha, "{setting}");
        assert_eq!(server.samples_sha256(&ids[2]), camera_sha, "{setting}");
        let read = reads_by_url(&server, &[&ids[0], &ids[1], &ids[2]], npy_dir.path());
        for id in &ids {
            assert_eq!(
                read[server.url(&format!("/zarr/{id}"))],
                true,
                "{setting} {id}"
            );
        }
        // the smooth and camera images' codecs, at every level
        for (image, id) in [("smooth", &ids[1]), ("camera", &ids[2])] {
            let group: Value = server.get(&format!("/zarr/{id}/zarr.json")).json().unwrap();
            let levels = group["attributes"]["ome"]["multiscales"][0]["datasets"]
                .as_array()
                .unwrap()
                .len();
            assert!(levels > 1, "{group}");
            for level in 0..levels {
                let metadata: Value = server
                    .get(&format!("/zarr/{id}/{level}/zarr.json"))
                    .json()
                    .unwrap();
                let codecs = codecs_of(&metadata);
                let names: Vec<&str> = codecs.iter().map(|c| c["name"].as_str().unwrap()).collect();
                let blosc = codecs.iter().find(|c| c["name"] == "blosc");
                match setting {
                    "fast" => {
                        let blosc = blosc
                            .unwrap_or_else(|| panic!("fast, {image}, level {level}: {names:?}"));
                        assert_eq!(blosc["configuration"]["cname"], "lz4", "{image} {level}");
                        // the smooth image takes whichever shuffle is smaller
                        let shuffle = &blosc["configuration"]["shuffle"];
                        assert!(
                            shuffle == "bitshuffle" || (image == "smooth" && shuffle == "shuffle"),
                            "{image}, level {level}: {shuffle}"
                        );
                    }
                    "small" => assert!(
                        names.contains(&"zstd")
                            || blosc.is_some_and(|b| b["configuration"]["cname"] == "zstd"),
                        "small, level {level}: {codecs:?}"
                    ),
                    _ => assert!(
                        names
                            .iter()
                            .all(|n| ["sharding_indexed", "bytes", "crc32c"].contains(n)),
                        "none, level {level}: {names:?}"
                    ),
                }
            }
        }
        if setting == "small" {
            server.stop();
            small_store = Some((data, ids));
        }
    }
    let (data, ids) = small_store.unwrap();
    let server = Server::start_in(data.path());
    assert_eq!(
        server.samples_sha256(&ids[0]),
        real.expected(mitosis)["sha256_tzcyx"],
        "stored as small, read as fast"
    );
    assert_eq!(server.samples_sha256(&ids[1]), smooth_sha);
    assert_eq!(server.samples_sha256(&ids[2]), camera_sha);
    let read = reads_by_url(&server, &[&ids[0], &ids[1], &ids[2]], npy_dir.path());
    for id in &ids {
        assert_eq!(read[server.url(&format!("/zarr/{id}"))], true, "{id}");
    }
}

/// An unknown `--compression` is refused, naming the valid values; the
/// setting shows in `pentascope config`.
#[test]
fn compression_setting_is_checked_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pentascope"))
        .args(["config", "--compression", "tiny", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("fast, small, none") && stderr.contains("tiny"),
        "{stderr}"
    );
    let shown = crate::util::server::run_cli(
        dir.path(),
        &[("PENTASCOPE_COMPRESSION", "small")],
        &["config"],
    );
    let line = shown
        .lines()
        .find(|l| l.starts_with("PENTASCOPE_COMPRESSION "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.contains(" small ") && line.contains("environment") && line.ends_with("fast"),
        "{line}"
    );
}
