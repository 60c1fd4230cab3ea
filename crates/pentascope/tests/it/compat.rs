//! What clients of the original Python service rely on: its error texts,
//! its statistics shape, its default number of components.

use reqwest::blocking::multipart;
use serde_json::json;

use crate::util::{close, fixtures_dir, FixtureSet, Server};

#[test]
fn upload_errors_keep_the_original_texts_with_a_detail() {
    let server = Server::start();
    let no_file = multipart::Form::new().text("comment", "no file here");
    let resp = server.post_form("/upload", "without a file part", no_file);
    assert_eq!(resp.status, 400);
    let body = resp.json().unwrap();
    assert_eq!(body["error"], "No file part in the request");
    assert!(body["detail"].as_str().unwrap().contains("file"), "{body}");
    // no body at all, or a body that is no form: the same text, the
    // detail saying what was wrong
    let bodyless = server.send("no body", server.request(reqwest::Method::POST, "/upload"));
    for (resp, why) in [
        (bodyless, "multipart/form-data"),
        (
            server.post_raw("/upload", "application/json", b"{}".to_vec()),
            "multipart/form-data",
        ),
        (
            server.post_raw("/upload", "image/tiff", b"II*\0".to_vec()),
            "multipart/form-data",
        ),
        (
            server.post_raw("/upload", "multipart/form-data; boundary=x", Vec::new()),
            "multipart body",
        ),
    ] {
        assert_eq!(resp.status, 400, "{}: {}", resp.what, resp.snippet());
        let body = resp.json().unwrap();
        assert_eq!(
            body["error"], "No file part in the request",
            "{}",
            resp.what
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{}: {detail}", resp.what);
    }

    let unnamed = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(b"II*\0".to_vec()).file_name(""),
    );
    let resp = server.post_form("/upload", "with an empty file name", unnamed);
    assert_eq!(resp.status, 400);
    let body = resp.json().unwrap();
    assert_eq!(body["error"], "No selected file");
    assert!(body["detail"].is_string(), "{body}");
}

#[test]
fn statistics_have_the_original_per_channel_and_global_shape() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let file = "ome_tczyx_u16.ome.tif";
    let id = server.upload_ok(file, set.read(file));
    let stats = server
        .get(&format!("/statistics?image_id={id}"))
        .ok_json()
        .unwrap();
    let per_channel = stats["per_channel"].as_array().unwrap();
    assert_eq!(per_channel.len(), 3);
    for (c, entry) in per_channel.iter().enumerate() {
        assert_eq!(entry["channel"], c);
        for key in ["min", "max", "mean", "std"] {
            assert_eq!(entry[key], stats[key][c], "channel {c} {key}");
        }
    }
    // global: numpy over the whole array, computed here from the samples
    let npy = server
        .get(&format!("/images/{id}/download?format=npy"))
        .npy()
        .unwrap();
    let samples: Vec<f64> = npy
        .data
        .chunks_exact(2)
        .map(|b| f64::from(u16::from_le_bytes([b[0], b[1]])))
        .collect();
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let std = (samples.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let global = &stats["global"];
    assert_eq!(global["count"], samples.len());
    assert_eq!(global["min"], min);
    assert_eq!(global["max"], max);
    for (key, want) in [("mean", mean), ("std", std)] {
        let got = global[key].as_f64().unwrap();
        assert!(close(got, want, 1e-9), "global {key} {got} != {want}");
    }
}

#[test]
fn components_default_to_three_capped_at_the_channels() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    for (file, channels) in [("ome_tczyx_u16.ome.tif", 3), ("imagej_tzcyx_u16.tif", 2)] {
        let id = server.upload_ok(file, set.read(file));
        let result = server
            .post_json("/analyze", &json!({"image_id": id}))
            .ok_json()
            .unwrap();
        assert_eq!(result["n_components"], channels, "{file}");
        let note = result["components_defaulted"].as_str().unwrap();
        assert!(note.contains(&format!("{channels} channels")), "{note}");
        let explicit = server
            .post_json("/analyze", &json!({"image_id": id, "components": 1}))
            .ok_json()
            .unwrap();
        assert!(explicit.get("components_defaulted").is_none(), "{explicit}");
    }
}

#[test]
fn full_pca_result_is_streamed_past_the_inline_limit() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let dir = tempfile::tempdir().unwrap();
    let small = Server::start_in(dir.path());
    let capped_dir = tempfile::tempdir().unwrap();
    let capped = Server::start_with(capped_dir.path(), &[("PENTASCOPE_INLINE_SCORES", "10")]);
    let file = "ome_tczyx_u16.ome.tif";
    let request = |server: &Server, extra: serde_json::Value| {
        let id = server.upload_ok(file, set.read(file));
        let mut body = json!({"image_id": id, "components": 2});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        server.post_json("/analyze", &body).ok_json().unwrap()
    };
    let inline = request(&small, json!({}));
    let omitted = request(&capped, json!({}));
    assert!(omitted["pca_result"].is_null());
    let pointer = omitted["pca_result_omitted"].as_str().unwrap();
    assert!(pointer.contains("/download?format=npy"), "{pointer}");
    let full = request(&capped, json!({"pca_result": "full"}));
    let rows = full["pca_result"].as_array().unwrap();
    assert_eq!(rows.len(), 2 * 4 * 36 * 52, "one row per pixel");
    assert_eq!(full["pca_result"], inline["pca_result"]);
    for key in ["explained_variance", "components", "mean", "n_samples"] {
        assert_eq!(full[key], inline[key], "{key}");
    }
    assert!(full["pca_result_omitted"].is_null());

    // the derived scores image downloads like any other: TZCYX, the
    // components as channels, the same values as the rows
    let scores = full["scores_image_id"].as_str().unwrap();
    let npy = capped
        .get(&format!("/images/{scores}/download?format=npy"))
        .npy()
        .unwrap();
    npy.check("float32", &[2, 4, 2, 36, 52]).unwrap();
    let values: Vec<f32> = npy
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let plane = 36 * 52;
    for (pixel, row) in rows.iter().enumerate().step_by(997) {
        let (tz, i) = (pixel / plane, pixel % plane);
        for (k, score) in row.as_array().unwrap().iter().enumerate() {
            let downloaded = values[(tz * 2 + k) * plane + i];
            assert_eq!(
                score.as_f64().unwrap() as f32,
                downloaded,
                "pixel {pixel} component {k}"
            );
        }
    }
}

#[test]
fn per_plane_contrast_shows_a_dim_plane_of_a_bright_stack() {
    let server = Server::start();
    // plane 0 dim (0..=15), plane 1 bright (0..=255)
    let file = crate::util::tiff::plain_tiff(64, 64, 8, 2, |page, i| {
        let v = (i % 256) as u8;
        if page == 0 {
            v / 16
        } else {
            v
        }
    });
    let id = server.upload_ok("dim_and_bright.tif", file);
    let brightest = |query: &str| {
        let png = server.get(&format!("/slice?image_id={id}&z=0{query}"));
        let gray = crate::util::decode_gray_png(&png.body).unwrap();
        *gray.samples.iter().max().unwrap()
    };
    let stack = brightest("");
    let plane = brightest("&auto=plane");
    assert!(
        stack < 80,
        "with the stack's window the dim plane is dark: {stack}"
    );
    assert!(
        plane > 240,
        "with its own window it spans the grey range: {plane}"
    );
    let resp = server.get(&format!("/slice?image_id={id}&auto=frame"));
    assert_eq!(resp.status, 400, "{}", resp.snippet());
}

#[test]
fn channel_names_have_one_entry_per_channel_and_unknown_keys_are_refused() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let file = "imagej_tzcyx_u16.tif";
    let id = server.upload_ok(file, set.read(file));
    let meta = server
        .get(&format!("/metadata?image_id={id}"))
        .ok_json()
        .unwrap();
    assert_eq!(meta["channel_names"], json!([null, null]), "{meta}");
    let resp = server.post_json("/analyze", &json!({"image_id": id, "component": 2}));
    assert_eq!(resp.status, 400, "{}", resp.snippet());
    let message = resp.client_error().unwrap();
    assert!(
        message.contains("component") && message.contains("n_components"),
        "{message}"
    );
}
