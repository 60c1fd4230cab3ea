//! Multi-file OME-TIFF sets: an image's planes spread over several files
//! that one OME-XML names by `UUID` and `FileName`, written by tifffile
//! with the OME-XML this test builds as Bio-Formats does (every file with
//! the whole XML; a master file and files `BinaryOnly` pointing to it; a
//! `.companion.ome` and `BinaryOnly` files). Each imports from its folder
//! with `pentascope ingest` (one image, the other files read with it), as
//! a ZIP through `POST /upload` and as a ZIP through tus, with tifffile's
//! shape and samples (`series[0]` of a file of the set). Hostile sets are
//! refused with a 4xx naming the reason: a missing file (also a set's
//! file uploaded alone), files outside the folder (by `..` or an absolute
//! path), `BinaryOnly` pointers that loop, a UUID naming two files, more
//! files than one image reads.
//!
//! Needs a Python with tifffile (`PENTASCOPE_TEST_PYTHON`, default the
//! repository's `.venv`): ignored by a plain `cargo test`.

use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;

use crate::archive::assert_spool_empty;
use crate::tifffile::run;
use crate::util::server::run_cli;
use crate::util::Server;

/// Writes the sets in folders of `argv[1]`, and each folder zipped in
/// `zips/`; prints tifffile's shape and samples' sha256 of the good ones.
const SETS: &str = r#"
import hashlib, json, os, shutil, sys, uuid, zipfile, numpy as np, tifffile
root = sys.argv[1]
rng = np.random.default_rng(26)
NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
T, Z, C, Y, X = 3, 2, 2, 24, 32
data = rng.integers(0, 65535, (T, Z, C, Y, X), dtype=np.uint16)
out = {}

def urn():
    return f"urn:uuid:{uuid.uuid4()}"

def ome(own, refs, t=T, counted=True):
    # Bio-Formats' layout: time point k in file k, its Z×C planes from IFD 0
    # (or, not `counted`, as many planes as the file has)
    count = f' IFD="0" PlaneCount="{Z * C}"' if counted else ""
    tiffdata = "".join(
        f'<TiffData FirstT="{k}" FirstZ="0" FirstC="0"{count}>'
        f'<UUID FileName="{name}">{u}</UUID></TiffData>' for k, (name, u) in enumerate(refs))
    channels = "".join(f'<Channel ID="Channel:0:{c}" SamplesPerPixel="1"/>' for c in range(C))
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{own}">'
            f'<Image ID="Image:0" Name="set"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" '
            f'Type="uint16" SizeX="{X}" SizeY="{Y}" SizeZ="{Z}" SizeC="{C}" SizeT="{t}">'
            f'{channels}{tiffdata}</Pixels></Image></OME>')

def binary_only(own, metadata_file, master):
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{own}">'
            f'<BinaryOnly MetadataFile="{metadata_file}" UUID="{master}"/></OME>')

def write(folder, name, k, description):
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    tifffile.imwrite(os.path.join(root, folder, name), data[k].reshape(Z * C, Y, X),
                     description=description, metadata=None, photometric="minisblack")

def reference(case, path, omexml=None):
    with tifffile.TiffFile(path, omexml=omexml) as f:
        series = f.series[0]
        assert series.kind == "ome" and series.is_multifile, (series.kind, series.is_multifile)
        a = series.asarray()
    assert series.axes == "TZCYX" and np.array_equal(a, data), series.axes
    out[case] = {"shape": list(a.shape), "files": len(refs),
                 "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}

# Bio-Formats: every file carries the whole OME-XML, under its own UUID
refs = [(f"set_t{k}.ome.tif", urn()) for k in range(T)]
for k, (name, u) in enumerate(refs):
    write("bioformats", name, k, ome(u, refs))
reference("bioformats", os.path.join(root, "bioformats", refs[0][0]))

# a master file with the OME-XML, the others BinaryOnly pointing to it (the
# master last in name order, so that the folder's first file points to it)
refs = [(f"b_t{k}.ome.tif", urn()) for k in range(T)]
master, master_uuid = refs[-1]
for k, (name, u) in enumerate(refs):
    write("master", name, k, ome(u, refs) if name == master else binary_only(u, master, master_uuid))
reference("master", os.path.join(root, "master", master))

# a companion file holding the OME-XML, every TIFF BinaryOnly
refs = [(f"c_t{k}.ome.tif", urn()) for k in range(T)]
companion_uuid = urn()
companion = ome(companion_uuid, refs, counted=False)
for k, (name, u) in enumerate(refs):
    write("companion", name, k, binary_only(u, "c.companion.ome", companion_uuid))
with open(os.path.join(root, "companion", "c.companion.ome"), "w") as f:
    f.write(companion)
reference("companion", os.path.join(root, "companion", refs[0][0]), omexml=companion)

# hostile sets: a file missing; a file outside the folder, by its parent
# or by an absolute path (both existing files); BinaryOnly pointers that
# loop; a UUID naming two files; more files than read as one image
refs = [(f"m_t{k}.ome.tif", urn()) for k in range(T)]
for k, (name, u) in enumerate(refs[:-1]):
    write("missing", name, k, ome(u, refs))
elsewhere = os.path.join(root, "bioformats", "set_t1.ome.tif")
for case, far in [("parent", "../bioformats/set_t1.ome.tif"), ("absolute", elsewhere)]:
    refs = [(f"{case}_t0.ome.tif", urn()), (far, urn())]
    write(case, refs[0][0], 0, ome(refs[0][1], refs, t=2))
write("loop", "loop_t0.ome.tif", 0, binary_only(urn(), "loop.companion.ome", urn()))
with open(os.path.join(root, "loop", "loop.companion.ome"), "w") as f:
    f.write(binary_only(urn(), "loop_t0.ome.tif", urn()))
twice = urn()
refs = [("d_t0.ome.tif", urn()), ("d_t1.ome.tif", twice), ("d_t2.ome.tif", twice)]
for k, (name, u) in enumerate(refs):
    write("duplicate", name, k, ome(u, refs))
refs = [(f"many_t{k}.ome.tif", urn()) for k in range(600)]
write("many", refs[0][0], 0, ome(refs[0][1], refs, t=600))

# each folder zipped, as a lab sends it
os.makedirs(os.path.join(root, "zips"))
for folder in sorted(os.listdir(root)):
    if folder == "zips":
        continue
    with zipfile.ZipFile(os.path.join(root, "zips", folder + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(os.listdir(os.path.join(root, folder))):
            z.write(os.path.join(root, folder, name), f"{folder}/{name}")
print(json.dumps(out))
"#;

#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn multi_file_ome_sets_import_from_folders_and_zips_as_tifffile_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(SETS, &[dir.path()]);
    let zip =
        |case: &str| std::fs::read(dir.path().join("zips").join(format!("{case}.zip"))).unwrap();
    let server = Server::start();
    for (case, want) in reference.as_object().unwrap() {
        let same = |id: &str, how: &str, server: &Server| {
            let meta = server.metadata(id);
            assert_eq!(meta["flavour"], "ome", "{case} {how}");
            assert_eq!(meta["shape"], want["shape"], "{case} {how}");
            assert_eq!(
                server.samples_sha256(id),
                want["sha256"].as_str().unwrap(),
                "{case} {how}: samples"
            );
            assert_eq!(meta["warnings"], serde_json::json!([]), "{case} {how}");
        };
        // the folder, with `pentascope ingest`: one image, the other files
        // read with the first
        let data_dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(case);
        let out = run_cli(data_dir.path(), &[], &["ingest", folder.to_str().unwrap()]);
        let ids: Vec<&str> = out
            .split_whitespace()
            .filter(|word| word.starts_with("image_"))
            .collect();
        assert_eq!(ids.len(), 1, "{case}: {out}");
        assert!(
            out.contains("imported 1 of 3 files (2 read with another)"),
            "{case}: {out}"
        );
        same(ids[0], "ingested", &Server::start_in(data_dir.path()));
        // the folder zipped, through POST /upload and through tus
        let id = server.upload_ok(&format!("{case}.zip"), zip(case));
        same(&id, "zipped", &server);
        let resp = tus_whole(&server, &format!("{case}.zip"), zip(case));
        assert_eq!(resp.status, 201, "{case}: {}", resp.snippet());
        let id = resp.json().unwrap()["image_id"]
            .as_str()
            .unwrap()
            .to_string();
        same(&id, "zipped, through tus", &server);
    }

    // a set's file alone: its other files are missing
    let alone = std::fs::read(dir.path().join("bioformats/set_t0.ome.tif")).unwrap();
    let message = server
        .upload("set_t0.ome.tif", alone, None)
        .error(&[422])
        .unwrap();
    assert!(
        message.contains("set_t1.ome.tif") && message.contains("missing"),
        "{message}"
    );
    for (case, status, words) in [
        ("missing", 422, &["m_t2.ome.tif", "missing"][..]),
        (
            "parent",
            422,
            &["../bioformats/set_t1.ome.tif", "not a file of the folder"],
        ),
        (
            "absolute",
            422,
            &["set_t1.ome.tif", "not a file of the folder"],
        ),
        (
            "loop",
            422,
            &["BinaryOnly pointers loop", "loop.companion.ome"],
        ),
        (
            "duplicate",
            422,
            &["names two files", "d_t1.ome.tif", "d_t2.ome.tif"],
        ),
        ("many", 413, &["more than 512", "MAX_DATASET_FILES"]),
    ] {
        let message = server
            .upload(&format!("{case}.zip"), zip(case), None)
            .error(&[status])
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        for word in words {
            assert!(message.contains(word), "{case}: {message}");
        }
        // and from the folder: refused with the same reason, nothing imported
        let data_dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pentascope"))
            .arg("ingest")
            .arg(dir.path().join(case))
            .arg("--data-dir")
            .arg(data_dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{case}: {stdout}");
        assert!(
            stdout.contains("FAILED") && stdout.contains(words[0]) && !stdout.contains("image_"),
            "{case}: {stdout}"
        );
    }
    assert_spool_empty(server.data_dir());
    server.assert_healthy();
}

/// A tus upload of `bytes` in its creation request (creation-with-upload).
fn tus_whole(server: &Server, name: &str, bytes: Vec<u8>) -> crate::util::Resp {
    server.send(
        &format!("POST /uploads {name}"),
        server
            .keyed(Method::POST, "/uploads")
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", bytes.len().to_string())
            .header(
                "Upload-Metadata",
                format!("filename {}", STANDARD.encode(name)),
            )
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes),
    )
}
