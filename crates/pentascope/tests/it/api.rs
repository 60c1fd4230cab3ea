//! HTTP integration tests for `pentascope serve`.
//!
//! Each test starts its own server (`pentascope serve --port 0`) on a
//! temporary data directory and talks to it with a blocking HTTP client.
//! The fixture corpus is read in place from `../shared/fixtures` relative to
//! the repository root, or from `$PENTASCOPE_FIXTURES`.

use crate::util::conformance::{check_metadata, check_set};
use crate::util::{
    close, decode_gray_png, f64s, fixtures_dir, numbers_in, shape5, FixtureSet, Server,
};
use serde_json::{json, Value};

/// Runs one fixture set and fails with every mismatching file listed.
fn conformance(set_name: &str, strict_flavour: bool) {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, set_name);
    let server = Server::start();
    let failures = check_set(&server, &set, strict_flavour);
    server.assert_healthy();
    assert!(
        failures.is_empty(),
        "{} of {} files in {set_name}/ do not conform:\n  {}\n{}",
        failures.len(),
        set.files.len(),
        failures.join("\n  "),
        server.logs()
    );
}

/// Every synthetic fixture: accepted files match shape, dtype, every sample,
/// statistics and PCA; broken files are refused with a 4xx JSON error.
#[test]
fn conformance_synthetic_fixtures() {
    conformance("tiff", true);
}

/// Every real-world fixture, as for the synthetic ones.
#[test]
fn conformance_real_fixtures() {
    conformance("real", false);
}

/// Asserts an error response and returns its message, with server logs on failure.
fn expect_error(server: &Server, resp: crate::util::Resp, allowed: &[u16]) -> String {
    resp.error(allowed)
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()))
}

/// Asserts a 4xx error response and returns its message.
fn expect_4xx(server: &Server, resp: crate::util::Resp) -> String {
    resp.client_error()
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()))
}

/// User mistakes get a 4xx status and a JSON `{"error": ...}` body.
#[test]
fn bad_requests() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let server = Server::start();
    // T=3 Z=4 C=2, 40x48 uint16.
    let multi = server.upload_ok("imagej_tzcyx_u16.tif", set.read("imagej_tzcyx_u16.tif"));
    // One channel, uint8.
    let single = server.upload_ok("plain_2d_u8.tif", set.read("plain_2d_u8.tif"));
    // float32.
    let float = server.upload_ok("imagej_tyx_f32.tif", set.read("imagej_tyx_f32.tif"));

    // Unknown image ids.
    let unknown = "image_987654321";
    for resp in [
        server.get(&format!("/metadata?image_id={unknown}")),
        server.get(&format!("/slice?image_id={unknown}")),
        server.get(&format!("/slice?image_id={unknown}&format=npy")),
        server.get(&format!("/statistics?image_id={unknown}")),
        server.get(&format!("/images/{unknown}")),
        server.delete(&format!("/images/{unknown}")),
        server.post_json("/analyze", &json!({"image_id": unknown, "components": 2})),
        server.get("/metadata?image_id=no-such-image"),
    ] {
        let what = resp.what.clone();
        let msg = expect_error(&server, resp, &[404]);
        assert!(
            msg.to_lowercase().contains("not found"),
            "{what}: message {msg:?} does not say \"not found\""
        );
    }

    // Missing image_id.
    for path in ["/metadata", "/slice", "/statistics"] {
        expect_4xx(&server, server.get(path));
    }

    // Out-of-range plane coordinates name the valid range: the message must
    // mention the largest valid index or the axis size.
    for (param, value, size) in [("z", 9, 4u64), ("time", 5, 3), ("channel", 7, 2)] {
        for format in ["", "&format=npy"] {
            let resp = server.get(&format!("/slice?image_id={multi}&{param}={value}{format}"));
            let what = resp.what.clone();
            let msg = expect_error(&server, resp, &[400]);
            let numbers = numbers_in(&msg);
            assert!(
                numbers.contains(&(size - 1)) || numbers.contains(&size),
                "{what}: message {msg:?} does not name the valid range 0..={} (size {size})",
                size - 1
            );
        }
    }
    // The first index past the end is out of range too.
    expect_error(
        &server,
        server.get(&format!("/slice?image_id={multi}&z=4")),
        &[400],
    );
    expect_error(
        &server,
        server.get(&format!("/slice?image_id={single}&channel=1")),
        &[400],
    );

    // Coordinates that are not non-negative integers.
    for query in ["z=abc", "z=1.5", "z=-1", "time=x", "channel=1e3"] {
        let resp = server.get(&format!("/slice?image_id={multi}&{query}"));
        expect_error(&server, resp, &[400]);
    }
    // A window that is not a number.
    expect_4xx(
        &server,
        server.get(&format!("/slice?image_id={multi}&min=low&max=10")),
    );

    // 16-bit PNG output only exists for integer types of up to 16 bits.
    expect_error(
        &server,
        server.get(&format!("/slice?image_id={float}&bits=16")),
        &[400],
    );

    // Uploads without a usable file.
    let no_file = reqwest::blocking::multipart::Form::new().text("comment", "no file here");
    expect_error(
        &server,
        server.post_form("/upload", "without a file field", no_file),
        &[400],
    );
    expect_error(
        &server,
        server.upload("empty.tif", Vec::new(), None),
        &[400],
    );
    let text = b"This is a plain text file, not a TIFF image at all.\n".repeat(40);
    expect_error(&server, server.upload("notes.tif", text, None), &[415, 422]);
    let png_bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\0\0\0\0".to_vec();
    expect_error(
        &server,
        server.upload("picture.tif", png_bytes, None),
        &[415, 422],
    );
    // Not multipart at all.
    expect_4xx(
        &server,
        server.post_raw("/upload", "application/json", b"{\"file\": 1}".to_vec()),
    );

    // PCA parameters.
    for components in [json!(0), json!(3), json!(100)] {
        let resp = server.post_json(
            "/analyze",
            &json!({"image_id": multi, "components": components}),
        );
        expect_error(&server, resp, &[400]);
    }
    for components in [json!(-1), json!(1.5), json!("two")] {
        let resp = server.post_json(
            "/analyze",
            &json!({"image_id": multi, "components": components}),
        );
        expect_4xx(&server, resp);
    }
    let resp = server.post_json("/analyze", &json!({"image_id": single, "components": 1}));
    let msg = expect_error(&server, resp, &[400]);
    assert!(
        msg.to_lowercase().contains("channel"),
        "single-channel analyze: message {msg:?} does not explain that PCA needs channels"
    );
    // Malformed bodies.
    expect_4xx(
        &server,
        server.post_raw("/analyze", "application/json", b"{not json".to_vec()),
    );
    expect_4xx(
        &server,
        server.post_raw("/analyze", "application/json", b"[1, 2, 3]".to_vec()),
    );
    expect_4xx(
        &server,
        server.post_json("/analyze", &json!({"components": 2})),
    );

    // Nothing above broke the server or the images.
    server.assert_healthy();
    let meta = server.metadata(&multi);
    check_metadata(&meta, "imagej_tzcyx_u16.tif", [3, 4, 2, 40, 48], "uint16")
        .unwrap_or_else(|e| panic!("{e}"));
}

/// PNG rendering: 8-bit windowing, explicit windows, raw 16-bit output.
#[test]
fn slice_rendering() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let server = Server::start();
    let u16_id = server.upload_ok("imagej_tzcyx_u16.tif", set.read("imagej_tzcyx_u16.tif"));
    let (h, w) = (40usize, 48usize);
    let (t, z, c) = (1, 2, 1);
    let plane = server.plane_npy(&u16_id, t, z, c);
    plane.check("uint16", &[h as u64, w as u64]).unwrap();
    let raw = plane.values();
    let coords = format!("image_id={u16_id}&time={t}&z={z}&channel={c}");

    // The defaults are t = z = c = 0.
    let first = server.plane_npy(&u16_id, 0, 0, 0);
    let default = server
        .get(&format!("/slice?image_id={u16_id}&format=npy"))
        .npy()
        .unwrap();
    assert_eq!(
        default.data, first.data,
        "/slice without coordinates is not plane 0,0,0"
    );

    // Default rendering: 8-bit grayscale of the plane's size, monotonic in
    // the raw values and not flat for a plane that is not flat.
    let resp = server.get(&format!("/slice?{coords}"));
    let header = resp.png_header().unwrap();
    assert_eq!((header.bit_depth, header.color_type), (8, 0), "{header:?}");
    let png = decode_gray_png(&resp.body).unwrap();
    assert_eq!((png.width, png.height, png.bit_depth), (w, h, 8));
    assert_monotonic(&raw, &png.samples, "default window");
    let distinct: std::collections::BTreeSet<u16> = png.samples.iter().copied().collect();
    assert!(
        distinct.len() > 16,
        "default rendering uses only {} grey levels",
        distinct.len()
    );

    // Explicit window: values at or below min are black, at or above max
    // white, linear in between (within one grey level for rounding).
    let (lo, hi) = (20000.0, 40000.0);
    let resp = server.get(&format!("/slice?{coords}&min={lo}&max={hi}"));
    let png = decode_gray_png(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.snippet()));
    assert_eq!((png.width, png.height, png.bit_depth), (w, h, 8));
    assert!(
        raw.iter().any(|&p| p < lo)
            && raw.iter().any(|&p| p > hi)
            && raw.iter().any(|&p| p > lo && p < hi)
    );
    assert_window(&raw, &png.samples, lo, hi);

    // Full-range window: p -> round(p * 255 / 65535).
    let resp = server.get(&format!("/slice?{coords}&min=0&max=65535"));
    let png = decode_gray_png(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.snippet()));
    assert_window(&raw, &png.samples, 0.0, 65535.0);

    // Raw 16-bit output equals the samples.
    let resp = server.get(&format!("/slice?{coords}&bits=16"));
    let header = resp.png_header().unwrap();
    assert_eq!((header.bit_depth, header.color_type), (16, 0), "{header:?}");
    let png = decode_gray_png(&resp.body).unwrap();
    assert_eq!((png.width, png.height, png.bit_depth), (w, h, 16));
    let raw_u16: Vec<u16> = raw.iter().map(|&v| v as u16).collect();
    assert!(
        png.samples == raw_u16,
        "bits=16 PNG samples differ from the .npy samples"
    );

    // 8-bit data as a 16-bit PNG keeps its values.
    let u8_id = server.upload_ok("imagej_zcyx_u8.tif", set.read("imagej_zcyx_u8.tif"));
    let raw8 = server.plane_npy(&u8_id, 0, 3, 2);
    raw8.check("uint8", &[33, 47]).unwrap();
    let resp = server.get(&format!("/slice?image_id={u8_id}&z=3&channel=2&bits=16"));
    let png = decode_gray_png(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.snippet()));
    assert_eq!((png.width, png.height, png.bit_depth), (47, 33, 16));
    let want: Vec<u16> = raw8.data.iter().map(|&v| u16::from(v)).collect();
    assert!(
        png.samples == want,
        "bits=16 PNG of uint8 data differs from the samples"
    );

    // Float data: an explicit window with fractional and negative bounds.
    let f_id = server.upload_ok("imagej_tyx_f32.tif", set.read("imagej_tyx_f32.tif"));
    let fplane = server.plane_npy(&f_id, 2, 0, 0);
    fplane.check("float32", &[31, 29]).unwrap();
    let fraw = fplane.values();
    let resp = server.get(&format!(
        "/slice?image_id={f_id}&time=2&min=-50.5&max=600.25"
    ));
    let png = decode_gray_png(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.snippet()));
    assert_eq!((png.width, png.height, png.bit_depth), (29, 31, 8));
    assert_window(&fraw, &png.samples, -50.5, 600.25);
    let resp = server.get(&format!("/slice?image_id={f_id}&time=2"));
    let png = decode_gray_png(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.snippet()));
    assert_monotonic(&fraw, &png.samples, "default window (float32)");
}

/// Rendering must not reorder intensities.
fn assert_monotonic(raw: &[f64], grey: &[u16], what: &str) {
    assert_eq!(raw.len(), grey.len(), "{what}: pixel count");
    let mut pairs: Vec<(f64, u16)> = raw.iter().copied().zip(grey.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in pairs.windows(2) {
        assert!(
            pair[1].1 >= pair[0].1,
            "{what}: raw {} renders as {} but raw {} as {}",
            pair[0].0,
            pair[0].1,
            pair[1].0,
            pair[1].1
        );
    }
}

/// Every pixel maps linearly from `[lo, hi]` onto `[0, 255]`, clipped and
/// rounded to the nearest grey level (either neighbour where the exact value
/// is within 1e-3 of a half, to allow for single-precision arithmetic).
fn assert_window(raw: &[f64], grey: &[u16], lo: f64, hi: f64) {
    assert_eq!(raw.len(), grey.len(), "pixel count");
    for (i, (&p, &g)) in raw.iter().zip(grey).enumerate() {
        let exact = ((p - lo) * 255.0 / (hi - lo)).clamp(0.0, 255.0);
        let g = f64::from(g);
        let ok =
            g == exact.round() || ((exact.fract() - 0.5).abs() < 1e-3 && (g - exact).abs() < 0.51);
        assert!(
            ok,
            "pixel {i}: raw {p} with window [{lo}, {hi}] renders as {g}, expected {} ({exact})",
            exact.round()
        );
    }
}

/// The id of an entry of `/images`.
fn entry_id(entry: &Value) -> Option<&str> {
    entry
        .get("image_id")
        .or_else(|| entry.get("id"))
        .and_then(Value::as_str)
}

/// The ids `/images` lists.
fn listed_ids(server: &Server) -> Vec<String> {
    let list = server
        .get("/images")
        .ok_json()
        .unwrap_or_else(|e| panic!("{e}"));
    let images = list["images"]
        .as_array()
        .unwrap_or_else(|| panic!("/images has no `images` array: {list}"));
    images
        .iter()
        .map(|entry| {
            entry_id(entry)
                .unwrap_or_else(|| panic!("/images entry without an image_id: {entry}"))
                .to_string()
        })
        .collect()
}

/// Listing, fetching and deleting images; the `axes` override on upload.
#[test]
fn image_lifecycle_and_axes_override() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let server = Server::start();
    assert!(
        listed_ids(&server).is_empty(),
        "a fresh data dir lists images"
    );

    let stack = "plain_multipage_u16.tif";
    let plain = server.upload_ok("plain_2d_u8.tif", set.read("plain_2d_u8.tif"));
    let by_default = server.upload_ok(stack, set.read(stack));
    let meta = server.metadata(&by_default);
    check_metadata(&meta, stack, [1, 7, 1, 32, 32], "uint16").unwrap_or_else(|e| panic!("{e}"));

    // axes as a multipart field and as a query parameter.
    let resp = server.upload(stack, set.read(stack), Some("TYX"));
    let as_field = crate::util::image_id_of(&resp).unwrap_or_else(|e| panic!("{e}"));
    let part = reqwest::blocking::multipart::Part::bytes(set.read(stack))
        .file_name(stack)
        .mime_str("image/tiff")
        .unwrap();
    let form = reqwest::blocking::multipart::Form::new().part("file", part);
    let resp = server.post_form("/upload?axes=TYX", "axes=TYX as query", form);
    let as_query = crate::util::image_id_of(&resp).unwrap_or_else(|e| panic!("{e}"));
    for id in [&as_field, &as_query] {
        let meta = server.metadata(id);
        check_metadata(&meta, stack, [7, 1, 1, 32, 32], "uint16")
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    // Same pixels, other axis: time point 3 is what z=3 was.
    let z3 = server.plane_npy(&by_default, 0, 3, 0);
    let t3 = server.plane_npy(&as_field, 3, 0, 0);
    assert!(
        z3.data == t3.data,
        "axes=TYX: time=3 differs from z=3 of the default reading"
    );
    expect_error(
        &server,
        server.get(&format!("/slice?image_id={as_field}&z=1")),
        &[400],
    );

    // Axes that cannot describe the file.
    for axes in ["QQQ", "TZYX", "TTX", "YX"] {
        let resp = server.upload(stack, set.read(stack), Some(axes));
        expect_error(&server, resp, &[400]);
    }

    // Listing.
    let ids = [&plain, &by_default, &as_field, &as_query];
    let listed = listed_ids(&server);
    for id in ids {
        assert!(listed.contains(id), "/images {listed:?} lacks {id}");
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "upload ids repeat: {ids:?}");
    let list = server.get("/images").ok_json().unwrap();
    for entry in list["images"].as_array().unwrap() {
        let id = entry_id(entry).unwrap();
        let meta = server.metadata(id);
        assert_eq!(
            entry["shape"], meta["shape"],
            "/images and /metadata disagree on {id}"
        );
        assert_eq!(
            entry["dtype"], meta["dtype"],
            "/images and /metadata disagree on {id}"
        );
    }

    // One image by id.
    let one = server
        .get(&format!("/images/{by_default}"))
        .ok_json()
        .unwrap_or_else(|e| panic!("{e}"));
    check_metadata(&one, stack, [1, 7, 1, 32, 32], "uint16").unwrap_or_else(|e| panic!("{e}"));

    // Deleting.
    let resp = server.delete(&format!("/images/{plain}"));
    assert!(
        resp.status == 200 || resp.status == 204,
        "{}: status {}: {}",
        resp.what,
        resp.status,
        resp.snippet()
    );
    for resp in [
        server.get(&format!("/metadata?image_id={plain}")),
        server.get(&format!("/images/{plain}")),
        server.get(&format!("/slice?image_id={plain}")),
        server.get(&format!("/statistics?image_id={plain}")),
        server.delete(&format!("/images/{plain}")),
    ] {
        let what = resp.what.clone();
        let msg = expect_error(&server, resp, &[404]);
        assert!(msg.to_lowercase().contains("not found"), "{what}: {msg:?}");
    }
    let listed = listed_ids(&server);
    assert!(
        !listed.contains(&plain),
        "/images still lists deleted {plain}: {listed:?}"
    );
    assert_eq!(listed.len(), 3, "/images after one delete: {listed:?}");
    server.metadata(&by_default);
    server.plane_npy(&by_default, 0, 6, 0);
    server.assert_healthy();
}

/// Ids are never reused, not even after deletes and restarts, and images
/// survive a restart.
#[test]
fn image_ids_unique_across_restarts() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let file = "ome_tzcyx_u8_deflate.ome.tif";
    let data = tempfile::Builder::new()
        .prefix("pentascope-restart-")
        .tempdir()
        .expect("temporary data dir");
    let mut seen: Vec<String> = Vec::new();
    fn fresh(id: String, seen: &mut Vec<String>) -> String {
        assert!(
            !seen.contains(&id),
            "id {id} was handed out before: {seen:?}"
        );
        seen.push(id.clone());
        id
    }

    let server = Server::start_in(data.path());
    let kept = fresh(server.upload_ok(file, set.read(file)), &mut seen);
    let dropped = fresh(server.upload_ok(file, set.read(file)), &mut seen);
    let resp = server.delete(&format!("/images/{dropped}"));
    assert!(
        resp.status == 200 || resp.status == 204,
        "delete: {}",
        resp.status
    );
    let stats = server
        .get(&format!("/statistics?image_id={kept}"))
        .ok_json()
        .unwrap();
    let plane = server.plane_npy(&kept, 2, 1, 1);
    server.stop();

    for round in 0..2 {
        let server = Server::start_in(data.path());
        assert_eq!(server.data_dir(), data.path());
        let new = fresh(server.upload_ok(file, set.read(file)), &mut seen);
        // The image from before the restart is still listed and served.
        let listed = listed_ids(&server);
        assert!(
            listed.contains(&kept),
            "round {round}: /images {listed:?} lacks {kept}"
        );
        assert!(
            listed.contains(&new),
            "round {round}: /images {listed:?} lacks {new}"
        );
        assert!(
            !listed.contains(&dropped),
            "round {round}: deleted {dropped} is back: {listed:?}"
        );
        let meta = server.metadata(&kept);
        check_metadata(&meta, file, [3, 2, 2, 64, 64], "uint8").unwrap_or_else(|e| panic!("{e}"));
        let again = server
            .get(&format!("/statistics?image_id={kept}"))
            .ok_json()
            .unwrap();
        for key in ["mean", "std", "min", "max"] {
            assert_eq!(
                again[key], stats[key],
                "statistics.{key} of {kept} changed across a restart"
            );
        }
        assert!(
            server.plane_npy(&kept, 2, 1, 1).data == plane.data,
            "pixels of {kept} changed"
        );
        expect_error(
            &server,
            server.get(&format!("/metadata?image_id={dropped}")),
            &[404],
        );
        server.stop();
    }
}

/// `/analyze` stores the scores as a float32 image with k channels that
/// behaves like any other image.
#[test]
fn pca_scores_image() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let file = "ome_tczyx_u16.ome.tif"; // T=2 Z=4 C=3, 36x52
    let expected = set.expected(file);
    let [t_n, z_n, c_n, h, w] = shape5(&expected["shape"], "shape").unwrap();
    let server = Server::start();
    let id = server.upload_ok(file, set.read(file));

    let result = server
        .post_json("/analyze", &json!({"image_id": id, "components": 2}))
        .ok_json()
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    let scores_id = result["scores_image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no scores_image_id in {result}"))
        .to_string();
    let ev = f64s(&result["explained_variance"], "explained_variance").unwrap();
    let mean = f64s(&result["mean"], "mean").unwrap();
    let comps = crate::util::f64_rows(&result["components"], "components").unwrap();

    // Metadata of the derived image.
    let meta = server.metadata(&scores_id);
    assert_eq!(meta["dtype"], "float32", "scores metadata {meta}");
    assert_eq!(meta["Channels"].as_u64(), Some(2), "scores metadata {meta}");
    assert_eq!(
        shape5(&meta["shape"], "scores shape").unwrap(),
        [t_n, z_n, 2, h, w],
        "scores metadata {meta}"
    );
    assert_eq!(meta["axes"], "TZCYX");
    let listed = listed_ids(&server);
    assert!(
        listed.contains(&id),
        "/images {listed:?} lacks the analysed image"
    );

    // Scores are centred, with variance explained_variance (ddof=1).
    let stats = server
        .get(&format!("/statistics?image_id={scores_id}"))
        .ok_json()
        .unwrap();
    let n = (t_n * z_n * h * w) as f64;
    let means = f64s(&stats["mean"], "mean").unwrap();
    let stds = f64s(&stats["std"], "std").unwrap();
    assert_eq!(
        (means.len(), stds.len()),
        (2, 2),
        "scores statistics {stats}"
    );
    for j in 0..2 {
        let sd = (ev[j] * (n - 1.0) / n).sqrt();
        assert!(
            means[j].abs() <= 1e-6 * sd.max(1.0),
            "scores channel {j} has mean {}, expected about 0 (std {sd})",
            means[j]
        );
        assert!(
            close(stds[j], sd, 1e-4),
            "scores channel {j} has std {}, expected {sd}",
            stds[j]
        );
    }

    // Score = (x - mean) . component, pixel by pixel, on one plane.
    let (t, z) = (1, 2);
    let x: Vec<Vec<f64>> = (0..c_n)
        .map(|c| server.plane_npy(&id, t, z, c).values())
        .collect();
    let scale = ev[0].sqrt();
    for (j, comp) in comps.iter().enumerate() {
        let plane = server.plane_npy(&scores_id, t, z, j as u64);
        plane.check("float32", &[h, w]).unwrap();
        for (p, got) in plane.values().into_iter().enumerate() {
            let want: f64 = (0..c_n as usize)
                .map(|c| (x[c][p] - mean[c]) * comp[c])
                .sum();
            assert!(
                (got - want).abs() <= 1e-5 * scale + 1e-6 * want.abs(),
                "score {j} of pixel {p} at t={t} z={z} is {got}, expected {want}"
            );
        }
    }

    // Rendering works; raw 16-bit output does not exist for float32.
    let header = server
        .get(&format!("/slice?image_id={scores_id}&time=1&z=3&channel=1"))
        .png_header()
        .unwrap();
    assert_eq!(
        (header.width, header.height, header.bit_depth),
        (w as u32, h as u32, 8)
    );
    expect_error(
        &server,
        server.get(&format!("/slice?image_id={scores_id}&bits=16")),
        &[400],
    );
    expect_error(
        &server,
        server.get(&format!("/slice?image_id={scores_id}&channel=2")),
        &[400],
    );

    // k = C: all variance is explained.
    let full = server
        .post_json("/analyze", &json!({"image_id": id, "components": 3}))
        .ok_json()
        .unwrap();
    assert_eq!(full["n_components"].as_u64(), Some(3), "{full}");
    let ratio = f64s(&full["explained_variance_ratio"], "ratio").unwrap();
    assert!(
        close(ratio.iter().sum(), 1.0, 1e-9),
        "ratios {ratio:?} do not sum to 1"
    );
    let scores3 = full["scores_image_id"].as_str().unwrap();
    assert_ne!(scores3, scores_id, "a second analysis reused the scores id");
    assert_eq!(server.metadata(scores3)["Channels"].as_u64(), Some(3));

    server.assert_healthy();
}

/// A float image with NaN and infinite samples: statistics follow numpy
/// (NaN propagates to mean/std/min/max), the record stays readable, and
/// the plane still renders.
#[test]
fn float_image_with_nan_and_inf() {
    let server = Server::start();
    let (w, h) = (8u32, 4u32);
    let mut samples: Vec<f32> = (0..w * h).map(|i| i as f32).collect();
    samples[3] = f32::NAN;
    samples[5] = f32::INFINITY;
    let mut bytes = Vec::new();
    {
        let mut enc = tiff::encoder::TiffEncoder::new(std::io::Cursor::new(&mut bytes)).unwrap();
        enc.write_image::<tiff::encoder::colortype::Gray32Float>(w, h, &samples)
            .unwrap();
    }
    let id = server.upload_ok("nan.tif", bytes);
    let stats = server
        .get(&format!("/statistics?image_id={id}"))
        .ok_json()
        .unwrap();
    assert!(stats["mean"][0].is_null(), "NaN mean is null: {stats}");
    assert!(stats["min"][0].is_null(), "NaN min is null: {stats}");
    // the record reads back: metadata, listing and slices keep working
    let meta = server.metadata(&id);
    assert_eq!(meta["dtype"], "float32");
    let listed = server.get("/images").ok_json().unwrap();
    assert!(listed.to_string().contains(&id));
    let png = server.get(&format!("/slice?image_id={id}"));
    png.png_header().unwrap();
    let npy = server.plane_npy(&id, 0, 0, 0);
    assert_eq!(npy.shape, vec![h as u64, w as u64]);
}

/// Statistics recomputed from the chunked store equal those gathered at
/// ingest, for an upload and for a (virtual) PCA scores image; deleting the
/// source deletes the images derived from it.
#[test]
fn recomputed_statistics_and_derived_images() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let server = Server::start();
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let analysed = server
        .post_json("/analyze", &json!({"image_id": id, "components": 2}))
        .ok_json()
        .unwrap();
    let scores = analysed["scores_image_id"].as_str().unwrap().to_string();
    for image in [&id, &scores] {
        let stored = server
            .get(&format!("/statistics?image_id={image}"))
            .ok_json()
            .unwrap();
        let fresh = server
            .get(&format!("/statistics?image_id={image}&recompute=true"))
            .ok_json()
            .unwrap();
        for key in ["mean", "std", "min", "max"] {
            let (a, b) = (
                f64s(&stored[key], key).unwrap(),
                f64s(&fresh[key], key).unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert!(close(*x, *y, 1e-9), "{image} {key}: {x} vs {y}");
            }
        }
    }
    let bad = server.get(&format!("/statistics?image_id={id}&recompute=maybe"));
    assert_eq!(bad.status, 400, "{}", bad.snippet());
    let deleted = server.delete(&format!("/images/{id}")).ok_json().unwrap();
    assert_eq!(deleted["derived_images_deleted"], json!([scores]));
    assert_eq!(
        server.get(&format!("/metadata?image_id={scores}")).status,
        404
    );
}

/// `"async": true` turns an analysis into a job: 202 with a status URL, the
/// job runs in the background, and its result is the synchronous answer.
#[test]
fn async_analysis_is_a_job_with_the_same_result() {
    let fixtures = fixtures_dir();
    let set = FixtureSet::load(&fixtures, "tiff");
    let server = Server::start();
    let id = server.upload_ok("ome_tczyx_u16.ome.tif", set.read("ome_tczyx_u16.ome.tif"));
    let direct = server
        .post_json("/analyze", &json!({"image_id": id, "components": 2}))
        .ok_json()
        .unwrap();
    let submitted = server.post_json(
        "/analyze",
        &json!({"image_id": id, "components": 2, "async": true}),
    );
    assert_eq!(submitted.status, 202, "{}", submitted.snippet());
    let submitted = submitted.json().unwrap();
    let status_url = submitted["status_url"].as_str().unwrap().to_string();
    assert_eq!(submitted["state"], "PENDING");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let job = loop {
        let job = server.get(&status_url).ok_json().unwrap();
        match job["state"].as_str().unwrap() {
            "SUCCESS" | "FAILURE" => break job,
            "PENDING" | "STARTED" => {}
            other => panic!("unknown state {other}: {job}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job never finished: {job}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(job["state"], "SUCCESS", "{job}");
    assert_eq!(job["progress"], 1.0);
    let result = &job["result"];
    for key in [
        "explained_variance",
        "explained_variance_ratio",
        "components",
        "mean",
    ] {
        assert_eq!(result[key], direct[key], "{key}");
    }
    assert_eq!(result["pca_result"], direct["pca_result"]);
    assert_ne!(result["scores_image_id"], direct["scores_image_id"]);
    // invalid requests are refused before a job is made
    let bad = server.post_json(
        "/analyze",
        &json!({"image_id": id, "components": 9, "async": true}),
    );
    assert_eq!(bad.status, 400, "{}", bad.snippet());
    let missing = server.get("/jobs/no-such-job");
    assert_eq!(missing.status, 404, "{}", missing.snippet());
}

/// Uploads an ImageJ hyperstack of `z` planes of `c` 16-bit channels of
/// `w × h` whose samples are `value(x, y, channel, plane)`, and analyses
/// it with two components: the server, the image and the answer.
fn pca_of_hyperstack(
    name: &str,
    [w, h, c, z]: [u32; 4],
    value: impl Fn(f64, f64, f64, f64) -> f64,
) -> (Server, String, Value) {
    let sample = |page: u32, pixel: usize| -> u16 {
        let (x, y) = ((pixel % w as usize) as f64, (pixel / w as usize) as f64);
        value(x, y, f64::from(page % c), f64::from(page / c)) as u16
    };
    let description = format!(
        "ImageJ=1.54f\nimages={}\nchannels={c}\nslices={z}\nhyperstack=true\n",
        c * z
    );
    let file = crate::util::tiff::described_tiff(w, h, 16, c * z, &description, |page, i| {
        sample(page, i / 2).to_le_bytes()[i % 2]
    });
    let server = Server::start();
    let id = server.upload_ok(name, file);
    let pca = server
        .post_json("/analyze", &json!({"image_id": id, "components": 2}))
        .ok_json()
        .unwrap();
    (server, id, pca)
}

/// The statistics of a float image computed by the service (PCA scores of
/// a 25-million-sample hyperstack) describe the whole image: exact minimum
/// and maximum, a display window at the 0.1 and 99.9 percentiles of the
/// real values, and a histogram over the real range whose shape is the
/// real one (total variation distance from the exact histogram < 0.1).
#[test]
fn float_statistics_of_a_large_derived_image_span_its_real_range() {
    let (w, h, z) = (1024u32, 1024u32, 8u32);
    let (server, _, pca) =
        pca_of_hyperstack("smooth_zcyx_u16.tif", [w, h, 3, z], |x, y, ch, plane| {
            20000.0
                + 9000.0 * (x / 57.0 + ch).sin() * (y / 83.0).cos()
                + 4000.0 * (x * y / 90000.0 + ch * 2.0).sin()
                + 700.0 * plane
        });
    let scores = pca["scores_image_id"].as_str().unwrap();
    let stats = server
        .get(&format!("/statistics?image_id={scores}"))
        .ok_json()
        .unwrap();
    let npy = server
        .get(&format!("/images/{scores}/download?format=npy"))
        .npy()
        .unwrap();
    let all = npy.values();
    let per_channel = (w * h * z) as usize;
    for channel in 0..2 {
        // TZCYX with T = 1: channel `channel` of every z plane
        let mut values: Vec<f64> = (0..z as usize)
            .flat_map(|p| {
                let start = (p * 2 + channel) * (w * h) as usize;
                all[start..start + (w * h) as usize].iter().copied()
            })
            .collect();
        assert_eq!(values.len(), per_channel);
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let quantile = |q: f64| values[((q * (n - 1) as f64).floor() as usize).min(n - 1)];
        let (min, max) = (values[0], values[n - 1]);
        let got = |key: &str| stats[key][channel].as_f64().unwrap();
        assert_eq!((got("min"), got("max")), (min, max), "channel {channel}");
        // the window is estimated from a sample: within half a percentile
        for (key, q) in [("display_min", 0.001f64), ("display_max", 0.999)] {
            let (low, high) = (
                quantile((q - 0.005).max(0.0)),
                quantile((q + 0.005).min(1.0)),
            );
            assert!(
                (low..=high).contains(&got(key)),
                "channel {channel}: {key} {} outside [{low}, {high}] (exact {})",
                got(key),
                quantile(q)
            );
        }
        let histogram = &stats["histograms"][channel];
        assert_eq!(
            (histogram["min"].as_f64(), histogram["max"].as_f64()),
            (Some(min), Some(max)),
            "channel {channel}: the histogram spans the real range"
        );
        let counts: Vec<f64> = f64s(&histogram["counts"], "counts").unwrap();
        let bins = counts.len();
        let mut exact = vec![0f64; bins];
        for v in &values {
            let i = (((v - min) / (max - min)) * bins as f64) as usize;
            exact[i.min(bins - 1)] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        assert_eq!(
            total, n as f64,
            "channel {channel}: the counts add up to the samples"
        );
        let distance: f64 = counts
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / (2.0 * n as f64);
        assert!(
            distance < 0.1,
            "channel {channel}: histogram differs from the exact one by {distance} \
             (total variation)"
        );
    }
}

/// NumPy's 0.1 and 99.9 percentiles (`method="lower"`, the order
/// statistic the statistics define) of scikit-learn's PCA scores of an
/// `.npy` image (TZCYX; pixels as samples, channels as features), each
/// component's sign turned to agree with `components` (ours).
const SKLEARN_SCORE_PERCENTILES: &str = r#"
import json, sys, numpy as np
from sklearn.decomposition import PCA
a = np.load(sys.argv[1]).astype(np.float64)
ours = np.array(json.loads(sys.argv[2]))
x = np.moveaxis(a, 2, -1).reshape(-1, a.shape[2])
pca = PCA(n_components=len(ours)).fit(x)
scores = pca.transform(x) * np.sign(np.sum(pca.components_ * ours, axis=1))
print(json.dumps({
    "low": np.percentile(scores, 0.1, axis=0, method="lower").tolist(),
    "high": np.percentile(scores, 99.9, axis=0, method="lower").tolist(),
    "min": scores.min(axis=0).tolist(),
    "max": scores.max(axis=0).tolist(),
}))
"#;

/// A PCA scores image's default display window is the 0.1–99.9
/// percentile range of its scores (NumPy's percentiles of scikit-learn's
/// scores), not an estimate from a sample: on a narrow image with many
/// planes a sample of every k-th pixel sees only a few columns, and the
/// scores vary along x. Checked in the statistics, the default rendering
/// and the NGFF `omero` metadata.
#[test]
#[ignore = "needs a Python venv with numpy and scikit-learn; run with --ignored (.ci/run does)"]
fn pca_scores_display_window_is_their_percentiles() {
    let python = crate::util::python::python_with("numpy, sklearn");
    let (server, id, pca) = pca_of_hyperstack(
        "narrow_zcyx_u16.tif",
        [32, 512, 3, 64],
        |x, y, ch, plane| {
            20000.0
                + 9000.0 * (x / 3.0 + ch).sin()
                + 3000.0 * (y / 41.0 + 2.0 * ch).cos()
                + 50.0 * plane
        },
    );
    let scores = pca["scores_image_id"].as_str().unwrap();
    let source = server.get(&format!("/images/{id}/download?format=npy"));
    assert_eq!(source.status, 200, "{}", source.snippet());
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("source.npy");
    std::fs::write(&npy, &source.body).unwrap();
    let out = std::process::Command::new(python)
        .args(["-c", SKLEARN_SCORE_PERCENTILES])
        .arg(&npy)
        .arg(pca["components"].to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stats = server
        .get(&format!("/statistics?image_id={scores}"))
        .ok_json()
        .unwrap();
    let meta = server.metadata(scores);
    let omero: Value = server
        .get(&format!("/zarr/{scores}/zarr.json"))
        .json()
        .unwrap();
    for component in 0..2 {
        let want = |key: &str| reference[key][component].as_f64().unwrap();
        // float32 scores against float64 ones: a millionth of the range
        let tolerance = 1e-6 * (want("max") - want("min"));
        let windows = [
            (
                "statistics",
                stats["display_min"][component].as_f64(),
                stats["display_max"][component].as_f64(),
            ),
            (
                "rendering",
                meta["rendering"]["channels"][component]["window"]["start"].as_f64(),
                meta["rendering"]["channels"][component]["window"]["end"].as_f64(),
            ),
            (
                "omero",
                omero["attributes"]["ome"]["omero"]["channels"][component]["window"]["start"]
                    .as_f64(),
                omero["attributes"]["ome"]["omero"]["channels"][component]["window"]["end"]
                    .as_f64(),
            ),
        ];
        for (place, low, high) in windows {
            let (low, high) = (low.unwrap(), high.unwrap());
            assert!(
                (low - want("low")).abs() <= tolerance && (high - want("high")).abs() <= tolerance,
                "PC{}: the {place} window [{low}, {high}] is not the percentiles [{}, {}]",
                component + 1,
                want("low"),
                want("high")
            );
        }
    }
}

/// The ImageDescription of a fixture as image-tiff (an independent reader)
/// reads it.
fn description_of(bytes: &[u8]) -> Option<String> {
    let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(bytes)).ok()?;
    decoder
        .get_tag_ascii_string(tiff::tags::Tag::ImageDescription)
        .ok()
}

/// Acquisition details from OME-XML (a real Zeiss file whose vendor
/// annotations repeat the element names), and the file's metadata text
/// served unchanged: OME-XML as XML, ImageJ descriptions as text, 404 for a
/// file without any.
#[test]
fn acquisition_details_and_original_metadata() {
    let fixtures = fixtures_dir();
    let real = FixtureSet::load(&fixtures, "real");
    let synthetic = FixtureSet::load(&fixtures, "tiff");
    let server = Server::start();

    let file = "ome_aics_lzw_YX_u16.ome.tiff";
    let bytes = real.read(file);
    let id = server.upload_ok(file, bytes.clone());
    let acquisition = &server.metadata(&id)["acquisition"];
    assert_eq!(
        acquisition,
        &json!({
            "date": "2019-06-27T18:33:40.619",
            "objective": {
                "model": "Plan-Apochromat 20x/0.8 M27",
                "nominal_magnification": 20.0,
                "lens_na": 0.8,
                "immersion": "Air",
            },
            "channels": [{
                "fluor": "TL Brightfield",
                "color": "#FFFFFF",
                "illumination": "Transmitted",
            }],
        })
    );
    // the OME channel's colour is the default rendering's; its name is the
    // channel's, and an OME file's unnamed channels are null
    let meta = server.metadata(&id);
    assert_eq!(
        meta["rendering"]["channels"][0]["color"], "FFFFFF",
        "{meta}"
    );
    assert_eq!(meta["channel_names"], json!(["Bright"]));
    let unnamed = server.upload_ok(
        "ome_tczyx_u16.ome.tif",
        synthetic.read("ome_tczyx_u16.ome.tif"),
    );
    let names = &server.metadata(&unnamed)["channel_names"];
    assert!(
        names
            .as_array()
            .is_some_and(|n| n.len() == 3 && n.iter().all(Value::is_null)),
        "{names}"
    );
    let original = server.get(&format!("/images/{id}/original-metadata"));
    assert_eq!(original.status, 200);
    assert!(original.content_type.starts_with("application/xml"));
    assert_eq!(original.header("x-metadata-format"), "ome-xml");
    assert_eq!(
        String::from_utf8(original.body).unwrap(),
        description_of(&bytes).unwrap()
    );

    let file = "ij_mitosis_crop_TZCYX_u16.tif";
    let bytes = real.read(file);
    let id = server.upload_ok(file, bytes.clone());
    let original = server.get(&format!("/images/{id}/original-metadata"));
    assert_eq!(original.header("x-metadata-format"), "imagej");
    assert!(original.content_type.starts_with("text/plain"));
    assert_eq!(
        String::from_utf8(original.body).unwrap(),
        description_of(&bytes).unwrap()
    );
    // ImageJ's LUT colours and Ranges (read as tifffile reads them, see
    // tifffile::imagej_display_ranges_and_colours_equal_tifffiles)
    assert_eq!(
        server.metadata(&id)["acquisition"],
        json!({"channels": [
            {"color": "#FF0000", "display_range": [1582.0, 6440.0]},
            {"color": "#00FF00", "display_range": [1614.0, 15787.0]},
        ]})
    );

    // ScanImage's header: its non-varying frame data (which tifffile reads
    // as SI.TIFF_FORMAT_VERSION 4) and its ROI groups
    let file = "scanimage_bigtiff_TCYX_i16.tif";
    let id = server.upload_ok(file, real.read(file));
    let original = server.get(&format!("/images/{id}/original-metadata"));
    assert_eq!(original.header("x-metadata-format"), "scanimage");
    let text = String::from_utf8(original.body).unwrap();
    assert!(
        text.contains("SI.TIFF_FORMAT_VERSION = 4") && text.contains("RoiGroups"),
        "{}",
        &text[..text.len().min(500)]
    );

    let file = "plain_2d_u8.tif";
    let id = server.upload_ok(file, synthetic.read(file));
    let none = server.get(&format!("/images/{id}/original-metadata"));
    assert!(none.error(&[404]).unwrap().contains("no metadata text"));
    assert_eq!(
        server.get("/images/image_999/original-metadata").status,
        404
    );
}
