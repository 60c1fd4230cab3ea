//! The metadata database behind [`MetadataRepo`], with one implementation
//! per backend. [`SqliteRepo`] is the embedded default.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use crate::error::StoreError;
use crate::record::{now_rfc3339, ImageDetails, ImageId, ImageKind, ImageRecord};

/// Image records: reserve an id, publish a complete record, read, delete.
///
/// An id is reserved (a `pending` row) before any pixel is written, so ids
/// come from the database and stay unique across restarts and processes;
/// only [`MetadataRepo::publish`] makes an image visible.
#[async_trait]
pub trait MetadataRepo: Send + Sync {
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
    /// Removes a published image's record; `false` if there was none.
    async fn delete(&self, id: ImageId) -> Result<bool, StoreError>;
    /// Reserved ids that were never published (left by a crash).
    async fn pending(&self) -> Result<Vec<ImageId>, StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// SQLite, embedded, in one file.
#[derive(Debug, Clone)]
pub struct SqliteRepo {
    pool: SqlitePool,
}

impl SqliteRepo {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteRepo, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        Self::connect(options).await
    }

    /// Connects with a `sqlite://` URL and applies migrations.
    pub async fn connect_url(url: &str) -> Result<SqliteRepo, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<SqliteRepo, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteRepo { pool })
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ImageRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
    let id: i64 = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let source: Option<String> = row.try_get("source_image_id")?;
    let dtype: String = row.try_get("dtype")?;
    let flavour: String = row.try_get("flavour")?;
    let metadata: String = row.try_get("metadata")?;
    let statistics: String = row.try_get("statistics")?;
    let size = |c: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(c)? as u64) };
    Ok(ImageRecord {
        id: ImageId(id),
        kind: ImageKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        source_image_id: source
            .map(|s| s.parse().map_err(|_| corrupt("source_image_id")))
            .transpose()?,
        original_filename: row.try_get("original_filename")?,
        byte_size: row.try_get::<i64, _>("byte_size")? as u64,
        created_at: row.try_get("created_at")?,
        dtype: pentascope_core::DType::from_name(&dtype).ok_or_else(|| corrupt("dtype"))?,
        shape: pentascope_core::Shape5::new(
            size("size_t")?,
            size("size_z")?,
            size("size_c")?,
            size("size_y")?,
            size("size_x")?,
        ),
        flavour: serde_json::from_value(serde_json::Value::String(flavour))
            .map_err(|_| corrupt("flavour"))?,
        details: serde_json::from_str::<ImageDetails>(&metadata)
            .map_err(|_| corrupt("metadata"))?,
        statistics: serde_json::from_str(&statistics).map_err(|_| corrupt("statistics"))?,
    })
}

#[async_trait]
impl MetadataRepo for SqliteRepo {
    async fn reserve(&self, kind: ImageKind) -> Result<ImageId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO images (state, kind, created_at) VALUES ('pending', ?, ?) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(now_rfc3339())
        .fetch_one(&self.pool)
        .await?;
        Ok(ImageId(id))
    }

    async fn publish(&self, r: &ImageRecord) -> Result<(), StoreError> {
        let flavour = serde_json::to_value(r.flavour)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let done = sqlx::query(
            "UPDATE images SET state = 'ready', kind = ?, source_image_id = ?, \
             original_filename = ?, byte_size = ?, created_at = ?, dtype = ?, size_t = ?, \
             size_z = ?, size_c = ?, size_y = ?, size_x = ?, flavour = ?, metadata = ?, \
             statistics = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(r.kind.as_str())
        .bind(r.source_image_id.map(|s| s.to_string()))
        .bind(&r.original_filename)
        .bind(r.byte_size as i64)
        .bind(&r.created_at)
        .bind(r.dtype.name())
        .bind(r.shape.t as i64)
        .bind(r.shape.z as i64)
        .bind(r.shape.c as i64)
        .bind(r.shape.y as i64)
        .bind(r.shape.x as i64)
        .bind(flavour)
        .bind(serde_json::to_string(&r.details).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(serde_json::to_string(&r.statistics).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(r.id.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(r.id.to_string()));
        }
        Ok(())
    }

    async fn discard(&self, id: ImageId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM images WHERE id = ? AND state = 'pending'")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get(&self, id: ImageId) -> Result<Option<ImageRecord>, StoreError> {
        sqlx::query("SELECT * FROM images WHERE id = ? AND state = 'ready'")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(record_from_row)
            .transpose()
    }

    async fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        sqlx::query("SELECT * FROM images WHERE state = 'ready' ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn delete(&self, id: ImageId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM images WHERE id = ? AND state = 'ready'")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn pending(&self) -> Result<Vec<ImageId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM images WHERE state = 'pending'")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(ImageId).collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pentascope_core::tiff::Flavour;
    use pentascope_core::{DType, Shape5};

    fn record(id: ImageId) -> ImageRecord {
        ImageRecord {
            id,
            kind: ImageKind::Upload,
            source_image_id: None,
            original_filename: Some("a.tif".into()),
            byte_size: 10,
            created_at: now_rfc3339(),
            dtype: DType::U16,
            shape: Shape5::new(1, 2, 3, 4, 5),
            flavour: Flavour::Ome,
            details: ImageDetails::default(),
            statistics: Vec::new(),
        }
    }

    #[tokio::test]
    async fn ids_are_never_reused_and_pending_rows_are_invisible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let repo = SqliteRepo::open(&path).await.unwrap();
        let a = repo.reserve(ImageKind::Upload).await.unwrap();
        assert!(repo.get(a).await.unwrap().is_none(), "pending is invisible");
        let published = record(a);
        repo.publish(&published).await.unwrap();
        assert_eq!(repo.get(a).await.unwrap(), Some(published));
        assert!(repo.delete(a).await.unwrap());
        drop(repo);
        let repo = SqliteRepo::open(&path).await.unwrap();
        let b = repo.reserve(ImageKind::Upload).await.unwrap();
        assert!(b.0 > a.0, "{b} after deleting {a}");
        assert_eq!(repo.pending().await.unwrap(), vec![b]);
        repo.discard(b).await.unwrap();
        assert!(repo.pending().await.unwrap().is_empty());
        assert!(repo.list().await.unwrap().is_empty());
    }
}
