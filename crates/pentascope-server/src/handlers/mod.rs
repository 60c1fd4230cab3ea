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
/// The status is sent before the first chunk is made, so a failure later
/// can only end the connection: it is logged, with its cause, here.
pub(crate) fn streamed(
    chunks: mpsc::Receiver<Result<Bytes, AppError>>,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    futures::stream::unfold(chunks, |mut rx| async move {
        let chunk = rx.recv().await?.map_err(|e| {
            tracing::error!("a streamed answer failed after its status was sent: {e}");
            ApiError::from(e)
        });
        Some((chunk, rx))
    })
}
