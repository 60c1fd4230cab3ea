//! A whole image as one file, streamed: a header, then the samples band by
//! band, read from the store only as fast as the client takes them. Server
//! memory stays at a few bands whatever the image's size; the stream stops
//! when the client leaves.

use std::sync::Arc;

use bytes::Bytes;
use pentascope_core::render::npy_header;
use pentascope_core::{CoreError, Limit, PlaneIndex};
use pentascope_store::ImageRecord;
use pentascope_tiff::writer::{BigTiff, OmeMetadata, OmeTiffLayout};
use pentascope_tiff::FileNotes;
use tokio::sync::mpsc;

use crate::access::Caller;
use crate::app::App;
use crate::error::AppError;
use crate::images::open_pixels;

/// Bands sent ahead of the client.
const BANDS_AHEAD: usize = 2;
/// Bytes of JSON text sent at a time.
const JSON_PIECE: usize = 1 << 20;

/// File formats an image can be exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// NumPy `.npy` of the whole array in `TZCYX` order.
    Npy,
    /// OME-TIFF (BigTIFF when over 4 GiB) with the metadata pentascope
    /// holds: channel names, physical sizes.
    OmeTiff,
}

impl ExportFormat {
    /// The format a `format=` value names.
    pub fn parse(name: &str) -> Option<ExportFormat> {
        match name {
            "npy" => Some(ExportFormat::Npy),
            "ome-tiff" => Some(ExportFormat::OmeTiff),
            _ => None,
        }
    }
}

/// An export under way.
pub struct Export {
    /// Its media type.
    pub content_type: &'static str,
    /// A file name for it.
    pub filename: String,
    /// Its exact size in bytes.
    pub length: u64,
    /// The file's bytes, in order; an error ends the stream.
    pub chunks: mpsc::Receiver<Result<Bytes, AppError>>,
}

impl App {
    /// Starts streaming image `id` as `format`.
    pub async fn export(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        format: ExportFormat,
    ) -> Result<Export, AppError> {
        let record = self.image(caller, id).await?;
        let s = record.shape;
        let data_bytes = s
            .total_samples()
            .checked_mul(record.dtype.size() as u64)
            .ok_or_else(|| {
                CoreError::too_large(
                    Limit::Fixed,
                    format!("{} is too large to export", record.id),
                )
            })?;
        let (header, content_type, extension) = match format {
            ExportFormat::Npy => (
                npy_header(&s.to_array(), record.dtype),
                "application/octet-stream",
                "npy",
            ),
            ExportFormat::OmeTiff => {
                // the samples follow in the same TZC plane order as .npy's
                let layout =
                    OmeTiffLayout::plan(s, record.dtype, &ome_metadata(&record), BigTiff::Auto)?;
                (layout.header(), "image/tiff", "ome.tif")
            }
        };
        let length = header.len() as u64 + data_bytes;
        let (tx, rx) = mpsc::channel(BANDS_AHEAD);
        let pixels = self.pixels.clone();
        let filename = format!("{}.{extension}", record.id);
        tokio::task::spawn_blocking(move || {
            if tx.blocking_send(Ok(Bytes::from(header))).is_err() {
                return;
            }
            if let Err(e) = send_samples(&*pixels, &record, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(Export {
            content_type,
            filename,
            length,
            chunks: rx,
        })
    }
}

impl App {
    /// The scores of a PCA scores image as the JSON array `pca_result`
    /// holds (one row per pixel in T, Z, Y, X order, one column per
    /// component), streamed band by band.
    pub fn pca_rows_json(
        self: &Arc<Self>,
        scores: ImageRecord,
    ) -> mpsc::Receiver<Result<Bytes, AppError>> {
        let (tx, rx) = mpsc::channel(BANDS_AHEAD);
        let pixels = self.pixels.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = send_rows_json(&*pixels, &scores, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }
}

/// Sends `[[s0, s1, …], …]`, one row per pixel; stops quietly when the
/// receiver is gone.
fn send_rows_json(
    pixels: &dyn pentascope_store::pixels::PixelStore,
    scores: &ImageRecord,
    tx: &mpsc::Sender<Result<Bytes, AppError>>,
) -> Result<(), AppError> {
    let reader = open_pixels(pixels, scores)?;
    let layout = *reader.layout();
    let s = layout.shape;
    let k = s.c as usize;
    let mut first = true;
    let mut components: Vec<Vec<f32>> = vec![Vec::new(); k];
    for t in 0..s.t {
        for z in 0..s.z {
            for rows in layout.bands() {
                let n = ((rows.end - rows.start) * s.x) as usize;
                for (c, values) in components.iter_mut().enumerate() {
                    values.resize(n, 0.0);
                    reader.read_rows(
                        PlaneIndex::new(t, z, c as u64),
                        rows.clone(),
                        bytemuck::cast_slice_mut(values),
                    )?;
                }
                // sent in pieces: a band's text is ~12 bytes per score, far
                // more than its samples
                let mut text = Vec::with_capacity(JSON_PIECE + 256);
                for i in 0..n {
                    if text.len() >= JSON_PIECE {
                        let piece =
                            std::mem::replace(&mut text, Vec::with_capacity(JSON_PIECE + 256));
                        if tx.blocking_send(Ok(Bytes::from(piece))).is_err() {
                            return Ok(());
                        }
                    }
                    text.push(if first { b'[' } else { b',' });
                    first = false;
                    text.push(b'[');
                    for (c, values) in components.iter().enumerate() {
                        if c > 0 {
                            text.push(b',');
                        }
                        serde_json::to_writer(&mut text, &values[i])
                            .map_err(|e| AppError::Internal(e.to_string()))?;
                    }
                    text.push(b']');
                }
                if tx.blocking_send(Ok(Bytes::from(text))).is_err() {
                    return Ok(());
                }
            }
        }
    }
    let end: &'static [u8] = if first { b"[]" } else { b"]" };
    let _ = tx.blocking_send(Ok(Bytes::from_static(end)));
    Ok(())
}

/// What an OME-TIFF says of `record`: one name per channel (empty where
/// the record has none), the physical sizes, the image's name,
/// description, tags and annotations.
fn ome_metadata(record: &ImageRecord) -> OmeMetadata {
    let names = &record.details.channel_names;
    let entry = &record.catalogue;
    OmeMetadata {
        name: entry.name.clone(),
        channel_names: (0..record.shape.c as usize)
            .map(|c| names.get(c).cloned().unwrap_or_default())
            .collect(),
        physical_sizes: record.details.physical_sizes.clone(),
        notes: FileNotes {
            description: Some(entry.description.clone()).filter(|d| !d.is_empty()),
            tags: entry.tags.clone(),
            annotations: entry.annotations.clone(),
        },
    }
}

/// Sends every plane in `TZCYX` order, band by band, as little-endian
/// samples; stops quietly when the receiver is gone (the client left).
fn send_samples(
    pixels: &dyn pentascope_store::pixels::PixelStore,
    record: &ImageRecord,
    tx: &mpsc::Sender<Result<Bytes, AppError>>,
) -> Result<(), AppError> {
    let reader = open_pixels(pixels, record)?;
    let layout = *reader.layout();
    let s = layout.shape;
    let size = layout.dtype.size() as u64;
    for t in 0..s.t {
        for z in 0..s.z {
            for c in 0..s.c {
                for rows in layout.bands() {
                    let mut band = vec![0u8; ((rows.end - rows.start) * s.x * size) as usize];
                    reader.read_rows(PlaneIndex::new(t, z, c), rows, &mut band)?;
                    if cfg!(target_endian = "big") {
                        for sample in band.chunks_exact_mut(size as usize) {
                            sample.reverse();
                        }
                    }
                    if tx.blocking_send(Ok(Bytes::from(band))).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}
