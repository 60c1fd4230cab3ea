//! The tasks a job can run, by name.

use std::sync::Arc;

use pentascope_store::db::MetadataRepo;
use pentascope_store::ops::{find_image, run_pca};
use pentascope_store::pixels::PixelStore;
use pentascope_store::StoreError;
use serde_json::Value;

/// Task names, as clients send them (`app.send_task("heavy_pca", …)`).
pub const TASK_NAMES: &[&str] = &["heavy_pca"];

/// What tasks need: the stores and the limits.
#[derive(Clone)]
pub struct TaskContext {
    /// Image and job records.
    pub repo: Arc<dyn MetadataRepo>,
    /// Pixels.
    pub pixels: Arc<dyn PixelStore>,
    /// Most PCA score values returned inline.
    pub inline_scores_cap: u64,
}

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No task of that name.
    #[error("unknown task {0:?}; known tasks: heavy_pca")]
    UnknownTask(String),
    /// Arguments missing or of the wrong type.
    #[error("{0}")]
    InvalidArguments(String),
    /// The work itself failed (unknown image, invalid request, storage).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its workers kept stopping before it finished.
    #[error("the job was interrupted {0} times (its worker stopped); giving up")]
    Interrupted(i64),
}

impl TaskError {
    /// The Python exception class a Celery client re-raises (`builtins`).
    pub fn python_type(&self) -> &'static str {
        match self {
            TaskError::UnknownTask(_) => "NotImplementedError",
            TaskError::InvalidArguments(_) => "TypeError",
            TaskError::Store(StoreError::NotFound(_)) => "LookupError",
            TaskError::Store(StoreError::Core(_)) => "ValueError",
            TaskError::Store(_) | TaskError::Interrupted(_) => "RuntimeError",
        }
    }
}

/// Runs task `task` with keyword arguments `kwargs`; `progress` is told the
/// fraction done.
pub async fn execute(
    ctx: &TaskContext,
    task: &str,
    kwargs: &Value,
    progress: Arc<dyn Fn(f64) + Send + Sync>,
) -> Result<Value, TaskError> {
    match task {
        "heavy_pca" => {
            let image_id = kwargs
                .get("image_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TaskError::InvalidArguments(
                        "heavy_pca needs image_id (a string such as \"image_1\")".into(),
                    )
                })?;
            let components = match kwargs
                .get("n_components")
                .or_else(|| kwargs.get("components"))
            {
                None => 2,
                Some(v) => v.as_u64().ok_or_else(|| {
                    TaskError::InvalidArguments(format!(
                        "n_components must be a positive integer, got {v}"
                    ))
                })?,
            };
            let source = find_image(&*ctx.repo, image_id).await?;
            Ok(run_pca(
                &*ctx.repo,
                ctx.pixels.clone(),
                &source,
                components,
                ctx.inline_scores_cap,
                progress,
            )
            .await?)
        }
        other => Err(TaskError::UnknownTask(other.to_string())),
    }
}
