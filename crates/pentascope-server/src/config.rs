//! Service configuration, read once at start-up.

use std::path::PathBuf;

use pentascope_core::Limits;
use pentascope_store::pixels::Durability;

/// Everything the server needs to know, with documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Interface to listen on (default `127.0.0.1`).
    pub host: String,
    /// Port (default 5000; 0 picks a free one).
    pub port: u16,
    /// Where the database, pixels and upload spool live (default `./data`).
    pub data_dir: PathBuf,
    /// Decoder limits (pixel budget, pages, chunk size).
    pub limits: Limits,
    /// Largest upload body accepted, in bytes (default 64 GiB).
    pub max_upload_bytes: u64,
    /// Most PCA score values returned inline in `pca_result` (default
    /// 1,000,000); larger results are only stored as the derived image.
    pub inline_scores_cap: u64,
    /// When pixels are flushed to disk (default: before publishing).
    pub durability: Durability,
    /// The metadata database (`sqlite://…` or `postgres://…`); default: SQLite
    /// in the data directory.
    pub database_url: Option<String>,
    /// Where pixels live: a local directory or `s3://bucket/prefix`;
    /// default: `images/` in the data directory.
    pub storage_url: Option<String>,
    /// In-process job runners (0: this process runs no background job).
    /// Ignored when a Celery broker is configured: workers run the jobs.
    pub job_runners: usize,
    /// Bytes of rendered slices kept in memory (default 256 MiB).
    pub slice_cache_bytes: usize,
    /// Celery broker and result backend (`redis://…`), when jobs go to
    /// `pentascope worker` processes instead of in-process runners.
    pub celery: Option<CeleryConfig>,
}

/// Where Celery-compatible jobs go.
#[derive(Debug, Clone)]
pub struct CeleryConfig {
    /// `CELERY_BROKER_URL`.
    pub broker_url: String,
    /// `CELERY_RESULT_BACKEND` (default: the broker).
    pub result_backend: String,
    /// Queue name (default `celery`, Celery's default).
    pub queue: String,
    /// Seconds before an unacknowledged task is redelivered.
    pub visibility_timeout: u64,
}

impl Config {
    /// Defaults with the given data directory.
    pub fn with_data_dir(data_dir: PathBuf) -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: 5000,
            data_dir,
            limits: Limits::default(),
            max_upload_bytes: 64 << 30,
            inline_scores_cap: 1_000_000,
            durability: Durability::Sync,
            database_url: None,
            job_runners: 1,
            storage_url: None,
            celery: None,
            slice_cache_bytes: 256 << 20,
        }
    }

    /// The pixel store URL in effect.
    pub fn storage_url(&self) -> String {
        self.storage_url
            .clone()
            .unwrap_or_else(|| self.data_dir.join("images").display().to_string())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("pentascope.sqlite").display()
            )
        })
    }
}
