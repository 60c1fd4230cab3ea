//! Image metadata, statistics, listing, deletion and health.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pentascope_app::catalogue::{AnnotationsInput, CatalogueChange};
use pentascope_app::export::ExportFormat;
use pentascope_app::images::Statistics;
use pentascope_store::ImageRecord;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use axum::Extension;
use pentascope_app::{Caller, Who};

use crate::access::LINK_PREFIX;
use crate::answers::{DatasetName, DeleteResponse, Health, Metadata, SeriesImage, SignedLink};
use crate::error::ApiError;
use crate::handlers::params::{required, Params};
use crate::handlers::streamed;
use crate::AppState;

/// `GET /metadata?image_id=`.
pub async fn metadata(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
) -> Result<Json<Metadata>, ApiError> {
    let record = app.image(&caller, required(&params, "image_id")?).await?;
    Ok(Json(Metadata::of(&record)))
}

/// `GET /statistics?image_id=`: per-channel statistics over T, Z, Y, X,
/// gathered at ingest (no pixel is read).
pub async fn statistics(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
) -> Result<Json<Statistics>, ApiError> {
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
    let (r, statistics) = app.statistics(&caller, id, recompute).await?;
    Ok(Json(Statistics::of(r.id, &statistics)))
}

/// `GET /images/{id}`: the metadata, with the datasets the caller may see
/// that hold the image.
pub async fn get(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Metadata>, ApiError> {
    let record = app.image(&caller, &id).await?;
    Ok(Json(with_datasets(&app, &caller, &record).await?))
}

async fn with_datasets(
    app: &AppState,
    caller: &Caller,
    record: &ImageRecord,
) -> Result<Metadata, ApiError> {
    let mut document = Metadata::of(record);
    document.siblings = Some(
        app.file_images(caller, record)
            .await?
            .iter()
            .filter(|r| r.id != record.id)
            .map(SeriesImage::of)
            .collect(),
    );
    let datasets = app.datasets_of(caller, record).await?;
    document.datasets = Some(
        datasets
            .into_iter()
            .map(|(dataset_id, name)| DatasetName { dataset_id, name })
            .collect(),
    );
    Ok(document)
}

/// `DELETE /images/{id}`: removes the record, then the pixels.
pub async fn delete(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let deleted = app.delete(&caller, &id).await?;
    Ok(Json(DeleteResponse {
        message: format!("{} deleted", deleted.image_id),
        image_id: deleted.image_id,
        derived_images_deleted: deleted.derived_images_deleted,
    }))
}

/// `GET /images/{id}/download?format=ome-tiff|npy`: the whole image as one
/// file, streamed with bounded memory.
pub async fn download(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
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
    let export = app.export(&caller, &id, format).await?;
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

/// `GET /images/{id}/original-metadata`: the metadata text of the image's
/// file as it was written (OME-XML as XML, Micro-Manager's as JSON, other
/// formats as text).
pub async fn original_metadata(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (format, text) = app.original_metadata(&caller, &id).await?;
    let content_type = match format.as_str() {
        "ome-xml" => "application/xml; charset=utf-8",
        "micromanager" => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header("x-metadata-format", format)
        .body(Body::from(text))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /health`: the service and each dependency; the dependencies only
/// to callers with a key when access control is required (their errors
/// name hosts).
pub async fn health(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> impl IntoResponse {
    let health = app.health().await;
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = Health {
        status: if health.ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: None,
        storage: None,
        broker: None,
    };
    if matches!(caller.who, Who::Open | Who::User { .. }) {
        body.database = Some(health.database);
        body.storage = Some(health.storage);
        body.broker = Some(health.broker);
    }
    (status, Json(body))
}

/// The body of `PATCH /images/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePatch {
    /// Whether every authenticated user may read the image.
    #[serde(default)]
    public: Option<bool>,
    /// The default look.
    #[serde(default)]
    rendering: Option<RenderingPatch>,
    /// New name.
    #[serde(default)]
    name: Option<String>,
    /// New description.
    #[serde(default)]
    description: Option<String>,
    /// Replaces every tag.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Replaces every annotation.
    #[serde(default)]
    annotations: Option<AnnotationsInput>,
    /// Tags to add.
    #[serde(default)]
    add_tags: Option<Vec<String>>,
    /// Tags to remove.
    #[serde(default)]
    remove_tags: Option<Vec<String>>,
}

/// `{"channels": [{"color": "FF0000", "window": {"start": 0, "end": 900},
/// "active": true}, …]}`, one entry per channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderingPatch {
    channels: Vec<pentascope_store::record::ChannelLook>,
}

/// `PATCH /images/{id}` with `{"public": true}` (visibility) and/or
/// `{"rendering": {"channels": [...]}}` (the default look): owner or admin.
pub async fn patch(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ImagePatch>, JsonRejection>,
) -> Result<Json<Metadata>, ApiError> {
    const EXAMPLE: &str = r#"{"public": true}, {"name": "…", "description": "…", "tags": ["…"], "add_tags": ["…"], "remove_tags": ["…"], "annotations": [["key", "value"]]} or {"rendering": {"channels": [{"color": "FF0000", "window": {"start": 0, "end": 900}, "active": true}]}}"#;
    let Json(patch) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body like {EXAMPLE} ({})",
            e.body_text()
        ))
    })?;
    let catalogue = CatalogueChange {
        name: patch.name,
        description: patch.description,
        tags: patch.tags,
        annotations: patch.annotations,
        add_tags: patch.add_tags,
        remove_tags: patch.remove_tags,
    };
    if patch.public.is_none() && patch.rendering.is_none() && catalogue.is_empty() {
        return Err(ApiError::bad_request(format!(
            "nothing to change: send {EXAMPLE}"
        )));
    }
    let mut record = None;
    if !catalogue.is_empty() {
        record = Some(app.update_catalogue(&caller, &id, catalogue).await?);
    }
    if let Some(rendering) = patch.rendering {
        record = Some(app.set_rendering(&caller, &id, rendering.channels).await?);
    }
    if let Some(public) = patch.public {
        record = Some(app.set_public(&caller, &id, public).await?);
    }
    let record = record.ok_or_else(|| ApiError::internal("no change made"))?;
    Ok(Json(with_datasets(&app, &caller, &record).await?))
}

/// The body of `POST /images/{id}/links`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Seconds the link works for (default an hour, at most 30 days).
    #[serde(default = "an_hour", deserialize_with = "whole_seconds")]
    #[schemars(range(min = 1, max = pentascope_app::access::MAX_LINK_SECS))]
    expires_in: u64,
}

fn an_hour() -> u64 {
    3600
}

/// A whole number of seconds, also when written as a JSON fraction such as
/// `3600.0` (JSON has one number type; JavaScript writes either).
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f))
                .map(|f| f as u64)
        })
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expires_in must be a whole number of seconds, got {n}"
            ))
        })
}

/// `POST /images/{id}/links` with `{"expires_in": 3600}`: a URL prefix that
/// reads the image without a key until it expires.
pub async fn create_link(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<SignedLink>, ApiError> {
    // no body: the defaults
    let body: &[u8] = if body.is_empty() { b"{}" } else { &body };
    let request: LinkRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"expires_in\": <seconds>}} ({e})"
        ))
    })?;
    let link = app.create_link(&caller, &id, request.expires_in).await?;
    let prefix = format!("{}{}/", LINK_PREFIX, link.token);
    let text = |name| headers.get(name).and_then(|h| h.to_str().ok());
    let host = text(header::HOST.as_str()).unwrap_or("localhost");
    // behind a TLS-terminating proxy the link must say https
    let scheme = text("x-forwarded-proto").unwrap_or("http");
    let id = link.image_id;
    Ok(Json(SignedLink {
        image_id: id,
        expires_at: link.expires_at,
        url: format!("{scheme}://{host}{prefix}"),
        examples: [
            ("metadata", format!("{prefix}images/{id}")),
            (
                "slice",
                format!("{prefix}slice?image_id={id}&z=0&time=0&channel=0"),
            ),
            (
                "download",
                format!("{prefix}images/{id}/download?format=npy"),
            ),
        ]
        .into(),
        prefix,
    }))
}

/// `GET /openapi.json`: the API description, generated from the route
/// table and the answers' types.
pub async fn openapi() -> Json<&'static Value> {
    Json(crate::openapi::document())
}

/// Unknown paths answer in the same JSON shape as every other error.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint {}; see /openapi.json for the API",
        uri.path()
    ))
}
