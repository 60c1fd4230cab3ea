//! Image metadata, statistics, listing, deletion and health.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use pentascope_store::ImageRecord;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::params::{required, Params};
use crate::state::AppState;

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
        "channel_names": r.details.channel_names,
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
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let record = state.record(required(&params, "image_id")?).await?;
    Ok(Json(metadata_json(&record)))
}

/// `GET /statistics?image_id=`: per-channel statistics over T, Z, Y, X,
/// gathered at ingest (no pixel is read).
pub async fn statistics(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let mut r = state.record(required(&params, "image_id")?).await?;
    let recompute = match params.get("recompute").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "recompute must be true or false, got {other:?}"
            )))
        }
    };
    if recompute {
        // re-read every pixel from the chunked store (a check of the store
        // and a measure of its read speed); the stored record is unchanged
        let pixels = state.pixels.clone();
        let record = r.clone();
        r.statistics = crate::state::blocking(move || {
            let reader = pentascope_store::ops::open_image(&*pixels, &record)?;
            Ok(pentascope_store::analysis::recompute_statistics(&*reader)?)
        })
        .await?;
    }
    let col = |f: fn(&pentascope_core::stats::ChannelStats) -> f64| {
        r.statistics.iter().map(f).collect::<Vec<f64>>()
    };
    Ok(Json(json!({
        "image_id": r.id,
        "mean": col(|c| c.mean),
        "std": col(|c| c.std),
        "min": col(|c| c.min),
        "max": col(|c| c.max),
        "count": r.statistics.iter().map(|c| c.count).collect::<Vec<_>>(),
        "display_min": col(|c| c.display_min),
        "display_max": col(|c| c.display_max),
        "histograms": r.statistics.iter().map(|c| &c.histogram).collect::<Vec<_>>(),
    })))
}

/// `GET /images`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let images: Vec<Value> = state.repo.list().await?.iter().map(metadata_json).collect();
    Ok(Json(json!({ "count": images.len(), "images": images })))
}

/// `GET /images/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(metadata_json(&state.record(&id).await?)))
}

/// `DELETE /images/{id}`: removes the record, then the pixels.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = state.record(&id).await?;
    // images derived from this one (PCA scores) cannot outlive it
    let derived = state.repo.derived_from(record.id).await?;
    for d in &derived {
        state.repo.delete(*d).await?;
        state.caches.forget(*d);
    }
    if !state.repo.delete(record.id).await? {
        return Err(ApiError::not_found(record.id));
    }
    let pixels = state.pixels.clone();
    let id = record.id;
    state.caches.forget(id);
    crate::state::blocking(move || Ok(pixels.delete(id)?)).await?;
    Ok(Json(json!({
        "message": format!("{id} deleted"),
        "image_id": id,
        "derived_images_deleted": derived,
    })))
}

/// `GET /health`: the service and each dependency.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.repo.backend();
    let database = match state.repo.ping().await {
        Ok(()) => json!({"status": "ok", "backend": backend}),
        Err(e) => json!({"status": "unavailable", "backend": backend, "error": e.to_string()}),
    };
    let broker = match &state.broker {
        None => json!({"status": "not configured", "backend": "in-process"}),
        Some(b) => match b.ping().await {
            Ok(()) => json!({"status": "ok", "backend": "redis"}),
            Err(e) => json!({"status": "unavailable", "backend": "redis", "error": e.to_string()}),
        },
    };
    let pixels = state.pixels.clone();
    let storage_backend = pixels.backend();
    let storage = match crate::state::blocking(move || Ok(pixels.ping()?)).await {
        Ok(()) => json!({"status": "ok", "backend": storage_backend}),
        Err(e) => json!({"status": "unavailable", "backend": storage_backend, "error": e.message}),
    };
    let ok = database["status"] == "ok"
        && storage["status"] == "ok"
        && broker["status"] != "unavailable";
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ok" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "database": database,
            "storage": storage,
            "broker": broker,
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
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no such endpoint {}; see /openapi.json for the API",
            uri.path()
        ),
    }
}
