//! Backing up and restoring an embedded installation (SQLite and pixels
//! on a local disk) while the server runs.
//!
//! A backup is a data directory plus a manifest: the database copied as of
//! one moment (`VACUUM INTO`), then the pixel group of every image that
//! copy holds, hard-linked where the file system allows (a published
//! group's files are written once, in staging, and never changed: a link
//! is a copy). An image deleted between the two steps has no pixels left
//! to copy: its record is taken out of the copy, as if the deletion had
//! come first. Uploads in progress are left out. The manifest is written
//! last, so a backup that stopped half-way is never taken for one.
//!
//! PostgreSQL and S3 are backed up with their own tools (`pg_dump`, bucket
//! versioning): see docs/operations.md.

use std::path::Path;

use pentascope_store::pixels::local::{copy_tree, Copied};
use pentascope_store::pixels::{local_root, LocalStore};
use pentascope_store::record::now_rfc3339;
use pentascope_store::records::{is_one_file, sqlite_snapshot};
use pentascope_store::ImageId;
use serde::{Deserialize, Serialize};

use crate::app::blocking;
use crate::config::{Config, DATABASE, IMAGES};
use crate::error::AppError;

/// The file that marks a finished backup.
pub const MANIFEST: &str = "pentascope-backup.json";

/// What a backup holds, written last into it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The version of pentascope that made it.
    pub version: String,
    /// When the database was copied (RFC 3339).
    pub taken_at: String,
    /// Images in it.
    pub images: usize,
    /// Images deleted while the backup ran, left out.
    pub left_out: Vec<ImageId>,
    /// How the pixel files were copied.
    pub linked_files: u64,
    /// Files copied (where a hard link was not possible).
    pub copied_files: u64,
    /// Bytes of pixel files.
    pub pixel_bytes: u64,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("{what} {}: {e}", path.display()))
}

/// Refuses `dir` unless it is absent or an empty directory.
fn require_empty(dir: &Path, what: &str) -> Result<(), AppError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(AppError::InvalidArguments(format!(
                    "{what} {} is not empty: give a new or empty directory",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot read", dir, e)),
    }
}

/// Removes what a failed backup or restore wrote into `dir` (which was
/// absent or empty before).
fn clean_up(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Backs up the installation `config` names into `dest` (absent or empty).
pub async fn backup(config: &Config, dest: &Path) -> Result<Manifest, AppError> {
    let url = config.database_url();
    let storage = config.storage_url();
    let Some(pixel_root) = local_root(&storage).filter(|_| is_one_file(&url)) else {
        return Err(AppError::InvalidArguments(
            "pentascope backup copies an embedded installation (SQLite and pixels on a local \
             disk); back up PostgreSQL with pg_dump and S3 with bucket versioning \
             (docs/operations.md)"
                .into(),
        ));
    };
    require_empty(dest, "the backup directory")?;
    std::fs::create_dir_all(dest).map_err(|e| io("cannot create", dest, e))?;
    let made = take_backup(&url, pixel_root, dest).await;
    if made.is_err() {
        clean_up(dest);
    }
    made
}

async fn take_backup(url: &str, pixel_root: &Path, dest: &Path) -> Result<Manifest, AppError> {
    let taken_at = now_rfc3339();
    let database = dest.join(DATABASE);
    sqlite_snapshot(url, &database).await?;
    let records =
        pentascope_store::records::connect(&format!("sqlite://{}", database.display())).await?;
    // uploads in progress when the copy was taken have no pixels to copy
    for id in records.images.pending("9999").await? {
        records.images.discard(id).await?;
    }
    let images = records.images.list().await?;
    let (source, target) = (pixel_root.to_path_buf(), dest.join(IMAGES));
    std::fs::create_dir_all(&target).map_err(|e| io("cannot create", &target, e))?;
    let mut copied = Copied::default();
    let mut left_out = Vec::new();
    for record in &images {
        // a PCA scores image is virtual: projected from its source
        if record.details.pca.is_some() {
            continue;
        }
        let (source, target, id) = (source.clone(), target.clone(), record.id);
        let linked = blocking(move || {
            let group = LocalStore::published_path(&source, id);
            let copy = LocalStore::published_path(&target, id);
            match copy_tree(&group, &copy, true) {
                Ok(done) => Ok(Some(done)),
                // deleted since the database was copied
                Err(_) if !group.exists() => {
                    let _ = std::fs::remove_dir_all(&copy);
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        match linked {
            Some(done) => {
                copied.linked += done.linked;
                copied.copied += done.copied;
                copied.bytes += done.bytes;
            }
            None => {
                records.images.delete(record.id).await?;
                left_out.push(record.id);
            }
        }
    }
    records.images.close().await;
    let manifest = Manifest {
        version: env!("CARGO_PKG_VERSION").to_string(),
        taken_at,
        images: images.len() - left_out.len(),
        left_out,
        linked_files: copied.linked,
        copied_files: copied.copied,
        pixel_bytes: copied.bytes,
    };
    write_manifest(dest, &manifest)?;
    Ok(manifest)
}

fn write_manifest(dest: &Path, manifest: &Manifest) -> Result<(), AppError> {
    let text =
        serde_json::to_vec_pretty(manifest).map_err(|e| AppError::Internal(e.to_string()))?;
    let (partial, done) = (
        dest.join(format!("{MANIFEST}.partial")),
        dest.join(MANIFEST),
    );
    std::fs::write(&partial, text).map_err(|e| io("cannot write", &partial, e))?;
    std::fs::rename(&partial, &done).map_err(|e| io("cannot write", &done, e))
}

/// Makes the data directory `data_dir` (absent or empty) from the backup
/// `src`: its files copied (not linked: the restored installation is
/// independent of the backup), the database migrated to this version.
pub async fn restore(src: &Path, data_dir: &Path) -> Result<Manifest, AppError> {
    let manifest_path = src.join(MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(|e| {
        AppError::InvalidArguments(format!(
            "{} is not a finished backup ({}: {e})",
            src.display(),
            manifest_path.display()
        ))
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| io("cannot read", &manifest_path, e))?;
    require_empty(data_dir, "the data directory")?;
    std::fs::create_dir_all(data_dir).map_err(|e| io("cannot create", data_dir, e))?;
    let restored = restore_into(src, data_dir).await;
    if restored.is_err() {
        clean_up(data_dir);
    }
    restored.map(|()| manifest)
}

async fn restore_into(src: &Path, data_dir: &Path) -> Result<(), AppError> {
    let database = data_dir.join(DATABASE);
    std::fs::copy(src.join(DATABASE), &database)
        .map_err(|e| io("cannot copy", &src.join(DATABASE), e))?;
    let (from, to) = (src.join(IMAGES), data_dir.join(IMAGES));
    blocking(move || Ok(copy_tree(&from, &to, false)?)).await?;
    let records =
        pentascope_store::records::connect(&format!("sqlite://{}", database.display())).await?;
    records.images.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only an embedded installation (one database file, pixels on a
    /// local disk) is backed up; the others are refused before anything
    /// is written, naming their own tools.
    #[tokio::test]
    async fn only_embedded_installations_are_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        for (database, storage) in [
            (Some("postgres://u@127.0.0.1:1/db"), None),
            (None, Some("s3://bucket/prefix")),
        ] {
            let mut config = Config::new(dir.path().join("data"));
            config.database_url = database.map(str::to_string);
            config.storage_url = storage.map(str::to_string);
            let dest = dir.path().join("backup");
            let refused = backup(&config, &dest).await.unwrap_err();
            assert!(
                matches!(&refused, AppError::InvalidArguments(m) if m.contains("pg_dump")),
                "{refused}"
            );
            assert!(!dest.exists(), "{database:?} {storage:?}");
        }
    }
}
