//! `POST /analyze`: PCA with pixels as samples and channels as features
//! (see `pentascope_app::analyze`). With `"async": true` the work becomes a
//! background job (`202`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use futures::StreamExt;
use pentascope_app::analyze::PcaArgs;
use pentascope_app::jobs::parse;
use pentascope_app::Caller;
use serde_json::Value;

use crate::answers::JobAccepted;
use crate::error::ApiError;
use crate::handlers::streamed;
use crate::AppState;

/// The analysis document with every score in `pca_result`, streamed from
/// the scores image band by band (the scores are never held whole).
async fn full_result(
    app: &AppState,
    caller: &Caller,
    args: &PcaArgs,
) -> Result<Response, ApiError> {
    let mut result = app
        .analyze_inline(caller, args, Arc::new(|_| {}), 0)
        .await?;
    result.pca_result_omitted = None;
    let scores = app
        .image(caller, &result.scores_image_id.to_string())
        .await?;
    let mut document =
        serde_json::to_value(&result).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(fields) = document.as_object_mut() {
        fields.remove("pca_result");
    }
    let mut head = document.to_string();
    head.pop(); // the closing brace: the rows go before it
    head.push_str(if head.ends_with('{') { "" } else { "," });
    head.push_str("\"pca_result\":");
    let rows = streamed(app.pca_rows_json(scores));
    let body = futures::stream::iter([Ok(Bytes::from(head))])
        .chain(rows)
        .chain(futures::stream::iter([Ok(Bytes::from_static(b"}"))]));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

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
    let full = match body.as_object_mut().and_then(|b| b.remove("pca_result")) {
        None => false,
        Some(v) if v == "full" => true,
        Some(v) if v == "inline" => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "pca_result must be \"full\" (every score, streamed) or \"inline\" (up to \
                 the inline limit), got {v}"
            )))
        }
    };
    if full && run_async {
        return Err(ApiError::bad_request(
            "pca_result \"full\" streams the scores in the answer; with \"async\": true, \
             download the scores image once the job is done",
        ));
    }
    if body.get("image_id").and_then(Value::as_str).is_none() {
        return Err(ApiError::bad_request(
            "image_id (a string such as \"image_1\") is required",
        ));
    }
    let mut args: PcaArgs = parse(&body)?;
    if run_async {
        let source = app.pca_source(&caller, &args).await?;
        args.n_components = Some(args.components_for(source.shape.c));
        let job = app.submit(&caller, args).await?;
        return Ok((StatusCode::ACCEPTED, Json(JobAccepted::of(&job))).into_response());
    }
    if full {
        return full_result(&app, &caller, &args).await;
    }
    let result = app.analyze(&caller, &args, Arc::new(|_| {})).await?;
    Ok(Json(result).into_response())
}
