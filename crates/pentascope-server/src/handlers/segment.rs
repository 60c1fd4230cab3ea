//! `POST /segment`: Otsu's threshold, a given threshold or k-means on a
//! plane or a Z stack, with the objects and a labels image (see
//! `pentascope_app::segment`). With `"async": true` the work becomes a
//! `heavy_segmentation` job (`202`). `GET /images/{id}/objects`: a labels
//! image's objects, paged as JSON or streamed as CSV.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use pentascope_app::jobs::parse;
use pentascope_app::segment::{SegmentArgs, SegmentObject};
use pentascope_app::Caller;
use serde_json::Value;

use crate::answers::{JobAccepted, ObjectPage};
use crate::error::ApiError;
use crate::handlers::params::{index, Params};
use crate::AppState;

/// A body that is not the JSON expected: 413 when it is over the size
/// limit, 400 otherwise.
fn json_error(e: JsonRejection) -> ApiError {
    ApiError {
        status: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        },
        message: format!(
            "expected a JSON body (at most 2 MiB) like {{\"image_id\": \"image_1\", \"method\": \"otsu\"}} ({e})"
        ),
        detail: None,
    }
}

/// `POST /segment` with `{"image_id": "image_1", "method": "otsu"}` (and
/// `threshold`, `n_clusters`, `z`, `time`, `channel`, `scope`), optionally
/// `"async": true`.
pub async fn segment(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut body) = body.map_err(json_error)?;
    let run_async = match body.as_object_mut().and_then(|b| b.remove("async")) {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            ApiError::bad_request(format!("async must be true or false, got {v}"))
        })?,
    };
    if body.get("image_id").and_then(Value::as_str).is_none() {
        return Err(ApiError::bad_request(
            "image_id (a string such as \"image_1\") is required",
        ));
    }
    let args: SegmentArgs = parse(&body)?;
    if run_async {
        let job = app.submit(&caller, args).await?;
        return Ok((StatusCode::ACCEPTED, Json(JobAccepted::of(&job))).into_response());
    }
    let result = app.segment(&caller, &args, Arc::new(|_| {})).await?;
    Ok(Json(result).into_response())
}

/// Objects a JSON page holds unless `limit` says otherwise.
const DEFAULT_PAGE: u64 = 1000;
/// Most objects a JSON page holds.
const MAX_PAGE: u64 = 10_000;
/// CSV rows formatted into one piece of the streamed body.
const CSV_ROWS_PER_PIECE: usize = 1024;
/// The CSV's columns: the inline objects' properties, flattened.
const CSV_HEADER: &str = "label,area,centroid_z,centroid_y,centroid_x,\
bbox_min_z,bbox_min_y,bbox_min_x,bbox_max_z,bbox_max_y,bbox_max_x,\
mean_intensity,min_intensity,max_intensity,area_physical\n";

/// `GET /images/{id}/objects?format=json|csv&offset=&limit=`: every object
/// of a labels image made by a thresholded segmentation, with the
/// properties `POST /segment` gives inline (for results beyond the inline
/// cap). JSON is paged (`offset`, `limit` up to 10,000, `next_offset`);
/// CSV streams every row of the range asked for (all by default).
pub async fn objects(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let csv = match params.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or csv, got {other:?}"
            )))
        }
    };
    let offset = index(&params, "offset")?.unwrap_or(0);
    let limit = match index(&params, "limit")? {
        Some(n) if !(1..=MAX_PAGE).contains(&n) && !csv => {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_PAGE} objects a page, got {n}"
            )))
        }
        Some(n) => n,
        None if csv => u64::MAX,
        None => DEFAULT_PAGE,
    };
    let table = app.objects(&caller, &id).await?;
    let n_objects = table.objects.len() as u64;
    let start = offset.min(n_objects) as usize;
    let end = offset.saturating_add(limit).min(n_objects) as usize;
    if csv {
        // formatted piece by piece as the client reads
        let labels = table.labels_image_id;
        let mut rows = table.objects.into_iter().skip(start).take(end - start);
        let pieces = std::iter::from_fn(move || {
            let piece: Vec<SegmentObject> = rows.by_ref().take(CSV_ROWS_PER_PIECE).collect();
            (!piece.is_empty()).then(|| Ok::<_, std::io::Error>(Bytes::from(csv_rows(&piece))))
        });
        let body = futures::stream::iter(
            std::iter::once(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))).chain(pieces),
        );
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{labels}_objects.csv\""),
            )
            .body(Body::from_stream(body))
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let page = &table.objects[start..end];
    Ok(Json(ObjectPage {
        image_id: table.labels_image_id,
        source_image_id: table.source_image_id,
        n_objects,
        area_unit: table.area_unit.as_deref(),
        offset,
        limit,
        next_offset: ((end as u64) < n_objects).then_some(end as u64),
        objects: page,
    })
    .into_response())
}

/// `objects` as CSV rows in [`CSV_HEADER`]'s columns; numbers as Rust
/// writes them (the shortest text that reads back the same `f64`), an
/// empty `area_physical` where the image has no physical sizes.
fn csv_rows(objects: &[SegmentObject]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(objects.len() * 160);
    for o in objects {
        let p = &o.props;
        let [cz, cy, cx] = p.centroid;
        let [z0, y0, x0, z1, y1, x1] = p.bbox;
        // writing to a String cannot fail
        let _ = write!(
            out,
            "{},{},{cz},{cy},{cx},{z0},{y0},{x0},{z1},{y1},{x1},{},{},{},",
            p.label, p.area, p.mean_intensity, p.min_intensity, p.max_intensity
        );
        if let Some(a) = o.area_physical {
            let _ = write!(out, "{a}");
        }
        out.push('\n');
    }
    out
}
