//! Chunked pixel storage behind [`PixelStore`], as OME-Zarr (NGFF 0.5,
//! Zarr v3) on a local directory ([`LocalStore`]) or an S3-compatible object
//! store ([`S3Store`]); [`open_store`] picks one from a storage URL.
//!
//! - [`layout`]: how images are chunked;
//! - [`traits`]: what every backend offers;
//! - [`ngff`]: the NGFF metadata written beside the array;
//! - `zarr`: reading and writing an array through any zarrs store;
//! - `blosc`: blosc chunks decoded with pentascope's bit unshuffle;
//! - `direct`: regions of whole chunks read without zarrs' copies;
//! - [`local`], [`s3`]: the backends;
//! - [`metered`]: any backend with its operations measured.

mod blosc;
mod direct;
pub mod layout;
pub mod local;
pub mod metered;
pub mod ngff;
pub mod s3;
#[cfg(test)]
mod test_support;
pub mod traits;
mod zarr;

use std::path::Path;
use std::sync::Arc;

pub use layout::{
    ArrayLayout, BloscCoder, Compression, CompressionSetting, Shuffle, ZSTD_LEVEL, ZSTD_LEVEL_FAST,
};
pub use local::{Durability, LocalStore};
pub use metered::Metered;
pub use s3::S3Store;
pub use traits::{ImageAttributes, PixelReader, PixelStore, PixelWriter, StoredImages};

use crate::error::StoreError;

/// The pixel store a storage URL names: `s3://bucket/prefix` or a local
/// directory path, its operations measured ([`Metered`]). Must be called
/// within a Tokio runtime (S3).
pub fn open_store(url: &str, durability: Durability) -> Result<Arc<dyn PixelStore>, StoreError> {
    let store: Arc<dyn PixelStore> = match local_root(url) {
        Some(root) => Arc::new(LocalStore::new(root, durability)?),
        None => Arc::new(S3Store::from_url(url)?),
    };
    Ok(Arc::new(Metered::new(store)))
}

/// The directory of the local store a storage URL names (a path, or
/// `file://` and a path); `None` for an object store (`s3://…`).
pub fn local_root(url: &str) -> Option<&Path> {
    if url.starts_with("s3://") {
        None
    } else {
        Some(Path::new(url.strip_prefix("file://").unwrap_or(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_name_a_local_root_or_an_object_store() {
        assert_eq!(local_root("/srv/images"), Some(Path::new("/srv/images")));
        assert_eq!(
            local_root("file:///srv/images"),
            Some(Path::new("/srv/images"))
        );
        assert_eq!(local_root("s3://bucket/prefix"), None);
    }
}
