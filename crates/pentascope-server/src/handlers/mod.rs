//! Request handlers: parse the request, call one use case, shape the answer.

pub mod admin;
pub mod analyze;
pub mod catalogue;
pub mod conditional;
pub mod images;
pub mod jobs;
pub mod metrics;
pub mod pages;
pub mod params;
pub mod render;
pub mod segment;
pub mod slice;
pub mod tus;
pub mod upload;
pub mod zarr;

use bytes::Bytes;
use futures::Stream;
use pentascope_app::AppError;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// A body streamed from the chunks a use case sends (an export, PCA rows).
pub(crate) fn streamed(
    chunks: mpsc::Receiver<Result<Bytes, AppError>>,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    futures::stream::unfold(chunks, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (chunk.map_err(ApiError::from), rx))
    })
}
