//! [`Metered`]: any [`PixelStore`] with the duration and the failures of
//! each of its operations recorded (through the `metrics` facade, a no-op
//! until a process installs an exporter), by backend and operation.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use pentascope_core::PlaneIndex;

use super::layout::{ArrayLayout, Compression};
use super::traits::{ImageAttributes, PixelReader, PixelStore, PixelWriter, StoredImages};
use crate::error::StoreError;
use crate::record::ImageId;

/// Durations of pixel store operations, by backend and operation.
pub const STORAGE_DURATION: &str = "pentascope_storage_operation_duration_seconds";
/// Failed pixel store operations, by backend and operation.
pub const STORAGE_ERRORS: &str = "pentascope_storage_errors_total";

/// The help text of each metric recorded here.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_histogram!(
        STORAGE_DURATION,
        Unit::Seconds,
        "Duration of pixel store operations (read, write, open, …), by backend."
    );
    describe_counter!(
        STORAGE_ERRORS,
        "Failed pixel store operations, by backend and operation."
    );
}

/// Runs `f` as operation `operation` of `backend`, recording it. A missing
/// image is an answer, not a failure of the store.
fn timed<T>(
    backend: &'static str,
    operation: &'static str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let outcome = f();
    metrics::histogram!(STORAGE_DURATION, "backend" => backend, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = &outcome {
        if !matches!(e, StoreError::NotFound(_)) {
            metrics::counter!(STORAGE_ERRORS, "backend" => backend, "operation" => operation)
                .increment(1);
        }
    }
    outcome
}

/// A pixel store whose operations are measured.
pub struct Metered {
    inner: Arc<dyn PixelStore>,
}

/// Every operation label.
const OPERATIONS: &[&str] = &[
    "create",
    "open",
    "delete",
    "key_size",
    "read_key",
    "list",
    "clear_staging",
    "ping",
    "write",
    "read",
    "commit",
];

impl Metered {
    /// Measures `inner`. Its error counters start at zero, so that a rate
    /// over them exists before the first error.
    pub fn new(inner: Arc<dyn PixelStore>) -> Metered {
        let backend = inner.backend();
        for &operation in OPERATIONS {
            metrics::counter!(STORAGE_ERRORS, "backend" => backend, "operation" => operation)
                .increment(0);
        }
        Metered { inner }
    }
}

impl PixelStore for Metered {
    fn create(
        &self,
        id: ImageId,
        layout: ArrayLayout,
        attributes: &ImageAttributes,
        compression: Compression,
    ) -> Result<Box<dyn PixelWriter>, StoreError> {
        let backend = self.inner.backend();
        let inner = timed(backend, "create", || {
            self.inner.create(id, layout, attributes, compression)
        })?;
        Ok(Box::new(MeteredWriter { inner, backend }))
    }

    fn open(&self, id: ImageId) -> Result<Arc<dyn PixelReader>, StoreError> {
        let backend = self.inner.backend();
        let inner = timed(backend, "open", || self.inner.open(id))?;
        Ok(Arc::new(MeteredReader { inner, backend }))
    }

    fn delete(&self, id: ImageId) -> Result<(), StoreError> {
        timed(self.inner.backend(), "delete", || self.inner.delete(id))
    }

    fn key_size(&self, id: ImageId, key: &str) -> Result<Option<u64>, StoreError> {
        timed(self.inner.backend(), "key_size", || {
            self.inner.key_size(id, key)
        })
    }

    fn read_key(
        &self,
        id: ImageId,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        timed(self.inner.backend(), "read_key", || {
            self.inner.read_key(id, key, start, len)
        })
    }

    fn list_images(&self) -> Result<StoredImages, StoreError> {
        timed(self.inner.backend(), "list", || self.inner.list_images())
    }

    fn clear_staging(&self) -> Result<(), StoreError> {
        timed(self.inner.backend(), "clear_staging", || {
            self.inner.clear_staging()
        })
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn ping(&self) -> Result<(), StoreError> {
        timed(self.inner.backend(), "ping", || self.inner.ping())
    }
}

struct MeteredWriter {
    inner: Box<dyn PixelWriter>,
    backend: &'static str,
}

impl PixelWriter for MeteredWriter {
    fn layout(&self) -> &ArrayLayout {
        self.inner.layout()
    }

    fn write_band(&self, plane: PlaneIndex, y0: u64, bytes: &[u8]) -> Result<(), StoreError> {
        timed(self.backend, "write", || {
            self.inner.write_band(plane, y0, bytes)
        })
    }

    fn write_level_band(
        &self,
        level: u32,
        plane: PlaneIndex,
        y0: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        timed(self.backend, "write", || {
            self.inner.write_level_band(level, plane, y0, bytes)
        })
    }

    fn read_rows(
        &self,
        plane: PlaneIndex,
        rows: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        timed(self.backend, "read", || {
            self.inner.read_rows(plane, rows, out)
        })
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let MeteredWriter { inner, backend } = *self;
        timed(backend, "commit", || inner.commit())
    }

    fn abort(self: Box<Self>) {
        self.inner.abort()
    }
}

struct MeteredReader {
    inner: Arc<dyn PixelReader>,
    backend: &'static str,
}

impl PixelReader for MeteredReader {
    fn layout(&self) -> &ArrayLayout {
        self.inner.layout()
    }

    fn read_region(
        &self,
        level: u32,
        plane: PlaneIndex,
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        timed(self.backend, "read", || {
            self.inner.read_region(level, plane, rows, columns, out)
        })
    }
}
