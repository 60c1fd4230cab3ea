//! In-process job runners (the embedded configuration): they claim job rows
//! from the database, hold a lease on the job they run and renew it with
//! their progress. A job whose runner died is claimed again when its lease
//! runs out (or at once after a restart of the embedded server, see
//! `release_started_jobs`), and fails for good after
//! [`MAX_ATTEMPTS`](crate::MAX_ATTEMPTS) interrupted runs: no job stays
//! `STARTED` forever, none is dropped.
//!
//! A job's log lines are in a `job` span holding its trace id: the trace of
//! the request that submitted it, so that one id finds both.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pentascope_app::jobs::{run_task, InProcessQueue};
use pentascope_app::trace::{TraceContext, TRACE_KWARG};
use pentascope_app::{App, AppError};
use pentascope_store::records::JobRecord;
use serde_json::Value;
use tracing::Instrument;

use crate::{LEASE_SECS, MAX_ATTEMPTS};

/// Starts `n` runners that claim and run jobs until the process ends.
/// `queue` wakes them when a job is submitted in this process; jobs
/// submitted elsewhere are found by polling every second.
pub fn spawn_runners(app: &Arc<App>, queue: &Arc<InProcessQueue>, n: usize) {
    for _ in 0..n {
        let (app, queue) = (app.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                match app.jobs.claim_job(LEASE_SECS).await {
                    Ok(Some(job)) => {
                        let span = job_span(&job.kwargs);
                        let _ = run_claimed(&app, job).instrument(span).await;
                    }
                    Ok(None) => {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            queue.submitted.notified(),
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

/// The span of a job's log lines, whose `trace_id` is that of the trace
/// context in the job's keyword arguments (a new trace when there is none:
/// a job sent by a Celery client without one).
pub fn job_span(kwargs: &Value) -> tracing::Span {
    let trace = kwargs
        .get(TRACE_KWARG)
        .and_then(Value::as_str)
        .and_then(TraceContext::parse)
        .unwrap_or_else(TraceContext::new_root);
    tracing::info_span!("job", trace_id = %trace.trace_id())
}

/// Runs a job this process has started (claimed), renewing its lease with
/// its progress, and records the outcome in its row. Returns the outcome.
pub async fn run_claimed(app: &Arc<App>, job: JobRecord) -> Result<serde_json::Value, AppError> {
    let id = job.id.clone();
    if job.attempts > MAX_ATTEMPTS {
        let error = AppError::Interrupted(job.attempts - 1);
        let message = (app.config.describe_error)(&error);
        if let Err(e) = app.jobs.finish_job(&id, Err(&message)).await {
            tracing::error!(job = %id, "cannot record the job's failure: {e}");
        }
        return Err(error);
    }
    tracing::info!(job = %id, task = %job.task, attempt = job.attempts, "job started");
    let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
    let heartbeat = {
        let (repo, id, progress) = (app.jobs.clone(), id.clone(), progress.clone());
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
    let report = progress.clone();
    let outcome = run_task(
        app,
        &job.task,
        &job.kwargs,
        Arc::new(move |p| report.store(p.to_bits(), Ordering::Relaxed)),
    )
    .await;
    heartbeat.abort();
    let recorded = match &outcome {
        Ok(result) => app.jobs.finish_job(&id, Ok(result)).await,
        Err(e) => {
            let message = (app.config.describe_error)(e);
            app.jobs.finish_job(&id, Err(&message)).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(job = %id, "cannot record the job's outcome: {e}");
    }
    match &outcome {
        Ok(_) => tracing::info!(job = %id, "job succeeded"),
        Err(e) => tracing::warn!(job = %id, "job failed: {e}"),
    }
    outcome
}
