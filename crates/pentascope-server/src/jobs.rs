//! Job submission and `GET /jobs/{id}`. A job is a database row; it is run
//! by this process's runners (embedded configuration) or, with a Celery
//! broker configured, sent to the queue for `pentascope worker` processes
//! (see `pentascope-jobs`).

use axum::extract::{Path, State};
use axum::Json;
use pentascope_store::jobs::JobRecord;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// Records a job and wakes a runner; the `202` document for the client.
pub async fn submit(state: &AppState, task: &str, kwargs: Value) -> Result<Value, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    state.repo.create_job(&id, task, &kwargs).await?;
    match &state.broker {
        Some(broker) => broker
            .send(&id, task, &kwargs)
            .await
            .map_err(|e| ApiError {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                message: format!("the job queue (Redis) is unavailable: {e}"),
            })?,
        None => state.jobs_waiting.notify_one(),
    }
    Ok(json!({
        "job_id": id,
        "task": task,
        "state": "PENDING",
        "status_url": format!("/jobs/{id}"),
    }))
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = state.repo.get_job(&id).await?.ok_or_else(|| ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        message: format!("job {id:?} not found"),
    })?;
    Ok(Json(job_json(&job)))
}
