//! The `pentascope` binary: glue over the library crates. It parses the
//! command line, dispatches to a subcommand and maps errors to an exit code.

mod admin;
mod audit;
mod backup;
mod check;
mod ingest;

use std::path::PathBuf;
use std::sync::Arc;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use pentascope_app::config::{defaults, redact_url, CatalogueLimits, CeleryConfig};
use pentascope_app::Config;
use pentascope_core::Limits;
use pentascope_store::pixels::{CompressionSetting, Durability};

/// mimalloc rather than the system allocator: requests allocate planes and
/// pictures of megabytes, which glibc hands back to the kernel and takes
/// again zeroed (page clearing was 43% of a tile request's time).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often [`purge_freed_pages`] asks the allocator to give back what is
/// due.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts a thread that keeps the allocator's promise for an idle process.
/// mimalloc returns freed pages to the kernel once they have been free for
/// a while (`MIMALLOC_PURGE_DELAY`, 1 s), but only when some thread calls
/// into it: after an ingest or a burst of renderings, an idle server kept
/// about 150 MiB it no longer used (RSS 242 MiB after a 500 MB upload,
/// 95 MiB with purging at once). Purging only what is due keeps the pages
/// that a steady load reuses.
fn purge_freed_pages() {
    let purger = std::thread::Builder::new()
        .name("allocator-purge".into())
        .spawn(|| loop {
            std::thread::sleep(PURGE_EVERY);
            // SAFETY: mi_collect has no preconditions; unforced, it frees
            // this thread's empty pages and purges the arenas' memory whose
            // delay has passed, program-wide, as any allocation may.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_collect(false)
            };
        });
    if let Err(e) = purger {
        tracing::warn!(error = %e, "no allocator purge thread: idle memory is returned on the next request");
    }
}

/// pentascope: a service for 5D (TZCYX) scientific images. `serve` runs the
/// HTTP API, `worker` runs queued jobs, `ingest` imports TIFF files,
/// `check` verifies records and pixels, `migrate` prepares the database,
/// `config` shows the settings, `user` and `token` manage access control,
/// `audit` shows who did what, `backup` and `restore` copy an embedded
/// installation, `openapi` prints the API's description.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines (on standard error) are written: `text` (coloured
    /// only on a terminal) or `json` (one object a line, for collectors).
    #[arg(long, global = true, env = "PENTASCOPE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Prints the API document; a reader that stops early (`| head`) is not
/// an error.
fn print_openapi() -> Result<(), String> {
    use std::io::Write;
    let document = pentascope_server::openapi::document();
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer_pretty(&mut out, document)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines; ANSI colours only when standard error is a
    /// terminal and NO_COLOR is unset.
    Text,
    /// One JSON object a line: timestamp, level, target, the event's
    /// fields at the top level and the enclosing span's (the request id).
    Json,
}

/// Sends log lines to standard error in `format`, filtered by `RUST_LOG`.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (and in-process job runners).
    Serve(ServeSettings),
    /// Process jobs from the Celery broker (CELERY_BROKER_URL), on any
    /// machine that shares the database and the pixel store.
    Worker(WorkerSettings),
    /// Apply database migrations and exit.
    Migrate(StoreSettings),
    /// Show every setting, its value, where it came from and its default.
    Config(ServeSettings),
    /// Import TIFF files or folders of them, without HTTP: a progress bar
    /// per file, then a summary; exits non-zero if any file failed.
    Ingest(ingest::IngestArgs),
    /// Check that every image's pixels are there and are what its record
    /// says (--deep: decode every chunk), and list orphans (--repair:
    /// remove them, mark broken images); exits non-zero if anything is
    /// wrong.
    Check(check::CheckArgs),
    /// Create and list users (access control).
    User(admin::UserArgs),
    /// Create, list and revoke API keys (access control).
    Token(admin::TokenArgs),
    /// Show the audit trail (who did what to which object, when, from
    /// where), newest first, filtered.
    Audit(audit::AuditArgs),
    /// Copy an embedded installation (SQLite database and local pixels)
    /// into an empty directory, consistently, while the server runs.
    Backup(backup::BackupArgs),
    /// Make a data directory from a backup (into an empty directory).
    Restore(backup::RestoreArgs),
    /// Print the OpenAPI document of the HTTP API (what `GET
    /// /openapi.json` serves), e.g. to generate a client.
    Openapi,
}

/// Where images and their records live: every subcommand's settings.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// Where the embedded database, pixels and upload spool live.
    #[arg(long, env = "PENTASCOPE_DATA_DIR", default_value = defaults::DATA_DIR)]
    data_dir: PathBuf,
    /// Metadata database: sqlite://PATH or postgres://USER@HOST/DB
    /// (VERCEL_POSTGRES_URL is read too). Default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Where pixels live: a directory or s3://BUCKET/PREFIX (with the usual
    /// AWS_* variables; AWS_ENDPOINT_URL for S3-compatible servers).
    /// Default: images/ in the data directory.
    #[arg(long, env = "STORAGE_URL")]
    storage_url: Option<String>,
}

/// How files are read and stored: the limits a file is checked against
/// and how its pixels are written (`serve`, `worker`, `ingest`).
#[derive(Debug, Clone, Args)]
pub struct IngestSettings {
    /// Largest image accepted, in samples (T·Z·C·Y·X).
    #[arg(long, env = "PENTASCOPE_MAX_SAMPLES", default_value_t = Limits::default().max_samples)]
    max_samples: u64,
    /// Most channels an image may have (samples per pixel × channel axis);
    /// per-channel state and PCA's covariance grow with it.
    #[arg(long, env = "PENTASCOPE_MAX_CHANNELS", default_value_t = Limits::default().max_channels)]
    max_channels: u64,
    /// Most series (images) one file may hold: an SVS's slide, thumbnail,
    /// label and macro, an OME-TIFF's Images; each is stored as an image.
    #[arg(long, env = "PENTASCOPE_MAX_SERIES", default_value_t = Limits::default().max_series)]
    max_series: u64,
    /// Largest plane accepted, in pixels (Y·X).
    #[arg(long, env = "PENTASCOPE_MAX_PLANE_PIXELS", default_value_t = Limits::default().max_plane_pixels)]
    max_plane_pixels: u64,
    /// Most pages (IFDs) a TIFF may have.
    #[arg(long, env = "PENTASCOPE_MAX_PAGES", default_value_t = Limits::default().max_pages)]
    max_pages: u64,
    /// Largest decoded strip or tile, in bytes.
    #[arg(long, env = "PENTASCOPE_MAX_CHUNK_BYTES", default_value_t = Limits::default().max_chunk_bytes)]
    max_chunk_bytes: u64,
    /// Largest metadata text (OME-XML, ImageJ description), in bytes.
    #[arg(long, env = "PENTASCOPE_MAX_METADATA_BYTES", default_value_t = Limits::default().max_metadata_bytes)]
    max_metadata_bytes: u64,
    /// When pixels are flushed to disk: `sync` (before an image is
    /// published) or `os` (left to the operating system; faster on slow
    /// disks, an OS crash can lose the latest uploads).
    #[arg(long, env = "PENTASCOPE_DURABILITY", default_value_t = Durability::default())]
    durability: Durability,
    /// How new images' pixels are compressed: `fast` (blosc LZ4 with byte
    /// shuffle where it saves 5%, or with bit shuffle where that saves 15%
    /// and more, else none: decoded at about 3 GB/s per core or more),
    /// `small` (zstd with byte or bit shuffle, for archives: up to a
    /// fifth smaller on noisy 16-bit data, 2–10× slower to decode) or
    /// `none`. Stored images keep the compression they were stored with.
    #[arg(long, env = "PENTASCOPE_COMPRESSION", default_value_t = CompressionSetting::default())]
    compression: CompressionSetting,
    #[command(flatten)]
    catalogue: CatalogueSettings,
}

/// How jobs run (`serve`, `worker`).
#[derive(Debug, Clone, Args)]
pub struct JobSettings {
    /// Most PCA score values returned inline by /analyze.
    #[arg(long, env = "PENTASCOPE_INLINE_SCORES", default_value_t = defaults::INLINE_SCORES)]
    inline_scores: u64,
    /// Pixels per channel in one part of a statistics or PCA pass: the unit
    /// of work of threads and of the part tasks a worker spreads over the
    /// others (smaller parts balance better, larger cost less to merge).
    #[arg(long, env = "PENTASCOPE_PART_PIXELS", default_value_t = defaults::PART_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..))]
    part_pixels: u64,
    /// Most objects returned inline by /segment (beyond, the labels image
    /// holds them).
    #[arg(long, env = "PENTASCOPE_INLINE_OBJECTS", default_value_t = defaults::INLINE_OBJECTS)]
    inline_objects: u64,
    /// Most provisional labels (2D pieces of objects over all planes) one
    /// /segment may hand out, about 90 bytes each.
    #[arg(long, env = "PENTASCOPE_MAX_LABELS", default_value_t = defaults::MAX_LABELS)]
    max_labels: u32,
    /// Background jobs this process runs at once: in-process runners of
    /// `serve` without a broker, or tasks a `worker` runs concurrently.
    #[arg(long, env = "PENTASCOPE_JOB_RUNNERS", default_value_t = defaults::JOB_RUNNERS)]
    job_runners: usize,
    /// Celery broker (redis://HOST:PORT/DB). When set, `serve` sends jobs to
    /// it and `pentascope worker` processes run them.
    #[arg(long, env = "CELERY_BROKER_URL")]
    celery_broker_url: Option<String>,
    /// Celery result backend (redis://…); default: the broker.
    #[arg(long, env = "CELERY_RESULT_BACKEND")]
    celery_result_backend: Option<String>,
    /// Queue the tasks go to (Celery's default queue name).
    #[arg(long, env = "PENTASCOPE_CELERY_QUEUE", default_value = defaults::CELERY_QUEUE)]
    celery_queue: String,
    /// The user that Celery tasks naming no owner act as (workers).
    /// Default: such tasks are unrestricted.
    #[arg(long, env = "PENTASCOPE_SERVICE_USER")]
    service_user: Option<String>,
    /// Seconds a task may stay unacknowledged (its worker stopped) before it
    /// is delivered again.
    #[arg(long, env = "PENTASCOPE_VISIBILITY_TIMEOUT", default_value_t = defaults::VISIBILITY_TIMEOUT_SECS)]
    visibility_timeout: u64,
    /// Also serve /metrics, without a key, on this address (HOST:PORT; keep
    /// it private): for `serve` beside the API, for `worker` its metrics
    /// (job durations). Default: `serve` has /metrics on its API address only.
    #[arg(long, env = "PENTASCOPE_METRICS_ADDR")]
    metrics_addr: Option<String>,
}

/// The HTTP API (`serve`).
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Interface to listen on.
    #[arg(long, env = "HOST", default_value = defaults::HOST)]
    host: String,
    /// Port to listen on (0 picks a free port; the address is printed).
    #[arg(long, env = "PORT", default_value_t = defaults::PORT)]
    port: u16,
    /// Largest upload accepted, in bytes.
    #[arg(long, env = "PENTASCOPE_MAX_UPLOAD_BYTES", default_value_t = defaults::MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
    /// Seconds a resumable upload (/uploads) is kept after its last byte
    /// arrived; unfinished uploads older than this are removed.
    #[arg(long, env = "PENTASCOPE_UPLOAD_EXPIRY", default_value_t = defaults::UPLOAD_EXPIRY_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    upload_expiry: u64,
    /// Connections served at once; more are closed on arrival (lowered to
    /// what the open-file limit allows).
    #[arg(long, env = "PENTASCOPE_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds a client may take to send a request's headers, and may keep
    /// a connection idle between requests.
    #[arg(long, env = "PENTASCOPE_HEADER_TIMEOUT", default_value_t = defaults::HEADER_TIMEOUT_SECS)]
    header_timeout: u64,
    /// Seconds a request other than an upload may take (503 beyond; the
    /// work stops with it).
    #[arg(long, env = "PENTASCOPE_REQUEST_TIMEOUT", default_value_t = defaults::REQUEST_TIMEOUT_SECS)]
    request_timeout: u64,
    /// MiB of plane data that slice requests may hold at once; requests
    /// wait for their share, and a plane larger than this is refused (413).
    #[arg(long, env = "PENTASCOPE_SLICE_MEMORY_MIB", default_value_t = defaults::SLICE_MEMORY_MIB)]
    slice_memory_mib: u64,
    /// Renderings (slices, tiles, computed Zarr chunks) that run at once;
    /// the others wait. Default: twice the cores; raise it for S3, whose
    /// reads wait on the network rather than the processor.
    #[arg(long, env = "PENTASCOPE_RENDER_CONCURRENCY", default_value_t = defaults::render_concurrency())]
    render_concurrency: usize,
    /// MiB of rendered slices kept in memory (0: no slice cache).
    #[arg(long, env = "PENTASCOPE_SLICE_CACHE_MIB", default_value_t = defaults::SLICE_CACHE_MIB)]
    slice_cache_mib: usize,
    /// Access control: off or required. Default: off when listening on a
    /// loopback address, required otherwise.
    #[arg(long, env = "PENTASCOPE_AUTH", value_parser = ["off", "required"])]
    auth: Option<String>,
    /// The key that signs links (any long random text). Default: one
    /// generated once and kept in the database.
    #[arg(long, env = "PENTASCOPE_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Origins browsers may call the API from, comma-separated
    /// (https://lab.example.org,http://localhost:8080), or * for any.
    /// Default: none.
    #[arg(long, env = "PENTASCOPE_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// How long the audit trail keeps an action (e.g. 365days, 90d; 0:
    /// forever); older ones are swept away every ten minutes.
    #[arg(long, env = "PENTASCOPE_AUDIT_RETENTION", default_value = defaults::AUDIT_RETENTION,
          value_parser = humantime::parse_duration)]
    audit_retention: std::time::Duration,
    /// Addresses of reverse proxies (comma-separated) whose X-Forwarded-For
    /// header names the client in the audit trail; from any other peer the
    /// header is ignored. Default: none (the peer's address is recorded).
    #[arg(long, env = "PENTASCOPE_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = proxy_address)]
    trusted_proxies: Vec<Option<std::net::IpAddr>>,
}

/// Every setting of `serve` (and `config`, which shows them).
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    store: StoreSettings,
    #[command(flatten)]
    ingest: IngestSettings,
    #[command(flatten)]
    jobs: JobSettings,
    #[command(flatten)]
    http: HttpSettings,
}

/// The settings of `worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    #[command(flatten)]
    store: StoreSettings,
    #[command(flatten)]
    ingest: IngestSettings,
    #[command(flatten)]
    jobs: JobSettings,
}

/// Bounds on what a lab writes about its images (names, descriptions,
/// tags, annotations); a request past one is refused with 400.
#[derive(Debug, Clone, Args)]
pub struct CatalogueSettings {
    /// Longest image or dataset name, in characters.
    #[arg(long, env = "PENTASCOPE_MAX_NAME_CHARS", default_value_t = defaults::MAX_NAME_CHARS)]
    max_name_chars: usize,
    /// Longest description, in bytes.
    #[arg(long, env = "PENTASCOPE_MAX_DESCRIPTION_BYTES", default_value_t = defaults::MAX_DESCRIPTION_BYTES)]
    max_description_bytes: usize,
    /// Longest tag, in characters.
    #[arg(long, env = "PENTASCOPE_MAX_TAG_CHARS", default_value_t = defaults::MAX_TAG_CHARS)]
    max_tag_chars: usize,
    /// Most tags on one image.
    #[arg(long, env = "PENTASCOPE_MAX_TAGS", default_value_t = defaults::MAX_TAGS)]
    max_tags: usize,
    /// Longest annotation key, in characters.
    #[arg(long, env = "PENTASCOPE_MAX_KEY_CHARS", default_value_t = defaults::MAX_KEY_CHARS)]
    max_key_chars: usize,
    /// Longest annotation value, in bytes.
    #[arg(long, env = "PENTASCOPE_MAX_VALUE_BYTES", default_value_t = defaults::MAX_VALUE_BYTES)]
    max_value_bytes: usize,
    /// Most key-value annotations on one image.
    #[arg(long, env = "PENTASCOPE_MAX_ANNOTATIONS", default_value_t = defaults::MAX_ANNOTATIONS)]
    max_annotations: usize,
}

impl CatalogueSettings {
    fn limits(&self) -> CatalogueLimits {
        CatalogueLimits {
            max_name_chars: self.max_name_chars,
            max_description_bytes: self.max_description_bytes,
            max_tag_chars: self.max_tag_chars,
            max_tags: self.max_tags,
            max_key_chars: self.max_key_chars,
            max_value_bytes: self.max_value_bytes,
            max_annotations: self.max_annotations,
        }
    }
}

/// An address of `--trusted-proxies`; empty (an unset variable in a
/// compose file) names none.
fn proxy_address(text: &str) -> Result<Option<std::net::IpAddr>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is not an IP address"))
}

impl StoreSettings {
    fn database_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("VERCEL_POSTGRES_URL").ok())
            .filter(|u| !u.is_empty())
    }

    /// The configuration of a process that only opens the stores (the
    /// other settings at their defaults).
    pub fn config(&self) -> Config {
        let mut config = Config::new(self.data_dir.clone());
        config.database_url = self.database_url();
        config.storage_url = self.storage_url.clone().filter(|u| !u.is_empty());
        config
    }
}

impl IngestSettings {
    fn apply(&self, config: &mut Config) {
        config.limits = Limits::default()
            .with_max_samples(self.max_samples)
            .with_max_channels(self.max_channels)
            .with_max_series(self.max_series)
            .with_max_plane_pixels(self.max_plane_pixels)
            .with_max_pages(self.max_pages)
            .with_max_chunk_bytes(self.max_chunk_bytes)
            .with_max_metadata_bytes(self.max_metadata_bytes);
        config.catalogue = self.catalogue.limits();
        config.durability = self.durability;
        config.compression = self.compression;
    }

    /// The configuration of `ingest`: the stores and how files are read.
    pub fn config(&self, store: &StoreSettings) -> Config {
        let mut config = store.config();
        self.apply(&mut config);
        config
    }
}

impl JobSettings {
    fn apply(&self, config: &mut Config) {
        config.inline_scores_cap = self.inline_scores;
        config.part_pixels = self.part_pixels;
        config.inline_objects_cap = self.inline_objects;
        config.max_labels = self.max_labels;
        config.job_runners = self.job_runners;
        config.service_user = self.service_user.clone().filter(|u| !u.is_empty());
        config.metrics_addr = self.metrics_addr.clone().filter(|a| !a.is_empty());
        config.celery = self
            .celery_broker_url
            .clone()
            .filter(|u| !u.is_empty())
            .map(|broker_url| CeleryConfig {
                result_backend: self
                    .celery_result_backend
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| broker_url.clone()),
                broker_url,
                queue: self.celery_queue.clone(),
                visibility_timeout: self.visibility_timeout,
            });
    }
}

impl HttpSettings {
    fn apply(&self, config: &mut Config) {
        config.host = self.host.clone();
        config.port = self.port;
        config.max_upload_bytes = self.max_upload_bytes;
        config.upload_expiry = std::time::Duration::from_secs(self.upload_expiry);
        config.slice_cache_bytes = self.slice_cache_mib << 20;
        config.max_connections = self.max_connections;
        config.header_timeout = std::time::Duration::from_secs(self.header_timeout);
        config.request_timeout = std::time::Duration::from_secs(self.request_timeout);
        config.slice_memory_bytes = self.slice_memory_mib << 20;
        config.render_concurrency = self.render_concurrency;
        config.auth_setting = self
            .auth
            .as_deref()
            .and_then(pentascope_app::access::AuthMode::parse);
        config.secret_key = self.secret_key.clone().filter(|k| !k.is_empty());
        config.cors_origins = self
            .cors_origins
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        config.audit_retention = Some(self.audit_retention).filter(|d| !d.is_zero());
        config.trusted_proxies = self.trusted_proxies.iter().flatten().copied().collect();
    }
}

impl ServeSettings {
    fn config(&self) -> Config {
        let mut config = self.ingest.config(&self.store);
        self.jobs.apply(&mut config);
        self.http.apply(&mut config);
        config
    }
}

impl WorkerSettings {
    fn config(&self) -> Config {
        let mut config = self.ingest.config(&self.store);
        self.jobs.apply(&mut config);
        // a task's failure names a limit's setting, as the API's errors do
        config.describe_error = pentascope_server::settings::describe;
        config
    }
}

/// Prints each setting with its value, source and default.
fn show_config(settings: &ServeSettings, matches: &clap::ArgMatches) {
    let config = settings.config();
    let mut command = Cli::command();
    // built, so that the global settings (--log-format) are listed too
    command.build();
    let args = command
        .find_subcommand("config")
        .expect("config subcommand")
        .get_arguments()
        .filter(|a| {
            a.get_long().is_some()
                && !matches!(
                    a.get_action(),
                    clap::ArgAction::Help
                        | clap::ArgAction::HelpLong
                        | clap::ArgAction::HelpShort
                        | clap::ArgAction::Version
                )
        })
        .cloned()
        .collect::<Vec<_>>();
    println!("{:<28} {:<44} {:<34} default", "setting", "value", "source");
    for arg in args {
        let id = arg.get_id().as_str();
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => format!("--{}", arg.get_long().unwrap_or(id)),
            Some(ValueSource::EnvVariable) => format!("environment {env}"),
            Some(ValueSource::DefaultValue) => "default".to_string(),
            _ => "default".to_string(),
        };
        let value = match id {
            "database_url" => {
                if settings.store.database_url.is_none() && settings.store.database_url().is_some()
                {
                    source = "environment VERCEL_POSTGRES_URL".into();
                }
                redact_url(&config.database_url())
            }
            "storage_url" => config.storage_url(),
            "auth" => {
                source = config.auth_reason();
                config.auth().as_str().to_string()
            }
            "secret_key" if settings.http.secret_key.is_some() => "***".into(),
            "cors_origins" => config.cors_origins.join(","),
            "trusted_proxies" => config
                .trusted_proxies
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(","),
            _ => matches
                .get_raw(id)
                .and_then(|mut v| v.next())
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let default = arg
            .get_default_values()
            .first()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_else(|| match id {
                "database_url" => "sqlite://<data-dir>/pentascope.sqlite".into(),
                "storage_url" => "<data-dir>/images".into(),
                "auth" => "off on loopback, else required".into(),
                "secret_key" => "generated, in the database".into(),
                _ => String::new(),
            });
        let name = if env.is_empty() { id.to_string() } else { env };
        println!("{name:<28} {value:<44} {source:<34} {default}");
    }
}

/// `pentascope worker`: consumes the Celery queue until stopped.
async fn worker(config: Config) -> Result<(), String> {
    let runners = config.job_runners;
    let metrics_addr = config.metrics_addr.clone();
    if metrics_addr.is_some() {
        pentascope_server::exporter::install()?;
    }
    let (app, queue) = pentascope_jobs::open_app(config)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(addr) = metrics_addr {
        let listener = pentascope_server::metrics_listener(app.clone(), &addr)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(listener);
    }
    let pentascope_jobs::Queue::Celery(broker) = queue else {
        return Err("pentascope worker needs a broker: set CELERY_BROKER_URL \
                    (e.g. redis://127.0.0.1:6379/0)"
            .into());
    };
    println!(
        "pentascope worker consuming {} (tasks: {})",
        broker.describe(),
        pentascope_app::jobs::task_names()
            .collect::<Vec<_>>()
            .join(", ")
    );
    tokio::select! {
        _ = Arc::unwrap_or_clone(broker).work(app, runners) => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pentascope: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = match cli.command {
        Command::Serve(settings) => {
            purge_freed_pages();
            let config = settings.config();
            let data_dir = config.data_dir.clone();
            let (auth, auth_reason) = (config.auth().as_str(), config.auth_reason());
            let database = redact_url(&config.database_url());
            runtime
                .block_on(pentascope_server::serve(config, |addr| {
                    println!("pentascope listening on http://{addr}");
                    println!("access control {auth} ({auth_reason})");
                    tracing::info!(
                        %addr,
                        data_dir = %data_dir.display(),
                        %database,
                        "listening"
                    );
                }))
                .map_err(|e| e.to_string())
        }
        Command::Worker(settings) => {
            purge_freed_pages();
            runtime.block_on(worker(settings.config()))
        }
        Command::Migrate(settings) => {
            let url = settings.config().database_url();
            runtime.block_on(async {
                match pentascope_store::records::connect(&url).await {
                    Ok(_) => {
                        println!("migrations applied to {}", redact_url(&url));
                        Ok(())
                    }
                    Err(e) => Err(format!("migrating {}: {e}", redact_url(&url))),
                }
            })
        }
        Command::Ingest(args) => runtime.block_on(ingest::run(args)),
        Command::Check(args) => runtime.block_on(check::run(args)),
        Command::User(args) => runtime.block_on(admin::user(args)),
        Command::Token(args) => runtime.block_on(admin::token(args)),
        Command::Audit(args) => runtime.block_on(audit::run(args)),
        Command::Backup(args) => runtime.block_on(backup::backup(args)),
        Command::Restore(args) => runtime.block_on(backup::restore(args)),
        Command::Openapi => print_openapi(),
        Command::Config(settings) => {
            let sub = matches
                .subcommand_matches("config")
                .expect("config matches");
            show_config(&settings, sub);
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pentascope: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pentascope_core::Limit;
    use pentascope_server::settings::setting;

    /// The front door's table names real settings: every limit but the
    /// fixed caps has a flag that `serve` takes, with that variable, and
    /// every subcommand that takes the flag reads the same variable.
    #[test]
    fn every_limit_names_a_flag_and_its_variable() {
        let mut command = Cli::command();
        command.build();
        for limit in Limit::all() {
            let Some(named) = setting(limit) else {
                assert_eq!(limit, Limit::Fixed, "{limit:?} names no setting");
                continue;
            };
            let long = named
                .flag
                .strip_prefix("--")
                .expect("a flag starts with --");
            let mut takers = Vec::new();
            for sub in command.get_subcommands() {
                if let Some(arg) = sub.get_arguments().find(|a| a.get_long() == Some(long)) {
                    assert_eq!(
                        arg.get_env().and_then(|e| e.to_str()),
                        Some(named.env),
                        "{limit:?}: {} of `{}` reads another variable",
                        named.flag,
                        sub.get_name()
                    );
                    takers.push(sub.get_name().to_string());
                }
            }
            assert!(
                takers.iter().any(|s| s == "serve"),
                "{limit:?}: `serve` has no {} (taken by {takers:?})",
                named.flag
            );
        }
    }
}
