//! Decoding one JPEG-compressed strip or tile (TIFF compression 7, "new
//! style" JPEG of TIFF technical note 2) with libjpeg-turbo's decoder (the
//! `mozjpeg` crate builds it from source), the decoder tifffile uses
//! through imagecodecs, so that samples are tifffile's bit for bit: the
//! same integer inverse DCT, "fancy" chroma upsampling and YCbCr → RGB
//! tables.
//!
//! - the page's JPEGTables, an abbreviated stream of the quantisation and
//!   Huffman tables that each chunk leaves out, are put before the chunk's
//!   own stream (the tables without their end marker, the chunk without its
//!   start marker), which gives one complete JPEG;
//! - three-sample pages come out as RGB: YCbCr data (photometric 6, or a
//!   JFIF stream) is converted, while RGB pages without a JFIF marker
//!   (Aperio SVS) are taken as RGB as stored, whatever the stream says;
//!   four-sample (CMYK) pages come out as CMYK;
//!   grayscale and separate sample planes come out as one sample;
//! - 8-bit samples only: 12-bit JPEG is refused by the layout checks
//!   before the decoder is reached.
//!
//! Bounds, before anything of the frame's size is allocated: the frame the
//! stream declares is checked against the strip or tile, whose size was
//! checked against [`Limits`](crate::Limits) when the IFD was read, and so
//! was the chunk's byte count; a stream of more than [`MAX_SCANS`] scans
//! (each a pass over the frame's coefficients) is refused. libjpeg's errors
//! and its warnings that pixels are missing or corrupt (a truncated
//! stream, a bad Huffman code: libjpeg and tifffile would fill the rest
//! with grey) become [`TiffError::Format`]; warnings that lose nothing
//! (extraneous bytes between markers) are ignored, as tifffile ignores them.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg::{ColorSpace, Decompress};

use crate::codec::ChunkRef;
use crate::ifd::PageLayout;
use crate::ReadAt;
use crate::TiffError;

/// The most scans a chunk's stream may have. A progressive JPEG has about
/// ten; each scan is a pass over the frame, so a stream of many tiny scans
/// would make a few bytes cost seconds.
pub const MAX_SCANS: usize = 100;

/// Decodes the first `chunk.decoded_rows` rows of JPEG chunk `chunk` into
/// `out` (`decoded_rows` × chunk width × `samples` bytes, interleaved).
pub(crate) fn decode<R: ReadAt + ?Sized>(
    file: &R,
    page: &PageLayout,
    chunk: &ChunkRef,
    samples: usize,
    out: &mut [u8],
) -> Result<(), TiffError> {
    let corrupt = |what: String| {
        TiffError::Format(format!(
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
    let pixels = frame.decode(&stream).map_err(corrupt)?;
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
    /// Components per pixel: 1, 3 or 4.
    samples: usize,
    /// Take three components as RGB as stored, without colour conversion.
    rgb_as_stored: bool,
}

impl Frame {
    /// Decodes `stream` into interleaved 8-bit samples, row by row.
    fn decode(&self, stream: &[u8]) -> Result<Vec<u8>, String> {
        let scans = stream.windows(2).filter(|m| *m == [0xFF, 0xDA]).count();
        if scans > MAX_SCANS {
            return Err(format!(
                "the JPEG stream has {scans} scans, more than the {MAX_SCANS} pentascope decodes"
            ));
        }
        // libjpeg reports errors and warnings through the error manager's
        // callbacks, which unwind (the C code is built for it) to the
        // catch_unwind below; the decompressor is dropped on the way
        let decoded = catch_unwind(AssertUnwindSafe(|| self.decode_unwinding(stream)));
        match decoded {
            Ok(result) => result,
            Err(payload) => Err(match payload.downcast::<String>() {
                Ok(message) => *message,
                Err(_) => "the JPEG decoder failed on this data (corrupt stream)".into(),
            }),
        }
    }

    fn decode_unwinding(&self, stream: &[u8]) -> Result<Vec<u8>, String> {
        let decoder = Decompress::with_err(libjpeg_errors::error_manager())
            .from_mem(stream)
            .map_err(|e| format!("invalid JPEG data: {e}"))?;
        let (width, height) = decoder.size();
        let components = decoder.components().len();
        if width != self.width as usize
            || height < self.rows as usize
            || height > self.height as usize
        {
            return Err(format!(
                "the JPEG frame is {width}×{height} pixels, but the strip or tile is {}×{} \
                 with {} rows in the image",
                self.width, self.height, self.rows
            ));
        }
        if components != self.samples {
            return Err(format!(
                "the JPEG frame has {components} components but the page {} samples per chunk",
                self.samples
            ));
        }
        let out = if self.samples == 1 {
            ColorSpace::JCS_GRAYSCALE
        } else if self.samples == 4 {
            // CMYK as stored (YCCK converted), as tifffile asks libjpeg
            ColorSpace::JCS_CMYK
        } else if self.rgb_as_stored {
            // what libjpeg does when told the stream is RGB: no conversion
            match decoder.color_space() {
                ColorSpace::JCS_RGB => ColorSpace::JCS_RGB,
                ColorSpace::JCS_YCbCr => ColorSpace::JCS_YCbCr,
                other => {
                    return Err(format!(
                        "an RGB page's JPEG stream is in colour space {other:?}"
                    ))
                }
            }
        } else {
            ColorSpace::JCS_RGB
        };
        let mut started = decoder
            .to_colorspace(out)
            .map_err(|e| format!("invalid JPEG data: {e}"))?;
        // width × height × samples, at most the strip or tile's size
        let mut pixels = vec![0u8; width * height * self.samples];
        started
            .read_scanlines_into(&mut pixels)
            .map_err(|e| format!("invalid JPEG data: {e}"))?;
        started
            .finish()
            .map_err(|e| format!("invalid JPEG data: {e}"))?;
        Ok(pixels)
    }
}

/// libjpeg reports errors and warnings through callbacks in its error
/// manager, with the decompressor's state behind raw pointers: the only
/// unsafe code of pentascope, kept to reading that state.
#[allow(unsafe_code)]
mod libjpeg_errors {
    use std::ffi::CStr;
    use std::os::raw::c_int;
    use std::panic::resume_unwind;

    use mozjpeg_sys as ffi;

    /// libjpeg's standard error manager, with errors and the warnings that
    /// mean lost pixels unwinding with their message.
    pub(super) fn error_manager() -> ffi::jpeg_error_mgr {
        // SAFETY: jpeg_std_error fills in every field of the zeroed struct
        let mut manager = unsafe {
            let mut manager: ffi::jpeg_error_mgr = std::mem::zeroed();
            ffi::jpeg_std_error(&mut manager);
            manager
        };
        manager.error_exit = Some(fail);
        manager.emit_message = Some(warn);
        manager
    }

    /// The warnings after which libjpeg goes on with pixels it does not have.
    const LOSSY_WARNINGS: [ffi::J_MESSAGE_CODE; 5] = [
        ffi::JWRN_JPEG_EOF,
        ffi::JWRN_HIT_MARKER,
        ffi::JWRN_HUFF_BAD_CODE,
        ffi::JWRN_MUST_RESYNC,
        ffi::JWRN_BOGUS_PROGRESSION,
    ];

    extern "C-unwind" fn fail(cinfo: &mut ffi::jpeg_common_struct) {
        resume_unwind(Box::new(format!("invalid JPEG data: {}", message(cinfo))));
    }

    extern "C-unwind" fn warn(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
        // SAFETY: libjpeg calls back with its error manager set
        let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
        if level < 0 && LOSSY_WARNINGS.contains(&code) {
            let text = message(cinfo);
            // most of these messages say "Corrupt JPEG data: …" themselves
            let said = if text.starts_with("Corrupt JPEG data") {
                text
            } else {
                format!("Corrupt JPEG data: {text}")
            };
            resume_unwind(Box::new(said));
        }
    }

    /// The text of libjpeg's current message (its template: parameters such
    /// as a marker's code are left as libjpeg wrote them, `%d`).
    fn message(cinfo: &ffi::jpeg_common_struct) -> String {
        // SAFETY: the message table is libjpeg's static array of C strings,
        // `last_jpeg_message + 1` long
        unsafe {
            let Some(err) = cinfo.err.as_ref() else {
                return "libjpeg error".into();
            };
            let code = err.msg_code;
            if code <= 0 || code > err.last_jpeg_message || err.jpeg_message_table.is_null() {
                return format!("libjpeg message {code}");
            }
            let text = *err.jpeg_message_table.add(code as usize);
            if text.is_null() {
                return format!("libjpeg message {code}");
            }
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
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

    /// A 48×32 RGB JPEG (4:2:0) of a gradient.
    fn encoded() -> Vec<u8> {
        let pixels: Vec<u8> = (0..32u32 * 48)
            .flat_map(|i| [(i % 48 * 5) as u8, (i / 48 * 7) as u8, (i % 251) as u8])
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&pixels, 48, 32, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn a_cut_stream_is_corrupt_not_grey() {
        let stream = encoded();
        let f = frame(48, 32, 3);
        assert_eq!(f.decode(&stream).unwrap().len(), 48 * 32 * 3);
        // where libjpeg would fill the missing rows with grey
        let cut = &stream[..stream.len() * 2 / 3];
        let err = f.decode(cut).unwrap_err();
        assert!(
            err.contains("Corrupt JPEG data: Premature end of JPEG file"),
            "{err}"
        );
        // a frame that is not the tile's, and the wrong component count
        assert!(frame(40, 32, 3)
            .decode(&stream)
            .unwrap_err()
            .contains("48×32"));
        assert!(frame(48, 32, 1)
            .decode(&stream)
            .unwrap_err()
            .contains("3 components"));
    }

    #[test]
    fn a_stream_of_too_many_scans_is_refused_before_decoding() {
        let stream = encoded();
        let sos = stream.windows(2).position(|m| m == [0xFF, 0xDA]).unwrap();
        // empty scans' markers piled before the real scan
        let mut many = stream[..sos].to_vec();
        for _ in 0..MAX_SCANS {
            many.extend_from_slice(&[0xFF, 0xDA]);
        }
        many.extend_from_slice(&stream[sos..]);
        let err = frame(48, 32, 3).decode(&many).unwrap_err();
        assert!(err.contains("101 scans"), "{err}");
    }
}
