//! `POST /upload`: spool the multipart body to disk as it arrives, ingest
//! it on the blocking pool, publish only when everything is written.

use std::path::PathBuf;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::Json;
use pentascope_core::Axes;
use pentascope_store::ingest::ingest_tiff;
use pentascope_store::record::ImageDetails;
use pentascope_store::{ImageKind, ImageRecord};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::handlers::params::Params;
use crate::state::{blocking, AppState};

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
    State(state): State<AppState>,
    Query(params): Query<Params>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
            Some("file") => {
                let name = field.file_name().unwrap_or("upload.tif").to_string();
                let path = tempfile::Builder::new()
                    .prefix("upload-")
                    .tempfile_in(&state.spool)
                    .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?
                    .into_temp_path();
                // Large writes: each write to a tokio file is a trip to the
                // blocking pool, so batch the small multipart chunks.
                let mut out = tokio::io::BufWriter::with_capacity(
                    SPOOL_BUFFER,
                    tokio::fs::File::create(&path)
                        .await
                        .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?,
                );
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(&state, e))? {
                    bytes += chunk.len() as u64;
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
                }
                out.flush()
                    .await
                    .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
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
    let spooled = spooled.ok_or_else(|| {
        ApiError::bad_request("no file in the upload: send the TIFF as multipart field \"file\"")
    })?;
    if spooled.bytes == 0 {
        return Err(ApiError::bad_request(format!(
            "the uploaded file {:?} is empty",
            spooled.name
        )));
    }
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
    let record = ingest(&state, spooled, axes).await?;
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

/// A broken or oversized multipart stream.
fn upload_error(state: &AppState, e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the upload is larger than the configured maximum of {} bytes \
                 (PENTASCOPE_MAX_UPLOAD_BYTES)",
                state.config.max_upload_bytes
            ),
        }
    } else {
        ApiError::bad_request(format!("the upload was interrupted: {e}"))
    }
}

/// Reserves an id, writes the pixels staged, then publishes pixels and
/// record; any failure on the way leaves neither behind.
async fn ingest(
    state: &AppState,
    spooled: Spooled,
    axes: Option<Axes>,
) -> Result<ImageRecord, ApiError> {
    let id = state.repo.reserve(ImageKind::Upload).await?;
    let pixels = state.pixels.clone();
    let limits = state.config.limits;
    let name = spooled.name.clone();
    let path: PathBuf = spooled.file.to_path_buf();
    let staged = blocking(move || {
        let ingested = ingest_tiff(
            &*pixels,
            id,
            &path,
            &name,
            &limits,
            axes.as_ref(),
            &|_, _| {},
        )?;
        Ok(ingested)
    })
    .await;
    drop(spooled.file);
    let ingested = match staged {
        Ok(i) => i,
        Err(e) => {
            state.repo.discard(id).await?;
            return Err(e);
        }
    };
    let series = &ingested.series;
    let chunk_shape = ingested.writer.layout().chunk_shape();
    let record = ImageRecord {
        id,
        kind: ImageKind::Upload,
        source_image_id: None,
        original_filename: Some(spooled.name),
        byte_size: spooled.bytes,
        created_at: pentascope_store::record::now_rfc3339(),
        dtype: series.dtype,
        shape: series.shape,
        flavour: series.flavour,
        details: ImageDetails {
            source_axes: series.source_axes.clone(),
            channel_names: series.channel_names.clone(),
            physical_sizes: series.physical_sizes.clone(),
            warnings: series.warnings.clone(),
            chunk_shape,
            pca: None,
        },
        statistics: ingested.statistics,
    };
    publish(state, ingested.writer, &record).await?;
    tracing::info!(%id, shape = ?record.shape.to_array(), dtype = %record.dtype, "image ingested");
    Ok(record)
}

/// Commits staged pixels and publishes the record, undoing the pixels if
/// the database refuses.
pub(crate) async fn publish(
    state: &AppState,
    writer: Box<dyn pentascope_store::pixels::PixelWriter>,
    record: &ImageRecord,
) -> Result<(), ApiError> {
    let id = record.id;
    if let Err(e) = blocking(move || Ok(writer.commit()?)).await {
        state.repo.discard(id).await?;
        return Err(e);
    }
    if let Err(e) = state.repo.publish(record).await {
        let pixels = state.pixels.clone();
        let _ = blocking(move || Ok(pixels.delete(id)?)).await;
        let _ = state.repo.discard(id).await;
        return Err(e.into());
    }
    Ok(())
}
