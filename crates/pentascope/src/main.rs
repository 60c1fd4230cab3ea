//! The `pentascope` binary: glue over the library crates. It parses the
//! command line, dispatches to a subcommand and maps errors to an exit code.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
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
    /// Run the HTTP API.
    Serve {
        /// Interface to listen on.
        #[arg(long, env = "HOST", default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0 picks a free port).
        #[arg(long, env = "PORT", default_value_t = 5000)]
        port: u16,
        /// Where the database, pixels and upload spool live.
        #[arg(long, env = "PENTASCOPE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
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
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pentascope: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve {
            host,
            port,
            data_dir,
            max_samples,
            max_upload_bytes,
            inline_scores,
            durability,
        } => {
            let mut config = Config::with_data_dir(data_dir);
            config.host = host;
            config.port = port;
            config.limits.max_samples = max_samples;
            config.max_upload_bytes = max_upload_bytes;
            config.inline_scores_cap = inline_scores;
            config.durability = durability;
            let data_dir = config.data_dir.clone();
            runtime.block_on(pentascope_server::serve(config, |addr| {
                println!("pentascope listening on http://{addr}");
                tracing::info!(%addr, data_dir = %data_dir.display(), "listening; data kept in the data directory");
            }))
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
