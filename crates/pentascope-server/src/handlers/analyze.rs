//! `POST /analyze`: PCA with pixels as samples and channels as features.
//! The scores become a derived float32 image that is virtual: its record
//! holds the model, and its planes are projected from the source on request.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use pentascope_core::{DType, Shape5};
use pentascope_store::analysis::pca;
use pentascope_store::record::{now_rfc3339, ImageDetails};
use pentascope_store::{ImageKind, ImageRecord};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::{blocking, open_pixels, AppState};

/// `POST /analyze` with `{"image_id": "image_1", "components": 2}`.
pub async fn analyze(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body like {{\"image_id\": \"image_1\", \"components\": 2}} ({e})"
        ))
    })?;
    let image_id = body
        .get("image_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request("image_id (a string such as \"image_1\") is required")
        })?;
    let components = match body.get("components").or_else(|| body.get("n_components")) {
        None => 2,
        Some(v) => v.as_u64().ok_or_else(|| {
            ApiError::bad_request(format!("components must be a positive integer, got {v}"))
        })?,
    };
    let source = state.record(image_id).await?;
    let c = source.shape.c;
    if c < 2 {
        return Err(ApiError::bad_request(format!(
            "PCA needs at least 2 channels (channels are the features, pixels the samples); \
             {} has 1 channel",
            source.id
        )));
    }
    if components < 1 || components > c {
        return Err(ApiError::bad_request(format!(
            "components must be between 1 and {c} (the number of channels of {}), got {components}",
            source.id
        )));
    }
    let k = components as usize;
    let shape = Shape5::new(
        source.shape.t,
        source.shape.z,
        components,
        source.shape.y,
        source.shape.x,
    );
    let pixels = state.pixels.clone();
    let cap = state.config.inline_scores_cap;
    let source_record = source.clone();
    let outcome = blocking(move || {
        let reader = open_pixels(&*pixels, &source_record)?;
        Ok(pca(&*reader, k, cap)?)
    })
    .await?;
    let scores_id = state.repo.reserve(ImageKind::PcaScores).await?;
    let record = ImageRecord {
        id: scores_id,
        kind: ImageKind::PcaScores,
        source_image_id: Some(source.id),
        original_filename: source.original_filename.clone(),
        byte_size: 0,
        created_at: now_rfc3339(),
        dtype: DType::F32,
        shape,
        flavour: pentascope_core::tiff::Flavour::Plain,
        details: ImageDetails {
            source_axes: "TZCYX".into(),
            channel_names: (1..=k).map(|i| format!("PC{i}")).collect(),
            physical_sizes: source.details.physical_sizes.clone(),
            warnings: Vec::new(),
            chunk_shape: [0; 5],
            pca: Some(outcome.model.clone()),
        },
        statistics: outcome.score_statistics,
    };
    if let Err(e) = state.repo.publish(&record).await {
        state.repo.discard(scores_id).await?;
        return Err(e.into());
    }
    let model = outcome.model;
    let n_values = shape.pixels_per_channel() * components;
    let (pca_result, omitted) = match outcome.inline_scores {
        Some(scores) => (
            Value::Array(scores.chunks(k).map(|row| json!(row)).collect()),
            Value::Null,
        ),
        None => (
            Value::Null,
            json!(format!(
                "{n_values} score values exceed the inline limit of {cap}; fetch them from \
                 image {scores_id} (/slice?image_id={scores_id}&channel=0&format=npy)"
            )),
        ),
    };
    Ok(Json(json!({
        "image_id": source.id,
        "n_components": k,
        "n_samples": model.n_samples,
        "explained_variance": model.explained_variance,
        "explained_variance_ratio": model.explained_variance_ratio,
        "components": model.components,
        "mean": model.mean,
        "scores_image_id": scores_id,
        "pca_result": pca_result,
        "pca_result_omitted": omitted,
        "pca_result_layout": "one row per pixel in T, Z, Y, X order; one column per component",
        "inline_limit": cap,
    })))
}
