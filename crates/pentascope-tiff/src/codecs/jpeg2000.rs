//! JPEG 2000 (TIFF compressions 34712, and Aperio's 33003 and 33005 — a
//! codestream with or without the YCbCr component transform — and 33004),
//! decoded by OpenJPEG, the library imagecodecs uses, built from source by
//! the `openjpeg-sys` crate through `jpeg2k`. tifffile reads all four alike:
//! the decoder undoes the codestream's component transform, so YCbCr and
//! RGB forms both come out as RGB.
//!
//! Bounds: the codestream's header is read first, and an image that is not
//! the strip or tile's size, has another number of components, subsampled
//! components or more bits than the page's samples is refused before
//! anything of its size is decoded. OpenJPEG's strict mode refuses a
//! truncated codestream, which it would otherwise decode in part.

use jpeg2k::{DecodeParameters, DumpImage};

use super::Frame;
use crate::DType;

pub(super) fn decode(raw: &[u8], frame: &Frame, out: &mut [u8]) -> Result<(), String> {
    let invalid = |e: jpeg2k::error::Error| format!("invalid JPEG 2000 data: {e}");
    let image =
        DumpImage::from_bytes_with(raw, DecodeParameters::new().strict(true)).map_err(invalid)?;
    let (width, height) = (image.img.width(), image.img.height());
    let components = image.img.components();
    frame.check(u64::from(width), u64::from(height), components.len())?;
    let bits = frame.dtype.size() as u32 * 8;
    for component in components {
        if component.width() != width || component.height() != height {
            return Err(format!(
                "a component is {}×{} pixels in a {width}×{height} image: subsampled \
                 components are not supported",
                component.width(),
                component.height()
            ));
        }
        if component.precision() > bits || component.is_signed() {
            return Err(format!(
                "a component holds {}-bit {} samples, but the page {bits}-bit unsigned ones",
                component.precision(),
                if component.is_signed() {
                    "signed"
                } else {
                    "unsigned"
                }
            ));
        }
    }
    image.decode().map_err(invalid)?;
    // the components' data exist once decoded
    let components = image.img.components();
    let planes: Vec<&[i32]> = components.iter().map(|c| c.data()).collect();
    let size = frame.dtype.size();
    let pixels = out.len() / size / frame.samples;
    let mut samples = out.chunks_exact_mut(size);
    for i in 0..pixels {
        for plane in &planes {
            let slot = samples.next().ok_or("the output is too small")?;
            // within the component's precision, so within the page's type
            let value = plane
                .get(i)
                .copied()
                .ok_or("a component has too few samples")?;
            match frame.dtype {
                DType::U8 => slot.copy_from_slice(&[value.clamp(0, 255) as u8]),
                _ => slot.copy_from_slice(&(value.clamp(0, 65535) as u16).to_ne_bytes()),
            }
        }
    }
    Ok(())
}
