//! Files of several series (tifffile's `TiffFile.series`), written by
//! tifffile in the test: an Aperio SVS (baseline with its own pyramid,
//! thumbnail, label, macro), an OME-TIFF of three `Image`s, a plain file of
//! pages of two kinds and a shaped file of two series (stored while it
//! arrives). Each series is an image of its own whose name, kind, shape
//! and samples equal tifffile's; the upload answers every id, each image
//! lists its siblings, the SVS's levels that halve exactly are the file's
//! own (equal to tifffile's `series[0].levels`) and the others are
//! computed; a resumable (tus) upload and `pentascope ingest` store every
//! series too. Files declaring more series than the limit are refused.
//!
//! Needs a Python with tifffile, numpy, zarr and fsspec
//! (`PENTASCOPE_TEST_PYTHON`, default the repository's `.venv`): ignored
//! by a plain `cargo test`, run by `.ci/run`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::Value;

use crate::hostile::leftovers;
use crate::util::python::{python_with, run_json};
use crate::util::server::run_cli;
use crate::util::Server;

/// Writes the files into `argv[1]` and prints, per file, tifffile's series:
/// name, kind, canonical (TZCYX) shape and the sha256 of the canonical
/// samples (little-endian, C order), and the shapes of the first series'
/// levels.
const WRITE: &str = r#"
import hashlib, json, os, sys, numpy as np, tifffile
out_dir = sys.argv[1]
rng = np.random.default_rng(26)

def canonical(data, axes):
    # samples are channels; one unlabelled page axis is Z
    axes = axes.replace("S", "C").replace("I", "Z").replace("Q", "Z")
    for a in "TZCYX":
        if a not in axes:
            data, axes = data[np.newaxis], a + axes
    data = np.transpose(data, [axes.index(a) for a in "TZCYX"])
    return np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<")))

def picture(*shape, dtype=np.uint8):
    return rng.integers(0, 200, shape).astype(dtype)

# Aperio SVS: baseline 64 x 2100 (stored with three pyramid levels), the
# thumbnail, levels at 1/2 and 1/4 (which halve exactly) and one that does
# not, then the label (NewSubfileType 1) and the macro (9)
aperio = "Aperio Image Library v12.0.15\r\n2100x64 [0,0 2100x64] (16x16) RAW|AppMag = 20|MPP = 0.4990"
with tifffile.TiffWriter(f"{out_dir}/slide.svs") as tif:
    tif.write(picture(64, 2100, 3), tile=(16, 16), photometric="rgb", compression="zlib",
              description=aperio, metadata=None)
    tif.write(picture(8, 262, 3), photometric="rgb", description="thumbnail", metadata=None)
    for h, w in [(32, 1050), (16, 525), (10, 300)]:
        tif.write(picture(h, w, 3), tile=(16, 16), photometric="rgb", compression="zlib",
                  description="level", metadata=None)
    tif.write(picture(10, 12, 3), photometric="rgb", subfiletype=1, description="label", metadata=None)
    tif.write(picture(14, 30, 3), photometric="rgb", subfiletype=9, description="macro", metadata=None)

# OME-TIFF of three images: named, RGB, and one named by tifffile
with tifffile.TiffWriter(f"{out_dir}/images.ome.tif") as tif:
    tif.write(picture(3, 40, 50, dtype=np.uint16), metadata={"axes": "ZYX", "Name": "first"})
    tif.write(picture(2, 20, 30, 3), photometric="rgb", metadata={"axes": "ZYXS", "Name": "second"})
    tif.write(rng.normal(0, 1, (6, 7)).astype(np.float32), metadata={"axes": "YX"})

# no metadata: pages of two kinds, one of them interleaved
with tifffile.TiffWriter(f"{out_dir}/kinds.tif") as tif:
    for page in [picture(8, 9, dtype=np.uint16), picture(8, 9, dtype=np.uint16),
                 picture(4, 5), picture(8, 9, dtype=np.uint16)]:
        tif.write(page, photometric="minisblack", metadata=None)

# tifffile's shaped series, each with its own description
with tifffile.TiffWriter(f"{out_dir}/shaped.tif") as tif:
    tif.write(picture(3, 40, 50, dtype=np.uint16), photometric="minisblack")
    tif.write(picture(2, 20, 30), photometric="minisblack")

out = {}
for name in ["slide.svs", "images.ome.tif", "kinds.tif", "shaped.tif"]:
    with tifffile.TiffFile(f"{out_dir}/{name}") as f:
        series = []
        for s in f.series:
            data = canonical(s.asarray(), s.axes)
            series.append({"name": s.name, "kind": s.kind, "shape": list(data.shape),
                           "sha256": hashlib.sha256(data.tobytes()).hexdigest()})
        out[name] = {"series": series,
                     "levels": [list(l.shape) for l in f.series[0].levels[1:]]}
print(json.dumps(out))
"#;

/// For the image at URL `argv[1]` read from the file `argv[2]`: each
/// stored level beyond full resolution, whether it has the size of one of
/// the file's own levels (tifffile's `series[0].levels[1:]`), and whether
/// it equals that level, or else the exact block means of full resolution.
const LEVELS: &str = r#"
import json, sys, numpy as np, tifffile, zarr
url, path = sys.argv[1], sys.argv[2]
group = zarr.open_group(url, mode="r")
full = group["0"][...]
with tifffile.TiffFile(path) as f:
    own = [l.asarray() for l in f.series[0].levels[1:]]
out = []
for k in range(1, len(group.attrs["ome"]["multiscales"][0]["datasets"])):
    level = group[str(k)][...]
    # tifffile's YXS as NGFF's TCZYX
    match = [l for l in own if l.shape[:2] == level.shape[-2:]]
    if match:
        want = match[0].transpose(2, 0, 1)[None, :, None]
    else:
        f = 2 ** k
        *lead, H, W = full.shape
        oh, ow = -(-H // f), -(-W // f)
        sums = np.zeros((*lead, oh * f, ow * f)); sums[..., :H, :W] = full
        ones = np.zeros((oh * f, ow * f)); ones[:H, :W] = 1
        m = sums.reshape(*lead, oh, f, ow, f).sum(axis=(-3, -1)) / ones.reshape(oh, f, ow, f).sum(axis=(1, 3))
        want = (np.sign(m) * np.floor(np.abs(m) + 0.5)).astype(full.dtype)
    out.append({"level": k, "shape": list(level.shape), "file": bool(match),
                "equal": bool(level.shape == want.shape and np.array_equal(level, want))})
print(json.dumps(out))
"#;

/// The kind pentascope gives series `index` of tifffile's `name`.
fn kind_of(index: usize, name: &str) -> &'static str {
    match (index, name) {
        (0, _) => "main",
        (_, "Thumbnail") => "thumbnail",
        (_, "Label") => "label",
        (_, "Macro") => "macro",
        _ => "image",
    }
}

/// Checks an upload's `image_ids` against tifffile's series of the file:
/// names, kinds, shapes and samples, and each image's siblings.
fn assert_series_equal(server: &Server, file: &str, answer: &Value, want: &Value) {
    let series = want["series"].as_array().unwrap();
    let ids = answer["image_ids"].as_array().unwrap();
    assert_eq!(ids.len(), series.len(), "{file}: {answer}");
    assert_eq!(answer["image_id"], ids[0]["image_id"], "{file}");
    for (index, (got, want)) in ids.iter().zip(series).enumerate() {
        let id = got["image_id"].as_str().unwrap();
        let name = want["name"].as_str().unwrap();
        assert_eq!(got["series"], index, "{file}");
        assert_eq!(got["name"], name, "{file} series {index}");
        assert_eq!(got["kind"], kind_of(index, name), "{file} series {index}");
        assert_eq!(got["shape"], want["shape"], "{file} series {index}");
        assert_eq!(
            server.samples_sha256(id),
            want["sha256"].as_str().unwrap(),
            "{file} series {index}: samples"
        );
        let image = server.get(&format!("/images/{id}")).ok_json().unwrap();
        assert_eq!(image["series"]["name"], name, "{file}");
        assert_eq!(image["series"]["first_image_id"], answer["image_id"]);
        let siblings: Vec<&Value> = image["siblings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["image_id"])
            .collect();
        let others: Vec<&Value> = ids
            .iter()
            .map(|i| &i["image_id"])
            .filter(|i| i.as_str() != Some(id))
            .collect();
        assert_eq!(siblings, others, "{file} series {index}: siblings");
    }
}

#[test]
#[ignore = "needs a Python venv with tifffile, numpy, zarr and fsspec; run with --ignored (.ci/run does)"]
fn every_series_uploads_as_tifffile_reads_it_with_the_files_own_levels() {
    let python = python_with("tifffile, numpy, zarr, fsspec, aiohttp");
    let dir = tempfile::tempdir().unwrap();
    let want = run_json(&python, WRITE, &[dir.path().display().to_string()]);
    let server = Server::start();
    let mut first = String::new();
    for file in ["slide.svs", "images.ome.tif", "kinds.tif", "shaped.tif"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let answer = server.upload(file, bytes, None).ok_json().unwrap();
        assert_series_equal(&server, file, &answer, &want[file]);
        if file == "slide.svs" {
            first = answer["image_id"].as_str().unwrap().to_string();
        }
    }
    // the same file as a resumable (tus) upload in two pieces: the last
    // piece's answer is the upload's
    let bytes = std::fs::read(dir.path().join("images.ome.tif")).unwrap();
    let tus =
        |method: Method, path: &str| server.keyed(method, path).header("Tus-Resumable", "1.0.0");
    let created = server.send(
        "POST /uploads",
        tus(Method::POST, "/uploads")
            .header("Upload-Length", bytes.len().to_string())
            .header(
                "Upload-Metadata",
                format!("filename {}", STANDARD.encode("images.ome.tif")),
            ),
    );
    assert_eq!(created.status, 201, "{}", created.snippet());
    let location = created.header("location").to_string();
    let half = bytes.len() / 2;
    let mut last = None;
    for (offset, piece) in [(0, &bytes[..half]), (half, &bytes[half..])] {
        last = Some(
            server.send(
                &format!("PATCH {location} at {offset}"),
                tus(Method::PATCH, &location)
                    .header("Upload-Offset", offset.to_string())
                    .header("Content-Type", "application/offset+octet-stream")
                    .body(piece.to_vec()),
            ),
        );
    }
    let answer = last.unwrap().ok_json().unwrap();
    assert_series_equal(
        &server,
        "images.ome.tif by tus",
        &answer,
        &want["images.ome.tif"],
    );

    let series = want["slide.svs"]["series"].as_array().unwrap();
    let names: Vec<&str> = series.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Baseline", "Thumbnail", "Label", "Macro"]);
    assert_eq!(want["slide.svs"]["levels"].as_array().unwrap().len(), 3);

    // the SVS's levels: 1 and 2 halve exactly and are the file's, 3 is not
    // (10 x 300 is no 8 x 263) and is computed
    let meta = server.metadata(&first);
    assert_eq!(
        meta["levels_from_file"],
        serde_json::json!([1, 2]),
        "{meta}"
    );
    let levels = run_json(
        &python,
        LEVELS,
        &[
            server.url(&format!("/zarr/{first}")),
            dir.path().join("slide.svs").display().to_string(),
        ],
    );
    let summary: Vec<(bool, bool)> = levels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["file"].as_bool().unwrap(), l["equal"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [(true, true), (true, true), (false, true)],
        "{levels}"
    );
    assert!(leftovers(&server).is_empty());
}

/// A series deleted leaves its siblings; an image another user cannot see
/// is no sibling of theirs; `pentascope ingest` stores every series too.
#[test]
#[ignore = "needs a Python venv with tifffile and numpy; run with --ignored (.ci/run does)"]
fn siblings_stay_when_one_is_deleted_and_ingest_stores_every_series() {
    let python = python_with("tifffile, numpy");
    let dir = tempfile::tempdir().unwrap();
    let want = run_json(&python, WRITE, &[dir.path().display().to_string()]);
    let data = tempfile::tempdir().unwrap();
    // the stores the server started below uses
    let backend = crate::util::services::backend_env(data.path());
    let env: Vec<(&str, &str)> = backend
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = run_cli(
        data.path(),
        &env,
        &[
            "ingest",
            &dir.path().join("images.ome.tif").display().to_string(),
        ],
    );
    assert!(out.contains("image 1 \"second\""), "{out}");
    let server = Server::start_in(data.path());
    let listed = server.get("/images").ok_json().unwrap();
    let images = listed["images"].as_array().unwrap();
    assert_eq!(images.len(), 3, "{listed}");
    let first = images
        .iter()
        .find(|i| i["series"]["index"] == 0)
        .and_then(|i| i["image_id"].as_str())
        .unwrap();
    let answer = server.get(&format!("/images/{first}")).ok_json().unwrap();
    let mut all = vec![serde_json::json!({"image_id": first})];
    all.extend(answer["siblings"].as_array().unwrap().iter().cloned());
    for (got, want) in all
        .iter()
        .zip(want["images.ome.tif"]["series"].as_array().unwrap())
    {
        let id = got["image_id"].as_str().unwrap();
        assert_eq!(server.samples_sha256(id), want["sha256"].as_str().unwrap());
    }
    let second = all[1]["image_id"].as_str().unwrap().to_string();
    server
        .delete(&format!("/images/{second}"))
        .ok_json()
        .unwrap();
    for id in [first, all[2]["image_id"].as_str().unwrap()] {
        let image = server.get(&format!("/images/{id}")).ok_json().unwrap();
        let siblings = image["siblings"].as_array().unwrap();
        assert_eq!(siblings.len(), 1, "{image}");
        assert!(siblings.iter().all(|s| s["image_id"] != second.as_str()));
    }
}

/// Thousands of OME `Image`s, or of page kinds in a plain file: refused
/// with 413 naming the limit, nothing left behind.
#[test]
#[ignore = "needs a Python venv with tifffile and numpy; run with --ignored (.ci/run does)"]
fn files_of_more_series_than_the_limit_are_refused() {
    const HOSTILE: &str = r#"
import sys, numpy as np, tifffile
out_dir = sys.argv[1]
images = "".join(
    f'<Image ID="Image:{i}" Name="{i}"><Pixels ID="Pixels:{i}" DimensionOrder="XYCZT" '
    f'Type="uint8" SizeX="4" SizeY="3" SizeC="1" SizeZ="1" SizeT="1">'
    f'<Channel ID="Channel:{i}:0" SamplesPerPixel="1"/><TiffData IFD="0" PlaneCount="1"/>'
    f'</Pixels></Image>' for i in range(3000))
xml = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
       f'Schemas/OME/2016-06">{images}</OME>')
tifffile.imwrite(f"{out_dir}/images.ome.tif", np.zeros((3, 4), np.uint8), description=xml,
                 metadata=None)
with tifffile.TiffWriter(f"{out_dir}/kinds.tif") as tif:
    for width in range(1, 1200):
        tif.write(np.zeros((1, width), np.uint8), photometric="minisblack", metadata=None)
"#;
    let python = python_with("tifffile, numpy");
    let dir = tempfile::tempdir().unwrap();
    let printed = std::process::Command::new(&python)
        .arg("-c")
        .arg(HOSTILE)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let server = Server::start();
    for file in ["images.ome.tif", "kinds.tif"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let refused = server.upload(file, bytes, None);
        let message = refused.error(&[413]).unwrap();
        assert!(
            message.contains("more than the configured maximum of 1024")
                && message.contains("PENTASCOPE_MAX_SERIES"),
            "{file}: {message}"
        );
    }
    let listed = server.get("/images").ok_json().unwrap();
    assert_eq!(listed["images"].as_array().unwrap().len(), 0, "{listed}");
    assert!(leftovers(&server).is_empty());
}

/// Siblings are listed as far as the caller may see them: another user
/// shown a file's first image (made public) sees only the siblings that
/// are public too.
#[test]
#[ignore = "needs a Python venv with tifffile and numpy; run with --ignored (.ci/run does)"]
fn siblings_are_listed_as_far_as_the_caller_may_see_them() {
    let python = python_with("tifffile, numpy");
    let dir = tempfile::tempdir().unwrap();
    run_json(&python, WRITE, &[dir.path().display().to_string()]);
    let lab = crate::access::Lab::start(&[]);
    let bob = lab.key("bob", "write", &[]);
    let carol = lab.key("carol", "read", &[]);
    let part = reqwest::blocking::multipart::Part::bytes(
        std::fs::read(dir.path().join("images.ome.tif")).unwrap(),
    )
    .file_name("images.ome.tif");
    let answer = lab
        .server
        .send(
            "POST /upload",
            lab.server
                .request(Method::POST, "/upload")
                .bearer_auth(&bob)
                .multipart(reqwest::blocking::multipart::Form::new().part("file", part)),
        )
        .ok_json()
        .unwrap();
    let ids: Vec<&str> = answer["image_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{answer}");
    let siblings = |id: &str, key: &str| -> Vec<String> {
        lab.get(&format!("/images/{id}"), Some(key))
            .ok_json()
            .unwrap()["siblings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["image_id"].as_str().unwrap().to_string())
            .collect()
    };
    let public = serde_json::json!({"public": true});
    let make_public = |id: &str| {
        lab.call(
            Method::PATCH,
            &format!("/images/{id}"),
            Some(&bob),
            Some(&public),
        )
        .ok_json()
        .unwrap();
    };
    make_public(ids[0]);
    assert_eq!(siblings(ids[0], &bob), [ids[1], ids[2]]);
    assert!(siblings(ids[0], &carol).is_empty());
    make_public(ids[2]);
    assert_eq!(siblings(ids[0], &carol), [ids[2]]);
    assert_eq!(
        lab.get(&format!("/images/{}", ids[1]), Some(&carol)).status,
        404
    );
}
