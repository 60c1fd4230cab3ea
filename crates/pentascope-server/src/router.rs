//! Every route in one place.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::handlers::{analyze, images, slice, upload};
use crate::state::AppState;

/// The service's router.
pub fn router(state: AppState) -> Router {
    let upload_limit = usize::try_from(state.config.max_upload_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/upload",
            post(upload::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/metadata", get(images::metadata))
        .route("/slice", get(slice::slice))
        .route("/statistics", get(images::statistics))
        .route("/analyze", post(analyze::analyze))
        .route("/images", get(images::list))
        .route("/images/{id}", get(images::get).delete(images::delete))
        .route("/jobs/{id}", get(crate::jobs::get_job))
        .route("/health", get(images::health))
        .route("/openapi.json", get(images::openapi))
        .fallback(images::no_route)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
