//! `GET /jobs/{id}` and the `202` answer of a submitted job.

use axum::extract::{Path, State};
use axum::Extension;
use axum::Json;
use pentascope_app::Caller;
use pentascope_store::records::JobRecord;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

/// The `202` document of a submitted job.
pub fn accepted_json(job: &JobRecord) -> Value {
    json!({
        "job_id": job.id,
        "task": job.task,
        "state": job.state,
        "status_url": format!("/jobs/{}", job.id),
    })
}

/// The JSON of a job, as `GET /jobs/{id}` gives it.
pub fn job_json(job: &JobRecord) -> Value {
    json!({
        "job_id": job.id,
        "task": job.task,
        "kwargs": job.kwargs,
        "state": job.state,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    })
}

/// `GET /jobs/{id}`.
pub async fn get_job(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(job_json(&app.job(&caller, &id).await?)))
}
