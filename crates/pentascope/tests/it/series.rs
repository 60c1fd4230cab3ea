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
//! Pyramids stored as SubIFDs (OME-TIFF, plain and shaped files), plain
//! pages of decreasing sizes (tifffile's generic pyramid), shaped series
//! of one kind, Hamamatsu NDPI's, Ventana BIF's, Leica SCN's and Philips
//! DP's layouts and a Zeiss LSM's thumbnails give tifffile's series and
//! levels too.
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

/// What the scripts below share (prepended to each): the canonical TZCYX
/// array of a series, and random pictures from the script's `rng`.
const HELPERS: &str = r#"
import numpy as np

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
"#;

/// Writes the files into `argv[1]` and prints, per file, tifffile's series:
/// name, kind, canonical (TZCYX) shape and the sha256 of the canonical
/// samples (little-endian, C order), and the shapes of the first series'
/// levels.
const WRITE: &str = r#"
import hashlib, json, os, sys, numpy as np, tifffile
out_dir = sys.argv[1]
rng = np.random.default_rng(26)


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

/// What the level checks share (prepended to each): level `k` as
/// pentascope computes it, the means of `2^k` blocks of full resolution
/// over the pixels inside the plane, rounded half away from zero.
const BLOCK_MEANS: &str = r#"
import numpy as np

def block_means(full, k):
    f = 2 ** k
    *lead, H, W = full.shape
    oh, ow = -(-H // f), -(-W // f)
    sums = np.zeros((*lead, oh * f, ow * f)); sums[..., :H, :W] = full
    ones = np.zeros((oh * f, ow * f)); ones[:H, :W] = 1
    m = sums.reshape(*lead, oh, f, ow, f).sum(axis=(-3, -1)) / ones.reshape(oh, f, ow, f).sum(axis=(1, 3))
    return (np.sign(m) * np.floor(np.abs(m) + 0.5)).astype(full.dtype)
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
        want = block_means(full, k)
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
        let kind = want["api_kind"]
            .as_str()
            .unwrap_or_else(|| kind_of(index, name));
        assert_eq!(got["kind"], kind, "{file} series {index}");
        assert_eq!(got["shape"], want["shape"], "{file} series {index}");
        assert_eq!(
            server.samples_sha256(id),
            want["sha256"].as_str().unwrap(),
            "{file} series {index}: samples"
        );
        let image = server.get(&format!("/images/{id}")).ok_json().unwrap();
        if ids.len() == 1 {
            // an image that is its file's only series has no siblings
            assert!(image["series"].is_null(), "{file}: {image}");
            continue;
        }
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
    let want = run_json(
        &python,
        &[HELPERS, WRITE].concat(),
        &[dir.path().display().to_string()],
    );
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
        &[BLOCK_MEANS, LEVELS].concat(),
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
    let want = run_json(
        &python,
        &[HELPERS, WRITE].concat(),
        &[dir.path().display().to_string()],
    );
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
                && message.contains("(--max-series / PENTASCOPE_MAX_SERIES)"),
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
    run_json(
        &python,
        &[HELPERS, WRITE].concat(),
        &[dir.path().display().to_string()],
    );
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

/// Writes files whose series have pyramids of their own (SubIFDs, pages
/// of decreasing sizes, NDPI) or that hold LSM thumbnails into `argv[1]`,
/// and prints, per file, tifffile's series as [`WRITE`] does, with the
/// kind pentascope gives each (`api_kind`), the canonical shapes of its
/// levels (`series[i].levels[1:]`) and which of pentascope's stored levels
/// (`⌈size / 2^k⌉`, as many as it stores) have the size of one of them.
const WRITE_PYRAMIDS: &str = r#"
import hashlib, json, os, struct, sys, numpy as np, tifffile
out_dir = sys.argv[1]
rng = np.random.default_rng(27)


tiled = dict(tile=(16, 16), compression="zlib")
# OME-TIFF of two images, each with its pyramid in SubIFDs (tifffile's,
# Bio-Formats' and QuPath's layout): the first's levels at 1/2 and 1/4
# halve exactly, its third (3 x 300) does not; the second's one level does
with tifffile.TiffWriter(f"{out_dir}/pyramid.ome.tif") as tif:
    tif.write(picture(2, 24, 2100, dtype=np.uint16), subifds=3, photometric="minisblack",
              metadata={"axes": "CYX", "Name": "cells"}, **tiled)
    for h, w in [(12, 1050), (6, 525), (3, 300)]:
        tif.write(picture(2, h, w, dtype=np.uint16), subfiletype=1, photometric="minisblack", **tiled)
    tif.write(picture(20, 2100, 3), subifds=1, photometric="rgb", metadata={"axes": "YXS"})
    tif.write(picture(10, 1050, 3), subfiletype=1, photometric="rgb")

# no metadata, SubIFDs on each page
with tifffile.TiffWriter(f"{out_dir}/subifds.tif") as tif:
    tif.write(picture(2, 24, 2100), subifds=2, photometric="minisblack", metadata=None, **tiled)
    for h, w in [(12, 1050), (6, 525)]:
        tif.write(picture(2, h, w), subfiletype=1, photometric="minisblack", metadata=None, **tiled)

# tifffile's shaped description, SubIFDs on each page
with tifffile.TiffWriter(f"{out_dir}/shaped.tif") as tif:
    tif.write(picture(3, 24, 2100), subifds=1, photometric="minisblack")
    tif.write(picture(3, 12, 1050), subfiletype=1, photometric="minisblack")

# tifffile's shaped series, two of the first's kind and two of another
# after it, then a reduced one that is a level of the first
with tifffile.TiffWriter(f"{out_dir}/same_kinds.tif") as tif:
    tif.write(picture(3, 40, 50, dtype=np.uint16), photometric="minisblack")
    tif.write(picture(2, 40, 50, dtype=np.uint16), photometric="minisblack")
    tif.write(picture(2, 20, 30), photometric="minisblack")
    tif.write(picture(2, 2, 20, 30), photometric="minisblack", metadata={"axes": "TZYX"})
    tif.write(picture(3, 20, 25, dtype=np.uint16), photometric="minisblack", subfiletype=1)

# no metadata, pages of decreasing sizes: tifffile's generic pyramid,
# then an RGB page of its own
with tifffile.TiffWriter(f"{out_dir}/generic.tif") as tif:
    for h, w in [(24, 2100), (12, 1050), (6, 525)]:
        for _ in range(2):
            tif.write(picture(h, w), photometric="minisblack", metadata=None)
    tif.write(picture(10, 12, 3), photometric="rgb", metadata=None)

# Hamamatsu NDPI's layout: the pyramid's pages, the macro image
# (magnification -1) and the map (-2)
with tifffile.TiffWriter(f"{out_dir}/slide_ndpi.tif") as tif:
    def ndpi(magnification, label=None):
        tags = [(271, "s", 0, "Hamamatsu", True), (65420, "I", 1, 1, True),
                (65421, "f", 1, magnification, True)]
        if label:
            tags.append((65427, "s", 0, label, True))
        return dict(photometric="rgb", metadata=None, extratags=tags)
    tif.write(picture(24, 2100, 3), **tiled, **ndpi(20.0, "S-26"))
    tif.write(picture(12, 1050, 3), **tiled, **ndpi(10.0))
    tif.write(picture(6, 525, 3), **tiled, **ndpi(5.0))
    tif.write(picture(30, 40, 3), **ndpi(-1.0))
    tif.write(picture(12, 16, 3), **ndpi(-2.0))

# Ventana BIF's layout: XMP and ScanOutputManager's Software on each page,
# the label first, the pyramid's pages named by their level, a probability
# map last
xmp = b'<?xml version="1.0" encoding="utf-8"?><iScan Magnification="20"></iScan>'
with tifffile.TiffWriter(f"{out_dir}/slide_bif.tif") as tif:
    def bif(description):
        return dict(photometric="rgb", metadata=None, description=description,
                    software="ScanOutputManager 1.1", extratags=[(700, 1, len(xmp), xmp, True)])
    tif.write(picture(10, 12, 3), **bif("Label_Image"))
    tif.write(picture(8, 262, 3), **bif("Thumbnail"))
    for level, (h, w) in enumerate([(24, 2100), (12, 1050), (6, 525)]):
        tif.write(picture(h, w, 3), **tiled, **bif(f"level={level} mag={20 >> level} quality=95"))
    tif.write(picture(5, 6, 3), **bif("Probability_Image"))

# Leica SCN's layout: the XML collection of images on the first page, the
# macro image first, then the slide's pyramid placed by resolution
scn = """<?xml version="1.0" encoding="utf-8"?>
<scn xmlns="http://www.leica-microsystems.com/scn/2010/10/01">
<collection name="slide" uuid="c1" sizeX="10000" sizeY="30000">
<image name="Macro" uuid="i1"><pixels sizeX="40" sizeY="30">
<dimension sizeX="40" sizeY="30" r="0" ifd="0"/></pixels></image>
<image name="Slide &amp; tissue" uuid="i2"><pixels sizeX="2100" sizeY="24">
<dimension sizeX="2100" sizeY="24" r="0" ifd="1"/>
<dimension sizeX="1050" sizeY="12" r="1" ifd="2"/>
<dimension sizeX="525" sizeY="6" r="2" ifd="3"/></pixels></image>
</collection></scn>"""
with tifffile.TiffWriter(f"{out_dir}/slide_scn.tif") as tif:
    tif.write(picture(30, 40, 3), photometric="rgb", metadata=None, description=scn)
    for h, w in [(24, 2100), (12, 1050), (6, 525)]:
        tif.write(picture(h, w, 3), photometric="rgb", metadata=None, **tiled)

# Philips DP's layout: its XML (a pixel spacing per level) on the first
# page, the pyramid's tiled pages, the macro image and the label
spacing = "".join(
    '<DataObject ObjectType="PixelDataRepresentation"><Attribute Name="DICOM_PIXEL_SPACING" '
    f'Group="0x0028" Element="0x0030" PMSVR="IDoubleArray">&quot;{s}&quot; &quot;{s}&quot;'
    '</Attribute></DataObject>' for s in [0.00025, 0.0005, 0.001])
philips = ('<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">'
           '<Attribute Name="PIM_DP_SCANNED_IMAGES" PMSVR="IDataObjectArray"><Array>'
           '<DataObject ObjectType="DPScannedImage">'
           '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" PMSVR="IDataObjectArray">'
           f'<Array>{spacing}</Array></Attribute></DataObject></Array></Attribute></DataObject>')
with tifffile.TiffWriter(f"{out_dir}/slide_philips.tif") as tif:
    dp = dict(photometric="rgb", metadata=None, software="Philips DP v1.0")
    tif.write(picture(24, 2100, 3), description=philips, **tiled, **dp)
    tif.write(picture(12, 1050, 3), **tiled, **dp)
    tif.write(picture(6, 525, 3), **tiled, **dp)
    tif.write(picture(30, 40, 3), description="Macro", **dp)
    tif.write(picture(10, 12, 3), description="Label", **dp)

# Zeiss LSM: image pages each followed by its RGB thumbnail, as Zen writes
# them
def lsminfo(x, y, z, c, t, scan_type):
    head = struct.pack("<IiiiiiiiiiddddddHHIIIIIdIIIIIIII",
        0x0400494C, 152, x, y, z, c, t, 2, 16, 12,
        0.2e-6, 0.25e-6, 1.5e-6, 0.0, 0.0, 0.0,
        scan_type, 0, 0, 0, 0, 0, 0, 0.75, 0, 0, 0, 0, 0, 0, 0, 0)
    return head + bytes(500 - len(head))
info = lsminfo(64, 48, 3, 1, 1, 0)
with tifffile.TiffWriter(f"{out_dir}/stack.lsm") as tif:
    for i, plane in enumerate(picture(3, 48, 64, dtype=np.uint16)):
        extratags = [(34412, 1, len(info), info, True)] if i == 0 else []
        tif.write(plane, photometric="minisblack", metadata=None, extratags=extratags)
        tif.write(picture(12, 16, 3), photometric="rgb", subfiletype=1, metadata=None)

def level_of(k, height, width, levels):
    # the file's level that has the size of pentascope's level k, if any
    h, w = -(-height // 2 ** k), -(-width // 2 ** k)
    return any(l[-2:] == [h, w] for l in levels)

out = {}
for name in ["pyramid.ome.tif", "subifds.tif", "shaped.tif", "same_kinds.tif", "generic.tif",
             "slide_ndpi.tif", "slide_bif.tif", "slide_scn.tif", "slide_philips.tif", "stack.lsm"]:
    with tifffile.TiffFile(f"{out_dir}/{name}") as f:
        series = []
        for index, s in enumerate(f.series):
            data = canonical(s.asarray(), s.axes)
            if index == 0:
                kind = "main"
            elif s.name in ("Thumbnail", "Label", "Macro"):
                kind = s.name.lower()
            elif s.kind == "lsm":
                kind = "thumbnail"
            else:
                kind = "image"
            levels = [list(canonical(l.asarray(), l.axes).shape) for l in s.levels[1:]]
            height, width = data.shape[-2:]
            stored = 0
            while -(-max(height, width) // 2 ** stored) > 512 and max(height, width) > 2048:
                stored += 1
            series.append({"name": s.name, "api_kind": kind, "shape": list(data.shape),
                           "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
                           "levels": levels,
                           "levels_from_file": [k for k in range(1, stored + 1)
                                                if level_of(k, height, width, levels)]})
        out[name] = {"series": series}
print(json.dumps(out, indent=1))
"#;

/// For the image at URL `argv[1]`, series `argv[3]` of the file `argv[2]`:
/// each stored level beyond full resolution, whether it has the size of
/// one of the series' own levels (tifffile's `levels[1:]`), and whether it
/// equals that level, or else the exact block means of full resolution.
const SERIES_LEVELS: &str = r#"
import json, sys, numpy as np, tifffile, zarr
url, path, index = sys.argv[1], sys.argv[2], int(sys.argv[3])

def ngff(data, axes):
    # tifffile's axes as NGFF's TCZYX; an unlabelled page axis is Z
    axes = axes.replace("S", "C").replace("I", "Z").replace("Q", "Z")
    for a in "TCZYX":
        if a not in axes:
            data, axes = data[np.newaxis], a + axes
    return np.transpose(data, [axes.index(a) for a in "TCZYX"])

group = zarr.open_group(url, mode="r")
full = group["0"][...]
with tifffile.TiffFile(path) as f:
    own = [ngff(l.asarray(), l.axes) for l in f.series[index].levels[1:]]
out = []
for k in range(1, len(group.attrs["ome"]["multiscales"][0]["datasets"])):
    level = group[str(k)][...]
    match = [l for l in own if l.shape == level.shape]
    if match:
        want = match[0]
    else:
        want = block_means(full, k)
    out.append({"level": k, "shape": list(level.shape), "file": bool(match),
                "equal": bool(level.shape == want.shape and np.array_equal(level, want))})
print(json.dumps(out))
"#;

/// OME-TIFF pyramids in SubIFDs (two images, each with its own), SubIFDs
/// of plain and shaped files, shaped series of one kind one after another
/// (and a reduced one that is a level), plain pages of decreasing sizes, an NDPI's
/// pyramid, macro and map, a Ventana BIF's pyramid, label and thumbnails,
/// a Leica SCN's images, a Philips DP slide's pyramid, macro and label,
/// and an LSM's thumbnails: every series is an
/// image with tifffile's name, shape and samples, and the kind pentascope
/// gives it; each series' own levels that halve exactly are stored as the
/// file has them (`levels_from_file`, equal to tifffile's levels), the
/// others computed.
#[test]
#[ignore = "needs a Python venv with tifffile, numpy, zarr and fsspec; run with --ignored (.ci/run does)"]
fn pyramids_of_subifds_and_slide_vendors_and_lsm_thumbnails_upload_as_tifffile_reads_them() {
    let python = python_with("tifffile, numpy, zarr, fsspec, aiohttp");
    let dir = tempfile::tempdir().unwrap();
    let want = run_json(
        &python,
        &[HELPERS, WRITE_PYRAMIDS].concat(),
        &[dir.path().display().to_string()],
    );
    let server = Server::start();
    let files = want.as_object().unwrap();
    assert_eq!(files.len(), 10, "{want}");
    let mut from_file = 0;
    for (file, want) in files {
        let path = dir.path().join(file);
        let answer = server
            .upload(file, std::fs::read(&path).unwrap(), None)
            .ok_json()
            .unwrap();
        assert_series_equal(&server, file, &answer, want);
        let ids = answer["image_ids"].as_array().unwrap();
        for (index, (got, want)) in ids
            .iter()
            .zip(want["series"].as_array().unwrap())
            .enumerate()
        {
            let id = got["image_id"].as_str().unwrap();
            let meta = server.metadata(id);
            assert_eq!(
                meta["levels_from_file"], want["levels_from_file"],
                "{file} series {index}: {meta}"
            );
            let levels = run_json(
                &python,
                &[BLOCK_MEANS, SERIES_LEVELS].concat(),
                &[
                    server.url(&format!("/zarr/{id}")),
                    path.display().to_string(),
                    index.to_string(),
                ],
            );
            for level in levels.as_array().unwrap() {
                assert!(
                    level["equal"].as_bool().unwrap(),
                    "{file} series {index}: {levels}"
                );
                if level["file"].as_bool().unwrap() {
                    from_file += 1;
                }
            }
        }
    }
    // OME 2 + 1, plain SubIFDs 2, shaped 1, generic 2, NDPI 2, BIF 2, SCN 2,
    // Philips 2
    assert_eq!(from_file, 16);
    assert!(leftovers(&server).is_empty());
}
