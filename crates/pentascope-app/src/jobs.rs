//! Background jobs: the [`Job`] trait (a typed argument struct per task),
//! the one registry of tasks ([`run_task`]), and submission to a
//! [`JobQueue`]. A job is always a row in the database, however it is run:
//! by this process's runners ([`InProcessQueue`]) or by Celery-compatible
//! workers (the Redis queue of `pentascope-jobs`).

use std::sync::Arc;

use async_trait::async_trait;
use pentascope_store::records::JobRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::analyze::PcaArgs;
use crate::app::App;
use crate::error::AppError;
use crate::Progress;

/// A task that can run in the background, named as clients send it
/// (`app.send_task("heavy_pca", kwargs=…)`), with its keyword arguments as
/// one typed struct.
#[async_trait]
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The task name.
    const NAME: &'static str;
    /// Runs the task; `progress` is told the fraction done.
    async fn run(self, app: &Arc<App>, progress: Progress) -> Result<Value, AppError>;
    /// Checks what can be checked before the job is queued, so that a bad
    /// request is refused at once rather than failing later.
    async fn check(&self, app: &App) -> Result<(), AppError>;
}

/// `heavy_pca(image_id, n_components)`: PCA with its scores image.
#[async_trait]
impl Job for PcaArgs {
    const NAME: &'static str = "heavy_pca";

    async fn run(self, app: &Arc<App>, progress: Progress) -> Result<Value, AppError> {
        let result = app.analyze(&self, progress).await?;
        // through text, so that f32 scores keep their shortest form, as in
        // the synchronous answer
        serde_json::to_string(&result)
            .and_then(|text| serde_json::from_str(&text))
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    async fn check(&self, app: &App) -> Result<(), AppError> {
        app.pca_source(self).await.map(|_| ())
    }
}

/// Every task name, as workers announce them.
pub const TASK_NAMES: &[&str] = &[PcaArgs::NAME];

/// Runs task `name` with keyword arguments `kwargs` (parsed into the
/// task's argument struct). The one place tasks are looked up by name.
pub async fn run_task(
    app: &Arc<App>,
    name: &str,
    kwargs: &Value,
    progress: Progress,
) -> Result<Value, AppError> {
    match name {
        PcaArgs::NAME => parse::<PcaArgs>(kwargs)?.run(app, progress).await,
        other => Err(AppError::UnknownTask {
            name: other.to_string(),
            known: TASK_NAMES.join(", "),
        }),
    }
}

/// A task's arguments from keyword arguments, with a message naming the task.
pub fn parse<J: Job>(kwargs: &Value) -> Result<J, AppError> {
    J::deserialize(kwargs)
        .map_err(|e| AppError::InvalidArguments(format!("invalid arguments for {}: {e}", J::NAME)))
}

/// Where submitted jobs go.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Hands a recorded job to whoever runs jobs.
    async fn send(&self, job: &JobRecord) -> Result<(), AppError>;
    /// Whether the queue answers; `None` when there is nothing to ask
    /// (in-process runners).
    async fn ping(&self) -> Option<Result<(), String>>;
    /// The queue's backend, for `/health`.
    fn backend(&self) -> &'static str;
}

/// Jobs run by this process's runners, which are woken on submission (and
/// poll the database for jobs submitted elsewhere).
#[derive(Debug, Default)]
pub struct InProcessQueue {
    /// Notified on every submission.
    pub submitted: Notify,
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn send(&self, _: &JobRecord) -> Result<(), AppError> {
        self.submitted.notify_one();
        Ok(())
    }

    async fn ping(&self) -> Option<Result<(), String>> {
        None
    }

    fn backend(&self) -> &'static str {
        "in-process"
    }
}

impl App {
    /// Checks a job's arguments, records it as `PENDING` and queues it.
    pub async fn submit<J: Job>(&self, args: J) -> Result<JobRecord, AppError> {
        args.check(self).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let kwargs = serde_json::to_value(&args).map_err(|e| AppError::Internal(e.to_string()))?;
        self.jobs.create_job(&id, J::NAME, &kwargs).await?;
        let job = self.job(&id).await?;
        self.queue.send(&job).await?;
        Ok(job)
    }

    /// A job by id.
    pub async fn job(&self, id: &str) -> Result<JobRecord, AppError> {
        self.jobs
            .get_job(id)
            .await?
            .ok_or_else(|| AppError::JobNotFound(id.to_string()))
    }
}
