//! Image records: reserve an id, publish a complete record, read, delete.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::record::{ImageDetails, ImageId, ImageKind, ImageRecord};

/// Image records: reserve an id, publish a complete record, read, delete.
///
/// An id is reserved (a `pending` row) before any pixel is written, so ids
/// come from the database and stay unique across restarts and processes;
/// only [`ImageRepo::publish`] makes an image visible.
#[async_trait]
pub trait ImageRepo: Send + Sync {
    /// Allocates a new id for an image about to be written.
    async fn reserve(&self, kind: ImageKind) -> Result<ImageId, StoreError>;
    /// Stores the complete record and makes the image visible.
    async fn publish(&self, record: &ImageRecord) -> Result<(), StoreError>;
    /// Forgets a reserved id whose image was never completed.
    async fn discard(&self, id: ImageId) -> Result<(), StoreError>;
    /// A published image.
    async fn get(&self, id: ImageId) -> Result<Option<ImageRecord>, StoreError>;
    /// All published images, oldest first.
    async fn list(&self) -> Result<Vec<ImageRecord>, StoreError>;
    /// Published images derived from `source` (PCA scores).
    async fn derived_from(&self, source: ImageId) -> Result<Vec<ImageId>, StoreError>;
    /// Published images of the file whose first image is `first`
    /// ([`ImageDetails::series`]), `first` among them while it exists.
    async fn series_of(&self, first: ImageId) -> Result<Vec<ImageId>, StoreError>;
    /// Replaces a published image's metadata document; `false` if there is
    /// no such image.
    async fn update_details(&self, id: ImageId, details: &ImageDetails)
        -> Result<bool, StoreError>;
    /// Removes a published image's record; `false` if there was none.
    async fn delete(&self, id: ImageId) -> Result<bool, StoreError>;
    /// Ids reserved before `reserved_before` (an RFC 3339 time) and never
    /// published: left by a crash, or in progress when the time is recent.
    async fn pending(&self, reserved_before: &str) -> Result<Vec<ImageId>, StoreError>;
    /// Keeps the metadata text of a reserved or published image's file.
    async fn put_original_metadata(
        &self,
        id: ImageId,
        format: &str,
        text: &str,
    ) -> Result<(), StoreError>;
    /// The metadata text of an image's file and its format, if it had any.
    async fn original_metadata(&self, id: ImageId) -> Result<Option<(String, String)>, StoreError>;
    /// How many published images there are of each kind (kinds without
    /// images left out).
    async fn count_by_kind(&self) -> Result<Vec<(ImageKind, u64)>, StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The backend's name, for `/health` and logs.
    fn backend(&self) -> &'static str;
    /// The connection pool: connections open, and how many of them idle.
    fn pool_connections(&self) -> (u32, usize);
    /// Whether the database is this process's alone (embedded), so that
    /// what a crash left unfinished in it is nobody else's work.
    fn embedded(&self) -> bool;
    /// Closes the connections, waiting until they are closed (an embedded
    /// database's write-ahead log is then merged into its file).
    async fn close(&self);
}
