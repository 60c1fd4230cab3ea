//! `GET /render` (OMERO's rendering grammar) and `GET /thumbnail`.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::Response;
use axum::Extension;
use pentascope_app::render::{RenderFormat, RenderRequest, Rendered};
use pentascope_app::validator::Basis;
use pentascope_app::Caller;
use pentascope_core::composite::{parse_channels, Mode, Projection};

use crate::error::ApiError;
use crate::handlers::conditional::Validators;
use crate::handlers::params::{index, required, Params};
use crate::handlers::zarr::request_of;
use crate::AppState;

/// Comma-separated non-negative integers, exactly `counts` of them.
fn integers(
    params: &Params,
    name: &str,
    counts: &[usize],
    form: &str,
) -> Result<Option<Vec<u64>>, ApiError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    let values: Result<Vec<u64>, _> = text.split(',').map(|v| v.trim().parse::<u64>()).collect();
    match values {
        Ok(v) if counts.contains(&v.len()) => Ok(Some(v)),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be {form} (non-negative integers), got {text:?}"
        ))),
    }
}

fn request(params: &Params, channels: usize) -> Result<RenderRequest, ApiError> {
    let channel_specs = params
        .get("c")
        .map(|c| parse_channels(c, channels))
        .transpose()?;
    let mode = match params.get("m").map(String::as_str) {
        None | Some("c") => Mode::Color,
        Some("g") => Mode::Grey,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "m must be c (colour composite) or g (greyscale), got {other:?}"
            )))
        }
    };
    let projection = match params.get("p") {
        None => None,
        Some(p) => {
            let (name, range) = match p.split_once('|') {
                Some((name, range)) => (name, Some(range)),
                None => (p.as_str(), None),
            };
            let kind = Projection::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "p must be intmax, intmean or intsum, optionally |zstart:zend; got {name:?}"
                ))
            })?;
            let range = range
                .map(|r| {
                    let parsed = r
                        .split_once(':')
                        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
                    parsed.ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "the projection's planes are zstart:zend (0-based, inclusive), got {r:?}"
                        ))
                    })
                })
                .transpose()?;
            Some((kind, range))
        }
    };
    let region = integers(params, "region", &[4], "x,y,w,h")?.map(|v| [v[0], v[1], v[2], v[3]]);
    let size = integers(params, "size", &[1, 2], "W or W,H")?.map(|v| (v[0], v.get(1).copied()));
    let tile = integers(params, "tile", &[3], "level,column,row")?
        .map(|v| {
            u32::try_from(v[0])
                .map(|level| (level, v[1], v[2]))
                .map_err(|_| ApiError::bad_request(format!("tile level {} is too large", v[0])))
        })
        .transpose()?;
    let format = match params.get("format").map(String::as_str) {
        None | Some("png") => {
            if params.contains_key("q") {
                return Err(ApiError::bad_request(
                    "q (quality) applies to format=jpeg only",
                ));
            }
            RenderFormat::Png
        }
        Some("jpeg") | Some("jpg") => {
            let q = match params.get("q") {
                None => 0.9,
                Some(q) => q
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("q must be a number from 0 to 1, got {q:?}"))
                    })?,
            };
            RenderFormat::Jpeg((q * 100.0).round().clamp(1.0, 100.0) as u8)
        }
        Some("webp") => {
            if params.contains_key("q") {
                return Err(ApiError::bad_request(
                    "q (quality) applies to format=jpeg only (WebP is lossless)",
                ));
            }
            RenderFormat::Webp
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be png, jpeg or webp, got {other:?}"
            )))
        }
    };
    Ok(RenderRequest {
        t: index(params, "time")?.unwrap_or(0),
        z: index(params, "z")?.unwrap_or(0),
        channels: channel_specs,
        mode,
        projection,
        region,
        size,
        tile,
        format,
    })
}

fn picture(rendered: Rendered, validators: &Validators) -> Result<Response, ApiError> {
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, rendered.content_type)
        .body(Body::from(rendered.body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    validators.apply(&mut response);
    Ok(response)
}

/// `GET /render?image_id=&z=&time=&c=&m=&p=&region=&size=&tile=&format=&q=`;
/// 304 for a request holding the current tag (which changes with the
/// image's look).
pub async fn render(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = required(&params, "image_id")?;
    let record = app.image(&caller, id).await?;
    let request = request(&params, record.shape.c as usize)?;
    let validators = Validators::new(&record, Basis::Look, &request_of(&uri), &caller);
    if let Some(not_modified) = validators.not_modified(&headers) {
        return Ok(not_modified);
    }
    picture(app.render(&caller, id, &request).await?, &validators)
}

/// `GET /thumbnail?image_id=&size=256`; 304 as for `/render`.
pub async fn thumbnail(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = required(&params, "image_id")?;
    let size = index(&params, "size")?.unwrap_or(256);
    let record = app.image(&caller, id).await?;
    let validators = Validators::new(&record, Basis::Look, &request_of(&uri), &caller);
    if let Some(not_modified) = validators.not_modified(&headers) {
        return Ok(not_modified);
    }
    picture(app.thumbnail(&caller, id, size).await?, &validators)
}
