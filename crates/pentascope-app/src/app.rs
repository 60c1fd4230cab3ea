//! The configuration and the stores, opened once per process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use pentascope_passes::cancel::Cancel;
use pentascope_store::pixels::{open_store, PixelStore};
use pentascope_store::record::now_rfc3339;
use pentascope_store::records::{AccessRepo, AuditRepo, CatalogueRepo, ImageRepo, JobRepo};
use pentascope_store::ImageId;
use serde::Serialize;

use crate::cache::Caches;
use crate::config::Config;
use crate::error::AppError;
use crate::jobs::JobQueue;

/// What every use case works with: the configuration, image and job
/// records, pixels, the job queue and the slice caches.
pub struct App {
    /// Configuration.
    pub config: Config,
    /// Image records.
    pub images: Arc<dyn ImageRepo>,
    /// Job records.
    pub jobs: Arc<dyn JobRepo>,
    /// Users, keys, visibility.
    pub access: Arc<dyn AccessRepo>,
    /// Names, tags, annotations, datasets, search.
    pub catalogue: Arc<dyn CatalogueRepo>,
    /// Who did what, when, from where.
    pub audit: Arc<dyn AuditRepo>,
    /// The key that signs links, when not configured: read from (or
    /// stored into) the database once.
    pub(crate) link_key: tokio::sync::OnceCell<String>,
    /// Pixels.
    pub pixels: Arc<dyn PixelStore>,
    /// Where submitted jobs go.
    pub queue: Arc<dyn JobQueue>,
    pub(crate) caches: Arc<Caches>,
    /// MiB of plane data slice requests may hold at once.
    pub(crate) slice_memory: Arc<tokio::sync::Semaphore>,
    /// Renderings that may run at once.
    pub(crate) render_slots: Arc<tokio::sync::Semaphore>,
    /// How many: `render_slots`' permits when none is taken.
    render_slot_count: usize,
    /// Cores this process may run on.
    cores: usize,
    /// The threads renderings run on, one per slot: few, and each reused,
    /// so that the allocator pages and plane buffers they keep are few. On
    /// tokio's blocking pool, which grows with every burst, 32 clients had
    /// spread tile renderings over ten threads, each keeping its own pages.
    render_threads: Arc<rayon::ThreadPool>,
    /// The passes reading each image, cancelled when it is deleted.
    readers: Mutex<HashMap<ImageId, Vec<Cancel>>>,
    /// The resumable uploads this process has opened.
    pub(crate) uploads: crate::resumable::Uploads,
}

/// Registers a pass reading an image until dropped.
pub(crate) struct Reading<'a> {
    app: &'a App,
    id: ImageId,
    cancel: Cancel,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut readers = lock(&self.app.readers);
        if let Some(list) = readers.get_mut(&self.id) {
            list.retain(|c| !c.same_as(&self.cancel));
            if list.is_empty() {
                readers.remove(&self.id);
            }
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // the map stays consistent whatever panicked while it was held
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Each dependency's state, for `/health`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Whether every dependency answers.
    pub ok: bool,
    /// The metadata database.
    pub database: DependencyHealth,
    /// The pixel store.
    pub storage: DependencyHealth,
    /// The job queue.
    pub broker: DependencyHealth,
}

/// One dependency's state.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DependencyHealth {
    /// `ok`, `unavailable` or `not configured`.
    #[schemars(extend("enum" = ["ok", "unavailable", "not configured"]))]
    pub status: &'static str,
    /// Which implementation, e.g. `sqlite`, `s3`, `redis`.
    #[schemars(extend("enum" = ["sqlite", "postgres", "local", "s3", "in-process", "redis"]))]
    pub backend: &'static str,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DependencyHealth {
    fn of(backend: &'static str, answer: Result<(), String>) -> DependencyHealth {
        match answer {
            Ok(()) => DependencyHealth {
                status: "ok",
                backend,
                error: None,
            },
            Err(e) => DependencyHealth {
                status: "unavailable",
                backend,
                error: Some(e),
            },
        }
    }
}

impl App {
    /// Opens (and migrates) the database and the pixel store that `config`
    /// names, creating the data directory as needed; jobs go to `queue`.
    /// Must be called within a Tokio runtime.
    pub async fn open(config: Config, queue: Arc<dyn JobQueue>) -> Result<App, AppError> {
        for dir in [config.data_dir.clone(), config.spool_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| {
                AppError::Internal(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let records = pentascope_store::records::connect(&config.database_url()).await?;
        // images published before the catalogue existed get their words
        let indexed = records.catalogue.index_unindexed().await?;
        if indexed > 0 {
            tracing::info!(indexed, "indexed images for search");
        }
        let pixels = open_store(&config.storage_url(), config.durability)?;
        let slice_memory_mib = config.slice_memory_bytes >> 20;
        let render_slots = config
            .render_concurrency
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let render_threads = rayon::ThreadPoolBuilder::new()
            .num_threads(render_slots.min(MAX_RENDER_THREADS))
            .thread_name(|i| format!("render-{i}"))
            .build()
            .map_err(|e| AppError::Internal(format!("cannot start the rendering threads: {e}")))?;
        Ok(App {
            render_threads: Arc::new(render_threads),
            caches: Arc::new(Caches::new(config.slice_cache_bytes)),
            config,
            images: records.images,
            jobs: records.jobs,
            access: records.access,
            catalogue: records.catalogue,
            audit: records.audit,
            link_key: tokio::sync::OnceCell::new(),
            pixels,
            queue,
            readers: Mutex::new(HashMap::new()),
            uploads: crate::resumable::Uploads::default(),
            slice_memory: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(slice_memory_mib).unwrap_or(usize::MAX),
            )),
            render_slots: Arc::new(tokio::sync::Semaphore::new(render_slots)),
            render_slot_count: render_slots,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// Threads a rendering that holds a slot may spread its encoding over:
    /// the cores no other rendering is using. 1 on a busy server, where
    /// splitting one rendering's work would only add to the total.
    pub(crate) fn render_spread(&self) -> usize {
        // the caller's own slot is among those taken
        let others = self
            .render_slot_count
            .saturating_sub(self.render_slots.available_permits())
            .saturating_sub(1);
        self.cores.saturating_sub(others).max(1)
    }

    /// Runs `work` as a task of its own, so that it finishes or cleans up
    /// after itself even when the caller stops waiting (an HTTP client that
    /// leaves drops the request's future): dropping the returned future
    /// cancels `cancel`, which `work` observes.
    pub(crate) async fn detached<T: Send + 'static>(
        cancel: &Cancel,
        work: impl Future<Output = Result<T, AppError>> + Send + 'static,
    ) -> Result<T, AppError> {
        let guard = cancel.on_drop();
        let outcome = tokio::spawn(work)
            .await
            .map_err(|e| AppError::Internal(format!("background task failed: {e}")))?;
        guard.disarm();
        outcome
    }

    /// Registers `cancel` as a pass reading image `id` until the returned
    /// guard is dropped: deleting the image cancels it.
    pub(crate) fn reading(&self, id: ImageId, cancel: &Cancel) -> Reading<'_> {
        lock(&self.readers)
            .entry(id)
            .or_default()
            .push(cancel.clone());
        Reading {
            app: self,
            id,
            cancel: cancel.clone(),
        }
    }

    /// Cancels every pass reading image `id`.
    pub(crate) fn cancel_readers(&self, id: ImageId) {
        if let Some(list) = lock(&self.readers).remove(&id) {
            for cancel in list {
                cancel.cancel();
            }
        }
    }

    /// Cleans what a crash may have left: ids reserved for images that were
    /// never published, their staged pixels, spooled uploads, jobs marked
    /// started. Only the embedded database is this process's alone: with a
    /// shared database, unfinished work may belong to another live process,
    /// and leases (jobs) take care of processes that died.
    pub async fn recover(&self) -> Result<(), AppError> {
        if !self.images.embedded() {
            return Ok(());
        }
        let resumed = self.jobs.release_started_jobs().await?;
        if resumed > 0 {
            tracing::warn!(resumed, "resuming jobs interrupted by the restart");
        }
        for id in self.images.pending(&now_rfc3339()).await? {
            tracing::warn!(%id, "discarding an image whose ingest did not finish");
            self.images.discard(id).await?;
        }
        self.pixels.clear_staging()?;
        if let Ok(entries) = std::fs::read_dir(self.config.spool_dir()) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Removes what processes that died mid-ingest left in a shared
    /// database and pixel store: ids reserved longer ago than `max_age` and
    /// never published, with their pixels. Returns how many.
    pub async fn sweep(&self, max_age: std::time::Duration) -> Result<usize, AppError> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(max_age)
            .unwrap_or(std::time::UNIX_EPOCH);
        let cutoff = humantime::format_rfc3339_millis(cutoff).to_string();
        let stale = self.images.pending(&cutoff).await?;
        for &id in &stale {
            tracing::warn!(%id, "removing an upload abandoned by a process that stopped");
            let pixels = self.pixels.clone();
            blocking(move || Ok(pixels.delete(id)?)).await?;
            self.images.discard(id).await?;
        }
        Ok(stale.len())
    }

    /// Whether the database, the pixel store and the job queue answer.
    pub async fn health(&self) -> Health {
        let database = DependencyHealth::of(
            self.images.backend(),
            self.images.ping().await.map_err(|e| e.to_string()),
        );
        let pixels = self.pixels.clone();
        let storage = DependencyHealth::of(
            self.pixels.backend(),
            blocking(move || Ok(pixels.ping()?))
                .await
                .map_err(|e| e.to_string()),
        );
        let broker = match self.queue.ping().await {
            None => DependencyHealth {
                status: "not configured",
                backend: self.queue.backend(),
                error: None,
            },
            Some(answer) => DependencyHealth::of(self.queue.backend(), answer),
        };
        Health {
            ok: database.status == "ok" && storage.status == "ok" && broker.status != "unavailable",
            database,
            storage,
            broker,
        }
    }
}

impl App {
    /// Runs a rendering (which holds a rendering slot) on the rendering
    /// threads, keeping the tracing span. A panic fails the request rather
    /// than the thread.
    pub(crate) async fn on_render_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let span = tracing::Span::current();
        let (sender, answer) = tokio::sync::oneshot::channel();
        self.render_threads.spawn(move || {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| span.in_scope(f)));
            // the request may have gone; its rendering is then simply dropped
            let _ = sender.send(result);
        });
        match answer.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("a panic");
                tracing::error!(panic = what, "a rendering failed");
                Err(AppError::Internal(
                    "the rendering failed unexpectedly".into(),
                ))
            }
            Err(_) => Err(AppError::Internal("the rendering threads stopped".into())),
        }
    }
}

/// Most rendering threads, whatever the concurrency: slots beyond this
/// many (for a store whose reads wait on the network) queue for a thread
/// rather than start one each.
const MAX_RENDER_THREADS: usize = 256;

/// Runs CPU-bound or blocking work on the blocking pool, keeping the
/// tracing span.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| AppError::Internal(format!("background task failed: {e}")))?
}
