//! # pentascope-server
//!
//! The thin HTTP layer: configuration ([`config`]), the axum router
//! ([`router`]), small handlers ([`handlers`]) that validate a request, call
//! the store and core crates and shape the JSON, and the one mapping from
//! errors to HTTP status ([`error`]).
//!
//! Heavy work (decoding, PCA, rendering) runs on the blocking pool, never on
//! the async executor. Nothing here knows how TIFF or Zarr work.

pub mod cache;
pub mod config;
pub mod error;
pub mod handlers;
pub mod jobs;
pub mod router;
pub mod state;

use std::net::SocketAddr;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

/// Starts the service: opens (and migrates) the database, recovers from an
/// earlier crash, binds the listener and serves until Ctrl-C or SIGTERM.
/// `on_listen` is told the bound address (the port may have been 0).
pub async fn serve(config: Config, on_listen: impl FnOnce(SocketAddr)) -> Result<(), ApiError> {
    let state = AppState::open(config.clone()).await?;
    state.recover().await?;
    if state.broker.is_some() {
        tracing::info!("jobs go to the Celery broker; run `pentascope worker` to process them");
    } else {
        pentascope_jobs::runner::spawn_runners(
            &state.task_context(),
            state.jobs_waiting.clone(),
            config.job_runners,
        );
    }
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "cannot listen on {}:{}: {e}",
                config.host, config.port
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    on_listen(addr);
    axum::serve(listener, router::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
