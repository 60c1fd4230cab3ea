//! WebP (TIFF compression 50001, and 34927 of older writers), decoded by the
//! `image-webp` crate, whose lossless and lossy samples (with libwebp's
//! "fancy" chroma upsampling) equal libwebp's, which imagecodecs uses:
//! RGB, or RGBA where the stream has alpha.
//!
//! Bounds: the canvas the stream declares is checked against the strip or
//! tile before anything is decoded, and so is the frame of a lossy (VP8)
//! stream inside an extended (VP8X) one, which the decoder would allocate
//! before comparing it with the canvas. Animated streams are refused.

use std::io::Cursor;

use image_webp::WebPDecoder;

use super::Frame;

pub(super) fn decode(raw: &[u8], frame: &Frame, out: &mut [u8]) -> Result<(), String> {
    let invalid = |e: image_webp::DecodingError| format!("invalid WebP data: {e}");
    let mut decoder = WebPDecoder::new(Cursor::new(raw)).map_err(invalid)?;
    if decoder.is_animated() {
        return Err("animated WebP streams are not supported".into());
    }
    let (width, height) = decoder.dimensions();
    let samples = if decoder.has_alpha() { 4 } else { 3 };
    frame.check(u64::from(width), u64::from(height), samples)?;
    if let Some((vp8_width, vp8_height)) = lossy_frame_size(raw) {
        if (vp8_width, vp8_height) != (width, height) {
            return Err(format!(
                "the lossy frame is {vp8_width}×{vp8_height} pixels but its canvas \
                 {width}×{height}"
            ));
        }
    }
    // width × height × samples: at most the strip or tile's size
    let mut pixels = vec![0u8; width as usize * height as usize * samples];
    decoder.read_image(&mut pixels).map_err(invalid)?;
    let n = out.len();
    out.copy_from_slice(&pixels[..n]);
    Ok(())
}

/// The width and height in the key frame header of the stream's first
/// `VP8 ` (lossy) chunk, if it has one.
fn lossy_frame_size(raw: &[u8]) -> Option<(u32, u32)> {
    // RIFF, size, WEBP; then chunks of a FourCC, a little-endian size and
    // the payload padded to an even length
    let mut at = 12usize;
    while let Some(header) = raw.get(at..at.checked_add(8)?) {
        let size = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        let payload = at + 8;
        if &header[..4] == b"VP8 " {
            // frame tag (3 bytes), start code (3), width and height (14 bits each)
            let key = raw.get(payload..payload.checked_add(10)?)?;
            let dimension = |i: usize| u32::from(u16::from_le_bytes([key[i], key[i + 1]]) & 0x3FFF);
            return Some((dimension(6), dimension(8)));
        }
        at = payload.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}
