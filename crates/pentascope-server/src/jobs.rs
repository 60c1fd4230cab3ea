//! Background jobs in this process: submission, the runners that claim jobs
//! from the database, and `GET /jobs/{id}`.
//!
//! Jobs are rows in the database, so they survive a restart: a runner holds
//! a lease on the job it runs and renews it while it works; a job whose
//! runner died is claimed again when its lease runs out (or at start-up for
//! the embedded database, which only this process uses), and fails for good
//! after [`MAX_ATTEMPTS`] interrupted runs. No job stays `STARTED` forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use pentascope_store::jobs::JobRecord;
use pentascope_store::ops::{find_image, run_pca};
use pentascope_store::StoreError;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// Seconds a runner's claim on a job lasts without renewal.
pub const LEASE_SECS: i64 = 30;
/// Runs after which an interrupted job is failed instead of retried.
pub const MAX_ATTEMPTS: i64 = 3;

/// Records a job and wakes a runner; the `202` document for the client.
pub async fn submit(state: &AppState, task: &str, kwargs: Value) -> Result<Value, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    state.repo.create_job(&id, task, &kwargs).await?;
    state.jobs_waiting.notify_one();
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

/// Starts `n` runners that claim and run jobs until the process ends.
pub fn spawn_runners(state: &AppState, n: usize) {
    for _ in 0..n {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                match state.repo.claim_job(LEASE_SECS).await {
                    Ok(Some(job)) => run(&state, job).await,
                    Ok(None) => {
                        // jobs submitted through another process are found by polling
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            state.jobs_waiting.notified(),
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::warn!("cannot claim jobs: {e}");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
    }
}

/// Runs one claimed job, renewing its lease with its progress, and records
/// the outcome.
async fn run(state: &AppState, job: JobRecord) {
    let id = job.id.clone();
    if job.attempts > MAX_ATTEMPTS {
        let error = format!(
            "the job was interrupted {} times (its worker stopped); giving up",
            job.attempts - 1
        );
        let _ = state.repo.finish_job(&id, Err(&error)).await;
        return;
    }
    tracing::info!(job = %id, task = %job.task, attempt = job.attempts, "job started");
    let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
    let heartbeat = {
        let (repo, id, progress) = (state.repo.clone(), id.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs((LEASE_SECS / 3) as u64)).await;
                let p = f64::from_bits(progress.load(Ordering::Relaxed));
                if let Err(e) = repo.job_progress(&id, p, LEASE_SECS).await {
                    tracing::warn!(job = %id, "cannot renew the job's lease: {e}");
                }
            }
        })
    };
    let outcome = execute(state, &job, progress).await;
    heartbeat.abort();
    let recorded = match &outcome {
        Ok(result) => state.repo.finish_job(&id, Ok(result)).await,
        Err(e) => state.repo.finish_job(&id, Err(&e.to_string())).await,
    };
    if let Err(e) = recorded {
        tracing::error!(job = %id, "cannot record the job's outcome: {e}");
    }
    match outcome {
        Ok(_) => tracing::info!(job = %id, "job succeeded"),
        Err(e) => tracing::warn!(job = %id, "job failed: {e}"),
    }
}

/// The task behind a job name.
async fn execute(
    state: &AppState,
    job: &JobRecord,
    progress: Arc<AtomicU64>,
) -> Result<Value, StoreError> {
    match job.task.as_str() {
        "heavy_pca" => {
            let image_id = job.kwargs["image_id"].as_str().unwrap_or_default();
            let components = job.kwargs["n_components"].as_u64().unwrap_or(2);
            let source = find_image(&*state.repo, image_id).await?;
            run_pca(
                &*state.repo,
                state.pixels.clone(),
                &source,
                components,
                state.config.inline_scores_cap,
                Arc::new(move |p| progress.store(p.to_bits(), Ordering::Relaxed)),
            )
            .await
        }
        other => Err(StoreError::Corrupt(format!("unknown task {other:?}"))),
    }
}
