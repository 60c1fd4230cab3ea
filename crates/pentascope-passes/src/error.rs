//! The passes' error type.

use pentascope_core::{CoreError, Limit};
use pentascope_store::StoreError;
use thiserror::Error;

/// What can go wrong in a pass over pixels, by cause: the front doors map
/// it once (the HTTP layer to a status).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PassError {
    /// The file or the computation refused: malformed, unsupported, past a
    /// limit, a request the data cannot answer.
    #[error(transparent)]
    Core(CoreError),
    /// The storage under the pass failed (pixels that cannot be read or
    /// written, a missing chunk, I/O).
    #[error(transparent)]
    Store(StoreError),
    /// The pass was stopped: its client left or its image was deleted.
    #[error("cancelled")]
    Cancelled,
}

/// The store's refusals of a file or a computation are the core's: kept
/// as [`PassError::Core`], so that a cause has one place whichever layer
/// raised it.
impl From<StoreError> for PassError {
    fn from(e: StoreError) -> PassError {
        match e {
            StoreError::Core(core) => PassError::Core(core),
            other => PassError::Store(other),
        }
    }
}

impl From<CoreError> for PassError {
    fn from(e: CoreError) -> PassError {
        PassError::Core(e)
    }
}

impl From<pentascope_tiff::TiffError> for PassError {
    fn from(e: pentascope_tiff::TiffError) -> PassError {
        PassError::Core(e.into())
    }
}

impl From<std::io::Error> for PassError {
    fn from(e: std::io::Error) -> PassError {
        PassError::Store(StoreError::Io(e))
    }
}

impl PassError {
    /// The limit this error is a refusal for, if it is one.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            PassError::Core(e) => e.limit(),
            PassError::Store(e) => e.limit(),
            PassError::Cancelled => None,
        }
    }
}
