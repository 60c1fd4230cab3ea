//! Service configuration, read once at start-up. [`defaults`] is the one
//! place every default lives: the command line shows them, [`Config::new`]
//! applies them.

use std::path::PathBuf;

use pentascope_core::Limits;

use crate::access::AuthMode;
use pentascope_store::pixels::{CompressionSetting, Durability};

/// Every default setting. Decoder limits default to [`Limits::default`],
/// durability to [`Durability::default`], compression to
/// [`CompressionSetting::default`].
pub mod defaults {
    /// Interface to listen on.
    pub const HOST: &str = "127.0.0.1";
    /// Port to listen on.
    pub const PORT: u16 = 5000;
    /// Where the embedded database, pixels and upload spool live.
    pub const DATA_DIR: &str = "./data";
    /// Largest upload body, in bytes (64 GiB).
    pub const MAX_UPLOAD_BYTES: u64 = 64 << 30;
    /// Most PCA score values returned inline by `/analyze`.
    pub const INLINE_SCORES: u64 = 1_000_000;
    /// Pixels per channel in one part of a split statistics or PCA pass
    /// (4 Mi: 8 MiB of 16-bit samples per channel).
    pub const PART_PIXELS: u64 = 1 << 22;
    /// Most objects returned inline by `/segment`.
    pub const INLINE_OBJECTS: u64 = 10_000;
    /// Most provisional labels (2D pieces of objects, over all planes) one
    /// segmentation may hand out: 2^24, about 1.5 GiB of bookkeeping.
    pub const MAX_LABELS: u32 = 1 << 24;
    /// Background jobs one process runs at once.
    pub const JOB_RUNNERS: usize = 1;
    /// MiB of rendered slices kept in memory: about ninety 1024² planes.
    /// Browsers keep what they saw (slices carry validators); a larger
    /// cache mostly churns pages under many viewers (peak RSS ~540 MiB at
    /// 256 MiB, ~260 MiB at 64, with 32 clients on uncached planes).
    pub const SLICE_CACHE_MIB: usize = 64;
    /// Celery's default queue name.
    pub const CELERY_QUEUE: &str = "celery";
    /// Seconds a task may stay unacknowledged before it is redelivered.
    pub const VISIBILITY_TIMEOUT_SECS: u64 = 3600;
    /// Connections served at once; more are closed on arrival.
    pub const MAX_CONNECTIONS: usize = 4096;
    /// Seconds a connection may take to send a request's headers (and may
    /// stay idle between requests).
    pub const HEADER_TIMEOUT_SECS: u64 = 10;
    /// Seconds a request other than an upload may take.
    pub const REQUEST_TIMEOUT_SECS: u64 = 600;
    /// Seconds an unfinished resumable upload is kept after its last
    /// byte arrived (and a finished one's answer after it was published).
    pub const UPLOAD_EXPIRY_SECS: u64 = 24 * 3600;
    /// Hours after which an upload that was never published is taken for
    /// abandoned by a process that stopped, and swept away.
    pub const STALE_UPLOAD_HOURS: u64 = 6;
    /// MiB of plane data that slice requests may hold at once (a slice
    /// holds about three times its plane); requests wait for their share.
    pub const SLICE_MEMORY_MIB: u64 = 768;

    /// Renderings (slices, tiles and regions, computed Zarr chunks, object
    /// tables) that run at once: twice the cores. They are bound by the
    /// processor on local storage, so more at once only hold more memory
    /// (each thread's allocator keeps its own pages); stores with a
    /// latency of their own (S3) want more.
    pub fn render_concurrency() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
    }
    /// Longest image or dataset name, in characters.
    pub const MAX_NAME_CHARS: usize = 1024;
    /// Longest description, in bytes.
    pub const MAX_DESCRIPTION_BYTES: usize = 64 << 10;
    /// Longest tag, in characters.
    pub const MAX_TAG_CHARS: usize = 128;
    /// Most tags on one image.
    pub const MAX_TAGS: usize = 256;
    /// Longest annotation key, in characters.
    pub const MAX_KEY_CHARS: usize = 256;
    /// Longest annotation value, in bytes.
    pub const MAX_VALUE_BYTES: usize = 4 << 10;
    /// Most annotations on one image.
    pub const MAX_ANNOTATIONS: usize = 1024;
    /// How long the audit trail keeps an action (a duration; 0: forever).
    pub const AUDIT_RETENTION: &str = "365days";
}

/// The database file in a data directory (SQLite), and in a backup.
pub const DATABASE: &str = "pentascope.sqlite";
/// The pixel directory in a data directory (local pixels), and in a backup.
pub const IMAGES: &str = "images";

/// Bounds on what a lab writes about its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueLimits {
    /// Longest image or dataset name, in characters.
    pub max_name_chars: usize,
    /// Longest description, in bytes.
    pub max_description_bytes: usize,
    /// Longest tag, in characters.
    pub max_tag_chars: usize,
    /// Most tags on one image.
    pub max_tags: usize,
    /// Longest annotation key, in characters.
    pub max_key_chars: usize,
    /// Longest annotation value, in bytes.
    pub max_value_bytes: usize,
    /// Most annotations on one image.
    pub max_annotations: usize,
}

impl Default for CatalogueLimits {
    fn default() -> CatalogueLimits {
        CatalogueLimits {
            max_name_chars: defaults::MAX_NAME_CHARS,
            max_description_bytes: defaults::MAX_DESCRIPTION_BYTES,
            max_tag_chars: defaults::MAX_TAG_CHARS,
            max_tags: defaults::MAX_TAGS,
            max_key_chars: defaults::MAX_KEY_CHARS,
            max_value_bytes: defaults::MAX_VALUE_BYTES,
            max_annotations: defaults::MAX_ANNOTATIONS,
        }
    }
}

/// Everything the service needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Interface to listen on.
    pub host: String,
    /// Port (0 picks a free one).
    pub port: u16,
    /// Where the database, pixels and upload spool live.
    pub data_dir: PathBuf,
    /// Decoder limits (pixel budget, pages, chunk size).
    pub limits: Limits,
    /// Bounds on names, descriptions, tags and annotations.
    pub catalogue: CatalogueLimits,
    /// Largest upload body accepted, in bytes.
    pub max_upload_bytes: u64,
    /// How long a resumable upload is kept after its last byte arrived.
    pub upload_expiry: std::time::Duration,
    /// Most PCA score values returned inline in `pca_result`; larger results
    /// are only stored as the derived image.
    pub inline_scores_cap: u64,
    /// Pixels per channel in one part of a statistics or PCA pass: the unit
    /// of work of this process's threads and, for `heavy_statistics` and
    /// `heavy_pca`, of the part tasks spread over workers.
    pub part_pixels: u64,
    /// Most objects returned inline by `/segment`; beyond, the labels image
    /// holds them.
    pub inline_objects_cap: u64,
    /// Most provisional labels one segmentation may hand out.
    pub max_labels: u32,
    /// When pixels are flushed to disk.
    pub durability: Durability,
    /// How new images' pixels are compressed.
    pub compression: CompressionSetting,
    /// The metadata database (`sqlite://…` or `postgres://…`); default: SQLite
    /// in the data directory.
    pub database_url: Option<String>,
    /// Where pixels live: a local directory or `s3://bucket/prefix`;
    /// default: `images/` in the data directory.
    pub storage_url: Option<String>,
    /// In-process job runners (0: this process runs no background job).
    /// Ignored when a Celery broker is configured: workers run the jobs.
    pub job_runners: usize,
    /// Bytes of rendered slices kept in memory.
    pub slice_cache_bytes: usize,
    /// Celery broker and result backend (`redis://…`), when jobs go to
    /// `pentascope worker` processes instead of in-process runners.
    pub celery: Option<CeleryConfig>,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a connection may take to send a request's headers.
    pub header_timeout: std::time::Duration,
    /// Time a request other than an upload may take.
    pub request_timeout: std::time::Duration,
    /// Bytes of plane data slice requests may hold at once.
    pub slice_memory_bytes: u64,
    /// Renderings that run at once; the others wait.
    pub render_concurrency: usize,
    /// Access control as set (`--auth`); `None`: off on a loopback
    /// address, required otherwise ([`Config::auth`]).
    pub auth_setting: Option<AuthMode>,
    /// The key that signs links (`PENTASCOPE_SECRET_KEY`); `None`: one is
    /// generated once and kept in the database.
    pub secret_key: Option<String>,
    /// Origins that browsers may call the API from (`*` for any).
    pub cors_origins: Vec<String>,
    /// The user that Celery tasks naming no owner act as; `None`: such
    /// tasks act unrestricted, as before access control.
    pub service_user: Option<String>,
    /// A second address (`HOST:PORT`) where `/metrics` alone is served
    /// without a key, for a scraper on a private network; a `worker`'s
    /// only HTTP listener.
    pub metrics_addr: Option<String>,
    /// How long the audit trail keeps an action (`None`: forever).
    pub audit_retention: Option<std::time::Duration>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the
    /// audit trail); from any other peer the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How a failed job's error is worded where it is recorded (the job
    /// row, a Celery result): the front door sets its own, which names the
    /// setting of a limit the job hit, since this layer knows no names.
    /// Default: the error's message.
    pub describe_error: fn(&crate::AppError) -> String,
}

/// Where Celery-compatible jobs go.
#[derive(Debug, Clone)]
pub struct CeleryConfig {
    /// `CELERY_BROKER_URL`.
    pub broker_url: String,
    /// `CELERY_RESULT_BACKEND` (default: the broker).
    pub result_backend: String,
    /// Queue name.
    pub queue: String,
    /// Seconds before an unacknowledged task is redelivered.
    pub visibility_timeout: u64,
}

impl Config {
    /// The defaults, with the data directory `data_dir`.
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            host: defaults::HOST.into(),
            port: defaults::PORT,
            data_dir,
            limits: Limits::default(),
            catalogue: CatalogueLimits::default(),
            max_upload_bytes: defaults::MAX_UPLOAD_BYTES,
            upload_expiry: std::time::Duration::from_secs(defaults::UPLOAD_EXPIRY_SECS),
            inline_scores_cap: defaults::INLINE_SCORES,
            part_pixels: defaults::PART_PIXELS,
            inline_objects_cap: defaults::INLINE_OBJECTS,
            max_labels: defaults::MAX_LABELS,
            durability: Durability::default(),
            compression: CompressionSetting::default(),
            database_url: None,
            job_runners: defaults::JOB_RUNNERS,
            storage_url: None,
            celery: None,
            slice_cache_bytes: defaults::SLICE_CACHE_MIB << 20,
            max_connections: defaults::MAX_CONNECTIONS,
            header_timeout: std::time::Duration::from_secs(defaults::HEADER_TIMEOUT_SECS),
            request_timeout: std::time::Duration::from_secs(defaults::REQUEST_TIMEOUT_SECS),
            slice_memory_bytes: defaults::SLICE_MEMORY_MIB << 20,
            render_concurrency: defaults::render_concurrency(),
            auth_setting: None,
            secret_key: None,
            cors_origins: Vec::new(),
            service_user: None,
            metrics_addr: None,
            audit_retention: humantime::parse_duration(defaults::AUDIT_RETENTION).ok(),
            trusted_proxies: Vec::new(),
            describe_error: |e| e.to_string(),
        }
    }

    /// Whether the configured host is a loopback address.
    pub fn listens_on_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Access control in effect.
    pub fn auth(&self) -> AuthMode {
        self.auth_setting.unwrap_or(if self.listens_on_loopback() {
            AuthMode::Off
        } else {
            AuthMode::Required
        })
    }

    /// Why access control is what it is, for `pentascope config` and logs.
    pub fn auth_reason(&self) -> String {
        match (self.auth_setting, self.listens_on_loopback()) {
            (Some(mode), _) => format!("set with --auth / PENTASCOPE_AUTH={}", mode.as_str()),
            (None, true) => format!("default: {} is a loopback address", self.host),
            (None, false) => format!("default: {} is not a loopback address", self.host),
        }
    }

    /// The pixel store URL in effect.
    pub fn storage_url(&self) -> String {
        self.storage_url
            .clone()
            .unwrap_or_else(|| self.data_dir.join(IMAGES).display().to_string())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join(DATABASE).display()))
    }

    /// Where uploads are spooled while they arrive.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// Where resumable uploads keep their bytes and state between requests
    /// (and restarts).
    pub fn resumable_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

/// A URL with its password replaced, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
