//! The transport of split jobs (`pentascope_app::split`) on the Celery
//! broker: the worker that receives a splittable task sends one
//! [`PART_TASK`] message per part through the same queue and returns; each
//! part's worker stores its partial result in Redis and adds its part to
//! the pass's done set; the worker whose addition completes the set (one
//! `SADD` + `SCARD` transaction, so exactly one) merges, then either sends
//! the next pass or writes the job's result under the original task id,
//! where `AsyncResult.get()` finds it.
//!
//! Passes are numbered (`INCR`), and a part message names its pass: parts
//! of a pass that was replaced (a redelivered split) or of a job that
//! failed find no matching state and are dropped. A redelivered part
//! recomputes the same bytes, and its done-set addition changes nothing.

use std::sync::Arc;

use redis::AsyncCommands;
use serde_json::{json, Value};

use pentascope_app::split::{Merged, Split};
use pentascope_app::trace::TRACE_KWARG;
use pentascope_app::{App, AppError};

use crate::celery::{CeleryBroker, CeleryError, Delivery};
use crate::LEASE_SECS;

/// The task name of one part of a split job (not a task clients send).
pub const PART_TASK: &str = "pentascope.part";

/// The key of a split job's current state.
fn state_key(job: &str) -> String {
    format!("pentascope-split-{job}")
}

/// The key of a pass's partial results (part index → bytes).
fn partials_key(job: &str, pass: u64) -> String {
    format!("pentascope-split-{job}-{pass}-partials")
}

/// The key of a pass's finished parts.
fn done_key(job: &str, pass: u64) -> String {
    format!("pentascope-split-{job}-{pass}-done")
}

/// The key of a job's pass counter.
fn pass_key(job: &str) -> String {
    format!("pentascope-split-{job}-pass")
}

impl CeleryBroker {
    /// Sends the parts of `split`'s pass as tasks, under a new pass number.
    pub(crate) async fn fan_out(&self, job: &str, split: &Split) -> Result<(), CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let pass: u64 = c.incr(pass_key(job), 1).await?;
        let state = json!({"pass": pass, "split": split}).to_string();
        let expires = self.result_expires;
        let _: () = redis::pipe()
            .atomic()
            .set_ex(state_key(job), state, expires)
            .expire(pass_key(job), expires as i64)
            .del(partials_key(job, pass))
            .del(done_key(job, pass))
            .query_async(&mut c)
            .await?;
        for part in 0..split.parts {
            let mut kwargs = json!({"job": job, "pass": pass, "part": part});
            if let Some(trace) = split.kwargs.get(TRACE_KWARG) {
                kwargs[TRACE_KWARG] = trace.clone();
            }
            self.send(&format!("{job}-{pass}-{part}"), PART_TASK, &kwargs)
                .await?;
        }
        tracing::info!(job, pass, parts = split.parts, "split into parts");
        Ok(())
    }

    /// Runs one part; merges if it was the pass's last.
    pub(crate) async fn handle_part(&self, app: &Arc<App>, d: &Delivery) {
        let (Some(job), Some(pass), Some(part)) = (
            d.kwargs["job"].as_str(),
            d.kwargs["pass"].as_u64(),
            d.kwargs["part"].as_u64(),
        ) else {
            tracing::error!(task = %d.id, "a part message without job, pass and part: dropped");
            let _ = self.ack(d).await;
            return;
        };
        match self.run_part(app, job, pass, part as usize).await {
            Ok(()) => {}
            Err(PartError::Job(e)) => self.fail(app, job, &e).await,
            Err(PartError::Broker(e)) => {
                // leave it unacknowledged: redelivered after the visibility
                // timeout, when Redis may answer again
                tracing::warn!(job, part, "cannot run a part: {e}");
                return;
            }
        }
        if let Err(e) = self.ack(d).await {
            tracing::warn!(task = %d.id, "cannot acknowledge the part: {e}");
        }
    }

    /// The current state of a split job, if `pass` is its current pass.
    async fn current(&self, job: &str, pass: u64) -> Result<Option<Split>, CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let state: Option<String> = c.get(state_key(job)).await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let state: Value =
            serde_json::from_str(&state).map_err(|e| CeleryError::Message(e.to_string()))?;
        if state["pass"].as_u64() != Some(pass) {
            return Ok(None);
        }
        serde_json::from_value(state["split"].clone())
            .map(Some)
            .map_err(|e| CeleryError::Message(e.to_string()))
    }

    async fn run_part(
        &self,
        app: &Arc<App>,
        job: &str,
        pass: u64,
        part: usize,
    ) -> Result<(), PartError> {
        let Some(split) = self.current(job, pass).await? else {
            tracing::info!(
                job,
                pass,
                part,
                "a part of a replaced or failed split: dropped"
            );
            return Ok(());
        };
        let partial = app.run_part(&split, part).await?;
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let expires = self.result_expires as i64;
        let (added, done): (i64, usize) = redis::pipe()
            .atomic()
            .hset(partials_key(job, pass), part, partial)
            .ignore()
            .expire(partials_key(job, pass), expires)
            .ignore()
            .sadd(done_key(job, pass), part)
            .scard(done_key(job, pass))
            .expire(done_key(job, pass), expires)
            .ignore()
            .query_async(&mut c)
            .await?;
        tracing::info!(job, pass, part, "part done");
        // a database commit per part would cost more than a small part's
        // work; a twentieth of a pass is step enough for a progress bar
        let steps = |n: usize| n * 20 / split.parts.max(1);
        if steps(done) != steps(done.saturating_sub(1)) {
            let progress = split.progress(done);
            if let Err(e) = app.jobs.job_progress(job, progress, LEASE_SECS).await {
                tracing::warn!(job, "cannot record the job's progress: {e}");
            }
        }
        if added == 0 || done != split.parts {
            return Ok(());
        }
        let mut stored: std::collections::HashMap<usize, Vec<u8>> =
            c.hgetall(partials_key(job, pass)).await?;
        let partials = (0..split.parts)
            .map(|i| {
                stored.remove(&i).ok_or_else(|| {
                    CeleryError::Message(format!("partial result {i} of {job} is missing"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let merged = app.merge_parts(&split, partials).await?;
        let _: () = redis::pipe()
            .del(partials_key(job, pass))
            .del(done_key(job, pass))
            .query_async(&mut c)
            .await?;
        match merged {
            Merged::Next(next) => self.fan_out(job, &next).await?,
            Merged::Done(result) => {
                self.forget(job).await?;
                if let Err(e) = app.jobs.finish_job(job, Ok(&result)).await {
                    tracing::error!(job, "cannot record the job's outcome: {e}");
                }
                self.store_result(job, "SUCCESS", result, None).await?;
                tracing::info!(job, "split job succeeded");
            }
        }
        Ok(())
    }

    /// Fails a split job: its remaining parts find no state and stop.
    pub(crate) async fn fail(&self, app: &App, job: &str, e: &AppError) {
        tracing::warn!(job, "split job failed: {e}");
        if let Err(e) = self.forget(job).await {
            tracing::warn!(job, "cannot remove the split's state: {e}");
        }
        let message = (app.config.describe_error)(e);
        if let Err(e) = app.jobs.finish_job(job, Err(&message)).await {
            tracing::error!(job, "cannot record the job's failure: {e}");
        }
        if let Err(e) = self.store_failure(job, e, &message).await {
            tracing::error!(job, "cannot store the task's result: {e}");
        }
    }

    async fn forget(&self, job: &str) -> Result<(), CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let _: () = c.del(state_key(job)).await?;
        Ok(())
    }
}

/// Why a part did not complete: the job's fault (it fails) or the
/// broker's (the part is retried).
enum PartError {
    Job(AppError),
    Broker(CeleryError),
}

impl From<AppError> for PartError {
    fn from(e: AppError) -> Self {
        PartError::Job(e)
    }
}

impl From<CeleryError> for PartError {
    fn from(e: CeleryError) -> Self {
        PartError::Broker(e)
    }
}

impl From<redis::RedisError> for PartError {
    fn from(e: redis::RedisError) -> Self {
        PartError::Broker(e.into())
    }
}
