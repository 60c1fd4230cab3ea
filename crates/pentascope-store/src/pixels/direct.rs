//! Whole subchunks read and decoded here rather than by zarrs: a region
//! made of whole subchunks (a plane, a band of rows, a tile: what
//! statistics, PCA, slices, projections and tiles read) is read one chunk
//! row at a time: a chunk the region covers as one stored chunk, a shard it
//! covers in part as its index and the subchunks under the region (ranged
//! reads). Each shard index and each subchunk's CRC32C is checked, and
//! each subchunk is decoded into a buffer kept by the decoding thread, then
//! copied once into place. zarrs' general path, kept for regions that cut
//! subchunks and for codecs not listed here, zeroes each decoded
//! subchunk's buffer and copies it twice more, through index iterators
//! that cost as much as the copies (BENCHMARKS.md, tenth session).
//!
//! The chunk layouts read here are the ones pentascope writes: a regular
//! grid of `1 × 1 × 1 × rows × columns` chunks, optionally shards (index
//! of little-endian offsets and sizes with its CRC32C, at either end), over
//! little-endian samples, then any of CRC32C, blosc and zstd.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use rayon::prelude::*;
use serde_json::Value;
use zarrs::array::codec::api::{BytesRepresentation, BytesToBytesCodecTraits, Codec, CodecOptions};
use zarrs::array::Array;
use zarrs::metadata::v3::MetadataV3;
use zarrs::storage::{byte_range::ByteRange, ReadableStorageTraits, StorageError};

use super::blosc::{decode_frame_into, decode_frame_into_rows, RowsOut};

/// Decoded subchunks up to this size are decoded into a buffer the thread
/// keeps (a 512 × 512 subchunk of 8-byte samples); larger ones, only in
/// arrays written before shards, into a buffer of their own.
const KEPT_BUFFER: usize = 2 << 20;

thread_local! {
    /// The last subchunk decoded on this thread: reused, so that decoding
    /// neither allocates nor zeroes.
    static DECODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Why a whole-chunk read failed.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The store failed, or a chunk that must exist does not.
    Storage(StorageError),
    /// A stored chunk does not decode: `chunk` names its key.
    Corrupt { chunk: String, what: String },
}

/// Where a shard keeps its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexAt {
    Start,
    End,
}

/// A bytes-to-bytes codec, undone in [`ChunkCodecs::decode_subchunk`].
#[derive(Debug)]
enum Step {
    /// Checked and stripped here.
    Crc32c,
    /// Decoded by [`decode_frame_into`] where it can, else by the codec.
    Blosc(Arc<dyn BytesToBytesCodecTraits>),
    /// Decoded by the codec (zstd).
    Other(Arc<dyn BytesToBytesCodecTraits>),
}

/// How one array's chunks are laid out and encoded, when this module can
/// decode them.
#[derive(Debug)]
pub(super) struct ChunkCodecs {
    /// `[rows, columns]` of a chunk (a shard when `index` is set).
    chunk: [u64; 2],
    /// `[rows, columns]` of a subchunk: the chunk itself when not sharded.
    sub: [u64; 2],
    /// Where a shard's index lies; `None` when chunks are not shards.
    index: Option<IndexAt>,
    /// The bytes-to-bytes codecs in the order they are undone, each with
    /// the size it decodes to.
    steps: Vec<(Step, usize)>,
    /// Bytes of a sample.
    sample: usize,
}

impl ChunkCodecs {
    /// The codecs of `array` (of `sample`-byte samples), if this module
    /// decodes them.
    pub(super) fn of<S: ?Sized>(array: &Array<S>, sample: usize) -> Option<ChunkCodecs> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let metadata = serde_json::to_value(array.metadata()).ok()?;
        let grid = &metadata["chunk_grid"];
        if grid["name"] != "regular" {
            return None;
        }
        let chunk = plane_shape(&grid["configuration"]["chunk_shape"])?;
        let codecs = metadata["codecs"].as_array()?;
        let (index, sub, inner) = match &codecs[..] {
            [sharding] if sharding["name"] == "sharding_indexed" => {
                let configuration = &sharding["configuration"];
                let sub = plane_shape(&configuration["chunk_shape"])?;
                if chunk[0] % sub[0] != 0 || chunk[1] % sub[1] != 0 {
                    return None;
                }
                // the index's size: 16 bytes a subchunk, within memory
                let entries = (chunk[0] / sub[0]).checked_mul(chunk[1] / sub[1])?;
                usize::try_from(entries.checked_mul(16)?.checked_add(4)?).ok()?;
                let index_codecs = configuration["index_codecs"].as_array()?;
                let [bytes, crc] = &index_codecs[..] else {
                    return None;
                };
                if !little_endian_bytes(bytes) || crc["name"] != "crc32c" {
                    return None;
                }
                let index = match configuration["index_location"].as_str() {
                    None | Some("end") => IndexAt::End,
                    Some("start") => IndexAt::Start,
                    Some(_) => return None,
                };
                (Some(index), sub, configuration["codecs"].as_array()?)
            }
            _ => (None, chunk, codecs),
        };
        let (bytes, bytes_to_bytes) = inner.split_first()?;
        if !little_endian_bytes(bytes) {
            return None;
        }
        let subchunk =
            usize::try_from(sub[0].checked_mul(sub[1])?.checked_mul(sample as u64)?).ok()?;
        // sizes in the order written: each CRC32C appends 4 bytes
        let mut size = subchunk;
        let mut steps = Vec::with_capacity(bytes_to_bytes.len());
        for codec in bytes_to_bytes {
            let step = match codec["name"].as_str()? {
                "crc32c" => Step::Crc32c,
                name @ ("blosc" | "zstd") => {
                    let metadata: MetadataV3 = serde_json::from_value(codec.clone()).ok()?;
                    let Codec::BytesToBytes(codec) = Codec::from_metadata(&metadata).ok()? else {
                        return None;
                    };
                    if name == "blosc" {
                        Step::Blosc(codec)
                    } else {
                        Step::Other(codec)
                    }
                }
                _ => return None,
            };
            let decoded = size;
            if matches!(step, Step::Crc32c) {
                size = size.checked_add(4)?;
            }
            steps.push((step, decoded));
        }
        steps.reverse();
        Some(ChunkCodecs {
            chunk,
            sub,
            index,
            steps,
            sample,
        })
    }

    /// Reads `rows` × `columns` of the plane at leading indices `lead` of
    /// `array` into `out` (exactly the region's bytes) when the region is
    /// made of whole subchunks (or subchunks cut only by the array's edge);
    /// `Ok(false)`, with nothing read, when it is not. A chunk the region
    /// covers is read whole; of a shard it covers in part, the index and
    /// the subchunks under the region are read (a band of a plane, a tile).
    pub(super) fn read_whole_subchunks<S>(
        &self,
        array: &Array<S>,
        lead: [u64; 3],
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [u8],
    ) -> Result<bool, ReadError>
    where
        S: ReadableStorageTraits + ?Sized + 'static,
    {
        let shape = array.shape();
        let [height, width] = [shape[3], shape[4]];
        let [chunk_rows, chunk_columns] = self.chunk;
        let [sub_rows, sub_columns] = self.sub;
        let whole = |r: &Range<u64>, side: u64, end: u64| {
            r.start < r.end
                && r.end <= end
                && r.start.is_multiple_of(side)
                && (r.end.is_multiple_of(side) || r.end == end)
        };
        if !whole(&rows, sub_rows, height) || !whole(&columns, sub_columns, width) {
            return Ok(false);
        }
        let row_bytes = (columns.end - columns.start) as usize * self.sample;
        if out.len() != (rows.end - rows.start) as usize * row_bytes {
            return Ok(false);
        }
        let chunk_columns_range =
            columns.start / chunk_columns..columns.end.div_ceil(chunk_columns);
        let sub_row_bytes = (sub_rows as usize).saturating_mul(row_bytes);
        // one row of chunks at a time: only its stored bytes are held
        let mut rest = out;
        let mut y = rows.start;
        while y < rows.end {
            let chunk_row = y / chunk_rows;
            let chunk_top = chunk_row * chunk_rows;
            let band_end = chunk_top.saturating_add(chunk_rows).min(rows.end);
            let (band, after) =
                std::mem::take(&mut rest).split_at_mut((band_end - y) as usize * row_bytes);
            rest = after;
            let first_sub_row = (y - chunk_top) / sub_rows;
            let sub_row_range = first_sub_row..(band_end - chunk_top).div_ceil(sub_rows);
            let chunks = chunk_columns_range
                .clone()
                .into_par_iter()
                .map(|chunk_column| {
                    let left = chunk_column * chunk_columns;
                    let right = columns.end.min(left.saturating_add(chunk_columns));
                    let sub_columns_range = (columns.start.max(left) - left) / sub_columns
                        ..(right - left).div_ceil(sub_columns);
                    let indices = [lead[0], lead[1], lead[2], chunk_row, chunk_column];
                    let chunk = self.fetch(array, &indices, &sub_row_range, &sub_columns_range)?;
                    Ok((chunk, left, right, sub_columns_range))
                })
                .collect::<Result<Vec<_>, ReadError>>()?;
            band.par_chunks_mut(sub_row_bytes)
                .enumerate()
                .try_for_each(|(i, rows_out)| {
                    let sub_row = first_sub_row + i as u64;
                    for (chunk, left, right, sub_columns_range) in &chunks {
                        for sub_column in sub_columns_range.clone() {
                            let x = left + sub_column * sub_columns;
                            let at = (x - columns.start) as usize * self.sample;
                            let width = (right - x).min(sub_columns) as usize * self.sample;
                            self.put_subchunk(
                                array,
                                chunk,
                                [sub_row, sub_column],
                                at,
                                width,
                                row_bytes,
                                rows_out,
                            )?;
                        }
                    }
                    Ok(())
                })?;
            y = band_end;
        }
        Ok(true)
    }

    /// Chunk `indices` of `array` as stored: the whole chunk, with its
    /// shard index checked, when the region covers it (`sub_rows` ×
    /// `sub_columns` are all its subchunks); else the index and those
    /// subchunks alone.
    fn fetch<S>(
        &self,
        array: &Array<S>,
        indices: &[u64; 5],
        sub_rows: &Range<u64>,
        sub_columns: &Range<u64>,
    ) -> Result<StoredChunk, ReadError>
    where
        S: ReadableStorageTraits + ?Sized + 'static,
    {
        let key = array.chunk_key(indices);
        let storage = array.storage();
        let [per_column, per_row] = self.subchunks_per_chunk();
        let corrupt = |what: String| ReadError::Corrupt {
            chunk: key.to_string(),
            what,
        };
        let covered = sub_rows.start == 0
            && sub_rows.end >= per_column
            && sub_columns.start == 0
            && sub_columns.end >= per_row;
        let stored = match self.index {
            Some(at) if !covered => {
                let Some(len) = storage.size_key(&key).map_err(ReadError::Storage)? else {
                    return Ok(StoredChunk {
                        key: key.to_string(),
                        stored: Stored::Absent,
                    });
                };
                // `ChunkCodecs::of` checked that the index's size fits
                let index_len = (per_column * per_row * 16 + 4).min(len);
                let range = match at {
                    IndexAt::Start => ByteRange::FromStart(0, Some(index_len)),
                    IndexAt::End => ByteRange::Suffix(index_len),
                };
                let index_bytes = storage
                    .get_partial(&key, range)
                    .map_err(ReadError::Storage)?
                    .ok_or_else(|| corrupt("was removed while it was read".into()))?;
                let index =
                    index_entries(&index_bytes, len, [per_column, per_row]).map_err(corrupt)?;
                let mut wanted = Vec::new();
                for sub_row in sub_rows.clone() {
                    for sub_column in sub_columns.clone() {
                        let n = (sub_row * per_row + sub_column) as usize;
                        let [offset, size] = index[n];
                        if offset != u64::MAX || size != u64::MAX {
                            wanted.push((n, ByteRange::FromStart(offset, Some(size))));
                        }
                    }
                }
                let mut pieces = vec![None; index.len()];
                if !wanted.is_empty() {
                    let read = storage
                        .get_partial_many(&key, Box::new(wanted.iter().map(|(_, r)| *r)))
                        .map_err(ReadError::Storage)?
                        .ok_or_else(|| corrupt("was removed while it was read".into()))?;
                    for ((n, _), bytes) in wanted.iter().zip(read) {
                        pieces[*n] = Some(bytes.map_err(ReadError::Storage)?);
                    }
                }
                Stored::Pieces(pieces)
            }
            _ => match storage.get(&key).map_err(ReadError::Storage)? {
                None => Stored::Absent,
                Some(bytes) => {
                    let index = match self.index {
                        Some(at) => {
                            Some(shard_index(&bytes, [per_column, per_row], at).map_err(corrupt)?)
                        }
                        None => None,
                    };
                    Stored::Whole { bytes, index }
                }
            },
        };
        Ok(StoredChunk {
            key: key.to_string(),
            stored,
        })
    }

    /// Subchunks in a chunk: `[rows, columns]` of them, row-major.
    fn subchunks_per_chunk(&self) -> [u64; 2] {
        [self.chunk[0] / self.sub[0], self.chunk[1] / self.sub[1]]
    }

    /// Decodes subchunk `[row, column]` of `chunk` into `rows_out` (whole
    /// rows of the region, `row_bytes` each), `width` bytes from byte `at`
    /// of each row.
    #[allow(clippy::too_many_arguments)]
    fn put_subchunk<S: ?Sized>(
        &self,
        array: &Array<S>,
        chunk: &StoredChunk,
        [sub_row, sub_column]: [u64; 2],
        at: usize,
        width: usize,
        row_bytes: usize,
        rows_out: &mut [u8],
    ) -> Result<(), ReadError> {
        let [_, per_row] = self.subchunks_per_chunk();
        let Some(encoded) = chunk.subchunk((sub_row * per_row + sub_column) as usize) else {
            fill(
                array.fill_value().as_ne_bytes(),
                rows_out,
                row_bytes,
                at,
                width,
            );
            return Ok(());
        };
        let rows = RowsOut {
            out: rows_out,
            stride: row_bytes,
            at,
            width,
        };
        self.decode_subchunk(encoded, rows)
            .map_err(|what| ReadError::Corrupt {
                chunk: chunk.key.clone(),
                what,
            })
    }

    /// Undoes the bytes-to-bytes codecs of one stored subchunk and writes
    /// the first `rows.width` bytes of each of its rows into `rows`. A
    /// blosc frame of bit-shuffled whole rows is unshuffled straight into
    /// place; any other is decoded whole first.
    fn decode_subchunk(&self, encoded: &[u8], rows: RowsOut<'_>) -> Result<(), String> {
        let [sub_rows, sub_columns] = self.sub.map(|n| n as usize);
        let sub_row_bytes = sub_columns * self.sample;
        let subchunk = sub_rows * sub_row_bytes;
        let RowsOut {
            out,
            stride,
            at,
            width,
        } = rows;
        let put = |decoded: &[u8], out: &mut [u8]| {
            for (dst, src) in out
                .chunks_mut(stride)
                .zip(decoded.chunks_exact(sub_row_bytes))
            {
                dst[at..at + width].copy_from_slice(&src[..width]);
            }
        };
        // every row of the subchunk, whole, wanted: it can be decoded into place
        let in_place = width == sub_row_bytes && out.len() == sub_rows * stride;
        let mut data = Cow::Borrowed(encoded);
        let last = self.steps.len().saturating_sub(1);
        for (i, (step, size)) in self.steps.iter().enumerate() {
            let size = *size;
            data = match step {
                Step::Crc32c => strip_crc32c(data)?,
                Step::Blosc(codec) if i == last && size <= KEPT_BUFFER => {
                    if in_place {
                        let rows = RowsOut {
                            out: &mut *out,
                            stride,
                            at,
                            width,
                        };
                        if decode_frame_into_rows(&data, rows).map_err(|e| format!("blosc: {e}"))? {
                            return Ok(());
                        }
                    }
                    return DECODED.with_borrow_mut(|buffer| {
                        if buffer.len() < size {
                            buffer.resize(size, 0);
                        }
                        let into = &mut buffer[..size];
                        if decode_frame_into(&data, into).map_err(|e| format!("blosc: {e}"))? {
                            put(into, out);
                        } else {
                            let decoded = decode_by(codec, data, size)?;
                            put(&decoded, out);
                        }
                        Ok(())
                    });
                }
                Step::Blosc(codec) | Step::Other(codec) => decode_by(codec, data, size)?,
            };
        }
        if data.len() != subchunk {
            return Err(format!(
                "decodes to {} bytes, not a subchunk's {subchunk}",
                data.len()
            ));
        }
        put(&data, out);
        Ok(())
    }
}

/// A chunk as stored, or what of it a region needs.
struct StoredChunk {
    /// Its key, for errors.
    key: String,
    stored: Stored,
}

/// What was read of a chunk.
enum Stored {
    /// Not stored: fill values (the store reports a chunk that must
    /// exist).
    Absent,
    /// All its bytes; a shard's `[offset, size]` of each subchunk, checked
    /// to lie within them (or to be `u64::MAX` twice: not stored).
    Whole {
        bytes: Bytes,
        index: Option<Vec<[u64; 2]>>,
    },
    /// The subchunks of a shard under the region, by number (`None`: not
    /// stored, or not under the region).
    Pieces(Vec<Option<Bytes>>),
}

impl StoredChunk {
    /// The stored bytes of subchunk `n` (the whole chunk when it is not a
    /// shard); `None` for fill values.
    fn subchunk(&self, n: usize) -> Option<&[u8]> {
        match &self.stored {
            Stored::Absent => None,
            Stored::Whole { bytes, index: None } => Some(bytes),
            Stored::Whole {
                bytes,
                index: Some(index),
            } => {
                let [offset, size] = index[n];
                (offset != u64::MAX || size != u64::MAX)
                    .then(|| &bytes[offset as usize..(offset + size) as usize])
            }
            Stored::Pieces(pieces) => pieces[n].as_deref(),
        }
    }
}

/// `[rows, columns]` of a 5D chunk shape whose leading sides are 1.
fn plane_shape(shape: &Value) -> Option<[u64; 2]> {
    let shape = shape.as_array()?;
    let sides: Vec<u64> = shape.iter().map(Value::as_u64).collect::<Option<_>>()?;
    match sides[..] {
        [1, 1, 1, rows, columns] if rows > 0 && columns > 0 => Some([rows, columns]),
        _ => None,
    }
}

/// Whether `codec` is the `bytes` codec writing little-endian samples (or
/// single bytes, which have no endianness).
fn little_endian_bytes(codec: &Value) -> bool {
    codec["name"] == "bytes"
        && matches!(
            codec["configuration"]["endian"].as_str(),
            None | Some("little")
        )
}

/// The `[offset, size]` of each of a shard's `count` subchunks, from the
/// index at `at` of `shard`, its CRC32C checked and every entry within the
/// shard.
fn shard_index(shard: &[u8], count: [u64; 2], at: IndexAt) -> Result<Vec<[u64; 2]>, String> {
    // `ChunkCodecs::of` checked that the index's size fits in a `usize`
    let len = usize::try_from(count[0] * count[1] * 16 + 4).map_err(|e| e.to_string())?;
    let index = match at {
        _ if shard.len() < len => shard,
        IndexAt::Start => &shard[..len],
        IndexAt::End => &shard[shard.len() - len..],
    };
    index_entries(index, shard.len() as u64, count)
}

/// The entries of a shard index (`index`, of a shard of `shard_len`
/// bytes with `count` subchunks), its CRC32C checked and every entry
/// within the shard.
fn index_entries(index: &[u8], shard_len: u64, count: [u64; 2]) -> Result<Vec<[u64; 2]>, String> {
    let entries = usize::try_from(count[0] * count[1]).map_err(|e| e.to_string())?;
    let table = entries * 16;
    if index.len() != table + 4 {
        return Err(format!(
            "{shard_len} bytes cannot hold an index of {entries} subchunks"
        ));
    }
    let (table, crc) = index.split_at(table);
    if crc32c::crc32c(table).to_le_bytes() != crc {
        return Err("the shard index fails its CRC32C".into());
    }
    table
        .chunks_exact(16)
        .map(|entry| {
            let [offset, size] =
                [0, 8].map(|at| u64::from_le_bytes(entry[at..at + 8].try_into().expect("8 bytes")));
            let absent = offset == u64::MAX && size == u64::MAX;
            let within = offset
                .checked_add(size)
                .is_some_and(|end| end <= shard_len);
            if absent || within {
                Ok([offset, size])
            } else {
                Err(format!(
                    "the shard index places a subchunk at {offset} + {size}, outside its {shard_len} bytes"
                ))
            }
        })
        .collect()
}

/// `data` with its trailing CRC32C checked and removed.
fn strip_crc32c(data: Cow<'_, [u8]>) -> Result<Cow<'_, [u8]>, String> {
    let Some(len) = data.len().checked_sub(4) else {
        return Err(format!("{} bytes cannot hold a CRC32C", data.len()));
    };
    if crc32c::crc32c(&data[..len]).to_le_bytes() != data[len..] {
        return Err("fails its CRC32C".into());
    }
    Ok(match data {
        Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[..len]),
        Cow::Owned(mut bytes) => {
            bytes.truncate(len);
            Cow::Owned(bytes)
        }
    })
}

/// `data` decoded by `codec` to `size` bytes.
fn decode_by<'a>(
    codec: &Arc<dyn BytesToBytesCodecTraits>,
    data: Cow<'a, [u8]>,
    size: usize,
) -> Result<Cow<'a, [u8]>, String> {
    let decoded = codec
        .decode(
            data,
            &BytesRepresentation::FixedSize(size as u64),
            &CodecOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    if decoded.len() != size {
        return Err(format!("decodes to {} bytes, not {size}", decoded.len()));
    }
    Ok(decoded)
}

/// Fills `width` bytes from `at` of each row of `rows_out` with the
/// repeated `value`.
fn fill(value: &[u8], rows_out: &mut [u8], row_bytes: usize, at: usize, width: usize) {
    let zeros = value.iter().all(|&b| b == 0);
    for row in rows_out.chunks_mut(row_bytes) {
        let dst = &mut row[at..at + width];
        if zeros {
            dst.fill(0);
        } else {
            for (d, v) in dst.iter_mut().zip(value.iter().cycle()) {
                *d = *v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::local::{Durability, LocalStore};
    use crate::pixels::test_support::{camera_plane, every_compression, write_plane};
    use crate::pixels::{ArrayLayout, Compression, PixelStore};
    use crate::record::ImageId;
    use pentascope_core::{DType, PlaneIndex, Shape5};
    use zarrs::filesystem::FilesystemStore;

    /// Writes and publishes image `id` of one plane of `shape`: its pixels.
    fn write(store: &LocalStore, id: ImageId, shape: Shape5, compression: Compression) -> Vec<u16> {
        let pixels = camera_plane(shape.y, shape.x);
        let layout = ArrayLayout::for_image(shape, DType::U16);
        write_plane(store, id, layout, compression, &pixels);
        pixels
    }

    /// A zeroed buffer for `rows` × `columns` samples.
    fn buffer(rows: &Range<u64>, columns: &Range<u64>) -> Vec<u16> {
        vec![0u16; ((rows.end - rows.start) * (columns.end - columns.start)) as usize]
    }

    /// Rows and columns of `pixels` (`w` wide).
    fn region(pixels: &[u16], w: u64, rows: Range<u64>, columns: Range<u64>) -> Vec<u16> {
        rows.flat_map(|y| {
            pixels[(y * w + columns.start) as usize..(y * w + columns.end) as usize].to_vec()
        })
        .collect()
    }

    /// Level 0 of image `id` as zarrs opens it.
    fn array(dir: &std::path::Path, id: ImageId) -> Array<FilesystemStore> {
        super::super::blosc::register();
        let fs = Arc::new(FilesystemStore::new(LocalStore::published_path(dir, id)).unwrap());
        Array::open(fs, "/0").unwrap()
    }

    /// Every compression pentascope writes is read here, and regions of
    /// whole chunks (the plane, a band, the edge chunks) and of whole
    /// subchunks (bands and tiles within a shard, across shards) read what
    /// was written; a region that cuts a subchunk is left to zarrs.
    #[test]
    fn whole_subchunks_of_every_compression_read_what_was_written() {
        // 2 × 2 chunks of 2048², cut by the array's edge at 3000
        let (h, w) = (3000, 3000);
        let shape = Shape5::new(1, 1, 1, h, w);
        let layout = ArrayLayout::for_image(shape, DType::U16);
        assert_eq!([layout.chunk_y, layout.chunk_x], [2048, 2048]);
        for (n, compression) in every_compression().into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
            let id = ImageId(n as i64 + 1);
            let pixels = write(&store, id, shape, compression);
            let array = array(dir.path(), id);
            let codecs = ChunkCodecs::of(&array, 2)
                .unwrap_or_else(|| panic!("{compression:?} is read here"));
            for (rows, columns) in [
                (0..h, 0..w),
                (2048..h, 0..w),
                (2048..h, 2048..w),
                (0..2048, 2048..w),
                (512..1024, 0..w),
                (1536..2560, 512..2560),
                (2560..h, 2560..w),
                (0..512, 1024..1536),
            ] {
                let mut out = buffer(&rows, &columns);
                let read = codecs
                    .read_whole_subchunks(
                        &array,
                        [0, 0, 0],
                        rows.clone(),
                        columns.clone(),
                        bytemuck::cast_slice_mut(&mut out),
                    )
                    .unwrap();
                assert!(
                    read,
                    "{compression:?} {rows:?} {columns:?} is whole subchunks"
                );
                assert!(
                    out == region(&pixels, w, rows.clone(), columns.clone()),
                    "{compression:?} {rows:?} {columns:?}"
                );
            }
            let mut out = buffer(&(0..10), &(0..w));
            let cut = codecs
                .read_whole_subchunks(
                    &array,
                    [0, 0, 0],
                    0..10,
                    0..w,
                    bytemuck::cast_slice_mut(&mut out),
                )
                .unwrap();
            assert!(!cut, "a region that cuts subchunks is zarrs'");
            // and through the reader: whole subchunks here, the rest by zarrs
            let reader = store.open(id).unwrap();
            for (rows, columns) in [(0..h, 0..w), (1000..2100, 7..2999)] {
                let mut out = buffer(&rows, &columns);
                reader
                    .read_region(
                        0,
                        PlaneIndex::new(0, 0, 0),
                        rows.clone(),
                        columns.clone(),
                        bytemuck::cast_slice_mut(&mut out),
                    )
                    .unwrap();
                assert!(out == region(&pixels, w, rows, columns), "{compression:?}");
            }
        }
    }

    /// The one chunk file of a small image's plane, and the plane.
    fn one_chunk(
        dir: &std::path::Path,
        store: &LocalStore,
        id: ImageId,
    ) -> (std::path::PathBuf, Vec<u16>) {
        // one 1024² chunk: a shard of four 512² subchunks
        let pixels = write(
            store,
            id,
            Shape5::new(1, 1, 1, 1024, 1024),
            Compression::FAST_BITS,
        );
        let chunk = LocalStore::published_path(dir, id).join("0/c/0/0/0/0/0");
        assert!(chunk.is_file());
        (chunk, pixels)
    }

    /// Reads image `id`'s whole plane.
    fn read_plane(store: &LocalStore, id: ImageId) -> Result<Vec<u16>, crate::StoreError> {
        read_rows(store, id, 0..1024)
    }

    /// Reads `rows` of image `id`'s plane (1024 wide).
    fn read_rows(
        store: &LocalStore,
        id: ImageId,
        rows: Range<u64>,
    ) -> Result<Vec<u16>, crate::StoreError> {
        let reader = store.open(id)?;
        let mut out = buffer(&rows, &(0..1024));
        reader.read_region(
            0,
            PlaneIndex::new(0, 0, 0),
            rows,
            0..1024,
            bytemuck::cast_slice_mut(&mut out),
        )?;
        Ok(out)
    }

    /// The shard index of `shard` (4 entries at its end) replaced by
    /// `entries`, with a correct CRC32C.
    fn with_index(shard: &[u8], entries: [[u64; 2]; 4]) -> Vec<u8> {
        let mut out = shard[..shard.len() - 68].to_vec();
        let table: Vec<u8> = entries
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        out.extend_from_slice(&table);
        out.extend_from_slice(&crc32c::crc32c(&table).to_le_bytes());
        out
    }

    /// A subchunk the index marks as not stored reads as fill values.
    #[test]
    fn an_absent_subchunk_reads_as_fill_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
        let (chunk, pixels) = one_chunk(dir.path(), &store, ImageId(1));
        let shard = std::fs::read(&chunk).unwrap();
        let index = shard_index(&shard, [2, 2], IndexAt::End).unwrap();
        let entries = [index[0], [u64::MAX, u64::MAX], index[2], index[3]];
        std::fs::write(&chunk, with_index(&shard, entries)).unwrap();
        let out = read_plane(&store, ImageId(1)).unwrap();
        // through the index alone, the half holding the absent subchunk
        let top = read_rows(&store, ImageId(1), 0..512).unwrap();
        assert!(top == out[..512 * 1024]);
        for y in 0..1024 {
            let row = &out[y * 1024..(y + 1) * 1024];
            let want = &pixels[y * 1024..(y + 1) * 1024];
            if y < 512 {
                assert_eq!(row[..512], want[..512]);
                assert!(row[512..].iter().all(|&v| v == 0), "row {y}");
            } else {
                assert_eq!(row, want);
            }
        }
    }

    /// Damaged chunks are errors naming the chunk, never a panic or
    /// pixels: bytes changed anywhere (the CRC32Cs), truncations, an
    /// index placing subchunks outside the shard, a subchunk whose CRC32C
    /// holds but whose blosc frame is damaged.
    #[test]
    fn damaged_chunks_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
        let (chunk, pixels) = one_chunk(dir.path(), &store, ImageId(1));
        let shard = std::fs::read(&chunk).unwrap();
        let index = shard_index(&shard, [2, 2], IndexAt::End).unwrap();
        let mut damaged: Vec<Vec<u8>> = Vec::new();
        for at in (0..shard.len()).step_by(shard.len() / 97) {
            let mut bytes = shard.clone();
            bytes[at] ^= 0x10;
            damaged.push(bytes);
        }
        for len in [0, 3, 67, 68, 69, shard.len() / 2, shard.len() - 1] {
            damaged.push(shard[..len].to_vec());
        }
        let len = shard.len() as u64;
        for entry in [
            [len, 1],
            [0, len + 1],
            [u64::MAX, 1],
            [u64::MAX - 1, 2],
            [1, u64::MAX],
        ] {
            damaged.push(with_index(&shard, [entry, index[1], index[2], index[3]]));
        }
        // a subchunk's blosc header claims another size, its CRC32C fixed
        let [offset, size] = index[3].map(|v| v as usize);
        let mut bytes = shard.clone();
        bytes[offset + 4] ^= 0x01;
        let crc = crc32c::crc32c(&bytes[offset..offset + size - 4]).to_le_bytes();
        bytes[offset + size - 4..offset + size].copy_from_slice(&crc);
        damaged.push(bytes);
        for (n, bytes) in damaged.iter().enumerate() {
            std::fs::write(&chunk, bytes).unwrap();
            // every byte of a shard lies under a CRC32C
            match read_plane(&store, ImageId(1)) {
                Err(e) => assert!(e.to_string().contains("0/c/0/0/0/0/0"), "{n}: {e}"),
                Ok(_) => panic!("damage {n} read without an error"),
            }
            // half the shard, through its index: an error, or the pixels
            // where the damage lies in the other half
            match read_rows(&store, ImageId(1), 512..1024) {
                Err(e) => assert!(e.to_string().contains("0/c/0/0/0/0/0"), "{n}: {e}"),
                Ok(out) => assert!(out == pixels[512 * 1024..], "damage {n} read as pixels"),
            }
        }
        std::fs::write(&chunk, &shard).unwrap();
        assert!(read_plane(&store, ImageId(1)).unwrap() == pixels);
    }
}
