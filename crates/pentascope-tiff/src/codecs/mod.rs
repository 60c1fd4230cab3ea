//! The codecs tifffile reads through imagecodecs beyond the classic ones of
//! `codec.rs` and `jpeg.rs`: LZMA as a byte stream, and CCITT fax, WebP,
//! JPEG 2000 and JPEG XL as whole frames, each with the library imagecodecs
//! uses or a Rust decoder whose samples equal it (see each module).
//!
//! Bounds: a frame decoder is handed the strip or tile's size, checked
//! against [`Limits`](crate::Limits) when the IFD was read, and refuses a
//! stream whose frame is not that size before decoding it; no decoder
//! writes more than the chunk's samples. A panic inside a decoder
//! (a bug of its crate on hostile bytes) is caught and becomes
//! [`TiffError::Format`] like any corrupt stream.

pub(crate) mod ccitt;
mod jpeg2000;
mod jpegxl;
pub(crate) mod lzma;
mod webp;

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::codec::ChunkRef;
use crate::ifd::{Codec, JpegLayout, PageLayout};
use crate::DType;
use crate::ReadAt;
use crate::TiffError;

pub use ccitt::Fax;

/// The compressions pentascope decodes, as its 415 messages list them.
pub(crate) const SUPPORTED: &str = "none, LZW, Deflate, PackBits, Zstd, LZMA, CCITT RLE, \
     Group 3 and Group 4, 8-bit JPEG (compression 7), WebP, JPEG 2000 and JPEG XL";

impl Codec {
    /// Whether the codec decodes a chunk as an image of its own (a frame of
    /// the strip or tile's size), not as a stream of stored samples.
    pub fn decodes_frames(self) -> bool {
        matches!(
            self,
            Codec::Ccitt(_) | Codec::WebP | Codec::Jpeg2000 | Codec::JpegXl
        )
    }
}

/// `codec` completed with what the page's tags say about it: T4Options and
/// FillOrder for CCITT.
pub(crate) fn with_page_tags(
    codec: Codec,
    tags: &mut tiff::decoder::IfdDecoder<'_>,
) -> Result<Codec, TiffError> {
    match codec {
        Codec::Ccitt(fax) => Ok(Codec::Ccitt(fax.with_page_tags(tags)?)),
        other => Ok(other),
    }
}

/// Checks that a page compressed with `codec` has samples the codec's
/// decoder gives as tifffile reads them.
pub(crate) fn check_page(
    codec: Codec,
    bits_per_sample: u16,
    dtype: DType,
    samples: u16,
    planar_separate: bool,
) -> Result<(), TiffError> {
    let (name, fits, supported) = match codec {
        Codec::Ccitt(_) => (
            "CCITT",
            bits_per_sample == 1 && samples == 1,
            "1-bit bilevel pages of one sample",
        ),
        Codec::WebP => (
            "WebP",
            dtype == DType::U8 && matches!(samples, 3 | 4) && !planar_separate,
            "8-bit RGB and RGBA",
        ),
        Codec::Jpeg2000 => (
            "JPEG 2000",
            matches!(dtype, DType::U8 | DType::U16)
                && usize::from(bits_per_sample) == dtype.size() * 8,
            "8- and 16-bit unsigned samples",
        ),
        Codec::JpegXl => (
            "JPEG XL",
            matches!(dtype, DType::U8 | DType::U16)
                && usize::from(bits_per_sample) == dtype.size() * 8
                && (planar_separate || samples <= 4),
            "8- and 16-bit unsigned samples, 1 to 4 a pixel",
        ),
        _ => return Ok(()),
    };
    if fits {
        return Ok(());
    }
    Err(TiffError::Unsupported(format!(
        "{name}-compressed pages of {samples} {bits_per_sample}-bit {dtype} samples per pixel{} \
         are not supported; supported are {supported}",
        if planar_separate {
            " (separate planes)"
        } else {
            ""
        }
    )))
}

/// Reads an old-style JPEG page (compression 6) as tifffile and libtiff do:
/// its strips as complete JPEG streams (with the page's JPEGTables where it
/// has them), and three samples stored as RGB, or without
/// PhotometricInterpretation, as YCbCr, converted to RGB.
pub(crate) fn old_style_jpeg(
    tags: &mut tiff::decoder::IfdDecoder<'_>,
    samples: u16,
    jpeg: &mut JpegLayout,
) {
    let stated = tags
        .find_entry(tiff::tags::Tag::PhotometricInterpretation)
        .is_some();
    if samples == 3 && (!stated || jpeg.photometric == 2) {
        jpeg.photometric = 6;
    }
}

/// What a chunk's frame must be, and how its samples are given back.
pub(crate) struct Frame {
    /// Width of the strip or tile: the frame's width.
    pub width: u32,
    /// Rows of the strip or tile: the most the frame may have.
    pub height: u32,
    /// Rows that lie in the image: the fewest the frame may have, and the
    /// ones given back.
    pub rows: u32,
    /// Samples per pixel in the chunk.
    pub samples: usize,
    /// Sample type: what the decoded samples are given back as.
    pub dtype: DType,
}

impl Frame {
    /// Refuses a frame of `width` × `height` pixels of `samples` samples
    /// that is not the chunk's.
    pub fn check(&self, width: u64, height: u64, samples: usize) -> Result<(), String> {
        if width != u64::from(self.width)
            || height < u64::from(self.rows)
            || height > u64::from(self.height)
        {
            return Err(format!(
                "the frame is {width}×{height} pixels, but the strip or tile is {}×{} with {} \
                 rows in the image",
                self.width, self.height, self.rows
            ));
        }
        if samples != self.samples {
            return Err(format!(
                "the frame has {samples} samples per pixel but the page {} per chunk",
                self.samples
            ));
        }
        Ok(())
    }

    /// Samples in the rows given back.
    pub fn output_samples(&self) -> usize {
        self.width as usize * self.rows as usize * self.samples
    }
}

/// Decodes the first `chunk.decoded_rows` rows of a chunk compressed with
/// an image codec into `out` (native-endian samples of the page's type,
/// interleaved).
pub(crate) fn decode_frame<R: ReadAt + ?Sized>(
    file: &R,
    page: &PageLayout,
    chunk: &ChunkRef,
    samples: usize,
    out: &mut [u8],
) -> Result<(), TiffError> {
    let corrupt = |what: String| {
        TiffError::Format(format!(
            "{} strip/tile {} of a {}×{} page: {what}",
            codec_name(page.codec),
            chunk.index,
            page.width,
            page.height
        ))
    };
    let offset = page.offsets[chunk.index];
    let count = usize::try_from(page.byte_counts[chunk.index])
        .map_err(|_| corrupt("its byte count does not fit in memory".into()))?;
    let mut raw = vec![0u8; count];
    file.read_exact_at(&mut raw, offset)?;
    let (width, height) = page.chunk_size();
    let frame = Frame {
        width,
        height,
        rows: chunk.decoded_rows,
        samples,
        dtype: page.dtype,
    };
    if out.len() != frame.output_samples() * frame.dtype.size() {
        return Err(corrupt(
            "the output does not hold the chunk's samples".into(),
        ));
    }
    let decoded = catch_unwind(AssertUnwindSafe(|| match page.codec {
        Codec::Ccitt(fax) => ccitt::decode(fax, &raw, &frame, out),
        Codec::WebP => webp::decode(&raw, &frame, out),
        Codec::Jpeg2000 => jpeg2000::decode(&raw, &frame, out),
        Codec::JpegXl => jpegxl::decode(&raw, &frame, out),
        other => Err(format!("{other:?} is not an image codec")),
    }));
    match decoded {
        Ok(result) => result.map_err(corrupt),
        Err(_) => Err(corrupt(
            "the decoder failed on this data (corrupt stream)".into(),
        )),
    }
}

fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Ccitt(_) => "CCITT",
        Codec::WebP => "WebP",
        Codec::Jpeg2000 => "JPEG 2000",
        Codec::JpegXl => "JPEG XL",
        _ => "compressed",
    }
}
