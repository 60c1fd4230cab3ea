//! ZIP archives uploaded to `POST /upload` (and so to `/uploads`): a
//! Micro-Manager dataset split over three files and an NDTiff folder, each
//! zipped, import as tifffile reads the unpacked folder; hostile archives
//! (paths outside, encrypted or bzip2 entries, a name twice, too many
//! entries, a bomb, two datasets, an archive inside, a cut archive, none of
//! TIFF) are refused with a 4xx naming the reason, and leave nothing in the
//! spool.
//!
//! Needs a Python with tifffile (`PENTASCOPE_TEST_PYTHON`, default the
//! repository's `.venv`): ignored by a plain `cargo test`.

use std::path::Path;

use serde_json::Value;

use crate::tifffile::{run, MICROMANAGER};
use crate::util::Server;

/// Zips the datasets the Micro-Manager script wrote in `argv[1]`, and
/// writes the hostile archives beside them.
const ARCHIVES: &str = r#"
import os, sys, zipfile
folder = sys.argv[1]
out = os.path.join(folder, "zips")
os.makedirs(out)
def zipped(name, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(os.path.join(out, name), "w", method) as z:
        for arcname, data in members:
            z.writestr(arcname, data)
def read(rel):
    return open(os.path.join(folder, rel), "rb").read()
mm = [f"dataset/acquisition_MMStack_Pos0{k}.ome.tif" for k in ("", "_1", "_2")]
zipped("micromanager.zip", [("run1/" + os.path.basename(n), read(n)) for n in mm]
       + [("run1/notes.txt", b"acquired on the confocal")])
zipped("micromanager_stored.zip", [(os.path.basename(n), read(n)) for n in mm], zipfile.ZIP_STORED)
nd = ["nd/acq_NDTiffStack.tif", "nd/acq_NDTiffStack_1.tif", "nd/NDTiff.index"]
zipped("ndtiff.zip", [(n, read(n)) for n in nd])
one = mm[0]
zipped("two_datasets.zip", [(n, read(n)) for n in mm + ["dataset/other_MMStack_Pos0.ome.tif"]])
zipped("outside.zip", [("../../evil.tif", read(one))])
zipped("twice.zip", [("a.tif", read(one)), ("a.tif", read(one))])
zipped("many.zip", [(f"f{k}.txt", b"x") for k in range(1100)])
zipped("bomb.zip", [("bomb.tif", bytes(300 << 20))])
zipped("bzip2.zip", [("a.tif", read(one))], zipfile.ZIP_BZIP2)
zipped("no_tiff.zip", [("readme.txt", b"nothing here")])
zipped("nested.zip", [("inner.tif", open(os.path.join(out, "ndtiff.zip"), "rb").read())])
# zipfile writes no encryption: the entry is marked encrypted (general
# purpose flag bit 0) in its local and central headers afterwards
zipped("encrypted.zip", [("a.tif", read(one))], zipfile.ZIP_STORED)
raw = bytearray(open(os.path.join(out, "encrypted.zip"), "rb").read())
raw[6] |= 1
central = raw.rindex(b"PK\x01\x02")
raw[central + 8] |= 1
open(os.path.join(out, "encrypted.zip"), "wb").write(raw)
whole = open(os.path.join(out, "micromanager.zip"), "rb").read()
open(os.path.join(out, "cut.zip"), "wb").write(whole[: len(whole) // 2])
print("{}")
"#;

#[test]
#[ignore = "needs a Python venv with tifffile; run with --ignored (.ci/run does)"]
fn zipped_datasets_import_as_their_folders_and_hostile_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(MICROMANAGER, &[dir.path()]);
    run(ARCHIVES, &[dir.path()]);
    let zips = dir.path().join("zips");
    let server = Server::start();
    let read = |name: &str| std::fs::read(zips.join(name)).unwrap();

    for (archive, want) in [
        ("micromanager.zip", &reference["dataset"]),
        ("micromanager_stored.zip", &reference["dataset"]),
        ("ndtiff.zip", &reference["ndtiff"]),
    ] {
        let id = server.upload_ok(archive, read(archive));
        let meta = server.metadata(&id);
        assert_eq!(meta["shape"], want["shape"], "{archive}: {meta}");
        assert_eq!(
            server.samples_sha256(&id),
            want["sha256"].as_str().unwrap(),
            "{archive}: samples"
        );
        let flavour = if archive == "ndtiff.zip" {
            "ndtiff"
        } else {
            "micromanager"
        };
        assert_eq!(meta["flavour"], flavour, "{archive}");
        let original = meta["original_filename"].as_str().unwrap_or_default();
        assert!(
            original.starts_with(&format!("{archive}/")) && original.ends_with(".tif"),
            "{archive}: original_filename {original}"
        );
    }

    for (archive, status, words) in [
        ("two_datasets.zip", 400, "2 images"),
        ("outside.zip", 400, "outside the archive"),
        ("twice.zip", 400, "twice"),
        ("many.zip", 400, "at most 1024"),
        ("bomb.zip", 413, "PENTASCOPE_MAX_UPLOAD_BYTES"),
        ("bzip2.zip", 415, "stored and deflated"),
        ("encrypted.zip", 415, "encrypted"),
        ("no_tiff.zip", 415, "no TIFF file"),
        ("nested.zip", 415, "archives inside archives"),
        ("cut.zip", 422, "ZIP archive"),
    ] {
        let refused = server.upload(archive, read(archive), None);
        let message = refused
            .error(&[status])
            .unwrap_or_else(|e| panic!("{archive}: {e}"));
        assert!(message.contains(words), "{archive}: {message}");
    }
    assert_spool_empty(server.data_dir());
    let health: Value = server.get("/health").ok_json().unwrap();
    assert_eq!(health["status"], "ok");
}

/// Nothing an upload unpacked or spooled is left once it is answered.
pub(crate) fn assert_spool_empty(data_dir: &Path) {
    let spool = data_dir.join("spool");
    let left: Vec<String> = std::fs::read_dir(&spool)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", spool.display());
}
