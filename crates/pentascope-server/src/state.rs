//! What every handler shares: the configuration and the two stores.

use std::path::PathBuf;
use std::sync::Arc;

use pentascope_store::db::MetadataRepo;
use pentascope_store::pixels::{PixelStore, ZarrStore};
use pentascope_store::ImageRecord;

use crate::config::Config;
use crate::error::ApiError;

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
        let pixels = ZarrStore::new(&dir.join("images"), config.durability)?;
        Ok(AppState {
            config: Arc::new(config),
            repo,
            pixels: Arc::new(pixels),
            spool,
            jobs_waiting: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Cleans what a crash may have left: ids reserved for images that were
    /// never published, their staged pixels, spooled uploads.
    pub async fn recover(&self) -> Result<(), ApiError> {
        if self.repo.backend() == "sqlite" {
            // only this process uses the embedded database: a job it had
            // started was interrupted by its restart and is resumed now
            let resumed = self.repo.release_started_jobs().await?;
            if resumed > 0 {
                tracing::warn!(resumed, "resuming jobs interrupted by the restart");
            }
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
