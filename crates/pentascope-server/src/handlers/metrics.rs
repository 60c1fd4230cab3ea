//! `GET /metrics`: every metric in Prometheus' text format.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::{exporter, AppState};

/// Prometheus' text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: the gauges read from the database refreshed, then every
/// metric. A database that does not answer leaves those gauges as they
/// were (`/health` says why) rather than failing the scrape.
pub async fn metrics(State(app): State<AppState>) -> Response {
    if let Err(e) = app.refresh_gauges().await {
        tracing::warn!("cannot read the gauges kept in the database: {e}");
    }
    match exporter::render() {
        Some(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        None => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "metrics are not recorded by this process".into(),
            detail: None,
        }
        .into_response(),
    }
}
