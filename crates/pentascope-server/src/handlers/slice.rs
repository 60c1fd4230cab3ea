//! `GET /slice`: one plane as an 8-bit windowed PNG, a 16-bit raw PNG or
//! the exact samples as `.npy`.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::Response;
use pentascope_app::slice::SliceFormat;
use pentascope_core::PlaneIndex;

use axum::Extension;
use pentascope_app::validator::Basis;
use pentascope_app::Caller;

use crate::error::ApiError;
use crate::handlers::conditional::Validators;
use crate::handlers::params::{index, number, required, Params};
use crate::handlers::zarr::request_of;
use crate::AppState;

/// `GET /slice?image_id=&z=&time=&channel=[&min=&max=][&auto=plane][&bits=16][&format=npy]`;
/// 304 for a request holding the current tag (which changes with the
/// image's statistics where the window comes from them).
pub async fn slice(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let image_id = required(&params, "image_id")?;
    let plane = PlaneIndex::new(
        index(&params, "time")?.unwrap_or(0),
        index(&params, "z")?.unwrap_or(0),
        index(&params, "channel")?.unwrap_or(0),
    );
    let format = match (
        params.get("format").map(String::as_str).unwrap_or("png"),
        params.get("bits").map(String::as_str).unwrap_or("8"),
    ) {
        ("npy", _) => SliceFormat::Npy,
        ("png", "16") => SliceFormat::Png16,
        ("png", "8") => {
            let (low, high) = (number(&params, "min")?, number(&params, "max")?);
            if let (Some(low), Some(high)) = (low, high) {
                if low >= high {
                    return Err(ApiError::bad_request(format!(
                        "min must be less than max, got min={low} and max={high}"
                    )));
                }
            }
            let per_plane = match params.get("auto").map(String::as_str) {
                None | Some("stack") => false,
                Some("plane") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "auto must be stack (the channel's window over the whole image, the \
                         default) or plane (this plane's own), got {other:?}"
                    )))
                }
            };
            SliceFormat::Png8 {
                low,
                high,
                per_plane,
            }
        }
        ("png", other) => {
            return Err(ApiError::bad_request(format!(
                "bits must be 8 or 16, got {other:?}"
            )))
        }
        (other, _) => {
            return Err(ApiError::bad_request(format!(
                "format must be png or npy, got {other:?}"
            )))
        }
    };
    let basis = match format {
        SliceFormat::Png8 {
            low: Some(_),
            high: Some(_),
            ..
        }
        | SliceFormat::Png8 {
            per_plane: true, ..
        }
        | SliceFormat::Png16
        | SliceFormat::Npy => Basis::Pixels,
        // the window's open ends come from the channel's statistics
        SliceFormat::Png8 { .. } => Basis::Look,
    };
    let record = app.image(&caller, image_id).await?;
    let validators = Validators::new(&record, basis, &request_of(&uri), &caller);
    if let Some(not_modified) = validators.not_modified(&headers) {
        return Ok(not_modified);
    }
    let slice = app.slice(record, plane, format).await?;
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, slice.content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", slice.filename),
        )
        .body(Body::from(slice.body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    validators.apply(&mut response);
    Ok(response)
}
