//! Image metadata, statistics, listing, deletion and health.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pentascope_app::export::ExportFormat;
use pentascope_store::ImageRecord;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::params::{required, Params};
use crate::handlers::streamed;
use crate::AppState;

/// The metadata document of an image, as `/metadata` and `/images` give it.
pub fn metadata_json(r: &ImageRecord) -> Value {
    let s = r.shape;
    json!({
        "image_id": r.id,
        "dtype": r.dtype,
        "shape": s.to_array(),
        "axes": pentascope_core::shape::CANONICAL_AXES,
        "T": s.t,
        "Z": s.z,
        "Channels": s.c,
        "Height": s.y,
        "Width": s.x,
        // one entry per channel, null where the file named none
        "channel_names": (0..s.c as usize)
            .map(|c| r.details.channel_names.get(c).filter(|n| !n.is_empty()))
            .collect::<Vec<_>>(),
        "physical_sizes": r.details.physical_sizes,
        "flavour": r.flavour,
        "source_axes": r.details.source_axes,
        "original_filename": r.original_filename,
        "byte_size": r.byte_size,
        "created_at": r.created_at,
        "kind": r.kind,
        "source_image_id": r.source_image_id,
        "chunk_shape": r.details.chunk_shape,
        "display_range": r.statistics.iter().map(|c| [c.display_min, c.display_max]).collect::<Vec<_>>(),
        "warnings": r.details.warnings,
    })
}

/// `GET /metadata?image_id=`.
pub async fn metadata(
    State(app): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let record = app.image(required(&params, "image_id")?).await?;
    Ok(Json(metadata_json(&record)))
}

/// `GET /statistics?image_id=`: per-channel statistics over T, Z, Y, X,
/// gathered at ingest (no pixel is read).
pub async fn statistics(
    State(app): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let id = required(&params, "image_id")?;
    let recompute = match params.get("recompute").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "recompute must be true or false, got {other:?}"
            )))
        }
    };
    let (r, statistics) = app.statistics(id, recompute).await?;
    let col = |f: fn(&pentascope_core::stats::ChannelStats) -> f64| {
        statistics.iter().map(f).collect::<Vec<f64>>()
    };
    Ok(Json(json!({
        "image_id": r.id,
        "mean": col(|c| c.mean),
        "std": col(|c| c.std),
        "min": col(|c| c.min),
        "max": col(|c| c.max),
        "count": statistics.iter().map(|c| c.count).collect::<Vec<_>>(),
        "display_min": col(|c| c.display_min),
        "display_max": col(|c| c.display_max),
        "histograms": statistics.iter().map(|c| &c.histogram).collect::<Vec<_>>(),
        // the original service's shape of the same numbers
        "per_channel": statistics.iter().enumerate().map(|(channel, c)| json!({
            "channel": channel, "min": c.min, "max": c.max, "mean": c.mean, "std": c.std,
        })).collect::<Vec<_>>(),
        "global": pentascope_app::images::overall(&statistics),
    })))
}

/// `GET /images`.
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let images: Vec<Value> = app.list().await?.iter().map(metadata_json).collect();
    Ok(Json(json!({ "count": images.len(), "images": images })))
}

/// `GET /images/{id}`.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(metadata_json(&app.image(&id).await?)))
}

/// `DELETE /images/{id}`: removes the record, then the pixels.
pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let deleted = app.delete(&id).await?;
    Ok(Json(json!({
        "message": format!("{} deleted", deleted.image_id),
        "image_id": deleted.image_id,
        "derived_images_deleted": deleted.derived_images_deleted,
    })))
}

/// `GET /images/{id}/download?format=ome-tiff|npy`: the whole image as one
/// file, streamed with bounded memory.
pub async fn download(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let name = params
        .get("format")
        .map(String::as_str)
        .unwrap_or("ome-tiff");
    let format = ExportFormat::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!("format must be ome-tiff or npy, got {name:?}"))
    })?;
    let export = app.export(&id, format).await?;
    let chunks = streamed(export.chunks);
    Response::builder()
        .header(header::CONTENT_TYPE, export.content_type)
        .header(header::CONTENT_LENGTH, export.length)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", export.filename),
        )
        .body(Body::from_stream(chunks))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /health`: the service and each dependency.
pub async fn health(State(app): State<AppState>) -> impl IntoResponse {
    let health = app.health().await;
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if health.ok { "ok" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "database": health.database,
            "storage": health.storage,
            "broker": health.broker,
        })),
    )
}

/// `GET /openapi.json`: the API description.
pub async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
}

/// Unknown paths answer in the same JSON shape as every other error.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint {}; see /openapi.json for the API",
        uri.path()
    ))
}
