//! JPEG XL (TIFF compression 50002, and DNG's 52546), decoded by the
//! `jxl-oxide` crate: lossless streams come out as libjxl (imagecodecs'
//! decoder) gives them, sample for sample; lossy ones within one unit of
//! it, as both render in floating point. Color channels, then black and
//! alpha where the stream has them.
//!
//! Bounds: the stream is fed until its header is read, and an image that is
//! not the strip or tile's size or whose samples are wider than the page's
//! is refused before any frame is decoded; the decoder's allocations are
//! tracked and capped at [`WORK_BYTES_PER_SAMPLE`] bytes a sample of the
//! chunk (plus [`WORK_BYTES_BASE`]).

use jxl_oxide::{AllocTracker, InitializeResult, JxlImage};

use super::Frame;
use crate::DType;

/// Working memory jxl-oxide may allocate per sample of the chunk: its
/// floating-point frame, modular channels and transforms take a few
/// copies of 4 bytes each.
pub const WORK_BYTES_PER_SAMPLE: usize = 64;

/// Working memory jxl-oxide may allocate besides, for the small images it
/// keeps (entropy tables, the ICC profile).
pub const WORK_BYTES_BASE: usize = 16 << 20;

/// The first bytes fed while looking for the header, doubled until it is
/// read.
const FIRST_FEED: usize = 256;

pub(super) fn decode(raw: &[u8], frame: &Frame, out: &mut [u8]) -> Result<(), String> {
    let invalid =
        |e: Box<dyn std::error::Error + Send + Sync>| format!("invalid JPEG XL data: {e}");
    let budget = (frame.width as usize * frame.height as usize * frame.samples)
        .saturating_mul(WORK_BYTES_PER_SAMPLE)
        .saturating_add(WORK_BYTES_BASE);
    let mut uninit = JxlImage::builder()
        .alloc_tracker(AllocTracker::with_limit(budget))
        .build_uninit();
    let (mut fed, mut step) = (0usize, FIRST_FEED);
    let mut image = loop {
        let end = fed.saturating_add(step).min(raw.len());
        fed += uninit.feed_bytes(&raw[fed..end]).map_err(invalid)?;
        match uninit.try_init().map_err(invalid)? {
            InitializeResult::Initialized(image) => break image,
            InitializeResult::NeedMoreData(more) => {
                if end == raw.len() {
                    return Err("the JPEG XL stream ends inside its header (truncated?)".into());
                }
                uninit = more;
                step = step.saturating_mul(2);
            }
        }
    };
    let header = image.image_header();
    let bits = header.metadata.bit_depth.bits_per_sample();
    let channels = image.pixel_format().channels();
    frame.check(
        u64::from(image.width()),
        u64::from(image.height()),
        channels,
    )?;
    if (bits <= 8) != (frame.dtype == DType::U8) || bits > 16 {
        return Err(format!(
            "the JPEG XL stream holds {bits}-bit samples, the page {}-bit ones",
            frame.dtype.size() * 8
        ));
    }
    while fed < raw.len() {
        let consumed = image.feed_bytes(&raw[fed..]).map_err(invalid)?;
        if consumed == 0 {
            break;
        }
        fed += consumed;
    }
    image.finalize().map_err(invalid)?;
    if image.num_loaded_keyframes() == 0 {
        return Err("the JPEG XL stream ends before its first frame (truncated?)".into());
    }
    let render = image.render_frame(0).map_err(invalid)?;
    let mut stream = render.stream();
    if stream.channels() as usize != frame.samples
        || stream.width() != frame.width
        || stream.height() != image.height()
    {
        return Err(format!(
            "the JPEG XL frame renders as {}×{} pixels of {} channels",
            stream.width(),
            stream.height(),
            stream.channels()
        ));
    }
    let frame_samples = stream.width() as usize * stream.height() as usize * frame.samples;
    let n = out.len();
    match frame.dtype {
        DType::U8 => {
            let mut samples = vec![0u8; frame_samples];
            stream.write_to_buffer(&mut samples);
            out.copy_from_slice(&samples[..n]);
        }
        _ => {
            let mut samples = vec![0u16; frame_samples];
            stream.write_to_buffer(&mut samples);
            for (slot, value) in out.chunks_exact_mut(2).zip(samples) {
                slot.copy_from_slice(&value.to_ne_bytes());
            }
        }
    }
    Ok(())
}
