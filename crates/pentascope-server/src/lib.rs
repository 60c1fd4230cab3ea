//! # pentascope-server
//!
//! The thin HTTP layer: the axum router ([`router`]), small handlers
//! ([`handlers`]) that parse a request, call one use case of
//! `pentascope-app` and shape its answer, and the one mapping from errors to
//! HTTP status ([`error`]).
//!
//! Nothing here sequences stores or knows how TIFF or Zarr work.

pub mod access;
pub mod answers;
pub mod error;
pub mod exporter;
pub mod handlers;
pub mod observe;
pub mod openapi;
pub mod router;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use pentascope_app::{App, Config};
use pentascope_jobs::Queue;

pub use error::ApiError;

/// What every handler is given.
pub type AppState = Arc<App>;

/// Starts the service: opens (and migrates) the database, recovers from an
/// earlier crash, starts in-process job runners (unless jobs go to a Celery
/// broker), binds the listener and serves until Ctrl-C or SIGTERM.
/// `on_listen` is told the bound address (the port may have been 0).
pub async fn serve(mut config: Config, on_listen: impl FnOnce(SocketAddr)) -> Result<(), ApiError> {
    // jobs' failures name a limit's setting as the HTTP errors do
    config.describe_error = settings::describe;
    exporter::install().map_err(ApiError::internal)?;
    let (app, queue) = pentascope_jobs::open_app(config.clone()).await?;
    let auth = config.auth();
    if auth == pentascope_app::access::AuthMode::Off && !config.listens_on_loopback() {
        tracing::warn!(
            host = %config.host,
            "access control is off on a non-loopback address: anyone who reaches the port \
             can read, change and delete every image"
        );
    }
    tracing::info!(auth = auth.as_str(), reason = %config.auth_reason(), "access control");
    app.recover().await?;
    match &queue {
        Queue::Celery(_) => {
            tracing::info!("jobs go to the Celery broker; run `pentascope worker` to process them")
        }
        Queue::InProcess(q) => pentascope_jobs::runner::spawn_runners(&app, q, config.job_runners),
    }
    spawn_sweeper(app.clone());
    spawn_upload_sweeper(app.clone());
    if let Some(addr) = &config.metrics_addr {
        tokio::spawn(metrics_listener(app.clone(), addr).await?);
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
    accept_loop(listener, router::router(app.clone()), &config).await;
    // a live ingest waits for bytes on a thread the runtime would wait for
    app.stop_live_ingests();
    Ok(())
}

/// Binds `addr` and returns the server of `/metrics` alone on it, without
/// a key (`--metrics-addr`: a private address for a scraper, and a
/// worker's only HTTP listener). It runs until the process ends.
pub async fn metrics_listener(
    app: AppState,
    addr: &str,
) -> Result<impl std::future::Future<Output = ()>, ApiError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ApiError::internal(format!("cannot listen on {addr} for metrics: {e}")))?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(handlers::metrics::metrics))
        .with_state(app);
    tracing::info!(%addr, "metrics served without a key");
    Ok(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!("the metrics listener stopped: {e}");
        }
    })
}

/// Every ten minutes, removes uploads abandoned by processes that stopped
/// (with a shared database, a process cannot tell them at start-up from
/// uploads in progress elsewhere) and audit entries older than the
/// retention (`--audit-retention`).
fn spawn_sweeper(app: AppState) {
    let max_age = Duration::from_secs(pentascope_app::config::defaults::STALE_UPLOAD_HOURS * 3600);
    tokio::spawn(async move {
        loop {
            match app.sweep_audit().await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "audit entries past the retention"),
                Err(e) => tracing::warn!("cannot sweep the audit trail: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
            if let Err(e) = app.sweep(max_age).await {
                tracing::warn!("cannot sweep abandoned uploads: {e}");
            }
        }
    });
}

/// Removes expired resumable uploads, checking a few times per expiry
/// period (at most once a minute, at least once a second).
fn spawn_upload_sweeper(app: AppState) {
    let every =
        (app.config.upload_expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = app.sweep_uploads().await {
                tracing::warn!("cannot sweep expired resumable uploads: {e}");
            }
        }
    });
}

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves connections until Ctrl-C or SIGTERM, with a cap on connections
/// served at once (more are closed on arrival, so a flood of idle or slow
/// clients cannot exhaust file descriptors) and a deadline for each
/// request's headers (which also closes connections idle between requests).
async fn accept_loop(listener: TcpListener, router: axum::Router, config: &Config) {
    let cap = connection_cap(config.max_connections);
    let slots = Arc::new(Semaphore::new(cap));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let builder = Arc::new(builder);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // out of descriptors or a connection reset before it
                    // was accepted: keep serving the connections we have
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(cap, "connection refused: the connection cap is reached");
            continue;
        };
        let (builder, router) = (builder.clone(), router.clone());
        // the client's address, for the audit trail
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::Service::call(&mut router.clone(), req)
        });
        tokio::spawn(async move {
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
    // closed at once, so that new connections are refused (not left
    // waiting in the backlog) while the requests in flight finish
    drop(listener);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
}

/// The connection cap in effect: the configured one, within what the
/// process's open-file limit (raised to its hard limit) leaves after a
/// reserve for files, the database and the pixel store.
fn connection_cap(configured: usize) -> usize {
    const RESERVE: u64 = 256;
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let allowed = usize::try_from(files.saturating_sub(RESERVE).max(16)).unwrap_or(usize::MAX);
    if allowed < configured {
        tracing::warn!(
            configured,
            allowed,
            "the open-file limit lowers the connection cap (PENTASCOPE_MAX_CONNECTIONS)"
        );
    }
    configured.min(allowed)
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
