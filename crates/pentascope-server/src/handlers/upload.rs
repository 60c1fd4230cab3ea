//! `POST /upload`: the file field is handed to the ingest as it arrives,
//! piece by piece through a [`ChannelBody`]; the ingest stores what it can
//! place at once and spools the rest (`pentascope_passes::stream`); the
//! image is published only when everything is written.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use pentascope_app::catalogue::NewEntry;
use pentascope_app::ingest::{BodyPiece, ChannelBody, UploadStream};
use pentascope_core::Axes;
use pentascope_store::ImageRecord;

use axum::Extension;
use pentascope_app::Caller;

use crate::answers::{SeriesImage, UploadResponse};
use crate::error::ApiError;
use crate::handlers::params::Params;
use crate::AppState;

/// Pieces of the body queued between the connection and the ingest.
const QUEUED_PIECES: usize = 64;

/// `POST /upload` with multipart field `file` and optional `axes` (a form
/// field, best before the file, or a query parameter). A refusal is logged
/// with its status and reason.
pub async fn upload(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let answer = ingest_upload(app, caller, params, headers, multipart).await;
    if let Err(refused) = &answer {
        refused.log_refusal("POST /upload");
    }
    answer
}

async fn ingest_upload(
    app: AppState,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    // a declared size over the limit is refused before a byte is read
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.config.max_upload_bytes) {
        return Err(too_large(&app));
    }
    // no body, or not a form: the original service's answer, with why
    let multipart = multipart.map_err(|e| {
        no_file_part(format!(
            "send the TIFF as multipart/form-data field \"file\"; the body is not a \
             multipart/form-data form ({e})"
        ))
    })?;
    let started = std::time::Instant::now();
    let spool = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(app.config.spool_dir())
        .map_err(spool_error)?
        .into_temp_path();
    let (start_tx, start_rx) = tokio::sync::oneshot::channel::<FileStart>();
    let (pieces_tx, pieces) = tokio::sync::mpsc::channel(QUEUED_PIECES);
    let receive = receive(
        &app,
        multipart,
        params.get("axes").cloned(),
        start_tx,
        pieces_tx,
        started,
    );
    let ingest = async {
        let FileStart { name, axes, entry } = start_rx.await.ok()?;
        let upload = UploadStream {
            body: Box::new(ChannelBody::new(pieces, axes)),
            spool: spool.to_path_buf(),
            name,
            max_len: declared.unwrap_or(app.config.max_upload_bytes),
            entry,
        };
        Some(
            app.ingest_stream(&caller, upload, Arc::new(|_, _| {}))
                .await,
        )
    };
    let (received, ingested) = tokio::join!(receive, ingest);
    // a broken or malformed request says more than the ingest it stopped
    received?;
    let record = ingested.ok_or_else(|| ApiError::internal("the upload was never ingested"))??;
    drop(spool);
    tracing::info!(
        id = %record.id,
        seconds = started.elapsed().as_secs_f64(),
        mb_per_s = record.byte_size as f64 / 1e6 / started.elapsed().as_secs_f64(),
        "upload published"
    );
    Ok((
        StatusCode::OK,
        Json(upload_answer(&app, &caller, &record).await?),
    ))
}

/// What an upload answers once its image is published (`POST /upload`, and
/// the last append of a resumable upload): the image of the file's first
/// series, and in `image_ids` every image of the file (one per series, in
/// tifffile's order) that `caller` may see.
pub(crate) async fn upload_answer(
    app: &AppState,
    caller: &Caller,
    record: &ImageRecord,
) -> Result<UploadResponse, ApiError> {
    let images = app.file_images(caller, record).await?;
    Ok(UploadResponse {
        message: "File uploaded successfully",
        image_id: record.id,
        shape: record.shape.to_array(),
        dtype: record.dtype,
        image_ids: images.iter().map(SeriesImage::of).collect(),
    })
}

/// What the ingest needs to begin: the file's name, the axes known so far,
/// and what the form says about the image.
struct FileStart {
    name: String,
    axes: Option<Axes>,
    entry: NewEntry,
}

/// The form fields that describe the image (they must come before the file).
const ENTRY_FIELDS: &[&str] = &["name", "description", "tag", "annotation", "dataset"];

/// The most catalogue fields one upload may carry (tags and annotations
/// are bounded again, each by its own limit).
pub(crate) const MAX_ENTRY_FIELDS: usize = 4096;

/// Reads the form: fields before the file, then the file's bytes, handed to
/// the ingest as they come (`start` with its name, the axes known so far
/// and the image's name, description, tags, annotations and datasets), then
/// the fields after it.
async fn receive(
    app: &AppState,
    mut multipart: Multipart,
    mut axes_text: Option<String>,
    start: tokio::sync::oneshot::Sender<FileStart>,
    pieces: tokio::sync::mpsc::Sender<BodyPiece>,
    started: std::time::Instant,
) -> Result<(), ApiError> {
    let parse_axes = |text: &Option<String>| {
        text.as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(Axes::parse)
            .transpose()
    };
    let mut start = Some(start);
    let mut file = None;
    let mut entry = NewEntry::default();
    let mut entry_fields = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(app)
        } else if file.is_none() {
            // an empty or broken form before any file: Flask finds no file
            no_file_part(format!("cannot read the multipart body: {e}"))
        } else {
            ApiError::bad_request(format!("cannot read the multipart body: {e}"))
        }
    })? {
        match field.name() {
            Some("file") if file.is_some() => {
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
                let axes = parse_axes(&axes_text)?;
                if let Some(start) = start.take() {
                    let entry = std::mem::take(&mut entry);
                    let _ = start.send(FileStart {
                        name: name.clone(),
                        axes,
                        entry,
                    });
                }
                let mut bytes = 0u64;
                let mut ingesting = true;
                while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(app, e))? {
                    bytes += chunk.len() as u64;
                    // an ingest that stopped has its own answer; the rest of
                    // the body is read so that the client gets it
                    ingesting = ingesting && pieces.send(BodyPiece::Bytes(chunk)).await.is_ok();
                }
                tracing::info!(
                    file = %name,
                    bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "upload received"
                );
                file = Some(());
            }
            Some(field_name) if ENTRY_FIELDS.contains(&field_name) => {
                let field_name = field_name.to_string();
                if file.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "the {field_name} field came after the file: send name, description, \
                         tag, annotation and dataset fields before the file field"
                    )));
                }
                entry_fields += 1;
                if entry_fields > MAX_ENTRY_FIELDS {
                    return Err(ApiError::bad_request(format!(
                        "the upload has more than {MAX_ENTRY_FIELDS} name, description, tag, \
                         annotation and dataset fields"
                    )));
                }
                let value = entry_field(&mut field, &field_name, app).await?;
                match field_name.as_str() {
                    "name" => entry.name = Some(value),
                    "description" => entry.description = Some(value),
                    "tag" => entry.tags.push(value),
                    "annotation" => entry.annotations.push(value),
                    _ => entry.datasets.push(value),
                }
            }
            Some("axes") => {
                axes_text = Some(field.text().await.map_err(|e| {
                    ApiError::bad_request(format!("cannot read the axes field: {e}"))
                })?);
            }
            _ => {}
        }
    }
    file.ok_or_else(|| no_file_part("send the TIFF as multipart/form-data field \"file\"".into()))?;
    let _ = pieces.send(BodyPiece::End(parse_axes(&axes_text)?)).await;
    Ok(())
}

/// A catalogue field's text, read within the longest such value may be
/// (a description), so that a huge field is refused before it is held.
async fn entry_field(
    field: &mut axum::extract::multipart::Field<'_>,
    name: &str,
    app: &AppState,
) -> Result<String, ApiError> {
    let limits = &app.config.catalogue;
    // a character is at most 4 bytes; a key=value holds both parts
    let most = limits
        .max_description_bytes
        .max(limits.max_name_chars * 4)
        .max(limits.max_key_chars * 4 + 1 + limits.max_value_bytes);
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the {name} field: {e}")))?
    {
        if bytes.len() + chunk.len() > most {
            return Err(ApiError::bad_request(format!(
                "the {name} field is longer than {most} bytes, more than any name, \
                 description or annotation may be"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request(format!("the {name} field is not UTF-8 text")))
}

/// 400 with the original service's text for a request without a file,
/// and `detail` saying what to send.
fn no_file_part(detail: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: "No file part in the request".into(),
        detail: Some(detail),
    }
}

/// 413 naming the upload limit and its setting.
pub(crate) fn too_large(app: &AppState) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: crate::settings::with_setting(
            format!(
                "the upload is larger than the configured maximum of {} bytes",
                app.config.max_upload_bytes
            ),
            Some(pentascope_core::Limit::MaxUploadBytes),
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
