//! `POST /segment`: Otsu's threshold, a given threshold or k-means on a
//! plane or a Z stack, with the objects and a labels image (see
//! `pentascope_app::segment`). With `"async": true` the work becomes a
//! `heavy_segmentation` job (`202`).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pentascope_app::jobs::parse;
use pentascope_app::segment::SegmentArgs;
use pentascope_app::Caller;
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
            "expected a JSON body (at most 2 MiB) like {{\"image_id\": \"image_1\", \"method\": \"otsu\"}} ({e})"
        ),
        detail: None,
    }
}

/// `POST /segment` with `{"image_id": "image_1", "method": "otsu"}` (and
/// `threshold`, `n_clusters`, `z`, `time`, `channel`, `scope`), optionally
/// `"async": true`.
pub async fn segment(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
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
    let args: SegmentArgs = parse(&body)?;
    if run_async {
        let job = app.submit(&caller, args).await?;
        return Ok((StatusCode::ACCEPTED, Json(accepted_json(&job))).into_response());
    }
    let result = app.segment(&caller, &args, Arc::new(|_| {})).await?;
    Ok(Json(result).into_response())
}
