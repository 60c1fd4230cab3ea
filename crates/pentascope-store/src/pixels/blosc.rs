//! Reading blosc chunks: zarrs' blosc codec, with LZ4 and zstd frames that
//! are bit-shuffled or not shuffled decoded here, so that bit shuffle is
//! undone by [`pentascope_core::bitshuffle`] (3.5–4 GB/s per core) rather
//! than by c-blosc's SSE2 routine (2.2 GB/s; BENCHMARKS.md, ninth session).
//!
//! The frame is blosc 1's (the one zarr-python, numcodecs, tensorstore and
//! c-blosc write): a 16-byte header, the offsets of its blocks, then each
//! block as one stream or, when split, one stream per byte of the sample,
//! each stream prefixed by its compressed size and stored raw when that
//! equals its decoded size. Anything else (byte shuffle, another
//! compressor, a newer format) goes to c-blosc as before, and encoding
//! always does. Every size and offset in a frame is checked against the
//! frame and the chunk's decoded size before it is used.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use zarrs::array::codec::api::{
    register_codec_v3, ArrayBytesRaw, BytesPartialDecoderTraits, BytesRepresentation,
    BytesToBytesCodecTraits, Codec, CodecError, CodecMetadataOptions, CodecOptions,
    CodecRuntimePluginV3, CodecTraits, CodecTraitsV3, PartialDecoderCapability,
    PartialEncoderCapability, RecommendedConcurrency,
};
use zarrs::array::codec::BloscCodec;
use zarrs::metadata::Configuration;
use zarrs::plugin::{ExtensionName, ZarrVersion};
use zarrs::storage::byte_range::{extract_byte_ranges, ByteRange, ByteRangeIterator};
use zarrs::storage::StorageError;

/// Makes every array opened afterwards decode its blosc chunks here.
pub(super) fn register() {
    static REGISTERED: LazyLock<()> = LazyLock::new(|| {
        register_codec_v3(CodecRuntimePluginV3::new(
            |name| name == "blosc",
            |metadata| match BloscCodec::create(metadata)? {
                Codec::BytesToBytes(inner) => {
                    Ok(Codec::BytesToBytes(Arc::new(BloscReader { inner })))
                }
                other => Ok(other),
            },
        ));
    });
    LazyLock::force(&REGISTERED);
}

/// zarrs' blosc codec `inner`, decoding through [`decode_frame`] where it
/// can.
pub(super) fn reading_here(inner: Arc<BloscCodec>) -> Arc<dyn BytesToBytesCodecTraits> {
    Arc::new(BloscReader { inner })
}

/// zarrs' blosc codec, decoding through [`decode_frame`] where it can.
#[derive(Debug)]
struct BloscReader {
    inner: Arc<dyn BytesToBytesCodecTraits>,
}

impl ExtensionName for BloscReader {
    fn name(&self, version: ZarrVersion) -> Option<Cow<'static, str>> {
        self.inner.name(version)
    }
}

impl CodecTraits for BloscReader {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn configuration(
        &self,
        version: ZarrVersion,
        options: &CodecMetadataOptions,
    ) -> Option<Configuration> {
        self.inner.configuration(version, options)
    }

    fn partial_decoder_capability(&self) -> PartialDecoderCapability {
        self.inner.partial_decoder_capability()
    }

    fn partial_encoder_capability(&self) -> PartialEncoderCapability {
        self.inner.partial_encoder_capability()
    }
}

impl BytesToBytesCodecTraits for BloscReader {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn BytesToBytesCodecTraits> {
        self
    }

    fn recommended_concurrency(
        &self,
        decoded_representation: &BytesRepresentation,
    ) -> Result<RecommendedConcurrency, CodecError> {
        self.inner.recommended_concurrency(decoded_representation)
    }

    fn encode<'a>(
        &self,
        decoded_value: ArrayBytesRaw<'a>,
        options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        self.inner.encode(decoded_value, options)
    }

    fn decode<'a>(
        &self,
        encoded_value: ArrayBytesRaw<'a>,
        decoded_representation: &BytesRepresentation,
        options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        if let Some(size) = decoded_representation.size() {
            match decode_frame(&encoded_value, size) {
                Ok(Some(decoded)) => return Ok(Cow::Owned(decoded)),
                Ok(None) => {}
                Err(e) => return Err(CodecError::Other(format!("blosc chunk: {e}"))),
            }
        }
        self.inner
            .decode(encoded_value, decoded_representation, options)
    }

    /// Sharded reads decode each subchunk through this: the whole chunk is
    /// decoded once a call and the regions cut from it (zarrs' own blosc
    /// partial decoder asks c-blosc for each region by item instead).
    fn partial_decoder(
        self: Arc<Self>,
        input_handle: Arc<dyn BytesPartialDecoderTraits>,
        decoded_representation: &BytesRepresentation,
        _options: &CodecOptions,
    ) -> Result<Arc<dyn BytesPartialDecoderTraits>, CodecError> {
        Ok(Arc::new(WholeChunkDecoder {
            codec: self,
            input_handle,
            decoded_representation: *decoded_representation,
        }))
    }

    fn encoded_representation(
        &self,
        decoded_representation: &BytesRepresentation,
    ) -> BytesRepresentation {
        self.inner.encoded_representation(decoded_representation)
    }
}

/// A chunk's regions, cut from its whole decoded bytes.
struct WholeChunkDecoder {
    codec: Arc<BloscReader>,
    input_handle: Arc<dyn BytesPartialDecoderTraits>,
    decoded_representation: BytesRepresentation,
}

impl BytesPartialDecoderTraits for WholeChunkDecoder {
    fn exists(&self) -> Result<bool, StorageError> {
        self.input_handle.exists()
    }

    fn size_held(&self) -> usize {
        self.input_handle.size_held()
    }

    fn partial_decode_many(
        &self,
        decoded_regions: ByteRangeIterator,
        options: &CodecOptions,
    ) -> Result<Option<Vec<ArrayBytesRaw<'_>>>, CodecError> {
        let Some(encoded) = self.input_handle.decode(options)? else {
            return Ok(None);
        };
        let decoded = self
            .codec
            .decode(encoded, &self.decoded_representation, options)?
            .into_owned();
        let size = decoded.len() as u64;
        let regions: Vec<ByteRange> = decoded_regions.collect();
        if let [region] = regions[..] {
            if region.start(size) == 0 && region.end(size) == size {
                return Ok(Some(vec![Cow::Owned(decoded)]));
            }
        }
        let parts = extract_byte_ranges(&decoded, regions.into_iter())
            .map_err(CodecError::InvalidByteRangeError)?;
        Ok(Some(parts.into_iter().map(Cow::Owned).collect()))
    }

    fn supports_partial_decode(&self) -> bool {
        false
    }
}

/// What makes a blosc frame unreadable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    #[error("frame of {0} bytes is shorter than its 16-byte header")]
    Short(usize),
    #[error("frame holds {claimed} bytes but the chunk is {expected} bytes")]
    Size { claimed: u64, expected: u64 },
    #[error("block size 0")]
    ZeroBlockSize,
    #[error("sample size 0")]
    ZeroSampleSize,
    #[error("block {0}'s offset or a stream's size lies outside the frame")]
    OutOfFrame(usize),
    #[error("block {0} does not decode to its size")]
    Block(usize),
}

const HEADER: usize = 16;
/// blosc 1's frame format version that this reads (c-blosc 1.x writes 2).
const FORMAT_VERSION: u8 = 2;
const FLAG_BYTE_SHUFFLE: u8 = 0x1;
const FLAG_MEMCPYED: u8 = 0x2;
const FLAG_BIT_SHUFFLE: u8 = 0x4;
const FLAG_DONT_SPLIT: u8 = 0x10;
/// Blocks are split into one stream per sample byte only for samples of at
/// most this many bytes and blocks of at least [`MIN_SPLIT_ELEMENTS`].
const MAX_SPLITS: usize = 16;
const MIN_SPLIT_ELEMENTS: usize = 128;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Coder {
    Lz4,
    Zstd,
}

thread_local! {
    /// One block's decoded streams and the bit unshuffle's byte planes,
    /// kept per thread so that chunks after the first allocate only their
    /// output.
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    static ZSTD: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The `expected` bytes that the blosc frame `src` holds; `None` where the
/// frame uses a format or compressor left to c-blosc.
pub(crate) fn decode_frame(src: &[u8], expected: u64) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(frame) = Frame::of(src, expected)? else {
        return Ok(None);
    };
    let mut out = vec![0u8; frame.nbytes];
    frame.decode_into(src, &mut out)?;
    Ok(Some(out))
}

/// Decodes the blosc frame `src` into the whole of `out` (the chunk's
/// decoded size); `false`, with `out` untouched, where the frame uses a
/// format or compressor left to c-blosc.
pub(crate) fn decode_frame_into(src: &[u8], out: &mut [u8]) -> Result<bool, FrameError> {
    let Some(frame) = Frame::of(src, out.len() as u64)? else {
        return Ok(false);
    };
    frame.decode_into(src, out)?;
    Ok(true)
}

/// Where decoded rows go: row `r` of a chunk of rows of `width` bytes is
/// written to `out[r * stride + at..][..width]`.
pub(crate) struct RowsOut<'a> {
    pub out: &'a mut [u8],
    pub stride: usize,
    pub at: usize,
    pub width: usize,
}

/// Decodes the blosc frame `src`, a chunk of `rows_out.out.len() / stride`
/// rows, straight into its rows: the bit unshuffle writes each row where
/// it belongs, so the chunk is never whole in a buffer to be copied from.
/// `false`, with nothing written, where the frame is left to c-blosc or its
/// blocks are not bit-shuffled whole rows (the caller decodes it whole).
pub(crate) fn decode_frame_into_rows(
    src: &[u8],
    rows_out: RowsOut<'_>,
) -> Result<bool, FrameError> {
    let RowsOut {
        out,
        stride,
        at,
        width,
    } = rows_out;
    let rows = out.len() / stride.max(1);
    if width == 0 || at.saturating_add(width) > stride || rows * stride != out.len() {
        return Ok(false);
    }
    let Some(frame) = Frame::of(src, (rows * width) as u64)? else {
        return Ok(false);
    };
    let (flags, typesize, blocksize) = (frame.flags, frame.typesize, frame.blocksize);
    let whole_rows = flags & FLAG_MEMCPYED == 0
        && flags & FLAG_BIT_SHUFFLE != 0
        && typesize > 0
        && width.is_multiple_of(8 * typesize)
        && blocksize.is_multiple_of(width);
    if !whole_rows {
        return Ok(false);
    }
    SCRATCH.with_borrow_mut(|(streams, planes_scratch)| {
        streams.resize(blocksize.min(frame.nbytes), 0);
        // a header's block size is up to 4 GiB: the block's rows in `out`
        // are at most all of them
        let block_bytes = (blocksize / width).saturating_mul(stride);
        let per_row = width / typesize;
        for (j, block_rows) in out.chunks_mut(block_bytes).enumerate() {
            let offset = u32_at(src, HEADER + 4 * j).ok_or(FrameError::OutOfFrame(j))?;
            let bsize = block_rows.len() / stride * width;
            let (planes, _) = bit_planes(
                src,
                offset,
                flags,
                typesize,
                frame.coder,
                blocksize,
                bsize,
                streams,
            )
            .ok_or(FrameError::Block(j))?;
            for (r, row) in block_rows.chunks_mut(stride).enumerate() {
                pentascope_core::bitshuffle::bit_unshuffle_part(
                    &planes,
                    r * per_row,
                    &mut row[at..at + width],
                    planes_scratch,
                );
            }
        }
        Ok(true)
    })
}

/// What a frame's header says, checked against the frame and the chunk.
struct Frame {
    flags: u8,
    typesize: usize,
    coder: Coder,
    nbytes: usize,
    blocksize: usize,
}

impl Frame {
    /// The header of `src`, a frame of `expected` decoded bytes; `None`
    /// where the frame is left to c-blosc.
    fn of(src: &[u8], expected: u64) -> Result<Option<Frame>, FrameError> {
        let header: &[u8; HEADER] = src
            .get(..HEADER)
            .and_then(|h| h.try_into().ok())
            .ok_or(FrameError::Short(src.len()))?;
        let (version, flags, typesize) = (header[0], header[2], usize::from(header[3]));
        let coder = match flags >> 5 {
            1 => Coder::Lz4,
            4 => Coder::Zstd,
            _ => return Ok(None),
        };
        // byte shuffle stays with c-blosc, whose SSE2 unshuffle is as fast
        if version != FORMAT_VERSION || (flags & FLAG_BYTE_SHUFFLE != 0 && typesize > 1) {
            return Ok(None);
        }
        let [nbytes, blocksize] = [4, 8].map(|at| u32_at(header, at).unwrap_or(0));
        if nbytes as u64 != expected {
            return Err(FrameError::Size {
                claimed: nbytes as u64,
                expected,
            });
        }
        if flags & FLAG_MEMCPYED == 0 {
            if blocksize == 0 {
                return Err(FrameError::ZeroBlockSize);
            }
            if typesize == 0 {
                return Err(FrameError::ZeroSampleSize);
            }
        }
        Ok(Some(Frame {
            flags,
            typesize,
            coder,
            nbytes,
            blocksize,
        }))
    }

    /// Decodes the frame `src` into `out` (exactly `nbytes`).
    fn decode_into(&self, src: &[u8], out: &mut [u8]) -> Result<(), FrameError> {
        let Frame {
            flags,
            typesize,
            coder,
            nbytes,
            blocksize,
        } = *self;
        if flags & FLAG_MEMCPYED != 0 {
            let stored = src
                .get(HEADER..HEADER + nbytes)
                .ok_or(FrameError::OutOfFrame(0))?;
            out.copy_from_slice(stored);
            return Ok(());
        }
        SCRATCH.with_borrow_mut(|(streams, planes)| {
            streams.resize(blocksize.min(nbytes), 0);
            for (j, dst) in out.chunks_mut(blocksize).enumerate() {
                let offset = u32_at(src, HEADER + 4 * j).ok_or(FrameError::OutOfFrame(j))?;
                decode_block(
                    src, offset, flags, typesize, coder, blocksize, dst, streams, planes,
                )
                .ok_or(FrameError::Block(j))?;
            }
            Ok(())
        })
    }
}

/// Block `dst.len()` bytes from the streams at `offset`, bit-unshuffled if
/// `flags` say so; `None` if a stream lies outside `src` or decodes to
/// another size.
#[allow(clippy::too_many_arguments)]
fn decode_block(
    src: &[u8],
    mut offset: usize,
    flags: u8,
    typesize: usize,
    coder: Coder,
    blocksize: usize,
    dst: &mut [u8],
    streams: &mut [u8],
    planes_scratch: &mut Vec<u8>,
) -> Option<()> {
    let bsize = dst.len();
    let splits = splits(flags, typesize, blocksize, bsize);
    if !bsize.is_multiple_of(splits) {
        return None;
    }
    let part_size = bsize / splits;
    // c-blosc bit-shuffles a block of a multiple of 8 samples, whose bytes
    // past the last whole sample stay as they are, and stores any other
    // block as it is
    let samples = bsize / typesize;
    if flags & FLAG_BIT_SHUFFLE == 0 || samples == 0 || !samples.is_multiple_of(8) {
        for part in dst.chunks_exact_mut(part_size) {
            let stream = next_stream(src, &mut offset)?;
            if stream.len() == part_size {
                part.copy_from_slice(stream);
            } else {
                decompress_exactly(coder, stream, part)?;
            }
        }
        return Some(());
    }
    let (planes, leftover) = bit_planes(
        src, offset, flags, typesize, coder, blocksize, bsize, streams,
    )?;
    let shuffled = bsize - leftover.len();
    pentascope_core::bitshuffle::bit_unshuffle(&planes, &mut dst[..shuffled], planes_scratch);
    dst[shuffled..].copy_from_slice(leftover);
    Some(())
}

/// The byte planes of a bit-shuffled block of `bsize` bytes whose streams
/// start at `offset` (each where it is: a raw stream in `src`, the others
/// decompressed into `streams`), and the bytes past its last whole group
/// of 8 samples, stored as they are; `None` if a stream lies outside `src`
/// or decodes to another size.
#[allow(clippy::too_many_arguments)]
fn bit_planes<'a>(
    src: &'a [u8],
    mut offset: usize,
    flags: u8,
    typesize: usize,
    coder: Coder,
    blocksize: usize,
    bsize: usize,
    streams: &'a mut [u8],
) -> Option<(Vec<&'a [u8]>, &'a [u8])> {
    let splits = splits(flags, typesize, blocksize, bsize);
    if !bsize.is_multiple_of(splits) {
        return None;
    }
    let part_size = bsize / splits;
    let samples = bsize / typesize;
    let mut parts: Vec<&[u8]> = Vec::with_capacity(splits);
    let mut free = streams.get_mut(..bsize)?;
    for _ in 0..splits {
        let stream = next_stream(src, &mut offset)?;
        if stream.len() == part_size {
            parts.push(stream);
        } else {
            let (part, rest) = std::mem::take(&mut free).split_at_mut(part_size);
            decompress_exactly(coder, stream, part)?;
            parts.push(part);
            free = rest;
        }
    }
    // a split block's parts are its byte planes; one part holds them all
    let shuffled = samples / 8 * 8 * typesize;
    if splits == typesize {
        Some((parts, &[]))
    } else {
        let whole = parts[0];
        Some((
            whole[..shuffled]
                .chunks_exact(shuffled / typesize)
                .collect(),
            &whole[shuffled..],
        ))
    }
}

/// Streams per block: one per sample byte for blocks that c-blosc splits.
fn splits(flags: u8, typesize: usize, blocksize: usize, bsize: usize) -> usize {
    if flags & FLAG_DONT_SPLIT == 0
        && typesize <= MAX_SPLITS
        && bsize / typesize >= MIN_SPLIT_ELEMENTS
        && bsize == blocksize
    {
        typesize
    } else {
        1
    }
}

/// The stream at `offset` (its 4-byte size, then its bytes); moves `offset`
/// past it.
fn next_stream<'a>(src: &'a [u8], offset: &mut usize) -> Option<&'a [u8]> {
    let size = u32_at(src, *offset)?;
    let start = *offset + 4;
    let stream = src.get(start..start.checked_add(size)?)?;
    *offset = start + size;
    Some(stream)
}

/// The little-endian `u32` at `at` in `src`, as a size or offset (a `u32`
/// fits in `usize` on every target pentascope builds for).
fn u32_at(src: &[u8], at: usize) -> Option<usize> {
    let bytes = src.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
}

/// Decompresses `stream` into the whole of `out`; `None` on corrupt input
/// or another size.
fn decompress_exactly(coder: Coder, stream: &[u8], out: &mut [u8]) -> Option<()> {
    let written = match coder {
        Coder::Lz4 => {
            let (in_len, out_len) = (
                i32::try_from(stream.len()).ok()?,
                i32::try_from(out.len()).ok()?,
            );
            #[allow(unsafe_code)]
            // SAFETY: LZ4_decompress_safe reads at most `in_len` bytes of
            // `stream` and writes at most `out_len` bytes of `out`, whatever
            // the input; a negative result reports corrupt input.
            let written = unsafe {
                lz4_sys::LZ4_decompress_safe(
                    stream.as_ptr().cast(),
                    out.as_mut_ptr().cast(),
                    in_len,
                    out_len,
                )
            };
            usize::try_from(written).ok()?
        }
        Coder::Zstd => ZSTD.with_borrow_mut(|decompressor| {
            let decompressor = match decompressor {
                Some(d) => d,
                None => decompressor.insert(zstd::bulk::Decompressor::new().ok()?),
            };
            decompressor.decompress_to_buffer(stream, out).ok()
        })?,
    };
    (written == out.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zarrs::array::codec::{BloscCompressionLevel, BloscCompressor, BloscShuffleMode};

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Samples of `typesize` bytes whose high bytes change slowly and low
    /// bytes are noise, as microscopes write: every shuffle finds something.
    fn structured(len: usize, typesize: usize) -> Vec<u8> {
        let noise = pseudo_random(len, len as u64);
        (0..len)
            .map(|i| {
                let (e, j) = (i / typesize, i % typesize);
                if j + 1 == typesize && typesize > 1 {
                    ((e / 97) % 7) as u8
                } else {
                    noise[i] & 0x3f
                }
            })
            .collect()
    }

    fn encode(
        data: &[u8],
        coder: BloscCompressor,
        shuffle: BloscShuffleMode,
        typesize: usize,
        blocksize: Option<usize>,
    ) -> Vec<u8> {
        let codec = BloscCodec::new(
            coder,
            BloscCompressionLevel::try_from(5u8).unwrap(),
            blocksize,
            shuffle,
            Some(typesize),
        )
        .unwrap();
        codec
            .encode(Cow::Borrowed(data), &CodecOptions::default())
            .unwrap()
            .into_owned()
    }

    #[test]
    fn decodes_what_c_blosc_encodes_as_c_blosc_does() {
        let mut cases = 0;
        for typesize in [1usize, 2, 4, 8] {
            // whole blocks, a leftover block, sizes not a multiple of 8
            // samples or of the sample size, a block of the whole chunk
            for len in [8 * typesize, 1000, 65536 + 24, 300_007] {
                for data in [
                    structured(len, typesize),
                    pseudo_random(len, 3),
                    vec![7u8; len],
                ] {
                    for shuffle in [
                        BloscShuffleMode::NoShuffle,
                        BloscShuffleMode::Shuffle,
                        BloscShuffleMode::BitShuffle,
                    ] {
                        for coder in [BloscCompressor::LZ4, BloscCompressor::Zstd] {
                            for blocksize in [None, Some(4096), Some(1 << 20)] {
                                let frame = encode(&data, coder, shuffle, typesize, blocksize);
                                let ours = decode_frame(&frame, len as u64).unwrap();
                                if shuffle == BloscShuffleMode::Shuffle && typesize > 1 {
                                    assert!(ours.is_none(), "byte shuffle is c-blosc's");
                                    continue;
                                }
                                assert!(
                                    ours.as_ref() == Some(&data),
                                    "{coder:?} {shuffle:?} typesize {typesize} len {len} blocksize {blocksize:?}"
                                );
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        // typesize 1 under all three shuffles (its byte shuffle is none), the
        // three other sizes under two
        assert_eq!(cases, 4 * 3 * 2 * 3 * (3 + 3 * 2));
    }

    /// A chunk of rows decoded into place lands where the whole decode
    /// copied row by row would put it, bytes around it untouched; frames
    /// whose blocks are not bit-shuffled whole rows are declined.
    #[test]
    fn rows_decoded_in_place_are_the_rows_of_the_whole_decode() {
        let (rows, width, stride, at) = (64usize, 1024usize, 3000usize, 1000usize);
        let mut in_place = 0;
        for typesize in [1usize, 2, 4] {
            for (camera, data) in [
                (true, structured(rows * width, typesize)),
                (false, pseudo_random(rows * width, 9)),
            ] {
                for (shuffle, blocksize) in [
                    (BloscShuffleMode::BitShuffle, None),
                    (BloscShuffleMode::BitShuffle, Some(8 * width)),
                    (BloscShuffleMode::BitShuffle, Some(4096 + 512)),
                    (BloscShuffleMode::NoShuffle, Some(8 * width)),
                ] {
                    for coder in [BloscCompressor::LZ4, BloscCompressor::Zstd] {
                        let frame = encode(&data, coder, shuffle, typesize, blocksize);
                        let mut out = vec![0xa5u8; rows * stride];
                        let rows_out = RowsOut {
                            out: &mut out,
                            stride,
                            at,
                            width,
                        };
                        let placed = decode_frame_into_rows(&frame, rows_out).unwrap();
                        let case = format!(
                            "{coder:?} {shuffle:?} typesize {typesize} blocksize {blocksize:?}"
                        );
                        // what the header says c-blosc did
                        let (flags, block) = (frame[2], u32_at(&frame, 8).unwrap());
                        let whole_rows = flags & FLAG_BIT_SHUFFLE != 0
                            && flags & FLAG_MEMCPYED == 0
                            && block % width == 0;
                        let case = format!("{case}: flags {flags:#x}, blocks of {block}");
                        // what `--compression fast` stores for camera data
                        let ours = camera
                            && shuffle == BloscShuffleMode::BitShuffle
                            && blocksize == Some(8 * width);
                        assert!(placed || !ours, "not in place: {case}");
                        if !placed {
                            assert!(!whole_rows, "declined: {case}");
                            assert!(out.iter().all(|&b| b == 0xa5), "{case}");
                            continue;
                        }
                        in_place += 1;
                        for (r, row) in out.chunks_exact(stride).enumerate() {
                            assert!(
                                row[at..at + width] == data[r * width..(r + 1) * width],
                                "{case}, row {r}"
                            );
                            assert!(
                                row[..at]
                                    .iter()
                                    .chain(&row[at + width..])
                                    .all(|&b| b == 0xa5),
                                "{case}"
                            );
                        }
                    }
                }
            }
        }
        assert!(in_place >= 3 * 2, "{in_place} frames decoded in place");
        // damage is an error, not a panic
        let data = structured(rows * width, 2);
        let mut frame = encode(
            &data,
            BloscCompressor::LZ4,
            BloscShuffleMode::BitShuffle,
            2,
            None,
        );
        let n = frame.len();
        frame[n / 2..].fill(0xff);
        let mut out = vec![0u8; rows * stride];
        let rows_out = RowsOut {
            out: &mut out,
            stride,
            at,
            width,
        };
        assert!(decode_frame_into_rows(&frame, rows_out).is_err());
    }

    #[test]
    fn leaves_other_compressors_to_c_blosc() {
        let data = structured(4096, 2);
        let frame = encode(
            &data,
            BloscCompressor::BloscLZ,
            BloscShuffleMode::BitShuffle,
            2,
            None,
        );
        assert_eq!(decode_frame(&frame, 4096), Ok(None));
    }

    #[test]
    fn damaged_frames_are_errors_not_panics() {
        let data = structured(65536, 2);
        let frame = encode(
            &data,
            BloscCompressor::LZ4,
            BloscShuffleMode::BitShuffle,
            2,
            Some(8192),
        );
        assert_eq!(
            decode_frame(&frame[..10], 65536),
            Err(FrameError::Short(10))
        );
        assert!(matches!(
            decode_frame(&frame, 65534),
            Err(FrameError::Size {
                claimed: 65536,
                expected: 65534
            })
        ));
        // every truncation, and every byte of the header and block offsets
        // set to extremes: an error or some bytes, never a panic
        for end in 0..frame.len() {
            let _ = decode_frame(&frame[..end], 65536);
        }
        for at in 0..HEADER + 4 * 8 + 8 {
            for value in [0u8, 1, 0x7f, 0xff] {
                let mut damaged = frame.clone();
                damaged[at] = value;
                let _ = decode_frame(&damaged, 65536);
            }
        }
        // and bytes anywhere (stream sizes, compressed data) changed: a
        // frame that still decodes has the chunk's size
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..3000 {
            let mut damaged = frame.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state >> 8) as usize % damaged.len();
                damaged[at] = state as u8;
            }
            if let Ok(Some(decoded)) = decode_frame(&damaged, 65536) {
                assert_eq!(decoded.len(), 65536);
            }
        }
        let mut zero_blocks = frame.clone();
        zero_blocks[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decode_frame(&zero_blocks, 65536),
            Err(FrameError::ZeroBlockSize)
        );
    }
}
