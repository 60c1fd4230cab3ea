//! The browser pages: served from the binary (any `cargo test`), and used
//! in a real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/browser/`, both installed by `.ci/run`):
//! the viewer draws, its sliders, channel toggles, windows, colours and
//! projections change the picture, zooming a 9600 × 9600 plane asks for
//! finer pyramid tiles, `/` shows thumbnails and uploads with a progress
//! bar, `/docs` lists every route; without console errors. Also with
//! access control required: a key given once as `?key=`, typed into the
//! page, or a signed link.
//!
//! The screenshots stay in `$PENTASCOPE_SCREENSHOTS` (default a
//! `pentascope-viewer-*` directory under the system's temporary
//! directory), printed by the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::util::server::run_cli;
use crate::util::services::backend_env;
use crate::util::{fixtures_dir, image_id_of, FixtureSet, Server};

const SMALL: &str = "ome_tczyx_u16.ome.tif";
const LARGE: &str = "em_9600x9600_deflate_rps1_u16.tif";
const SCALED: &str = "ij_mitosis_crop_TZCYX_u16.tif";
const UPLOADED: &str = "ij_mri-stack_calibrated_ZYX_u8.tif";

fn browser_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser"))
}

/// A directory for the screenshots of `run`, kept after the test.
fn shots_dir(run: &str) -> PathBuf {
    let root = std::env::var_os("PENTASCOPE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("pentascope-viewer-{}", std::process::id()))
        });
    let dir = root.join(run);
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// Runs `tests/browser/viewer.mjs` with `config`; fails with its output
/// unless every check passes.
fn drive_chromium(server: &Server, config: Value) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (as .ci/run does)"
    );
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in {} (as .ci/run does)",
        dir.display()
    );
    let shots = PathBuf::from(config["shots"].as_str().unwrap());
    let out = Command::new("node")
        .arg("viewer.mjs")
        .arg(config.to_string())
        .current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    println!("screenshots in {}", shots.display());
    assert!(
        out.status.success() && shots.join("DONE").is_file(),
        "the browser checks failed ({}):\n{stdout}\n{stderr}\n{}",
        out.status,
        server.logs()
    );
}

/// The pages and their assets come from the binary, as HTML, JavaScript
/// and CSS with a policy that allows nothing from elsewhere; the viewer's
/// page answers for any id (the data comes from the API).
#[test]
fn pages_and_assets_are_served_from_the_binary() {
    let server = Server::start();
    for (path, kind) in [
        ("/", "text/html"),
        ("/?key=ps_anything", "text/html"),
        ("/view/image_1", "text/html"),
        ("/view/no-such-image", "text/html"),
        ("/docs", "text/html"),
        ("/assets/common.js", "text/javascript"),
        ("/assets/index.js", "text/javascript"),
        ("/assets/viewer.js", "text/javascript"),
        ("/assets/docs.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let resp = server.get(path);
        assert_eq!(resp.status, 200, "{path}: {}", resp.snippet());
        assert!(
            resp.content_type.starts_with(kind),
            "{path}: {}",
            resp.content_type
        );
        if kind == "text/html" {
            let csp = resp.header("content-security-policy");
            assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
            let html = String::from_utf8_lossy(&resp.body);
            assert!(html.contains("assets/common.js"), "{path}");
        }
    }
    let view = String::from_utf8_lossy(&server.get("/view/image_1").body).into_owned();
    assert!(view.contains("id=\"canvas\"") && view.contains("assets/viewer.js"));
    // pages take only `key`, like every route refuses what it does not know
    let resp = server.get("/view/image_1?z=3");
    assert_eq!(resp.status, 400, "{}", resp.snippet());
    assert!(resp.error(&[400]).unwrap().contains("valid: key"));
    assert_eq!(server.get("/assets/nothing.js").status, 404);
}

#[test]
#[ignore = "needs Chromium and node; run with --ignored (.ci/run does)"]
fn viewer_pages_in_chromium() {
    let tiff = FixtureSet::load(&fixtures_dir(), "tiff");
    let real = FixtureSet::load(&fixtures_dir(), "real");
    let server = Server::start();
    let small = server.upload_ok(SMALL, tiff.read(SMALL));
    let large = server.upload_ok(LARGE, real.read(LARGE));
    let scaled = server.upload_ok(SCALED, real.read(SCALED));
    let base = server.url("");
    drive_chromium(
        &server,
        json!({
            "base": base,
            "shots": shots_dir("full"),
            "mode": "full",
            "small": small,
            "large": large,
            "scaled": scaled,
            "upload": real.dir.join(UPLOADED),
        }),
    );
    // the upload through the form is an image like any other
    let images = server.get("/images").ok_json().unwrap();
    let uploaded = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["original_filename"] == UPLOADED)
        .unwrap_or_else(|| panic!("{UPLOADED} is not listed: {images}"));
    assert_eq!(uploaded["shape"], json!([1, 27, 1, 226, 186]));
}

#[test]
#[ignore = "needs Chromium and node; run with --ignored (.ci/run does)"]
fn viewer_pages_with_access_control_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = backend_env(dir.path());
    env.push(("PENTASCOPE_AUTH".into(), "required".into()));
    let server = Server::start_configured(dir.path(), &env);
    let cli_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_cli(server.data_dir(), &cli_env, &["user", "create", "ada"]);
    let key = run_cli(
        server.data_dir(),
        &cli_env,
        &["token", "create", "--user", "ada", "--scope", "write"],
    )
    .trim()
    .to_string();
    let tiff = FixtureSet::load(&fixtures_dir(), "tiff");
    let part = reqwest::blocking::multipart::Part::bytes(tiff.read(SMALL))
        .file_name(SMALL)
        .mime_str("image/tiff")
        .unwrap();
    let form = reqwest::blocking::multipart::Form::new().part("file", part);
    let uploaded = server.send(
        "POST /upload",
        server
            .request(Method::POST, "/upload")
            .bearer_auth(&key)
            .multipart(form),
    );
    let small = image_id_of(&uploaded).unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    // the pages themselves need no key
    assert_eq!(
        server
            .send(
                "GET /view",
                server.request(Method::GET, &format!("/view/{small}"))
            )
            .status,
        200
    );
    let link = server
        .send(
            "POST links",
            server
                .request(Method::POST, &format!("/images/{small}/links"))
                .bearer_auth(&key)
                .json(&json!({"expires_in": 600})),
        )
        .ok_json()
        .unwrap();
    drive_chromium(
        &server,
        json!({
            "base": server.url(""),
            "shots": shots_dir("auth"),
            "mode": "auth",
            "small": small,
            "key": key,
            "link": link["prefix"],
        }),
    );
}

/// `/` as a catalogue in Chromium: 130 images imported with tags, a
/// description and a dataset by `pentascope ingest`; the first screen shows
/// one page, paging, typing a search, a tag chip and a dataset narrow it,
/// and the viewer's panel saves the image's entry.
#[test]
#[ignore = "needs Chromium and node; run with --ignored (.ci/run does)"]
fn catalogue_page_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let batches: [(&str, usize, &[&str]); 3] = [
        ("cortex", 65, &["--tag", "DAPI", "--dataset", "Cortex"]),
        ("liver", 55, &["--tag", "GFP", "--annotation", "Stain=GFP"]),
        ("other", 10, &["--description", "kidney sample"]),
    ];
    for (folder, count, args) in batches {
        let dir = files.path().join(folder);
        std::fs::create_dir(&dir).unwrap();
        for i in 0..count {
            let bytes = crate::util::tiff::plain_tiff(16, 12, 8, 1, move |_, p| {
                (p as u8).wrapping_mul(3).wrapping_add(i as u8)
            });
            std::fs::write(dir.join(format!("{folder}_{i:03}.tif")), bytes).unwrap();
        }
        let mut all = vec!["ingest", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        crate::util::server::run_cli(data.path(), &[("PENTASCOPE_AUTH", "off")], &all);
    }
    let server = Server::start_configured(data.path(), &[]);
    drive_chromium(
        &server,
        json!({
            "base": server.url(""),
            "shots": shots_dir("catalogue"),
            "mode": "catalogue",
            "total": 130,
            "word": "kidn",
            "word_count": 10,
            "tag": "DAPI",
            "tag_count": 65,
            "edit": "image_1",
        }),
    );
}

/// The upload form's resumable uploads in Chromium (tus-js-client, served
/// from the binary): a file sent slowly in pieces, the page reloaded a
/// third of the way; after the reload the page shows the unfinished
/// upload's progress, the same file chosen again resumes where the server
/// is, and the image has the file's planes.
#[test]
#[ignore = "needs Chromium and node; run with --ignored (.ci/run does)"]
fn resumable_upload_in_chromium_survives_a_reload() {
    let server = Server::start();
    let files = tempfile::tempdir().unwrap();
    let sample = |page: u32, i: usize| ((page as usize * 13 + i * 5) % 253) as u8;
    let pages = 24;
    let bytes = crate::util::tiff::plain_tiff(256, 256, 8, pages, sample);
    let path = files.path().join("resumed.tif");
    std::fs::write(&path, &bytes).unwrap();
    drive_chromium(
        &server,
        json!({
            "base": server.url(""),
            "shots": shots_dir("resumable"),
            "mode": "resumable",
            "file": path,
            "size": bytes.len(),
        }),
    );
    let listed = server.get("/images").ok_json().unwrap();
    let images = listed["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "one image: {listed}");
    let id = images[0]["image_id"].as_str().unwrap();
    assert_eq!(images[0]["original_filename"], "resumed.tif");
    assert_eq!(server.metadata(id)["shape"], json!([1, pages, 1, 256, 256]));
    for z in [0, pages / 2, pages - 1] {
        let plane = server.plane_npy(id, 0, u64::from(z), 0);
        let want: Vec<u8> = (0..256 * 256).map(|i| sample(z, i)).collect();
        assert!(plane.data == want, "plane z={z} differs");
    }
}
