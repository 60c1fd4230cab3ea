//! `POST /analyze`: PCA with pixels as samples and channels as features
//! (see `pentascope_app::analyze`). With `"async": true` the work becomes a
//! background job (`202`).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pentascope_app::analyze::PcaArgs;
use pentascope_app::jobs::parse;
use serde_json::Value;

use crate::error::ApiError;
use crate::handlers::jobs::accepted_json;
use crate::AppState;

/// A body that is not the JSON expected: 413 when it is over the size
/// limit, 400 otherwise.
fn json_error(e: JsonRejection) -> ApiError {
    ApiError {
        status: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        },
        message: format!(
            "expected a JSON body (at most 2 MiB) like {{\"image_id\": \"image_1\", \"components\": 2}} ({e})"
        ), detail: None, }
}

/// `POST /analyze` with `{"image_id": "image_1", "components": 2}` and
/// optionally `"async": true`.
pub async fn analyze(
    State(app): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(mut body) = body.map_err(json_error)?;
    let run_async = match body.as_object_mut().and_then(|b| b.remove("async")) {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            ApiError::bad_request(format!("async must be true or false, got {v}"))
        })?,
    };
    if body.get("image_id").and_then(Value::as_str).is_none() {
        return Err(ApiError::bad_request(
            "image_id (a string such as \"image_1\") is required",
        ));
    }
    let mut args: PcaArgs = parse(&body)?;
    if run_async {
        let source = app.pca_source(&args).await?;
        args.n_components = Some(args.components_for(source.shape.c));
        let job = app.submit(args).await?;
        return Ok((StatusCode::ACCEPTED, Json(accepted_json(&job))));
    }
    let result = app.analyze(&args, Arc::new(|_| {})).await?;
    Ok((
        StatusCode::OK,
        Json(serde_json::to_value(result).map_err(|e| ApiError::internal(e.to_string()))?),
    ))
}
