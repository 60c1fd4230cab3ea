//! The catalogue over HTTP: paged search of images, tags, datasets and
//! their links.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use pentascope_app::catalogue::{DatasetSearch, ImageSearch, Listing};
use pentascope_app::Caller;
use pentascope_store::records::catalogue::DatasetChange;
use pentascope_store::records::DatasetRecord;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::answers::{
    DatasetDeleted, DatasetLink, DatasetList, ImageList, Metadata, TagCount, TagList,
};
use crate::error::ApiError;
use crate::AppState;

/// Query parameters in order, repeated names kept.
pub(crate) fn query_pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Sets a parameter that may be given once.
pub(crate) fn once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(ApiError::bad_request(format!(
            "the query parameter {name} is given twice; it takes one value"
        )));
    }
    Ok(())
}

/// `GET /images`: a page of the images the caller may see, filtered,
/// sorted and paged by cursor.
pub async fn list(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ImageList>, ApiError> {
    let mut s = ImageSearch::default();
    for (name, value) in query_pairs(raw) {
        match name.as_str() {
            "tag" => s.tags.push(value),
            "annotation" => s.annotations.push(value),
            "q" => once(&mut s.q, "q", value)?,
            "dataset" => once(&mut s.dataset, "dataset", value)?,
            "owner" => once(&mut s.owner, "owner", value)?,
            "dtype" => once(&mut s.dtype, "dtype", value)?,
            "flavour" => once(&mut s.flavour, "flavour", value)?,
            "kind" => once(&mut s.kind, "kind", value)?,
            "created_after" => once(&mut s.created_after, "created_after", value)?,
            "created_before" => once(&mut s.created_before, "created_before", value)?,
            "sort" => once(&mut s.sort, "sort", value)?,
            "limit" => once(&mut s.limit, "limit", value)?,
            "cursor" => once(&mut s.cursor, "cursor", value)?,
            // the route's guard refuses every other name
            _ => {}
        }
    }
    let listing = app.search_images(&caller, &s).await?;
    Ok(Json(ImageList {
        count: listing.count,
        images: listing.items.iter().map(Metadata::of).collect(),
        next_cursor: listing.next_cursor,
    }))
}

/// `GET /tags`: the tags on images the caller may see, with counts.
pub async fn tags(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TagList>, ApiError> {
    let (mut prefix, mut limit, mut cursor) = (None, None, None);
    for (name, value) in query_pairs(raw) {
        match name.as_str() {
            "prefix" => once(&mut prefix, "prefix", value)?,
            "limit" => once(&mut limit, "limit", value)?,
            "cursor" => once(&mut cursor, "cursor", value)?,
            _ => {}
        }
    }
    let listing = app
        .tags(
            &caller,
            prefix.as_deref(),
            limit.as_deref(),
            cursor.as_deref(),
        )
        .await?;
    Ok(Json(TagList {
        count: listing.count,
        tags: listing
            .items
            .into_iter()
            .map(|(tag, images)| TagCount { tag, images })
            .collect(),
        next_cursor: listing.next_cursor,
    }))
}

/// The body of `POST /datasets`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    /// Its name: not empty, no control characters.
    #[schemars(length(min = 1), regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    name: String,
    /// Free text: no control characters besides tabs and line breaks.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"))]
    description: String,
}

/// The body of `PATCH /datasets/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    public: Option<bool>,
}

fn body<T>(body: Result<Json<T>, JsonRejection>, example: &str) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body like {example} ({})",
            e.body_text()
        ))
    })
}

/// `POST /datasets` with `{"name", "description"}`.
pub async fn create_dataset(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<NewDataset>, JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<DatasetRecord>), ApiError> {
    let new = body(
        request,
        r#"{"name": "Mouse brain, 2026-12", "description": "…"}"#,
    )?;
    let dataset = app
        .create_dataset(&caller, &new.name, &new.description)
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(dataset)))
}

/// `GET /datasets`: a page of the datasets the caller may see.
pub async fn list_datasets(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DatasetList>, ApiError> {
    let mut s = DatasetSearch::default();
    for (name, value) in query_pairs(raw) {
        match name.as_str() {
            "q" => once(&mut s.q, "q", value)?,
            "owner" => once(&mut s.owner, "owner", value)?,
            "sort" => once(&mut s.sort, "sort", value)?,
            "limit" => once(&mut s.limit, "limit", value)?,
            "cursor" => once(&mut s.cursor, "cursor", value)?,
            _ => {}
        }
    }
    let Listing {
        count,
        items,
        next_cursor,
    } = app.search_datasets(&caller, &s).await?;
    Ok(Json(DatasetList {
        count,
        datasets: items,
        next_cursor,
    }))
}

/// `GET /datasets/{id}`.
pub async fn get_dataset(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DatasetRecord>, ApiError> {
    Ok(Json(app.dataset(&caller, &id).await?))
}

/// `PATCH /datasets/{id}` with any of `name`, `description`, `public`.
pub async fn patch_dataset(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Result<Json<DatasetPatch>, JsonRejection>,
) -> Result<Json<DatasetRecord>, ApiError> {
    let patch = body(
        request,
        r#"{"name": "…", "description": "…", "public": true}"#,
    )?;
    if patch.name.is_none() && patch.description.is_none() && patch.public.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send any of name, description, public",
        ));
    }
    let change = DatasetChange {
        name: patch.name,
        description: patch.description,
        public: patch.public,
    };
    Ok(Json(app.update_dataset(&caller, &id, change).await?))
}

/// `DELETE /datasets/{id}`: the dataset goes, its images stay.
pub async fn delete_dataset(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DatasetDeleted>, ApiError> {
    let dataset = app.delete_dataset(&caller, &id).await?;
    Ok(Json(DatasetDeleted {
        message: format!("{} deleted; its images were kept", dataset.dataset_id),
        dataset_id: dataset.dataset_id,
    }))
}

/// `PUT /datasets/{id}/images/{image_id}`: puts an image in a dataset.
pub async fn link_image(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((dataset, image)): Path<(String, String)>,
) -> Result<Json<DatasetLink>, ApiError> {
    let added = app.link_image(&caller, &dataset, &image).await?;
    Ok(Json(DatasetLink {
        dataset_id: dataset,
        image_id: image,
        added: Some(added),
        removed: None,
    }))
}

/// `DELETE /datasets/{id}/images/{image_id}`: takes it out again.
pub async fn unlink_image(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((dataset, image)): Path<(String, String)>,
) -> Result<Json<DatasetLink>, ApiError> {
    app.unlink_image(&caller, &dataset, &image).await?;
    Ok(Json(DatasetLink {
        dataset_id: dataset,
        image_id: image,
        added: None,
        removed: Some(true),
    }))
}
