//! `/uploads`: resumable uploads with tus 1.0.0 (core, and the creation,
//! creation-with-upload, termination, expiration and checksum extensions).
//! The use cases are [`pentascope_app::resumable`]; here are the protocol's
//! headers. Every answer under `/uploads` carries `Tus-Resumable` (set by
//! the front door, so that refusals before routing carry it too).
//!
//! The append that brings the last byte answers `200` with the body
//! `POST /upload` answers (`image_id`, `shape`, `dtype`); earlier appends
//! answer `204`. `GET /uploads/{id}` answers where the upload stands, with
//! the same fields once its image is published (for a client whose last
//! answer was lost).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use pentascope_app::catalogue::NewEntry;
use pentascope_app::resumable::{NewUpload, UploadState};
use pentascope_app::Caller;
use pentascope_store::ImageRecord;

use crate::answers::ResumableUpload;
use crate::error::ApiError;
use crate::handlers::upload::{too_large, upload_answer, MAX_ENTRY_FIELDS};
use crate::AppState;

/// The protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The extensions supported.
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
/// The content type of an append.
const OFFSET_STREAM: &str = "application/offset+octet-stream";

const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
/// Named with every answer under `/uploads`.
pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION_HEADER: HeaderName = HeaderName::from_static("tus-version");
const IMAGE_ID: HeaderName = HeaderName::from_static("pentascope-image-id");

/// `OPTIONS /uploads`: what this server speaks.
pub async fn options(State(app): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(TUS_VERSION_HEADER, HeaderValue::from_static(TUS_VERSION));
    h.insert(
        HeaderName::from_static("tus-extension"),
        HeaderValue::from_static(EXTENSIONS),
    );
    h.insert(
        HeaderName::from_static("tus-max-size"),
        HeaderValue::from(app.config.max_upload_bytes),
    );
    h.insert(
        HeaderName::from_static("tus-checksum-algorithm"),
        HeaderValue::from_static("sha256"),
    );
    response
}

/// `POST /uploads`: creates an upload (`Upload-Length`, `Upload-Metadata`),
/// with its first bytes if the body has any.
pub async fn create(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        "POST /uploads",
        create_upload(app, caller, headers, body).await,
    )
}

async fn create_upload(
    app: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    if headers.contains_key(UPLOAD_DEFER_LENGTH) {
        return Err(ApiError::bad_request(
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = number(&headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| ApiError::bad_request("send the file's size as Upload-Length"))?;
    if length > app.config.max_upload_bytes {
        return Err(too_large(&app));
    }
    // creation-with-upload when the body is the file's first bytes
    let declared_body = number(&headers, &header::CONTENT_LENGTH)?.is_some_and(|n| n > 0);
    let with_bytes =
        headers.contains_key(header::CONTENT_TYPE) && check_content_type(&headers).is_ok();
    if declared_body && !with_bytes {
        check_content_type(&headers)?;
    }
    let raw = match headers.get(UPLOAD_METADATA) {
        Some(v) => v
            .to_str()
            .map_err(|_| ApiError::bad_request("Upload-Metadata is not ASCII text"))?
            .to_string(),
        None => String::new(),
    };
    let checksum = checksum(&headers)?;
    let new = described(length, &raw)?;
    let upload = app.create_upload(&caller, new).await?;
    let location = format!("/uploads/{}", upload.id);
    let (status, state, image) = if with_bytes {
        let appended = app
            .append_upload(&caller, &upload.id, 0, checksum, body.into_data_stream())
            .await?;
        (StatusCode::CREATED, appended.state, appended.image)
    } else {
        (StatusCode::CREATED, upload, None)
    };
    let document = status_document(&app, &caller, &state, image.as_ref()).await?;
    let mut response = (status, Json(document)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    if with_bytes {
        h.insert(UPLOAD_OFFSET, HeaderValue::from(state.offset));
    }
    h.insert(UPLOAD_EXPIRES, expires(&state));
    Ok(response)
}

/// `HEAD /uploads/{id}`: the upload's offset and length.
pub async fn head(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let answered = async {
        check_version(&headers)?;
        let state = app.upload_state(&caller, &id).await?;
        let mut response = StatusCode::OK.into_response();
        let h = response.headers_mut();
        h.insert(UPLOAD_OFFSET, HeaderValue::from(state.offset));
        h.insert(UPLOAD_LENGTH, HeaderValue::from(state.length));
        if let Ok(metadata) = HeaderValue::from_str(&state.metadata) {
            if !state.metadata.is_empty() {
                h.insert(UPLOAD_METADATA, metadata);
            }
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(UPLOAD_EXPIRES, expires(&state));
        if let Some(Ok(image)) = state.image_id.as_deref().map(HeaderValue::from_str) {
            h.insert(IMAGE_ID, image);
        }
        Ok(response)
    };
    answer("HEAD /uploads/{id}", answered.await)
}

/// `PATCH /uploads/{id}`: bytes at `Upload-Offset`.
pub async fn patch(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answered = async {
        check_version(&headers)?;
        check_content_type(&headers)?;
        let offset = number(&headers, &UPLOAD_OFFSET)?
            .ok_or_else(|| ApiError::bad_request("send the upload's offset as Upload-Offset"))?;
        let checksum = checksum(&headers)?;
        let appended = app
            .append_upload(&caller, &id, offset, checksum, body.into_data_stream())
            .await?;
        let mut response = match &appended.image {
            Some(record) => (
                StatusCode::OK,
                Json(upload_answer(&app, &caller, record).await?),
            )
                .into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        };
        let h = response.headers_mut();
        h.insert(UPLOAD_OFFSET, HeaderValue::from(appended.state.offset));
        h.insert(UPLOAD_EXPIRES, expires(&appended.state));
        Ok(response)
    };
    answer("PATCH /uploads/{id}", answered.await)
}

/// `DELETE /uploads/{id}`: the upload and its bytes are removed.
pub async fn terminate(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let answered = async {
        check_version(&headers)?;
        app.terminate_upload(&caller, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    answer("DELETE /uploads/{id}", answered.await)
}

/// `GET /uploads/{id}` (not part of tus): where the upload stands, and
/// once its image is published, what `POST /upload` answers.
pub async fn get(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let answered = async {
        let progress = app.upload_progress(&caller, &id).await?;
        let body = status_document(&app, &caller, &progress.state, progress.image.as_ref()).await?;
        Ok((StatusCode::OK, Json(body)).into_response())
    };
    answer("GET /uploads/{id}", answered.await)
}

/// Where an upload stands (the answer of `GET /uploads/{id}` and of its
/// creation) and, once its image is published, what `POST /upload` answers.
async fn status_document(
    app: &AppState,
    caller: &Caller,
    state: &UploadState,
    image: Option<&ImageRecord>,
) -> Result<ResumableUpload, ApiError> {
    let image = match image {
        Some(record) => Some(upload_answer(app, caller, record).await?),
        None => None,
    };
    Ok(ResumableUpload {
        upload_id: state.id.clone(),
        offset: state.offset,
        length: state.length,
        file_name: state.file_name.clone(),
        expires: httpdate::fmt_http_date(expiry_time(state)),
        published: image.is_some(),
        image,
    })
}

/// The response, or the refusal logged and answered.
fn answer(request: &str, answered: Result<Response, ApiError>) -> Response {
    match answered {
        Ok(response) => response,
        Err(refused) => {
            refused.log_refusal(request);
            let precondition = refused.status == StatusCode::PRECONDITION_FAILED;
            let mut response = refused.into_response();
            // the body may be left unread: the connection cannot carry
            // another request, and the client must not try
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            if precondition {
                response
                    .headers_mut()
                    .insert(TUS_VERSION_HEADER, HeaderValue::from_static(TUS_VERSION));
            }
            response
        }
    }
}

/// 412 unless the client speaks this version.
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(TUS_RESUMABLE).map(|v| v.to_str()) {
        Some(Ok(TUS_VERSION)) => Ok(()),
        sent => Err(ApiError {
            status: StatusCode::PRECONDITION_FAILED,
            message: format!(
                "this server speaks tus {TUS_VERSION}; the request's Tus-Resumable is {}",
                match sent {
                    Some(Ok(v)) => format!("{v:?}"),
                    Some(Err(_)) => "not text".to_string(),
                    None => "missing".to_string(),
                }
            ),
            detail: None,
        }),
    }
}

/// 415 unless the body is `application/offset+octet-stream`.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = sent.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(OFFSET_STREAM) {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: format!(
            "send the bytes with Content-Type: {OFFSET_STREAM} (the request's is {})",
            if sent.is_empty() {
                "missing".to_string()
            } else {
                format!("{sent:?}")
            }
        ),
        detail: None,
    })
}

/// A header holding a non-negative integer, if sent.
fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be a non-negative integer"))
                })
        })
        .transpose()
}

/// The sha256 digest `Upload-Checksum` names, if sent.
fn checksum(headers: &HeaderMap) -> Result<Option<[u8; 32]>, ApiError> {
    let Some(value) = headers.get(UPLOAD_CHECKSUM) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Upload-Checksum is not text"))?;
    let (algorithm, digest) = text.trim().split_once(' ').ok_or_else(|| {
        ApiError::bad_request("Upload-Checksum must be \"sha256 <base64 digest>\"")
    })?;
    if algorithm != "sha256" {
        return Err(ApiError::bad_request(format!(
            "checksum algorithm {algorithm:?} is not supported; Tus-Checksum-Algorithm: sha256"
        )));
    }
    STANDARD
        .decode(digest.trim())
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request("the sha256 in Upload-Checksum is not 32 bytes in base64")
        })
}

/// The upload described by `Upload-Metadata`: comma-separated `key
/// base64(value)` pairs. `filename` is the file's name; `axes`, `name`,
/// `description` are as in `POST /upload`; `tag`, `annotation` and
/// `dataset` hold one value per line. Other keys are ignored.
fn described(length: u64, raw: &str) -> Result<NewUpload, ApiError> {
    let mut seen = std::collections::HashSet::new();
    let mut file_name = None;
    let mut axes = None;
    let mut entry = NewEntry::default();
    let mut values = 0usize;
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        if !seen.insert(key) {
            return Err(ApiError::bad_request(format!(
                "Upload-Metadata has the key {key:?} twice; for several tags, annotations or \
                 datasets put one per line in one value"
            )));
        }
        let known = [
            "filename",
            "axes",
            "name",
            "description",
            "tag",
            "annotation",
            "dataset",
        ];
        if !known.contains(&key) {
            continue;
        }
        let value = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "the Upload-Metadata value of {key:?} is not base64-encoded UTF-8 text"
                ))
            })?;
        let mut lines = || {
            let lines: Vec<String> = value
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            values += lines.len();
            lines
        };
        match key {
            "filename" => file_name = Some(value.clone()),
            "axes" => axes = Some(value.clone()),
            "name" => entry.name = Some(value.clone()),
            "description" => entry.description = Some(value.clone()),
            "tag" => entry.tags = lines(),
            "annotation" => entry.annotations = lines(),
            _ => entry.datasets = lines(),
        }
        if values > MAX_ENTRY_FIELDS {
            return Err(ApiError::bad_request(format!(
                "Upload-Metadata has more than {MAX_ENTRY_FIELDS} tags, annotations and datasets"
            )));
        }
    }
    let file_name = match file_name {
        Some(name) if name.trim().is_empty() => {
            return Err(ApiError::bad_request(
                "the filename in Upload-Metadata is empty: name the file",
            ))
        }
        Some(name) => name,
        None => "upload.tif".to_string(),
    };
    Ok(NewUpload {
        length,
        metadata: raw.to_string(),
        file_name,
        axes,
        entry,
    })
}

fn expiry_time(state: &UploadState) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(state.expires_at)
}

/// `Upload-Expires`: when the upload is removed.
fn expires(state: &UploadState) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(expiry_time(state)))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}
