//! `POST /upload`: spool the multipart body to disk as it arrives, ingest
//! it on the blocking pool, publish only when everything is written.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use pentascope_app::ingest::Upload;
use pentascope_core::Axes;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use axum::Extension;
use pentascope_app::Caller;

use crate::error::ApiError;
use crate::handlers::params::Params;
use crate::AppState;

/// Bytes gathered before each write to the spool file.
const SPOOL_BUFFER: usize = 8 << 20;

/// An upload spooled to a temporary file (deleted on drop).
struct Spooled {
    file: tempfile::TempPath,
    name: String,
    bytes: u64,
}

/// `POST /upload` with multipart field `file` and optional `axes`.
pub async fn upload(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // a declared size over the limit is refused before a byte is spooled
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.config.max_upload_bytes) {
        return Err(too_large(&app));
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data body with a field named file ({e})"
        ))
    })?;
    let started = std::time::Instant::now();
    let mut axes_text = params.get("axes").cloned();
    let mut spooled = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the multipart body: {e}")))?
    {
        match field.name() {
            Some("file") if spooled.is_some() => {
                return Err(ApiError::bad_request(
                    "the upload has more than one field named file: send one file per request",
                ));
            }
            Some("file") => {
                let name =
                    match field.file_name() {
                        Some("") => return Err(ApiError {
                            status: StatusCode::BAD_REQUEST,
                            message: "No selected file".into(),
                            detail: Some(
                                "the file field has an empty file name: choose a file to upload"
                                    .into(),
                            ),
                        }),
                        Some(name) => name.to_string(),
                        None => "upload.tif".to_string(),
                    };
                let path = tempfile::Builder::new()
                    .prefix("upload-")
                    .tempfile_in(app.config.spool_dir())
                    .map_err(spool_error)?
                    .into_temp_path();
                // Large writes: each write to a tokio file is a trip to the
                // blocking pool, so batch the small multipart chunks.
                let mut out = tokio::io::BufWriter::with_capacity(
                    SPOOL_BUFFER,
                    tokio::fs::File::create(&path).await.map_err(spool_error)?,
                );
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(&app, e))? {
                    bytes += chunk.len() as u64;
                    out.write_all(&chunk).await.map_err(spool_error)?;
                }
                out.flush().await.map_err(spool_error)?;
                spooled = Some(Spooled {
                    file: path,
                    name,
                    bytes,
                });
            }
            Some("axes") => {
                axes_text = Some(field.text().await.map_err(|e| {
                    ApiError::bad_request(format!("cannot read the axes field: {e}"))
                })?);
            }
            _ => {}
        }
    }
    let spooled = spooled.ok_or_else(|| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: "No file part in the request".into(),
        detail: Some("send the TIFF as multipart/form-data field \"file\"".into()),
    })?;
    let axes = axes_text
        .filter(|a| !a.trim().is_empty())
        .map(|a| Axes::parse(&a))
        .transpose()?;
    tracing::info!(
        file = %spooled.name,
        bytes = spooled.bytes,
        seconds = started.elapsed().as_secs_f64(),
        "upload received"
    );
    let upload = Upload {
        path: spooled.file.to_path_buf(),
        name: spooled.name,
        byte_size: spooled.bytes,
        axes,
    };
    let record = app.ingest(&caller, upload, Arc::new(|_, _| {})).await?;
    drop(spooled.file);
    tracing::info!(
        id = %record.id,
        seconds = started.elapsed().as_secs_f64(),
        mb_per_s = record.byte_size as f64 / 1e6 / started.elapsed().as_secs_f64(),
        "upload published"
    );
    Ok((
        StatusCode::OK,
        Json(json!({
            "message": "File uploaded successfully",
            "image_id": record.id,
            "shape": record.shape.to_array(),
            "dtype": record.dtype,
        })),
    ))
}

/// 413 naming the upload limit and its setting.
fn too_large(app: &AppState) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "the upload is larger than the configured maximum of {} bytes \
             (PENTASCOPE_MAX_UPLOAD_BYTES, --max-upload-bytes)",
            app.config.max_upload_bytes
        ),
        detail: None,
    }
}

/// Writing the upload to the spool failed.
fn spool_error(e: std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        ApiError::storage_full(e)
    } else {
        ApiError::internal(format!("cannot spool the upload: {e}"))
    }
}

/// A broken or oversized multipart stream.
fn upload_error(app: &AppState, e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(app)
    } else {
        ApiError::bad_request(format!("the upload was interrupted: {e}"))
    }
}
