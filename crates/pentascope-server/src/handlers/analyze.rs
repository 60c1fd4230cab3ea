//! `POST /analyze`: PCA with pixels as samples and channels as features.
//! The scores become a derived float32 image that is virtual: its record
//! holds the model, and its planes are projected from the source on request.
//! With `"async": true` the work becomes a background job (`202`).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pentascope_store::ops::{check_pca, run_pca};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::jobs::submit;
use crate::state::AppState;

/// `POST /analyze` with `{"image_id": "image_1", "components": 2}` and
/// optionally `"async": true`.
pub async fn analyze(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let run_async = match body.get("async") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            ApiError::bad_request(format!("async must be true or false, got {v}"))
        })?,
    };
    let source = state.record(image_id).await?;
    check_pca(&source, components)?;
    if run_async {
        let job = submit(
            &state,
            "heavy_pca",
            json!({"image_id": source.id, "n_components": components}),
        )
        .await?;
        return Ok((StatusCode::ACCEPTED, Json(job)));
    }
    let result = run_pca(
        &*state.repo,
        state.pixels.clone(),
        &source,
        components,
        state.config.inline_scores_cap,
        Arc::new(|_| {}),
    )
    .await?;
    Ok((StatusCode::OK, Json(result)))
}
