//! Decoding one JPEG-compressed strip or tile (TIFF compression 7, "new
//! style" JPEG of TIFF technical note 2) with zune-jpeg, as tifffile does
//! with libjpeg (imagecodecs):
//!
//! - the page's JPEGTables, an abbreviated stream of the quantisation and
//!   Huffman tables that each chunk leaves out, are put before the chunk's
//!   own stream (the tables without their end marker, the chunk without its
//!   start marker), which gives one complete JPEG;
//! - three-sample pages come out as RGB: YCbCr data (photometric 6, or a
//!   JFIF stream) is converted, while RGB pages without a JFIF marker
//!   (Aperio SVS) are taken as RGB as stored, whatever the stream says;
//!   grayscale and separate sample planes come out as one sample;
//! - 8-bit samples only: zune-jpeg refuses 12-bit JPEG, and so do the
//!   layout checks before it is reached.
//!
//! The frame the stream declares is checked against the strip or tile
//! before anything of its size is allocated; the chunk's size was checked
//! against [`Limits::max_chunk_bytes`](crate::Limits) when the IFD was read.
//! Decoder errors (a truncated stream among them: zune-jpeg runs in strict
//! mode), and any panic inside the decoder, become [`CoreError::Format`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::error::CoreError;
use crate::tiff::codec::ChunkRef;
use crate::tiff::ifd::PageLayout;
use crate::tiff::ReadAt;

/// Decodes the first `chunk.decoded_rows` rows of JPEG chunk `chunk` into
/// `out` (`decoded_rows` × chunk width × `samples` bytes, interleaved).
pub(crate) fn decode<R: ReadAt + ?Sized>(
    file: &R,
    page: &PageLayout,
    chunk: &ChunkRef,
    samples: usize,
    out: &mut [u8],
) -> Result<(), CoreError> {
    let corrupt = |what: String| {
        CoreError::Format(format!(
            "JPEG strip/tile {} of a {}×{} page: {what}",
            chunk.index, page.width, page.height
        ))
    };
    let jpeg = page
        .jpeg
        .as_ref()
        .ok_or_else(|| corrupt("the page has no JPEG parameters".into()))?;
    let offset = page.offsets[chunk.index];
    let count = usize::try_from(page.byte_counts[chunk.index])
        .map_err(|_| corrupt("its byte count does not fit in memory".into()))?;
    let mut raw = vec![0u8; count];
    file.read_exact_at(&mut raw, offset)?;
    let stream = with_tables(jpeg.tables.as_deref(), &raw);
    let (chunk_w, chunk_h) = page.chunk_size();
    let frame = Frame {
        width: chunk_w,
        height: chunk_h,
        rows: chunk.decoded_rows,
        samples,
        rgb_as_stored: samples == 3 && jpeg.photometric == 2 && !jpeg.jfif,
    };
    let pixels = catch_unwind(AssertUnwindSafe(|| frame.decode(&stream)))
        .map_err(|_| corrupt("the JPEG decoder failed on this data (corrupt stream)".into()))?
        .map_err(corrupt)?;
    let n = out.len();
    match pixels.get(..n) {
        Some(rows) => out.copy_from_slice(rows),
        None => {
            return Err(corrupt(format!(
                "decodes to {} bytes but its pixels need {n}",
                pixels.len()
            )))
        }
    }
    Ok(())
}

/// The chunk's stream completed by the page's tables, as libtiff and
/// tifffile read it: the tables' stream up to its end marker (EOI), then the
/// chunk's stream after its start marker (SOI).
pub(crate) fn with_tables(tables: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    let Some(tables) = tables.filter(|t| t.len() > 4) else {
        return data.to_vec();
    };
    let tables = tables.strip_suffix(&EOI).unwrap_or(tables);
    let data = data.strip_prefix(&SOI).unwrap_or(data);
    let mut stream = Vec::with_capacity(tables.len() + data.len());
    stream.extend_from_slice(tables);
    stream.extend_from_slice(data);
    stream
}

/// What a chunk's JPEG frame must be.
struct Frame {
    /// Width of the strip or tile: the frame's width.
    width: u32,
    /// Rows of the strip or tile: the most the frame may have.
    height: u32,
    /// Rows that lie in the image: the fewest the frame may have.
    rows: u32,
    /// Components per pixel: 1 or 3.
    samples: usize,
    /// Take three components as RGB as stored, without colour conversion.
    rgb_as_stored: bool,
}

impl Frame {
    /// Decodes `stream` into interleaved 8-bit samples, row by row.
    fn decode(&self, stream: &[u8]) -> Result<Vec<u8>, String> {
        let out_colorspace = if self.samples == 1 {
            ColorSpace::Luma
        } else {
            ColorSpace::RGB
        };
        // strict: a stream that ends before its last MCU is an error, where
        // the lenient mode would fill the rest with grey
        let options = DecoderOptions::default()
            .set_strict_mode(true)
            .set_max_width(self.width as usize)
            .set_max_height(self.height as usize)
            .jpeg_set_out_colorspace(out_colorspace);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(stream), options);
        decoder
            .decode_headers()
            .map_err(|e| format!("invalid JPEG data: {e}"))?;
        let info = decoder
            .info()
            .ok_or("the JPEG stream has no frame header")?;
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        if width != self.width || height < self.rows || height > self.height {
            return Err(format!(
                "the JPEG frame is {width}×{height} pixels, but the strip or tile is {}×{} \
                 with {} rows in the image",
                self.width, self.height, self.rows
            ));
        }
        if usize::from(info.components) != self.samples {
            return Err(format!(
                "the JPEG frame has {} components but the page {} samples per chunk",
                info.components, self.samples
            ));
        }
        if self.rgb_as_stored {
            // what libjpeg does when told the stream is RGB: no conversion
            match decoder.input_colorspace() {
                Some(ColorSpace::RGB) => {}
                Some(ColorSpace::YCbCr) => {
                    decoder.set_options(options.jpeg_set_out_colorspace(ColorSpace::YCbCr))
                }
                other => {
                    return Err(format!(
                        "an RGB page's JPEG stream is in colour space {other:?}"
                    ))
                }
            }
        }
        // width × height × samples, at most the strip or tile's size, which
        // was checked against the limits when the IFD was read
        let size = decoder
            .output_buffer_size()
            .ok_or("the JPEG frame's size overflows")?;
        let expected = self.width as usize * height as usize * self.samples;
        if size != expected {
            return Err(format!(
                "the JPEG frame decodes to {size} bytes, expected {expected}"
            ));
        }
        let mut pixels = vec![0u8; size];
        decoder
            .decode_into(&mut pixels)
            .map_err(|e| format!("invalid JPEG data: {e}"))?;
        Ok(pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_joined_without_the_inner_markers() {
        let tables = [0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 0xFF, 0xD9];
        let data = [0xFF, 0xD8, 0xFF, 0xDA, 3, 0xFF, 0xD9];
        assert_eq!(
            with_tables(Some(&tables), &data),
            [0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 0xFF, 0xDA, 3, 0xFF, 0xD9]
        );
        assert_eq!(with_tables(None, &data), data);
        // empty or truncated tables are left out
        assert_eq!(with_tables(Some(&[0xFF, 0xD8, 0xFF, 0xD9]), &data), data);
    }

    fn frame(width: u32, height: u32, samples: usize) -> Frame {
        Frame {
            width,
            height,
            rows: height,
            samples,
            rgb_as_stored: false,
        }
    }

    #[test]
    fn garbage_and_truncated_streams_are_errors_not_panics() {
        let f = frame(16, 16, 1);
        for stream in [
            &[][..],
            &[0xFF, 0xD8][..],
            &[
                0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0,
            ][..],
            &[0x00; 64][..],
            &[0xFF; 64][..],
        ] {
            assert!(f.decode(stream).is_err(), "{stream:?}");
        }
    }
}
