//! `GET`/`HEAD /zarr/{id}/{key}`: an image's OME-Zarr group, read-only,
//! with byte ranges (`bytes=a-b`, `a-`, `-n`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Extension;
use pentascope_app::validator::Basis;
use pentascope_app::zarr::{ByteRange, ZarrAnswer};
use pentascope_app::Caller;

use crate::error::{ApiError, ErrorBody};
use crate::handlers::conditional::Validators;
use crate::AppState;

/// A single range of `Range: bytes=…`; `None` (the whole key is sent, as
/// RFC 9110 allows) for anything else.
fn byte_range(headers: &HeaderMap) -> Option<ByteRange> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = spec.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(ByteRange::Last(b.parse().ok()?)),
        (false, true) => Some(ByteRange::From(a.parse().ok()?)),
        (false, false) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some(ByteRange::Between(a, b))
        }
        (true, true) => None,
    }
}

/// `GET` or `HEAD /zarr/{id}/{key}`; 304 for a request holding the key's
/// current tag (the group's `zarr.json` changes with the image's look, the
/// rest never).
pub async fn zarr_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    uri: Uri,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let head = method == Method::HEAD;
    let record = app.image(&caller, &id).await?;
    let basis = if key == "zarr.json" {
        Basis::Look
    } else {
        Basis::Pixels
    };
    let validators = Validators::new(&record, basis, &request_of(&uri), &caller);
    if let Some(not_modified) = validators.not_modified(&headers) {
        return Ok(not_modified);
    }
    let answer = app
        .zarr_key(record, &key, byte_range(&headers), head)
        .await?;
    let response = match answer {
        ZarrAnswer::Unsatisfiable { total } => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{total}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::to_string(&ErrorBody {
                    error: format!("the range lies outside the key's {total} bytes"),
                    detail: None,
                })
                .unwrap_or_default(),
            )),
        ZarrAnswer::Bytes {
            body,
            range,
            total,
            content_type,
        } => {
            let length = range.map_or(total, |(a, b)| b - a + 1);
            let mut builder = Response::builder()
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, length)
                .header(header::ACCEPT_RANGES, "bytes");
            if let Some((a, b)) = range {
                builder = builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{total}"));
            }
            builder.body(Body::from(body)).map(|mut response| {
                validators.apply(&mut response);
                response
            })
        }
    };
    response.map_err(|e| ApiError::internal(e.to_string()))
}

/// The path and query a tag is computed over.
pub(crate) fn request_of(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string())
}
