//! Pixels on an S3-compatible object store, as OME-Zarr under
//! `s3://bucket/prefix/image_<n>.zarr/`, the same layout as on disk.
//!
//! Object stores have no rename, so an image is written at its final key
//! prefix; it is invisible until its database record is published (the
//! database is what makes an image exist), and a failed write deletes what
//! it wrote. Credentials and region come from the usual `AWS_*` variables;
//! `AWS_ENDPOINT_URL` points at an S3-compatible server (MinIO, moto, …).
//!
//! zarrs drives the store synchronously (from the blocking pool and rayon
//! threads) through its async-to-sync adapter on the process's Tokio
//! runtime.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_object_store::AsyncObjectStore;

use super::layout::{ArrayLayout, Compression};
use super::traits::{ImageAttributes, PixelReader, PixelStore, PixelWriter, StoredImages};
use super::zarr::{create_image, key_size, open_array, read_key, ZarrWriter};
use crate::error::StoreError;
use crate::record::ImageId;

/// Runs zarrs' storage futures on the process's Tokio runtime. Called only
/// from threads outside the runtime (the blocking pool, rayon).
#[derive(Clone)]
struct TokioBlockOn(tokio::runtime::Handle);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

/// How errors name this component.
const S3: &str = "S3 object store";

/// Store errors while creating an image on S3 are outages of S3.
fn unavailable(e: StoreError) -> StoreError {
    match e {
        StoreError::Pixels(message) => StoreError::Unavailable {
            component: S3,
            message,
        },
        other => other,
    }
}

type ImageStorage =
    AsyncToSyncStorageAdapter<AsyncObjectStore<PrefixStore<Arc<dyn ObjectStore>>>, TokioBlockOn>;

/// OME-Zarr images on S3.
#[derive(Clone)]
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: tokio::runtime::Handle,
    url: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("url", &self.url).finish()
    }
}

impl S3Store {
    /// A store for `s3://bucket/prefix`, configured from the `AWS_*`
    /// environment. Must be called within a Tokio runtime.
    pub fn from_url(url: &str) -> Result<S3Store, StoreError> {
        let mut builder = AmazonS3Builder::from_env().with_url(url);
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        // a few quick retries: an outage should answer 503 within seconds,
        // not after object_store's default of minutes
        builder = builder.with_retry(object_store::RetryConfig {
            max_retries: 2,
            retry_timeout: std::time::Duration::from_secs(5),
            ..Default::default()
        });
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::Pixels(format!("cannot use {url}: {e}")))?;
        let prefix = url
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, p)| p.trim_matches('/').to_string())
            .unwrap_or_default();
        Ok(S3Store {
            store: Arc::new(store),
            prefix: ObjectPath::from(prefix),
            runtime: tokio::runtime::Handle::try_current()
                .map_err(|e| StoreError::Pixels(format!("no async runtime: {e}")))?,
            url: url.to_string(),
        })
    }

    fn image_prefix(&self, id: ImageId) -> ObjectPath {
        self.prefix.clone().join(format!("{id}.zarr"))
    }

    fn image_storage(&self, id: ImageId) -> Arc<ImageStorage> {
        let scoped = PrefixStore::new(self.store.clone(), self.image_prefix(id));
        Arc::new(AsyncToSyncStorageAdapter::new(
            Arc::new(AsyncObjectStore::new(scoped)),
            TokioBlockOn(self.runtime.clone()),
        ))
    }

    /// Deletes every object under an image's prefix.
    fn delete_prefix(&self, id: ImageId) -> Result<(), StoreError> {
        let (store, prefix) = (self.store.clone(), self.image_prefix(id));
        self.runtime.block_on(async move {
            let locations = store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .boxed();
            store
                .delete_stream(locations)
                .try_collect::<Vec<_>>()
                .await
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable {
                    component: S3,
                    message: format!("deleting {prefix}: {e}"),
                })
        })
    }
}

impl PixelStore for S3Store {
    fn create(
        &self,
        id: ImageId,
        layout: ArrayLayout,
        attributes: &ImageAttributes,
        compression: Compression,
    ) -> Result<Box<dyn PixelWriter>, StoreError> {
        let arrays = create_image(self.image_storage(id), &layout, attributes, compression)
            .map_err(unavailable)?;
        let this = self.clone();
        Ok(Box::new(ZarrWriter {
            remote: Some(S3),
            arrays,
            layout,
            downsample: attributes.downsample,
            levels_from_file: attributes.levels_from_file.clone(),
            on_commit: Box::new(|| Ok(())),
            on_abort: Box::new(move || {
                if let Err(e) = this.delete_prefix(id) {
                    tracing::warn!(%id, "cannot remove a failed image's objects: {e}");
                }
            }),
        }))
    }

    fn open(&self, id: ImageId) -> Result<Arc<dyn PixelReader>, StoreError> {
        open_array(self.image_storage(id), id, Some(S3))
    }

    fn key_size(&self, id: ImageId, key: &str) -> Result<Option<u64>, StoreError> {
        key_size(&*self.image_storage(id), key, Some(S3))
    }

    fn read_key(
        &self,
        id: ImageId,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        read_key(&*self.image_storage(id), key, start, len, Some(S3))
    }

    fn delete(&self, id: ImageId) -> Result<(), StoreError> {
        self.delete_prefix(id)
    }

    fn list_images(&self) -> Result<StoredImages, StoreError> {
        let (store, prefix) = (self.store.clone(), self.prefix.clone());
        let listing = self.runtime.block_on(async move {
            store
                .list_with_delimiter(Some(&prefix))
                .await
                .map_err(|e| StoreError::Unavailable {
                    component: S3,
                    message: format!("listing {prefix}: {e}"),
                })
        })?;
        let mut published: Vec<ImageId> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter_map(|name| name.strip_suffix(".zarr")?.parse().ok())
            .collect();
        published.sort();
        // images are written in place: one whose record is missing is an
        // orphan whether it was finished or not
        Ok(StoredImages {
            published,
            staged: Vec::new(),
        })
    }

    fn clear_staging(&self) -> Result<(), StoreError> {
        // nothing is staged: unpublished images are invisible and deleted
        // by the writer that failed
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "s3"
    }

    fn ping(&self) -> Result<(), StoreError> {
        let (store, prefix) = (self.store.clone(), self.prefix.clone());
        self.runtime.block_on(async move {
            store
                .list_with_delimiter(Some(&prefix))
                .await
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable {
                    component: S3,
                    message: e.to_string(),
                })
        })
    }
}
