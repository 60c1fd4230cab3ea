//! What every handler shares: the configuration and the two stores.

use std::path::PathBuf;
use std::sync::Arc;

use pentascope_store::db::MetadataRepo;
use pentascope_store::pixels::{open_store, PixelStore};
use pentascope_store::ImageRecord;

use crate::cache::Caches;
use crate::config::Config;
use crate::error::ApiError;
use pentascope_jobs::celery::CeleryBroker;
use pentascope_jobs::tasks::TaskContext;

/// Shared, cheaply cloned state.
#[derive(Clone)]
pub struct AppState {
    /// Configuration.
    pub config: Arc<Config>,
    /// Image records.
    pub repo: Arc<dyn MetadataRepo>,
    /// Pixels.
    pub pixels: Arc<dyn PixelStore>,
    /// Where uploads are spooled while they arrive.
    pub spool: PathBuf,
    /// Wakes the in-process job runners when a job is submitted.
    pub jobs_waiting: Arc<tokio::sync::Notify>,
    /// The Celery broker jobs are sent to, when configured.
    pub broker: Option<CeleryBroker>,
    /// Open readers and rendered slices.
    pub caches: Arc<Caches>,
}

impl AppState {
    /// Opens the embedded database and the local pixel store under the data
    /// directory, creating them as needed.
    pub async fn open(config: Config) -> Result<AppState, ApiError> {
        let dir = &config.data_dir;
        let spool = dir.join("spool");
        for d in [dir.clone(), spool.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| {
                ApiError::internal(format!("cannot create data directory {}: {e}", d.display()))
            })?;
        }
        let repo = pentascope_store::db::connect(&config.database_url()).await?;
        let pixels = open_store(&config.storage_url(), config.durability)?;
        let broker = config
            .celery
            .as_ref()
            .map(|c| {
                let mut b = CeleryBroker::new(&c.broker_url, &c.result_backend, &c.queue)?;
                b.visibility_timeout = c.visibility_timeout;
                Ok::<_, pentascope_jobs::celery::CeleryError>(b)
            })
            .transpose()
            .map_err(|e| ApiError::internal(format!("invalid Celery broker: {e}")))?;
        Ok(AppState {
            caches: Arc::new(Caches::new(config.slice_cache_bytes)),
            config: Arc::new(config),
            repo,
            pixels,
            spool,
            jobs_waiting: Arc::new(tokio::sync::Notify::new()),
            broker,
        })
    }

    /// Cleans what a crash may have left: ids reserved for images that were
    /// never published, their staged pixels, spooled uploads.
    /// Only the embedded database is this process's alone: with a shared
    /// database, unfinished work may belong to another live process, and
    /// leases (jobs) take care of processes that died.
    pub async fn recover(&self) -> Result<(), ApiError> {
        if self.repo.backend() != "sqlite" {
            return Ok(());
        }
        // a job this process had started was interrupted by its restart
        let resumed = self.repo.release_started_jobs().await?;
        if resumed > 0 {
            tracing::warn!(resumed, "resuming jobs interrupted by the restart");
        }
        for id in self.repo.pending().await? {
            tracing::warn!(%id, "discarding an image whose ingest did not finish");
            self.repo.discard(id).await?;
        }
        self.pixels.clear_staging()?;
        if let Ok(entries) = std::fs::read_dir(&self.spool) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// What background tasks need.
    pub fn task_context(&self) -> TaskContext {
        TaskContext {
            repo: self.repo.clone(),
            pixels: self.pixels.clone(),
            inline_scores_cap: self.config.inline_scores_cap,
        }
    }

    /// A published image's record, or 404.
    pub async fn record(&self, id: &str) -> Result<ImageRecord, ApiError> {
        Ok(pentascope_store::ops::find_image(&*self.repo, id).await?)
    }
}

/// Runs CPU-bound work on the blocking pool, keeping the tracing span.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| ApiError::internal(format!("worker task failed: {e}")))?
}
