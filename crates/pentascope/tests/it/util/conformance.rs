//! Checks one fixture file against its `expected.json` entry through the
//! HTTP API: upload, metadata, every plane as `.npy`, statistics, PCA and the
//! default PNG rendering.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{close, f64_rows, f64s, image_id_of, shape5, FixtureSet, Resp, Server};

/// The flavours `/metadata` may report: every one the reader knows.
pub const FLAVOURS: [&str; 10] = [
    "ome",
    "imagej",
    "scanimage",
    "stk",
    "lsm",
    "fluoview",
    "micromanager",
    "ndtiff",
    "svs",
    "plain",
];

/// Runs every file of `set` through [`check_file`] and returns one message
/// per failing file.
pub fn check_set(server: &Server, set: &FixtureSet, strict_flavour: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, expected) in &set.files {
        let started = std::time::Instant::now();
        let result = check_file(server, set, name, expected, strict_flavour);
        eprintln!(
            "conformance {name}: {} in {:.1?}",
            if result.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    failures
}

/// Checks one file; `Err` explains the first mismatch.
pub fn check_file(
    server: &Server,
    set: &FixtureSet,
    name: &str,
    expected: &Value,
    strict_flavour: bool,
) -> Result<(), String> {
    let resp = server.upload(name, set.read(name), None);
    match expected["expect"].as_str() {
        Some("accept") => {
            let id = image_id_of(&resp)?;
            check_image(server, &id, name, expected, strict_flavour)
        }
        Some("reject") => check_rejected(name, &resp),
        Some("accept-or-reject") => {
            if (400..500).contains(&resp.status) {
                let msg = resp.client_error()?;
                eprintln!("conformance {name}: refused ({}): {msg}", resp.status);
                Ok(())
            } else {
                let id = image_id_of(&resp)?;
                check_image(server, &id, name, expected, strict_flavour)
            }
        }
        other => Err(format!("expected.json has unknown expect {other:?}")),
    }
}

/// The OME-TIFF export of `id`, uploaded again, holds the same samples
/// (sha256 `digest`), shape, channel names and physical sizes.
fn check_ome_tiff_round_trip(
    server: &Server,
    id: &str,
    name: &str,
    meta: &Value,
    digest: &str,
    channels: u64,
) -> Result<(), String> {
    let resp = server.get(&format!("/images/{id}/download?format=ome-tiff"));
    if matches!(meta["dtype"].as_str(), Some("uint64" | "int64")) {
        ensure!(
            resp.status == 415,
            "OME-TIFF of 64-bit integers: {}",
            resp.snippet()
        );
        return Ok(());
    }
    ensure!(resp.status == 200, "ome-tiff download: {}", resp.snippet());
    let again = image_id_of(&server.upload(&format!("{name}.ome.tif"), resp.body, None))?;
    let npy = server
        .get(&format!("/images/{again}/download?format=npy"))
        .npy()?;
    let sha = hex(&Sha256::digest(&npy.data));
    ensure!(
        sha == digest,
        "OME-TIFF round trip: sha256 {sha}, expected {digest}"
    );
    let back = server
        .get(&format!("/metadata?image_id={again}"))
        .ok_json()?;
    ensure!(
        back["shape"] == meta["shape"],
        "round trip shape {}",
        back["shape"]
    );
    let names = |m: &Value| -> Vec<String> {
        let given: Vec<String> = m["channel_names"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n.as_str().unwrap_or_default().to_string())
            .collect();
        (0..channels as usize)
            .map(|c| given.get(c).cloned().unwrap_or_default())
            .collect()
    };
    ensure!(
        names(&back) == names(meta),
        "round trip channel names {:?}, expected {:?}",
        names(&back),
        names(meta)
    );
    for axis in ["x", "y", "z", "t"] {
        let (was, now) = (&meta["physical_sizes"][axis], &back["physical_sizes"][axis]);
        if was.is_null() {
            continue;
        }
        let (a, b) = (was["value"].as_f64(), now["value"].as_f64());
        ensure!(
            matches!((a, b), (Some(a), Some(b)) if close(a, b, 1e-9)),
            "round trip physical size {axis}: {now}, expected {was}"
        );
    }
    server.delete(&format!("/images/{again}"));
    Ok(())
}

/// A refused upload: a 4xx JSON error, with the specific statuses the
/// contract names for some kinds of breakage.
fn check_rejected(name: &str, resp: &Resp) -> Result<(), String> {
    let msg = if name.contains("bad_empty") {
        resp.error(&[400])?
    } else if name.contains("bad_magic") {
        resp.error(&[415, 422])?
    } else if name.contains("bad_bomb") {
        resp.error(&[413, 422])?
    } else {
        resp.client_error()?
    };
    eprintln!("conformance {name}: rejected ({}): {msg}", resp.status);
    Ok(())
}

/// The flavour tifffile's flags imply.
fn expected_flavour(name: &str, expected: &Value) -> &'static str {
    if expected["is_ome"] == true {
        "ome"
    } else if expected["is_imagej"] == true {
        "imagej"
    } else if name.contains("scanimage") {
        "scanimage"
    } else if name.ends_with(".svs") {
        "svs"
    } else {
        "plain"
    }
}

/// Checks an accepted image against the expected entry.
pub fn check_image(
    server: &Server,
    id: &str,
    name: &str,
    expected: &Value,
    strict_flavour: bool,
) -> Result<(), String> {
    let shape = shape5(&expected["shape"], "expected shape")?;
    let dtype = expected["dtype"]
        .as_str()
        .ok_or("expected.json entry has no dtype")?;
    let [t_n, z_n, c_n, h, w] = shape;

    // Metadata.
    let meta = server.get(&format!("/metadata?image_id={id}")).ok_json()?;
    check_metadata(&meta, name, shape, dtype)?;
    let flavour = meta["flavour"].as_str().unwrap_or_default();
    if strict_flavour {
        let want = expected_flavour(name, expected);
        ensure!(flavour == want, "flavour {flavour:?}, expected {want:?}");
    }

    // JPEG files too: pentascope decodes with libjpeg-turbo, as tifffile
    // does, so their samples are tifffile's exactly.

    // Every plane as .npy, hashed in TZC order.
    let mut whole = Sha256::new();
    for t in 0..t_n {
        for z in 0..z_n {
            for c in 0..c_n {
                let resp = server.get(&format!(
                    "/slice?image_id={id}&time={t}&z={z}&channel={c}&format=npy"
                ));
                let npy = resp.npy()?;
                npy.check(dtype, &[h, w])
                    .map_err(|e| format!("plane t={t} z={z} c={c}: {e}"))?;
                if (t, z, c) == (0, 0, 0) {
                    let first = hex(&Sha256::digest(&npy.data));
                    ensure!(
                        expected["first_plane_sha256"] == first.as_str(),
                        "plane t=0 z=0 c=0 has sha256 {first}, expected {}",
                        expected["first_plane_sha256"]
                    );
                }
                whole.update(&npy.data);
            }
        }
    }
    let digest = hex(&whole.finalize());
    ensure!(
        expected["sha256_tzcyx"] == digest.as_str(),
        "the TZCYX samples have sha256 {digest}, expected {}",
        expected["sha256_tzcyx"]
    );

    // The whole image as one streamed .npy.
    let resp = server.get(&format!("/images/{id}/download?format=npy"));
    ensure!(resp.status == 200, "download: {}", resp.snippet());
    let npy = resp.npy()?;
    npy.check(dtype, &[t_n, z_n, c_n, h, w])
        .map_err(|e| format!("download: {e}"))?;
    let downloaded = hex(&Sha256::digest(&npy.data));
    ensure!(
        downloaded == digest,
        "the downloaded .npy has sha256 {downloaded}, expected {digest}"
    );
    check_ome_tiff_round_trip(server, id, name, &meta, &digest, c_n)?;

    // Statistics.
    let stats = server
        .get(&format!("/statistics?image_id={id}"))
        .ok_json()?;
    let tol = if dtype == "float32" { 1e-6 } else { 1e-9 };
    for key in ["mean", "std", "min", "max"] {
        let got = f64s(&stats[key], &format!("statistics.{key}"))?;
        let want = f64s(
            &expected["statistics"][key],
            &format!("expected statistics.{key}"),
        )?;
        ensure!(
            got.len() == want.len(),
            "statistics.{key} has {} values, expected {} (one per channel)",
            got.len(),
            want.len()
        );
        for (ch, (g, e)) in got.iter().zip(&want).enumerate() {
            ensure!(
                close(*g, *e, tol),
                "statistics.{key}[{ch}] = {g}, expected {e} (tolerance {tol:e})"
            );
        }
    }

    // PCA.
    if let Some(pca) = expected.get("pca") {
        let resp = server.post_json("/analyze", &json!({"image_id": id, "components": 2}));
        let got = resp.ok_json()?;
        check_pca(&got, pca, id, c_n as usize, t_n * z_n * h * w)?;
    }

    // Default rendering.
    let png = server.get(&format!("/slice?image_id={id}")).png_header()?;
    ensure!(
        (png.width, png.height, png.bit_depth, png.color_type) == (w as u32, h as u32, 8, 0),
        "default /slice PNG is {png:?}, expected {w}x{h} 8-bit grayscale"
    );
    Ok(())
}

/// Checks the fields of a metadata record.
pub fn check_metadata(
    meta: &Value,
    name: &str,
    shape: [u64; 5],
    dtype: &str,
) -> Result<(), String> {
    let got_shape = shape5(&meta["shape"], "metadata shape")?;
    ensure!(
        got_shape == shape,
        "metadata shape {got_shape:?}, expected {shape:?}"
    );
    ensure!(
        meta["dtype"] == dtype,
        "metadata dtype {}, expected {dtype}",
        meta["dtype"]
    );
    ensure!(
        meta["axes"] == "TZCYX",
        "metadata axes {}, expected \"TZCYX\"",
        meta["axes"]
    );
    for (key, size) in ["T", "Z", "Channels", "Height", "Width"].iter().zip(shape) {
        ensure!(
            meta[*key].as_u64() == Some(size),
            "metadata {key} = {}, expected {size}",
            meta[*key]
        );
    }
    ensure!(
        meta["original_filename"] == name,
        "metadata original_filename {}, expected {name:?}",
        meta["original_filename"]
    );
    let flavour = meta["flavour"].as_str().unwrap_or_default();
    ensure!(
        FLAVOURS.contains(&flavour),
        "metadata flavour {}, expected one of {FLAVOURS:?}",
        meta["flavour"]
    );
    ensure!(
        meta["byte_size"].as_u64().is_some_and(|b| b > 0),
        "metadata byte_size {} is not a positive integer",
        meta["byte_size"]
    );
    ensure!(
        meta["created_at"].as_str().is_some_and(|s| !s.is_empty()),
        "metadata created_at {} is not a non-empty string",
        meta["created_at"]
    );
    let names = meta["channel_names"].as_array().ok_or_else(|| {
        format!(
            "metadata channel_names {} is not an array",
            meta["channel_names"]
        )
    })?;
    ensure!(
        names.len() as u64 == shape[2],
        "metadata channel_names has {} entries for {} channels",
        names.len(),
        shape[2]
    );
    ensure!(
        meta["physical_sizes"].is_null() || meta["physical_sizes"].is_object(),
        "metadata physical_sizes {} is neither an object nor null",
        meta["physical_sizes"]
    );
    Ok(())
}

/// How far apart eigenvalues must be (relative to the total variance) for
/// the eigenvectors to be compared one by one.
const GAP: f64 = 1e-4;
/// Absolute tolerance on loadings.
const LOADING_TOL: f64 = 1e-6;

/// Checks an `/analyze` response with `components = 2` against the
/// scikit-learn reference.
pub fn check_pca(
    got: &Value,
    want: &Value,
    id: &str,
    channels: usize,
    pixels: u64,
) -> Result<(), String> {
    ensure!(
        got["image_id"] == id,
        "analyze image_id {}, expected {id}",
        got["image_id"]
    );
    ensure!(
        got["n_components"].as_u64() == Some(2),
        "analyze n_components {}, expected 2",
        got["n_components"]
    );

    let ev = f64s(&got["explained_variance"], "explained_variance")?;
    let ev_want = f64s(&want["explained_variance"], "expected explained_variance")?;
    let ratio = f64s(&got["explained_variance_ratio"], "explained_variance_ratio")?;
    let ratio_want = f64s(
        &want["explained_variance_ratio"],
        "expected explained_variance_ratio",
    )?;
    let comps = f64_rows(&got["components"], "components")?;
    let comps_want = f64_rows(&want["components"], "expected components")?;
    let mean = f64s(&got["mean"], "mean")?;
    let mean_want = f64s(&want["mean"], "expected mean")?;
    ensure!(
        ev.len() == 2 && ratio.len() == 2 && comps.len() == 2,
        "analyze returned {} variances, {} ratios and {} components, expected 2 each",
        ev.len(),
        ratio.len(),
        comps.len()
    );
    ensure!(
        mean.len() == channels,
        "analyze mean has {} values for {channels} channels",
        mean.len()
    );

    let top = ev_want[0];
    for i in 0..2 {
        ensure!(
            (ev[i] - ev_want[i]).abs() <= 1e-6 * ev_want[i].abs() + 1e-9 * top,
            "explained_variance[{i}] = {}, expected {}",
            ev[i],
            ev_want[i]
        );
        ensure!(
            (ratio[i] - ratio_want[i]).abs() <= 1e-6 * ratio_want[i].abs() + 1e-9,
            "explained_variance_ratio[{i}] = {}, expected {}",
            ratio[i],
            ratio_want[i]
        );
    }
    for (c, (g, e)) in mean.iter().zip(&mean_want).enumerate() {
        ensure!(close(*g, *e, 1e-6), "analyze mean[{c}] = {g}, expected {e}");
    }

    // Loadings: unit rows, orthogonal, sign convention.
    for (i, row) in comps.iter().enumerate() {
        ensure!(
            row.len() == channels,
            "components[{i}] has {} loadings for {channels} channels",
            row.len()
        );
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        ensure!(
            (norm - 1.0).abs() <= 1e-6,
            "components[{i}] has norm {norm}, expected 1"
        );
        if let Some(top) = dominant(row) {
            ensure!(
                row[top] > 0.0,
                "components[{i}] = {row:?}: the largest-magnitude loading must be positive"
            );
        }
    }
    let dot: f64 = comps[0].iter().zip(&comps[1]).map(|(a, b)| a * b).sum();
    ensure!(
        dot.abs() <= 1e-6,
        "components are not orthogonal (dot product {dot})"
    );

    // Eigenvectors are compared one by one only where the eigenvalue is
    // separated from its neighbours; an eigenvalue shared by two components
    // only fixes the plane they span.
    let total = ev_want[0] / ratio_want[0];
    let rest = (total - ev_want[0] - ev_want[1]).max(0.0); // bounds λ3, λ4, ...
    let gap0 = ev_want[0] - ev_want[1];
    let gap1 = if channels == 2 {
        gap0
    } else {
        gap0.min(ev_want[1] - rest)
    };
    let subspace_gap = if channels == 2 {
        f64::INFINITY
    } else {
        ev_want[1] - rest
    };
    for (i, gap) in [gap0, gap1].into_iter().enumerate() {
        if gap <= GAP * total {
            continue;
        }
        let (g, e) = (&comps[i], &comps_want[i]);
        let same = g.iter().zip(e).all(|(a, b)| (a - b).abs() <= LOADING_TOL);
        let flipped = g.iter().zip(e).all(|(a, b)| (a + b).abs() <= LOADING_TOL);
        // When two loadings tie for the largest magnitude the sign is arbitrary.
        let sign_free = dominant(e).is_none();
        ensure!(
            same || (sign_free && flipped),
            "components[{i}] = {g:?}, expected {e:?}"
        );
    }
    if subspace_gap > GAP * total {
        for (i, g) in comps.iter().enumerate() {
            let mut residual = g.clone();
            for e in &comps_want {
                let proj: f64 = g.iter().zip(e).map(|(a, b)| a * b).sum();
                for (r, b) in residual.iter_mut().zip(e) {
                    *r -= proj * b;
                }
            }
            let off = residual.iter().map(|v| v * v).sum::<f64>().sqrt();
            ensure!(
                off <= 1e-6,
                "components[{i}] = {g:?} leaves the plane of the expected components {comps_want:?} by {off}"
            );
        }
    }

    // Inline scores or the reason they were left out.
    match &got["pca_result"] {
        Value::Null => ensure!(
            got["pca_result_omitted"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "pca_result is null without a pca_result_omitted reason"
        ),
        Value::Array(rows) => {
            ensure!(
                rows.len() as u64 == pixels,
                "pca_result has {} rows, expected one per pixel ({pixels})",
                rows.len()
            );
            ensure!(
                rows.iter().all(|r| r
                    .as_array()
                    .is_some_and(|r| r.len() == 2 && r.iter().all(Value::is_number))),
                "pca_result rows are not all lists of 2 numbers"
            );
        }
        other => return Err(format!("pca_result is neither a list nor null: {other}")),
    }
    let scores = got["scores_image_id"].as_str().ok_or_else(|| {
        format!(
            "analyze has no scores_image_id string: {}",
            got["scores_image_id"]
        )
    })?;
    ensure!(scores != id, "scores_image_id equals the analysed image id");
    Ok(())
}

/// The index of the largest-magnitude entry, or `None` when the two largest
/// magnitudes tie within the loading tolerance.
pub fn dominant(row: &[f64]) -> Option<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()));
    match order.as_slice() {
        [] => None,
        [only] => Some(*only),
        [first, second, ..] => {
            (row[*first].abs() - row[*second].abs() > LOADING_TOL).then_some(*first)
        }
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
