//! `GET /jobs/{id}`.

use axum::extract::{Path, State};
use axum::Extension;
use axum::Json;
use pentascope_app::Caller;

use crate::answers::Job;
use crate::error::ApiError;
use crate::AppState;

/// `GET /jobs/{id}`.
pub async fn get_job(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(Job::of(app.job(&caller, &id).await?)))
}
