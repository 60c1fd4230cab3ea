//! Each image's OME-Zarr group, read-only, key by key (`/zarr/{id}/…`),
//! with HTTP byte ranges: what napari, zarr-python, vizarr and
//! neuroglancer open by URL. Stored images are served from the pixel store
//! as they are (chunks are not recompressed); derived images whose planes
//! are computed on request (PCA scores) are served with the pyramid and
//! the chunk grid a stored image of their shape and type has (its shards'
//! subchunks as chunks, uncompressed), each chunk computed when asked for.

use bytes::Bytes;
use std::ops::Range;

use pentascope_core::{dispatch_dtype, PlaneIndex, Sample, Shape5};
use pentascope_store::pixels::ngff::{group_json, plane_array_json};
use pentascope_store::pixels::{ArrayLayout, ImageAttributes, PixelReader};
use pentascope_store::{ImageRecord, StoreError};

use crate::app::{blocking, App};
use crate::error::AppError;
use crate::images::open_pixels;
use crate::render::omero_json;

/// A byte range as HTTP's `Range: bytes=` asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-`: from `a` to the end.
    From(u64),
    /// `a-b`: `a` to `b` inclusive.
    Between(u64, u64),
    /// `-n`: the last `n` bytes.
    Last(u64),
}

/// What a key request is answered with.
#[derive(Debug, Clone)]
pub enum ZarrAnswer {
    /// The bytes (all of them, or the range asked for).
    Bytes {
        /// The bytes (empty for `HEAD`).
        body: Bytes,
        /// The first and last byte sent, when a range was asked for.
        range: Option<(u64, u64)>,
        /// The key's whole size.
        total: u64,
        /// `application/json` for metadata, `application/octet-stream`
        /// for chunks.
        content_type: &'static str,
    },
    /// The range lies outside the key's `total` bytes.
    Unsatisfiable {
        /// The key's size.
        total: u64,
    },
}

/// The first and last byte of `range` within `total` bytes, if any.
fn resolve(range: ByteRange, total: u64) -> Option<(u64, u64)> {
    let (first, last) = match range {
        ByteRange::From(a) => (a, total.checked_sub(1)?),
        ByteRange::Between(a, b) => (a, b.min(total.checked_sub(1)?)),
        ByteRange::Last(0) => return None,
        ByteRange::Last(n) => (total.saturating_sub(n), total.checked_sub(1)?),
    };
    (first <= last && first < total).then_some((first, last))
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with("zarr.json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

impl App {
    /// Key `key` of `record`'s Zarr group (`record` as [`App::image`] gave
    /// it to its caller), or `range` of it; only its
    /// size with `head`.
    pub async fn zarr_key(
        &self,
        record: ImageRecord,
        key: &str,
        range: Option<ByteRange>,
        head: bool,
    ) -> Result<ZarrAnswer, AppError> {
        let missing = || {
            AppError::NotFound(format!(
                "{} has no Zarr key {key:?}; its group is zarr.json, <level>/zarr.json and \
                 chunks <level>/c/<t>/<c>/<z>/<row>/<column>",
                record.id
            ))
        };
        let computed = if key == "zarr.json" {
            Some(self.group_metadata(&record).await?)
        } else if record.details.pca.is_some() {
            Some(self.derived_key(&record, key).await?.ok_or_else(missing)?)
        } else {
            None
        };
        if let Some(body) = computed {
            let total = body.len() as u64;
            return Ok(match range.map(|r| resolve(r, total)) {
                Some(None) => ZarrAnswer::Unsatisfiable { total },
                Some(Some((a, b))) => ZarrAnswer::Bytes {
                    body: if head {
                        Bytes::new()
                    } else {
                        body.slice(a as usize..=b as usize)
                    },
                    range: Some((a, b)),
                    total,
                    content_type: content_type(key),
                },
                None => ZarrAnswer::Bytes {
                    body: if head { Bytes::new() } else { body },
                    range: None,
                    total,
                    content_type: content_type(key),
                },
            });
        }
        let (pixels, image, owned_key) = (self.pixels.clone(), record.id, key.to_string());
        let answer = blocking(move || {
            let Some(total) = pixels.key_size(image, &owned_key)? else {
                return Ok(None);
            };
            let span = match range.map(|r| resolve(r, total)) {
                Some(None) => return Ok(Some(ZarrAnswer::Unsatisfiable { total })),
                Some(Some(span)) => Some(span),
                None => None,
            };
            let (start, len) = span.map_or((0, total), |(a, b)| (a, b - a + 1));
            let body = if head || len == 0 {
                Bytes::new()
            } else {
                match pixels.read_key(image, &owned_key, start, len)? {
                    Some(body) => body,
                    None => return Ok(None),
                }
            };
            Ok(Some(ZarrAnswer::Bytes {
                body,
                range: span,
                total,
                content_type: content_type(&owned_key),
            }))
        })
        .await?;
        answer.ok_or_else(missing)
    }

    /// The group's `zarr.json`: as stored (or, for derived images, as it
    /// would be), with the image's current default look as NGFF's `omero`
    /// metadata.
    async fn group_metadata(&self, record: &ImageRecord) -> Result<Bytes, AppError> {
        let mut group = if record.details.pca.is_some() {
            group_json(
                &ImageAttributes {
                    name: record.id.to_string(),
                    channel_names: record.details.channel_names.clone(),
                    physical_sizes: record.details.physical_sizes.clone(),
                    downsample: Default::default(),
                    levels_from_file: Vec::new(),
                },
                ArrayLayout::for_image(record.shape, record.dtype).levels,
            )
        } else {
            let (pixels, id) = (self.pixels.clone(), record.id);
            let stored = blocking(move || {
                let size = pixels.key_size(id, "zarr.json")?.unwrap_or(0);
                Ok(pixels.read_key(id, "zarr.json", 0, size)?)
            })
            .await?
            .ok_or_else(|| StoreError::NotFound(record.id.to_string()))?;
            serde_json::from_slice(&stored)
                .map_err(|e| StoreError::Corrupt(format!("{}'s zarr.json: {e}", record.id)))?
        };
        group["attributes"]["ome"]["omero"] = omero_json(record);
        Ok(Bytes::from(group.to_string()))
    }

    /// A key of a derived image's group, computed: `<level>/zarr.json`
    /// or a chunk `<level>/c/<t>/<c>/<z>/<row>/<column>` of the chunk grid
    /// [`ArrayLayout::for_image`] gives its shape and type.
    async fn derived_key(
        &self,
        record: &ImageRecord,
        key: &str,
    ) -> Result<Option<Bytes>, AppError> {
        let s = record.shape;
        let layout = ArrayLayout::for_image(s, record.dtype);
        let Some((level, rest)) = key.split_once('/') else {
            return Ok(None);
        };
        let Some(level) = level
            .parse::<u32>()
            .ok()
            .filter(|k| *k <= layout.levels && k.to_string() == level)
        else {
            return Ok(None);
        };
        let [height, width] = layout.level_shape(level);
        let [chunk_rows, chunk_columns] = layout.level_subchunk(level);
        if rest == "zarr.json" {
            let shape = Shape5::new(s.t, s.z, s.c, height, width);
            return Ok(Some(Bytes::from(
                plane_array_json(shape, record.dtype, [chunk_rows, chunk_columns]).to_string(),
            )));
        }
        let Some(indices) = rest.strip_prefix("c/") else {
            return Ok(None);
        };
        let parts: Vec<u64> = match indices.split('/').map(str::parse).collect() {
            Ok(parts) => parts,
            Err(_) => return Ok(None),
        };
        let [t, c, z, row, column] = parts[..] else {
            return Ok(None);
        };
        let first_row = row.checked_mul(chunk_rows).filter(|r| *r < height);
        let first_column = column.checked_mul(chunk_columns).filter(|x| *x < width);
        let (Some(y0), Some(x0)) = (first_row, first_column) else {
            return Ok(None);
        };
        if t >= s.t || c >= s.c || z >= s.z {
            return Ok(None);
        }
        let rows = y0..(y0 + chunk_rows).min(height);
        let columns = x0..(x0 + chunk_columns).min(width);
        // the full-resolution pixels under the chunk (a strip of them at a
        // time for downsampled levels), its source's channels (as f64 at
        // most) and the chunk sent
        let under = ((rows.end - rows.start) * (columns.end - columns.start))
            .saturating_mul(1 << (2 * level))
            .min(s.y * s.x);
        let sources = record.details.pca.as_ref().map_or(1, |m| m.mean.len()) as u64;
        let _memory = self
            .render_share(
                under * (sources * 8 + 2 * record.dtype.size() as u64),
                &format!(
                    "a {chunk_rows}×{chunk_columns} chunk of level {level} of {}",
                    record.id
                ),
            )
            .await?;
        let (pixels, caches, reading) = (self.pixels.clone(), self.caches.clone(), record.clone());
        let id = record.id;
        let plane = PlaneIndex::new(t, z, c);
        let chunk = [chunk_rows, chunk_columns];
        let computed = self.on_render_thread(move || {
            let reader = caches.reader(id, || open_pixels(&*pixels, &reading))?;
            let dtype = reader.layout().dtype;
            Ok(dispatch_dtype!(dtype, T => chunk_bytes::<T>(&*reader, level, plane, rows, columns, chunk)?))
        })
        .await;
        match computed {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) => Err(self.unless_deleted(id, e).await),
        }
    }
}

/// One chunk (`[rows, columns]` samples, little-endian) of level `level`
/// of `plane` holding `rows` × `columns` of it: a chunk at the plane's
/// edge is filled out with zeros (the array's fill value), as Zarr stores
/// edge chunks whole.
fn chunk_bytes<T: Sample>(
    reader: &dyn PixelReader,
    level: u32,
    plane: PlaneIndex,
    rows: Range<u64>,
    columns: Range<u64>,
    [chunk_rows, chunk_columns]: [u64; 2],
) -> Result<Vec<u8>, AppError> {
    let width = (columns.end - columns.start) as usize;
    let mut region = vec![T::default(); (rows.end - rows.start) as usize * width];
    reader.read_region(
        level,
        plane,
        rows,
        columns,
        bytemuck::cast_slice_mut(&mut region),
    )?;
    if width as u64 == chunk_columns && region.len() as u64 == chunk_rows * chunk_columns {
        return Ok(little_endian::<T>(region));
    }
    let mut chunk = vec![T::default(); (chunk_rows * chunk_columns) as usize];
    for (to, from) in chunk
        .chunks_exact_mut(chunk_columns as usize)
        .zip(region.chunks_exact(width))
    {
        to[..width].copy_from_slice(from);
    }
    Ok(little_endian::<T>(chunk))
}

/// Samples as little-endian bytes.
fn little_endian<T: Sample>(samples: Vec<T>) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(&samples).to_vec()
    } else {
        samples
            .iter()
            .flat_map(|v| bytemuck::bytes_of(&v.swap_bytes()).to_vec())
            .collect()
    }
}
