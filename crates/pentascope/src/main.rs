//! The `pentascope` binary: glue over the library crates. It parses the
//! command line, dispatches to a subcommand and maps errors to an exit code.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use pentascope_server::Config;
use pentascope_store::pixels::Durability;

/// pentascope: a service for 5D (TZCYX) scientific images.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (and in-process job runners).
    Serve(Settings),
    /// Process jobs from the Celery broker (CELERY_BROKER_URL), on any
    /// machine that shares the database and the pixel store.
    Worker(Settings),
    /// Apply database migrations and exit.
    Migrate(Settings),
    /// Show every setting, its value, where it came from and its default.
    Config(Settings),
}

/// Every setting, from the command line or the environment.
#[derive(Debug, Clone, Args)]
struct Settings {
    /// Interface to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free port; the address is printed).
    #[arg(long, env = "PORT", default_value_t = 5000)]
    port: u16,
    /// Where the embedded database, pixels and upload spool live.
    #[arg(long, env = "PENTASCOPE_DATA_DIR", default_value = "./data")]
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
    /// Largest image accepted, in samples (T·Z·C·Y·X).
    #[arg(long, env = "PENTASCOPE_MAX_SAMPLES", default_value_t = 1 << 34)]
    max_samples: u64,
    /// Largest upload accepted, in bytes.
    #[arg(long, env = "PENTASCOPE_MAX_UPLOAD_BYTES", default_value_t = 64 << 30)]
    max_upload_bytes: u64,
    /// Most PCA score values returned inline by /analyze.
    #[arg(long, env = "PENTASCOPE_INLINE_SCORES", default_value_t = 1_000_000)]
    inline_scores: u64,
    /// When pixels are flushed to disk: `sync` (before an image is
    /// published) or `os` (left to the operating system; faster on slow
    /// disks, an OS crash can lose the latest uploads).
    #[arg(long, env = "PENTASCOPE_DURABILITY", default_value = "sync")]
    durability: Durability,
    /// Background jobs this process runs at once: in-process runners of
    /// `serve` without a broker, or tasks a `worker` runs concurrently.
    #[arg(long, env = "PENTASCOPE_JOB_RUNNERS", default_value_t = 1)]
    job_runners: usize,
    /// MiB of rendered slices kept in memory (0: no slice cache).
    #[arg(long, env = "PENTASCOPE_SLICE_CACHE_MIB", default_value_t = 256)]
    slice_cache_mib: usize,
    /// Celery broker (redis://HOST:PORT/DB). When set, `serve` sends jobs to
    /// it and `pentascope worker` processes run them.
    #[arg(long, env = "CELERY_BROKER_URL")]
    celery_broker_url: Option<String>,
    /// Celery result backend (redis://…); default: the broker.
    #[arg(long, env = "CELERY_RESULT_BACKEND")]
    celery_result_backend: Option<String>,
    /// Queue the tasks go to (Celery's default queue name).
    #[arg(long, env = "PENTASCOPE_CELERY_QUEUE", default_value = "celery")]
    celery_queue: String,
    /// Seconds a task may stay unacknowledged (its worker stopped) before it
    /// is delivered again.
    #[arg(long, env = "PENTASCOPE_VISIBILITY_TIMEOUT", default_value_t = 3600)]
    visibility_timeout: u64,
}

impl Settings {
    fn database_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("VERCEL_POSTGRES_URL").ok())
            .filter(|u| !u.is_empty())
    }

    fn config(&self) -> Config {
        let mut config = Config::with_data_dir(self.data_dir.clone());
        config.host = self.host.clone();
        config.port = self.port;
        config.limits.max_samples = self.max_samples;
        config.max_upload_bytes = self.max_upload_bytes;
        config.inline_scores_cap = self.inline_scores;
        config.durability = self.durability;
        config.database_url = self.database_url();
        config.job_runners = self.job_runners;
        config.storage_url = self.storage_url.clone().filter(|u| !u.is_empty());
        config.slice_cache_bytes = self.slice_cache_mib << 20;
        config.celery = self
            .celery_broker_url
            .clone()
            .filter(|u| !u.is_empty())
            .map(|broker_url| pentascope_server::config::CeleryConfig {
                result_backend: self
                    .celery_result_backend
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| broker_url.clone()),
                broker_url,
                queue: self.celery_queue.clone(),
                visibility_timeout: self.visibility_timeout,
            });
        config
    }
}

/// A URL with its password replaced, for printing.
fn redact(url: &str) -> String {
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

/// Prints each setting with its value, source and default.
fn show_config(settings: &Settings, matches: &clap::ArgMatches) {
    let config = settings.config();
    let command = Cli::command();
    let args = command
        .find_subcommand("config")
        .expect("config subcommand")
        .get_arguments()
        .filter(|a| a.get_long().is_some())
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
                if settings.database_url.is_none() && settings.database_url().is_some() {
                    source = "environment VERCEL_POSTGRES_URL".into();
                }
                redact(&config.database_url())
            }
            "storage_url" => config.storage_url(),
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
                _ => String::new(),
            });
        let name = if env.is_empty() { id.to_string() } else { env };
        println!("{name:<28} {value:<44} {source:<34} {default}");
    }
}

/// `pentascope worker`: consumes the Celery queue until stopped.
async fn worker(config: Config) -> Result<(), String> {
    let celery = config.celery.clone().ok_or(
        "pentascope worker needs a broker: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)",
    )?;
    let state = pentascope_server::AppState::open(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut broker = pentascope_jobs::celery::CeleryBroker::new(
        &celery.broker_url,
        &celery.result_backend,
        &celery.queue,
    )
    .map_err(|e| e.to_string())?;
    broker.visibility_timeout = celery.visibility_timeout;
    println!(
        "pentascope worker consuming {} on {} (tasks: {})",
        celery.queue,
        redact(&celery.broker_url),
        pentascope_jobs::tasks::TASK_NAMES.join(", ")
    );
    tokio::select! {
        _ = broker.work(state.task_context(), config.job_runners) => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pentascope: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = match cli.command {
        Command::Serve(settings) => {
            let config = settings.config();
            let data_dir = config.data_dir.clone();
            let database = redact(&config.database_url());
            runtime
                .block_on(pentascope_server::serve(config, |addr| {
                    println!("pentascope listening on http://{addr}");
                    tracing::info!(
                        %addr,
                        data_dir = %data_dir.display(),
                        %database,
                        "listening"
                    );
                }))
                .map_err(|e| e.to_string())
        }
        Command::Worker(settings) => runtime.block_on(worker(settings.config())),
        Command::Migrate(settings) => {
            let url = settings.config().database_url();
            runtime.block_on(async {
                match pentascope_store::db::connect(&url).await {
                    Ok(_) => {
                        println!("migrations applied to {}", redact(&url));
                        Ok(())
                    }
                    Err(e) => Err(format!("migrating {}: {e}", redact(&url))),
                }
            })
        }
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
