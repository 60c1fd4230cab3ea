//! A TIFF file → a published image. The id is reserved first, the pixels
//! are written staged, and pixels and record are published together; any
//! failure on the way leaves neither behind.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use pentascope_core::Axes;
use pentascope_passes::cancel::Cancel;
use pentascope_passes::ingest::{ingest_series, ingest_tiff, Ingested, TiffSource};
use pentascope_passes::stream::{ingest_stream, Target, UploadBody};
use pentascope_passes::PassError;
use pentascope_store::pixels::PixelWriter;
use pentascope_store::record::{now_rfc3339, Catalogue, ImageDetails, SeriesOfFile};
use pentascope_store::{ImageId, ImageKind, ImageRecord};
use pentascope_tiff::TiffFile;

use crate::access::Caller;
use crate::app::{blocking, App};
use crate::archive;
use crate::audit::Action;
use crate::catalogue::{CheckedEntry, NewEntry};
use crate::error::AppError;
use pentascope_store::records::Scope;

/// A file to import.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Where the file is (a spooled upload or a file on disk).
    pub path: PathBuf,
    /// The name it is recorded under (`original_filename`).
    pub name: String,
    /// Its size in bytes.
    pub byte_size: u64,
    /// Axes overriding the file's own interpretation of its pages.
    pub axes: Option<Axes>,
    /// Its name, description, tags, annotations and datasets.
    pub entry: NewEntry,
}

/// What a front door hands the ingest of an upload as its body arrives
/// (through the channel of a [`ChannelBody`]).
#[derive(Debug)]
pub enum BodyPiece {
    /// The file's next bytes.
    Bytes(Bytes),
    /// The file is complete; the form's axes, if any came after it.
    End(Option<Axes>),
}

/// An upload's body sent piece by piece through a channel as a front door
/// receives it; a channel closed before [`BodyPiece::End`] is an upload
/// that broke off (the ingest stops with [`PassError::Cancelled`], and the
/// front door answers with why).
pub struct ChannelBody {
    pieces: tokio::sync::mpsc::Receiver<BodyPiece>,
    axes: Option<Axes>,
}

impl ChannelBody {
    /// The body arriving through `pieces`, with the axes override known
    /// before it.
    pub fn new(pieces: tokio::sync::mpsc::Receiver<BodyPiece>, axes: Option<Axes>) -> Self {
        ChannelBody { pieces, axes }
    }
}

impl UploadBody for ChannelBody {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, PassError> {
        match self.pieces.blocking_recv() {
            Some(BodyPiece::Bytes(bytes)) => Ok(Some(bytes)),
            Some(BodyPiece::End(axes)) => {
                if axes.is_some() {
                    self.axes = axes;
                }
                Ok(None)
            }
            None => Err(PassError::Cancelled),
        }
    }

    fn axes(&self) -> Option<Axes> {
        self.axes.clone()
    }
}

/// A file arriving over the network, stored while it arrives.
pub struct UploadStream {
    /// The file's pieces as they arrive, and the axes override (a
    /// [`ChannelBody`], or a resumable upload's staged file).
    pub body: Box<dyn UploadBody>,
    /// An empty file for the bytes that cannot be placed as they pass
    /// (deleted by the caller).
    pub spool: PathBuf,
    /// The name it is recorded under (`original_filename`).
    pub name: String,
    /// The most bytes the file can have (the request's length or the
    /// upload limit).
    pub max_len: u64,
    /// Its name, description, tags, annotations and datasets.
    pub entry: NewEntry,
}

/// A file that was read, as it is recorded.
struct Arrived {
    name: String,
    byte_size: u64,
    catalogue: Catalogue,
}

/// What an import reads.
enum Import {
    File(Upload),
    Stream(UploadStream),
}

/// Told `(planes done, planes in all)` as planes are stored.
pub type PlaneProgress = Arc<dyn Fn(u64, u64) + Send + Sync>;

impl App {
    /// Imports a TIFF: validates it, stores its pixels chunked with
    /// statistics gathered in the same pass, and publishes the image. If the
    /// caller stops waiting, the import stops within a band and leaves no
    /// staged pixels and no reserved id behind.
    /// The image is owned by `caller`.
    pub async fn ingest(
        self: &Arc<Self>,
        caller: &Caller,
        upload: Upload,
        progress: PlaneProgress,
    ) -> Result<ImageRecord, AppError> {
        self.import(caller, Import::File(upload), progress).await
    }

    /// Imports a TIFF as it arrives: pages whose IFD precedes their strips
    /// are stored as they pass, the rest once the upload is complete
    /// ([`pentascope_passes::stream`]). Otherwise as [`App::ingest`].
    pub async fn ingest_stream(
        self: &Arc<Self>,
        caller: &Caller,
        upload: UploadStream,
        progress: PlaneProgress,
    ) -> Result<ImageRecord, AppError> {
        self.import(caller, Import::Stream(upload), progress).await
    }

    /// Runs an import detached from its caller's future, owned by `caller`:
    /// a caller that stops waiting cancels it.
    async fn import(
        self: &Arc<Self>,
        caller: &Caller,
        import: Import,
        progress: PlaneProgress,
    ) -> Result<ImageRecord, AppError> {
        caller.require(Scope::Write)?;
        let (app, cancel) = (self.clone(), Cancel::new());
        let owner = caller.owner().map(str::to_string);
        let observed = cancel.clone();
        let (for_import, for_filing) = (caller.clone(), caller.clone());
        App::detached(&cancel, async move {
            let (record, entry) = match import {
                Import::File(mut upload) => {
                    let entry = app
                        .check_entry(&for_import, std::mem::take(&mut upload.entry))
                        .await?;
                    let record = app
                        .ingest_until_cancelled(owner, upload, &entry, progress, observed)
                        .await?;
                    (record, entry)
                }
                Import::Stream(mut upload) => {
                    let entry = app
                        .check_entry(&for_import, std::mem::take(&mut upload.entry))
                        .await?;
                    let record = app
                        .stream_until_cancelled(owner, upload, &entry, progress, observed)
                        .await?;
                    (record, entry)
                }
            };
            // each series of the file goes where the form puts the file
            for image in app.file_images(&for_filing, &record).await? {
                app.file_entry(&for_filing, image.id, &entry).await?;
            }
            let detail = format!(
                "{} ({} bytes)",
                record.original_filename.as_deref().unwrap_or("-"),
                record.byte_size
            );
            app.audit(
                &for_filing,
                Action::ImageUpload,
                &record.id.to_string(),
                &detail,
            )
            .await;
            Ok(record)
        })
        .await
    }

    async fn stream_until_cancelled(
        &self,
        owner: Option<String>,
        upload: UploadStream,
        entry: &CheckedEntry,
        progress: PlaneProgress,
        cancel: Cancel,
    ) -> Result<ImageRecord, AppError> {
        let id = self.images.reserve(ImageKind::Upload).await?;
        let pixels = self.pixels.clone();
        let (limits, compression) = (self.config.limits, self.config.compression);
        let name = upload.name.clone();
        let (spool_path, archive_progress) = (upload.spool.clone(), progress.clone());
        let observed = cancel.clone();
        let staged = blocking(move || {
            let UploadStream {
                mut body,
                spool,
                name,
                max_len,
                entry: _,
            } = upload;
            let target = Target {
                store: &*pixels,
                id,
                name: &name,
                compression,
                limits: &limits,
                progress: &*progress,
                cancel: &observed,
            };
            Ok(ingest_stream(&target, &mut *body, &spool, max_len)?)
        })
        .await;
        let (staged, byte_size) = match staged {
            Ok(s) => {
                tracing::info!(%id, pages = s.streamed_pages, "pages stored as they arrived");
                (Ok(s.ingested), s.bytes)
            }
            Err(e) => (Err(e), 0),
        };
        // a ZIP archive is no TIFF: it arrives spooled whole, and is
        // imported from there as a file is
        if staged.is_err() && !cancel.is_cancelled() && archive::is_zip(&spool_path) {
            self.images.discard(id).await?;
            let byte_size = std::fs::metadata(&spool_path).map_or(0, |m| m.len());
            let upload = Upload {
                path: spool_path,
                name,
                byte_size,
                axes: None,
                entry: NewEntry::default(),
            };
            return self
                .ingest_until_cancelled(owner, upload, entry, archive_progress, cancel)
                .await;
        }
        let file = Arrived {
            catalogue: entry.catalogue(&name),
            name,
            byte_size,
        };
        self.publish_ingested(id, owner, file, staged, &cancel)
            .await
    }

    /// Imports a file: a TIFF, or a ZIP archive of one dataset's files
    /// ([`archive`]), unpacked into the spool for the import.
    async fn ingest_until_cancelled(
        &self,
        owner: Option<String>,
        upload: Upload,
        entry: &CheckedEntry,
        progress: PlaneProgress,
        cancel: Cancel,
    ) -> Result<ImageRecord, AppError> {
        if !archive::is_zip(&upload.path) {
            return self
                .ingest_tiff_file(owner, upload, entry, progress, cancel)
                .await;
        }
        let (spool, max_bytes, limits) = (
            self.config.spool_dir(),
            self.config.max_upload_bytes,
            self.config.limits,
        );
        let (path, observed) = (upload.path.clone(), cancel.clone());
        let unpacked =
            blocking(move || archive::unpack(&path, &spool, max_bytes, &limits, &observed)).await?;
        if archive::is_zip(&unpacked.main) {
            return Err(AppError::Archive {
                unsupported: true,
                message: format!(
                    "{} is itself a ZIP archive; archives inside archives are not read",
                    unpacked.inner_name
                ),
            });
        }
        let inner = Upload {
            path: unpacked.main.clone(),
            name: format!("{}/{}", upload.name, unpacked.inner_name),
            byte_size: upload.byte_size,
            axes: upload.axes,
            entry: upload.entry,
        };
        // the unpacked folder lives until the import is over
        let record = self
            .ingest_tiff_file(owner, inner, entry, progress, cancel)
            .await;
        drop(unpacked);
        record
    }

    async fn ingest_tiff_file(
        &self,
        owner: Option<String>,
        upload: Upload,
        entry: &CheckedEntry,
        progress: PlaneProgress,
        cancel: Cancel,
    ) -> Result<ImageRecord, AppError> {
        if upload.byte_size == 0 {
            return Err(AppError::InvalidArguments(format!(
                "the file {:?} is empty",
                upload.name
            )));
        }
        let id = self.images.reserve(ImageKind::Upload).await?;
        let pixels = self.pixels.clone();
        let (limits, compression) = (self.config.limits, self.config.compression);
        let (path, name, axes) = (upload.path.clone(), upload.name.clone(), upload.axes);
        let observed = cancel.clone();
        let staged = blocking(move || {
            let source = TiffSource {
                path: &path,
                name: &name,
                axes: axes.as_ref(),
                compression,
            };
            Ok(ingest_tiff(
                &*pixels, id, &source, &limits, &*progress, &observed,
            )?)
        })
        .await;
        let file = Arrived {
            catalogue: entry.catalogue(&upload.name),
            name: upload.name,
            byte_size: upload.byte_size,
        };
        self.publish_ingested(id, owner, file, staged, &cancel)
            .await
    }

    /// Publishes staged pixels as image `id` with its record, or discards
    /// them (and the reserved id) if staging failed or was cancelled. A
    /// file of several series has each of the others staged and published
    /// as an image of its own after the first ([`App::file_images`]); if
    /// any fails, none is published.
    async fn publish_ingested(
        &self,
        id: ImageId,
        owner: Option<String>,
        file: Arrived,
        staged: Result<Ingested, AppError>,
        cancel: &Cancel,
    ) -> Result<ImageRecord, AppError> {
        let mut ingested = match staged {
            Ok(i) if !cancel.is_cancelled() => i,
            Ok(i) => {
                abort(i.writer).await;
                self.images.discard(id).await?;
                return Err(PassError::Cancelled.into());
            }
            Err(e) => {
                self.images.discard(id).await?;
                return Err(e);
            }
        };
        let further = match ingested.file.take() {
            Some(tiff) => match self.stage_further_series(tiff, &file.name, cancel).await {
                Ok(further) => further,
                Err(e) => {
                    abort(ingested.writer).await;
                    self.images.discard(id).await?;
                    return Err(e);
                }
            },
            None => Vec::new(),
        };
        let several = !further.is_empty();
        let series_of = |index: usize, series: &pentascope_tiff::Series| {
            several.then(|| SeriesOfFile {
                first: id,
                index: index as u64,
                name: series.name.clone(),
                kind: series.kind,
            })
        };
        let record = self.record_of(id, &owner, &file, &ingested, series_of(0, &ingested.series));
        let siblings: Vec<(ImageRecord, Ingested)> = further
            .into_iter()
            .enumerate()
            .map(|(k, (sibling, staged))| {
                let mut catalogue = file.catalogue.clone();
                catalogue.name = sibling_name(&catalogue.name, k + 1, &staged.series);
                let arrived = Arrived {
                    name: file.name.clone(),
                    byte_size: file.byte_size,
                    catalogue,
                };
                let series = series_of(k + 1, &staged.series);
                (
                    self.record_of(sibling, &owner, &arrived, &staged, series),
                    staged,
                )
            })
            .collect();
        let discard_siblings = |siblings: Vec<(ImageRecord, Ingested)>| {
            self.discard_staged(siblings.into_iter().map(|(r, s)| (r.id, s)).collect())
        };
        if let Some(original) = &ingested.series.original_metadata {
            if let Err(e) = self
                .images
                .put_original_metadata(id, original.format, &original.text)
                .await
            {
                abort(ingested.writer).await;
                self.images.discard(id).await?;
                discard_siblings(siblings).await;
                return Err(e.into());
            }
        }
        if let Err(e) = self.publish(ingested.writer, &record).await {
            discard_siblings(siblings).await;
            return Err(e);
        }
        let mut published = vec![id];
        let mut pending = siblings.into_iter();
        while let Some((sibling, staged)) = pending.next() {
            if let Err(e) = self.publish(staged.writer, &sibling).await {
                discard_siblings(pending.collect()).await;
                self.unpublish(&published).await;
                return Err(e);
            }
            published.push(sibling.id);
        }
        crate::monitoring::ingested(record.byte_size);
        tracing::info!(%id, shape = ?record.shape.to_array(), dtype = %record.dtype,
            series = published.len(), "image ingested");
        Ok(record)
    }

    /// The record of staged image `id` read from `file`.
    fn record_of(
        &self,
        id: ImageId,
        owner: &Option<String>,
        file: &Arrived,
        ingested: &Ingested,
        series: Option<SeriesOfFile>,
    ) -> ImageRecord {
        let staged = &ingested.series;
        let mut warnings = staged.warnings.clone();
        let catalogue = self.config.catalogue.with_file_notes(
            file.catalogue.clone(),
            &staged.notes,
            &mut warnings,
        );
        ImageRecord {
            id,
            kind: ImageKind::Upload,
            source_image_id: None,
            original_filename: Some(file.name.clone()),
            byte_size: file.byte_size,
            created_at: now_rfc3339(),
            dtype: staged.dtype,
            shape: staged.shape,
            flavour: staged.flavour,
            details: ImageDetails {
                source_axes: staged.source_axes.clone(),
                channel_names: staged.channel_names.clone(),
                physical_sizes: staged.physical_sizes.clone(),
                acquisition: staged.acquisition.clone(),
                rendering: Vec::new(),
                warnings,
                chunk_shape: ingested.writer.layout().chunk_shape(),
                pca: None,
                series,
                levels_from_file: ingested.levels_from_file.clone(),
                segmented: None,
            },
            statistics: ingested.statistics.clone(),
            owner: owner.clone(),
            public: false,
            catalogue,
        }
    }

    /// Stages every series of `tiff` after its first, each as an image of
    /// its own with a reserved id; on any failure, none stays staged.
    async fn stage_further_series(
        &self,
        tiff: TiffFile,
        name: &str,
        cancel: &Cancel,
    ) -> Result<Vec<(ImageId, Ingested)>, AppError> {
        let tiff = Arc::new(tiff);
        let mut staged: Vec<(ImageId, Ingested)> = Vec::new();
        for index in 1..tiff.all_series().len() {
            let outcome = match self.images.reserve(ImageKind::Upload).await {
                Ok(id) => {
                    let (pixels, tiff, observed) =
                        (self.pixels.clone(), tiff.clone(), cancel.clone());
                    let compression = self.config.compression;
                    let name = name.to_string();
                    let stored = blocking(move || {
                        Ok(ingest_series(
                            &*pixels,
                            id,
                            &name,
                            compression,
                            (&*tiff, index),
                            &|_, _| {},
                            &observed,
                        )?)
                    })
                    .await;
                    match stored {
                        Ok(ingested) => Ok((id, ingested)),
                        Err(e) => {
                            let _ = self.images.discard(id).await;
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok(one) => staged.push(one),
                Err(e) => {
                    self.discard_staged(staged).await;
                    return Err(e);
                }
            }
        }
        Ok(staged)
    }

    /// Throws staged images away with their reserved ids.
    async fn discard_staged(&self, staged: Vec<(ImageId, Ingested)>) {
        for (id, ingested) in staged {
            abort(ingested.writer).await;
            let _ = self.images.discard(id).await;
        }
    }

    /// Removes images just published (records, then pixels), when a later
    /// series of their file could not be.
    async fn unpublish(&self, ids: &[ImageId]) {
        for id in ids.iter().copied() {
            let _ = self.images.delete(id).await;
            let pixels = self.pixels.clone();
            let _ = blocking(move || Ok(pixels.delete(id)?)).await;
        }
    }

    /// The metadata text of image `id`'s file, as written, with its format
    /// (`ome-xml`, `imagej`, `micromanager`, `scanimage` or `description`).
    pub async fn original_metadata(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(String, String), AppError> {
        let record = self.image(caller, id).await?;
        self.images
            .original_metadata(record.id)
            .await?
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "{}'s file carried no metadata text (OME-XML, ImageJ or ScanImage \
                     description)",
                    record.id
                ))
            })
    }

    /// Commits staged pixels and publishes the record, undoing the pixels if
    /// the database refuses.
    pub(crate) async fn publish(
        &self,
        writer: Box<dyn PixelWriter>,
        record: &ImageRecord,
    ) -> Result<(), AppError> {
        let id = record.id;
        if let Err(e) = blocking(move || Ok(writer.commit()?)).await {
            self.images.discard(id).await?;
            return Err(e);
        }
        if let Err(e) = self.images.publish(record).await {
            let pixels = self.pixels.clone();
            let _ = blocking(move || Ok(pixels.delete(id)?)).await;
            let _ = self.images.discard(id).await;
            return Err(e.into());
        }
        Ok(())
    }
}

/// Throws staged pixels away on the blocking pool: backends may block
/// (S3 deletes), which the async runtime must not.
async fn abort(writer: Box<dyn PixelWriter>) {
    let _ = blocking(move || {
        writer.abort();
        Ok(())
    })
    .await;
}

/// The catalogue name of series `index` of a file whose first image is
/// named `name`: the series' own name, or its kind and place.
fn sibling_name(name: &str, index: usize, series: &pentascope_tiff::Series) -> String {
    if series.name.is_empty() {
        format!("{name} [{} {index}]", series.kind.as_str())
    } else {
        format!("{name} [{}]", series.name)
    }
}
