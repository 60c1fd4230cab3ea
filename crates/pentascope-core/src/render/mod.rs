//! Rendering of planes for clients: windowing samples to 8 bits, grayscale
//! PNG encoding (8-bit windowed, 16-bit raw) and NumPy `.npy` encoding of
//! exact samples.

use crate::dtype::{DType, Sample};
use crate::error::CoreError;

mod literal_block;
mod png_rows;

/// A display window: samples `<= low` map to 0, `>= high` to 255 (8-bit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The value shown as black.
    pub low: f64,
    /// The value shown as white.
    pub high: f64,
}

/// Entries of a lookup table: every value of a 16-bit type.
const TABLE_LEN: usize = 1 << 16;

/// Below this many samples per table entry, mapping every sample directly is
/// cheaper than building a lookup table over all possible values.
const LUT_MIN_SAMPLES_PER_ENTRY: usize = 4;

/// How samples become bytes under a window, decided once for a plane and
/// then applied to any part of it.
///
/// Each sample becomes `round((v - low) / (high - low) * 255)` clamped to
/// `0..=255` (halves round up); NaN becomes 0. A degenerate window
/// (`high <= low`) thresholds: `v >= high` → 255, anything else → 0. The raw
/// value is never cast (and truncated) to 8 bits.
enum ByteMap {
    /// For 8- and 16-bit types with enough samples: the byte of every
    /// possible value, cheaper to look up than floating-point work per
    /// sample. Always [`TABLE_LEN`] long, so that a lookup of a masked bin
    /// needs no bounds check (a fifth of the loop's time).
    Table(Box<[u8; TABLE_LEN]>),
    /// A degenerate window: `v >= high` → 255.
    Threshold { high: f64 },
    /// `(v - low) * scale`, rounded and clamped.
    Linear { low: f64, scale: f64 },
    /// A window wider than f64's range, worked on in halves so that neither
    /// the width nor `v - low` overflows: `(v / 2 - low) * scale`.
    Halves { low: f64, scale: f64 },
}

impl ByteMap {
    /// The map of `window` for about `samples` samples of type `T`.
    fn new<T: Sample>(window: Window, samples: usize) -> Self {
        let Window { low, high } = window;
        // Not `high <= low`: a window with a NaN bound is not a proper window
        // either, and thresholds at `high` like a degenerate one.
        let proper = high.partial_cmp(&low) == Some(std::cmp::Ordering::Greater);
        let map = if !proper {
            ByteMap::Threshold { high }
        } else if (high - low).is_finite() {
            ByteMap::Linear {
                low,
                scale: 255.0 / (high - low),
            }
        } else {
            ByteMap::Halves {
                low: low * 0.5,
                scale: 255.0 / (high * 0.5 - low * 0.5),
            }
        };
        match T::HISTOGRAM_BINS {
            // the arithmetic in vector lanes beats a lookup per sample
            _ if matches!(map, ByteMap::Linear { .. }) && vector_window::<T>() => map,
            Some(bins) if bins <= TABLE_LEN && samples >= bins * LUT_MIN_SAMPLES_PER_ENTRY => {
                // bytes never fall as values rise, so only the values inside
                // the window need arithmetic: 0 below it, 255 above it
                let byte_of = |b: usize| map.byte(T::from_bin(b));
                let first_lit = first_bin(bins, |b| byte_of(b) > 0);
                let first_white = first_bin(bins, |b| byte_of(b) == 255);
                let mut lut = Box::new([0u8; TABLE_LEN]);
                for (b, byte) in lut.iter_mut().enumerate().take(first_white).skip(first_lit) {
                    *byte = byte_of(b);
                }
                lut[first_white..bins].fill(255);
                ByteMap::Table(lut)
            }
            _ => map,
        }
    }

    /// The byte of one value (not for [`ByteMap::Table`], which is built
    /// from this).
    #[inline(always)]
    fn byte(&self, v: f64) -> u8 {
        match *self {
            ByteMap::Threshold { high } => {
                if v >= high {
                    255
                } else {
                    0
                }
            }
            ByteMap::Linear { low, scale } => to_u8((v - low) * scale),
            ByteMap::Halves { low, scale } => to_u8((v * 0.5 - low) * scale),
            ByteMap::Table(_) => unreachable!("a table is built from the other maps"),
        }
    }

    /// Maps `samples` into `out` (of the same length); one match per call,
    /// then a loop specialised to the map.
    #[inline]
    fn map<T: Sample>(&self, samples: &[T], out: &mut [u8]) {
        let pairs = out.iter_mut().zip(samples);
        match self {
            ByteMap::Table(lut) => {
                let lut: &[u8; TABLE_LEN] = lut;
                for (o, v) in pairs {
                    // bins are below `bins <= TABLE_LEN`: the mask changes
                    // nothing but proves the index in bounds
                    *o = lut[v.bin() & (TABLE_LEN - 1)];
                }
            }
            &ByteMap::Threshold { high } => {
                for (o, v) in pairs {
                    *o = if v.to_f64() >= high { 255 } else { 0 };
                }
            }
            &ByteMap::Linear { low, scale } => {
                let done = linear_vector(samples, out, low, scale);
                for (o, v) in out[done..].iter_mut().zip(&samples[done..]) {
                    *o = to_u8((v.to_f64() - low) * scale);
                }
            }
            &ByteMap::Halves { low, scale } => {
                for (o, v) in pairs {
                    *o = to_u8((v.to_f64() * 0.5 - low) * scale);
                }
            }
        }
    }
}

/// Whether [`linear_vector`] maps samples of `T` on this CPU.
fn vector_window<T: Sample>() -> bool {
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == DType::U16 {
        return avx2::available();
    }
    false
}

/// Maps a prefix of `samples` (16-bit ones, on a CPU with AVX2: see
/// [`vector_window`]) under a linear window into `out`, returning its
/// length; the rest is the caller's.
#[inline]
fn linear_vector<T: Sample>(samples: &[T], out: &mut [u8], low: f64, scale: f64) -> usize {
    #[cfg(target_arch = "x86_64")]
    if vector_window::<T>() {
        let samples: &[u16] = bytemuck::cast_slice(samples);
        #[allow(unsafe_code)]
        // SAFETY: the CPU has the kernel's features, checked by `vector_window`.
        return unsafe { avx2::linear_u16(samples, out, low, scale) };
    }
    let _ = (samples, out, low, scale);
    0
}

/// The linear window of 16-bit samples in four `f64` lanes: the
/// subtraction, multiplication and rounding of [`ByteMap::byte`] in the
/// same order (no fused multiply-add), so each sample gets the same byte,
/// in about a fifth less time than a table lookup per sample (which was a
/// sixth of a slice request), and without the table's 64 KiB in the cache.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Whether the CPU has the features [`linear_u16`] is compiled for.
    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// `(v - low) * scale + 0.5` of eight samples, as 32-bit integers that
    /// the caller's saturating packs turn into `to_u8`'s bytes: `min`
    /// against 255 keeps large values in range and passes NaN (an infinite
    /// scale times zero) through as its second operand, and the truncating
    /// conversion makes NaN and whatever does not fit `i32::MIN`, which
    /// saturates to 0 as `to_u8` gives negatives and NaN.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn scaled8(samples: &[u16], low: __m256d, scale: __m256d) -> __m256i {
        let v: __m128i = bytemuck::pod_read_unaligned(bytemuck::cast_slice(samples));
        let wide = _mm256_cvtepu16_epi32(v);
        let half = |v: __m256d| {
            let x = _mm256_add_pd(
                _mm256_mul_pd(_mm256_sub_pd(v, low), scale),
                _mm256_set1_pd(0.5),
            );
            _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_set1_pd(255.0), x))
        };
        let first = half(_mm256_cvtepi32_pd(_mm256_castsi256_si128(wide)));
        let second = half(_mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(wide)));
        _mm256_set_m128i(second, first)
    }

    /// Maps the samples 32 at a time; returns how many it mapped (the
    /// whole groups of 32).
    #[target_feature(enable = "avx2")]
    pub(super) fn linear_u16(samples: &[u16], out: &mut [u8], low: f64, scale: f64) -> usize {
        let (low, scale) = (_mm256_set1_pd(low), _mm256_set1_pd(scale));
        // packs work within 128-bit lanes: this puts the four quarters of
        // each group of eight back in order
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let groups = samples.chunks_exact(32).zip(out.chunks_exact_mut(32));
        let mut done = 0;
        for (group, bytes) in groups {
            let r: [__m256i; 4] =
                std::array::from_fn(|i| scaled8(&group[8 * i..8 * i + 8], low, scale));
            let words = [
                _mm256_packus_epi32(r[0], r[1]),
                _mm256_packus_epi32(r[2], r[3]),
            ];
            let packed =
                _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words[0], words[1]), order);
            bytes.copy_from_slice(bytemuck::bytes_of(&packed));
            done += 32;
        }
        done
    }
}

/// The first of `0..bins` for which `holds` is true (`bins` if none), for
/// a `holds` that, once true, stays true.
fn first_bin(bins: usize, holds: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, bins);
    while low < high {
        let mid = low + (high - low) / 2;
        if holds(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// Rounds a value already scaled to `0.0..=255.0` (or beyond, or NaN) to a
/// byte: `as` saturates (negative → 0, above 255 → 255) and maps NaN to 0,
/// so adding one half before the truncating cast rounds half up.
#[inline(always)]
fn to_u8(scaled: f64) -> u8 {
    (scaled + 0.5) as u8
}

/// Encodes a `width × height` plane of samples (row-major) as an 8-bit
/// grayscale PNG windowed by `window` ([`ByteMap`]'s rule), one row at a
/// time: no 8-bit copy of the plane is made. Up to `threads` threads of
/// the current rayon pool code parts of a large plane at once: the
/// caller's guess at the cores it would have to itself (1 on a busy
/// machine, where splitting the work only adds to it).
pub fn encode_png_windowed<T: Sample>(
    width: u32,
    height: u32,
    samples: &[T],
    window: Window,
    threads: usize,
) -> Result<Vec<u8>, CoreError> {
    check_png_size(width, height, samples.len())?;
    let map = ByteMap::new::<T>(window, samples.len());
    let width = width as usize;
    Ok(png_rows::encode_rows(
        width as u32,
        height,
        png_rows::GRAY8,
        threads,
        |y, row| map.map(&samples[y * width..][..width], row),
    )?)
}

/// Encodes an 8-bit grayscale PNG of `width × height` pixels (row-major),
/// Up-filtered and deflated fast (fdeflate, or one block of literals under
/// a code built for the plane, whichever a trial predicts smaller), or
/// stored for noise that neither would shrink: latency matters more than
/// size here.
///
/// Up to `threads` threads code it, as for [`encode_png_windowed`].
///
/// Errors with [`CoreError::InvalidRequest`] when a dimension is 0 or
/// `pixels` does not hold exactly `width * height` bytes.
pub fn encode_png_gray8(
    width: u32,
    height: u32,
    pixels: &[u8],
    threads: usize,
) -> Result<Vec<u8>, CoreError> {
    check_png_size(width, height, pixels.len())?;
    encode_png(width, height, png_rows::GRAY8, pixels, threads)
}

/// Encodes an 8-bit RGB PNG (row-major, three bytes per pixel) on up to
/// `threads` threads, as [`encode_png_gray8`] does.
pub fn encode_png_rgb8(
    width: u32,
    height: u32,
    pixels: &[u8],
    threads: usize,
) -> Result<Vec<u8>, CoreError> {
    if !pixels.len().is_multiple_of(3) {
        return Err(CoreError::InvalidRequest(format!(
            "RGB pixels come in threes of bytes, got {} bytes",
            pixels.len()
        )));
    }
    check_png_size(width, height, pixels.len() / 3)?;
    encode_png(width, height, png_rows::RGB8, pixels, threads)
}

/// [`png_rows::encode_rows`] of pixels already in PNG's byte order.
fn encode_png(
    width: u32,
    height: u32,
    format: png_rows::PixelFormat,
    pixels: &[u8],
    threads: usize,
) -> Result<Vec<u8>, CoreError> {
    let row_bytes = width as usize * format.bytes;
    Ok(png_rows::encode_rows(
        width,
        height,
        format,
        threads,
        |y, row| row.copy_from_slice(&pixels[y * row_bytes..][..row_bytes]),
    )?)
}

/// Encodes a JPEG of 8-bit grey (`channels` 1) or RGB (3) pixels at
/// `quality` 1 to 100.
pub fn encode_jpeg(
    width: u32,
    height: u32,
    channels: u8,
    quality: u8,
    pixels: &[u8],
) -> Result<Vec<u8>, CoreError> {
    let (w, h) = (u16::try_from(width), u16::try_from(height));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err(CoreError::InvalidRequest(format!(
            "a JPEG is at most 65535×65535 pixels, not {width}×{height}; use format=png"
        )));
    };
    check_png_size(width, height, pixels.len() / usize::from(channels.max(1)))?;
    let color = if channels == 1 {
        jpeg_encoder::ColorType::Luma
    } else {
        jpeg_encoder::ColorType::Rgb
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(pixels, w, h, color)
        .map_err(std::io::Error::other)?;
    Ok(out)
}

/// Encodes a lossless WebP of 8-bit grey (`channels` 1) or RGB (3)
/// pixels: the same pixels as the PNG, usually in fewer bytes.
pub fn encode_webp(
    width: u32,
    height: u32,
    channels: u8,
    pixels: &[u8],
) -> Result<Vec<u8>, CoreError> {
    if width > 16384 || height > 16384 {
        return Err(CoreError::InvalidRequest(format!(
            "a WebP is at most 16384×16384 pixels, not {width}×{height}; use format=png"
        )));
    }
    check_png_size(width, height, pixels.len() / usize::from(channels.max(1)))?;
    let color = if channels == 1 {
        image_webp::ColorType::L8
    } else {
        image_webp::ColorType::Rgb8
    };
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(pixels, width, height, color)
        .map_err(std::io::Error::other)?;
    Ok(out)
}

/// Encodes a 16-bit grayscale PNG of the raw sample values (row-major).
///
/// PNG samples are unsigned, so the values are stored as they are for
/// `uint8` and `uint16`, and offset so that the full range fits for signed
/// types: `int8` is stored as `v + 128` and `int16` as `v + 32768` (subtract
/// the offset after decoding to get the original values back).
///
/// Errors with [`CoreError::InvalidRequest`] for other types (32/64-bit
/// integers and floats), whose values do not fit in 16 bits, and when the
/// size does not match as for [`encode_png_gray8`].
pub fn encode_png_gray16<T: Sample>(
    width: u32,
    height: u32,
    samples: &[T],
) -> Result<Vec<u8>, CoreError> {
    if !matches!(T::DTYPE, DType::U8 | DType::U16 | DType::I8 | DType::I16) {
        return Err(CoreError::InvalidRequest(format!(
            "bits=16 is available for integer images of up to 16 bits; this image is {} \
             — use format=npy for exact samples or the default 8-bit rendering",
            T::DTYPE
        )));
    }
    check_png_size(width, height, samples.len())?;
    let width = width as usize;
    Ok(png_rows::encode_rows(
        width as u32,
        height,
        png_rows::GRAY16,
        1,
        |y, row| {
            let samples = &samples[y * width..][..width];
            // `bin` is `v - MIN` for these types: exactly the documented
            // offsets; PNG stores 16-bit samples big-endian.
            for (bytes, v) in row.chunks_exact_mut(2).zip(samples) {
                bytes.copy_from_slice(&(v.bin() as u16).to_be_bytes());
            }
        },
    )?)
}

/// Checks what the PNG encoder would otherwise reject with a less helpful
/// message (or a panic, for a length mismatch).
fn check_png_size(width: u32, height: u32, len: usize) -> Result<(), CoreError> {
    if width == 0 || height == 0 {
        return Err(CoreError::InvalidRequest(format!(
            "cannot encode a {width}×{height} PNG: both dimensions must be at least 1"
        )));
    }
    let expected = u64::from(width) * u64::from(height);
    if expected != len as u64 {
        return Err(CoreError::InvalidRequest(format!(
            "a {width}×{height} PNG needs {expected} pixels, got {len}"
        )));
    }
    Ok(())
}

/// The `.npy` magic string.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";
/// `.npy` data starts at a multiple of this (numpy's `ARRAY_ALIGN`).
const NPY_ALIGN: usize = 64;
/// Digits numpy reserves for the first axis so that a header can be
/// rewritten in place when an array grows (`GROWTH_AXIS_MAX_DIGITS`).
const NPY_GROWTH_DIGITS: usize = 21;

/// The header of a NumPy `.npy` file (format version 1.0) of an array of
/// `shape` in C order, little-endian `dtype`, byte for byte as `numpy.save`
/// writes it: the header dictionary (keys sorted, e.g.
/// `{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }`), numpy's
/// spare space for growing the first axis, then spaces and `'\n'` so that
/// the data starts at a multiple of 64 bytes. The samples follow it.
pub fn npy_header(shape: &[u64], dtype: DType) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.npy_descr(),
        python_tuple(shape)
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.extend(std::iter::repeat_n(
            ' ',
            NPY_GROWTH_DIGITS.saturating_sub(digits),
        ));
    }
    // numpy pads by 1..=64 spaces: a full 64 when already aligned.
    let unpadded = NPY_MAGIC.len() + 2 + 2 + header.len() + 1;
    let padding = NPY_ALIGN - unpadded % NPY_ALIGN;
    // a 5-axis shape of u64 sizes is far below a 1.0 header's 65535 bytes
    let header_len = (header.len() + padding + 1) as u16;
    let mut out = Vec::with_capacity(unpadded + padding);
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out
}

/// Encodes a NumPy `.npy` file of `samples` in C order with the given
/// `shape` (see [`npy_header`]).
///
/// # Panics
///
/// If the product of `shape` is not `samples.len()` (a caller bug).
pub fn encode_npy<T: Sample>(shape: &[u64], samples: &[T]) -> Vec<u8> {
    let elements = shape.iter().try_fold(1u64, |a, &b| a.checked_mul(b));
    assert_eq!(
        elements,
        Some(samples.len() as u64),
        "npy shape {shape:?} does not match {} samples",
        samples.len()
    );
    let mut out = npy_header(shape, T::DTYPE);
    if cfg!(target_endian = "little") {
        out.extend_from_slice(bytemuck::cast_slice(samples));
    } else {
        for v in samples {
            out.extend_from_slice(bytemuck::bytes_of(&v.swap_bytes()));
        }
    }
    out
}

/// A shape as Python writes a tuple: `()`, `(5,)`, `(3, 4)`.
fn python_tuple(shape: &[u64]) -> String {
    match shape {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        _ => {
            let items: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn window(low: f64, high: f64) -> Window {
        Window { low, high }
    }

    /// The bytes [`ByteMap`] gives `samples` under `window`, into `out`.
    fn window_to_u8<T: Sample>(samples: &[T], window: Window, out: &mut Vec<u8>) {
        out.clear();
        out.resize(samples.len(), 0);
        ByteMap::new::<T>(window, samples.len()).map(samples, out);
    }

    #[test]
    fn window_maps_rounds_and_clamps() {
        let mut out = Vec::new();
        window_to_u8(
            &[0.0f32, 10.0, 5.0, -3.0, 99.0, f32::NAN, 1.0],
            window(0.0, 10.0),
            &mut out,
        );
        // 1.0 → 25.5 → 26 (half up).
        assert_eq!(out, vec![0, 255, 128, 0, 255, 0, 26]);

        window_to_u8(&[-5i32, 0, 5, 6], window(5.0, 5.0), &mut out);
        assert_eq!(out, vec![0, 0, 255, 255]);
        window_to_u8(&[-5i32, 0, 5, 6], window(5.0, 1.0), &mut out);
        assert_eq!(out, vec![0, 0, 255, 255]);
        window_to_u8(&[-5.0f64, 20.0], window(f64::NAN, 10.0), &mut out);
        assert_eq!(out, vec![0, 255]);
        window_to_u8(&[-5.0f64, 20.0], window(0.0, f64::NAN), &mut out);
        assert_eq!(out, vec![0, 0]);

        // Not a truncating cast: 300 in a 0..999 window is 77, not 44.
        window_to_u8(&[300u16], window(0.0, 999.0), &mut out);
        assert_eq!(out, vec![77]);

        // A window wider than f64's range still maps.
        window_to_u8(
            &[f64::MAX, -f64::MAX, 0.0],
            window(-f64::MAX, f64::MAX),
            &mut out,
        );
        assert_eq!(&out[..2], &[255, 0]);
        assert!((127..=128).contains(&out[2]));
    }

    #[test]
    fn lookup_table_path_matches_direct_path() {
        // Large enough for the table path for u8 and u16, and i16 with a
        // negative window.
        let u8s: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        let u16s: Vec<u16> = (0..300_000u32)
            .map(|i| (i * 7919 % 65_536) as u16)
            .collect();
        let i16s: Vec<i16> = u16s.iter().map(|&v| v as i16).collect();
        let w = window(10.5, 200.25);
        let wi = window(-1000.0, 3001.0);
        let direct = |s: &[f64], w: Window| -> Vec<u8> {
            s.iter()
                .map(|&v| {
                    let y = ((v - w.low) / (w.high - w.low) * 255.0).round();
                    y.clamp(0.0, 255.0) as u8
                })
                .collect()
        };
        let mut out = Vec::new();
        window_to_u8(&u8s, w, &mut out);
        let f: Vec<f64> = u8s.iter().map(|&v| v.into()).collect();
        assert_eq!(out, direct(&f, w));
        window_to_u8(&u16s, w, &mut out);
        let f: Vec<f64> = u16s.iter().map(|&v| v.into()).collect();
        assert_eq!(out, direct(&f, w));
        window_to_u8(&i16s, wi, &mut out);
        let f: Vec<f64> = i16s.iter().map(|&v| v.into()).collect();
        assert_eq!(out, direct(&f, wi));
        // Windows beyond the type's values, and a degenerate one inside.
        for w in [
            window(70_000.0, 80_000.0),
            window(-10.0, -5.0),
            window(300.0, 300.0),
        ] {
            window_to_u8(&u16s, w, &mut out);
            let expected: Vec<u8> = if w.low == w.high {
                u16s.iter()
                    .map(|&v| if f64::from(v) >= w.high { 255 } else { 0 })
                    .collect()
            } else {
                direct(&u16s.iter().map(|&v| v.into()).collect::<Vec<f64>>(), w)
            };
            assert_eq!(out, expected);
        }
        // Small input: direct path, same answers.
        window_to_u8(&i16s[..10], wi, &mut out);
        assert_eq!(out, direct(&f[..10], wi));
        // A plane of several megapixels: same answers in order.
        let many: Vec<u8> = (0..(4 << 20) + 1001).map(|i| (i % 251) as u8).collect();
        window_to_u8(&many, w, &mut out);
        let f: Vec<f64> = many.iter().map(|&v| v.into()).collect();
        assert_eq!(out, direct(&f, w));
    }

    /// The vector map gives every 16-bit value the byte of the scalar
    /// formula, at every offset into a row (the scalar tail included),
    /// for windows with fractional bounds, bounds outside the type, widths
    /// of a fraction of a value and of more than the type, and one so
    /// narrow that its scale is infinite (NaN at its low end).
    #[test]
    fn vector_window_is_the_scalar_map() {
        let every: Vec<u16> = (0..=u16::MAX).rev().chain(0..=u16::MAX).collect();
        for (low, high) in [
            (100.123_456_7, 9_000.000_1),
            (0.0, 65_535.0),
            (-70_000.5, 140_000.25),
            (1000.0, 1000.3),
            (0.0, 1e-320),
            (-1e300, 1e300),
            (65_534.5, 70_000.0),
        ] {
            let map = ByteMap::new::<u16>(window(low, high), every.len());
            let scalar = match map {
                ByteMap::Linear { low, scale } => ByteMap::Linear { low, scale },
                _ => continue,
            };
            for start in [0, 1, 31, 33] {
                let samples = &every[start..];
                let mut out = vec![0u8; samples.len()];
                map.map(samples, &mut out);
                for (v, byte) in samples.iter().zip(&out) {
                    assert_eq!(*byte, scalar.byte(f64::from(*v)), "{v} in [{low}, {high}]");
                }
            }
        }
    }

    #[test]
    fn png8_round_trips() {
        let pixels: Vec<u8> = (0..12 * 5).map(|i| (i * 4) as u8).collect();
        let encoded = encode_png_gray8(12, 5, &pixels, 2).unwrap();
        let (info, data) = decode(&encoded);
        assert_eq!((info.width, info.height), (12, 5));
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(data, pixels);

        assert!(matches!(
            encode_png_gray8(12, 5, &pixels[1..], 1),
            Err(CoreError::InvalidRequest(_))
        ));
        assert!(matches!(
            encode_png_gray8(0, 5, &[], 1),
            Err(CoreError::InvalidRequest(_))
        ));
    }

    /// xorshift bytes: noise that deflate cannot shrink.
    fn noise(len: usize) -> Vec<u8> {
        let mut next = crate::test_support::xorshift(0x9e37_79b9_7f4a_7c15);
        (0..len).map(|_| (next() >> 24) as u8).collect()
    }

    #[test]
    fn noise_is_stored_and_structure_deflated() {
        let (w, h) = (1024u32, 512u32);
        let noise = noise((w * h) as usize);
        // a smooth ramp with a little noise: what deflate is for
        let structured: Vec<u8> = (0..w * h)
            .map(|i| ((i % w) / 8) as u8 ^ (noise[i as usize] & 1))
            .collect();
        let raw = (w * h) as usize;
        for (pixels, deflated) in [(&noise, false), (&structured, true)] {
            let encoded = encode_png_gray8(w, h, pixels, 2).unwrap();
            assert_eq!(decode(&encoded).1, *pixels);
            if deflated {
                assert!(encoded.len() < raw / 2, "{} bytes", encoded.len());
            } else {
                // stored: the rows, a filter byte each, block headers
                assert!(encoded.len() > raw + h as usize, "{} bytes", encoded.len());
                assert!(encoded.len() < raw + raw / 100, "{} bytes", encoded.len());
            }
        }
        // small images skip the trial: deflated, even noise
        let small = encode_png_gray8(256, 256, &noise[..65_536], 2).unwrap();
        assert_eq!(decode(&small).1, &noise[..65_536]);
        assert_eq!(&small[37..41], b"IDAT");
        assert_eq!(&small[41..43], &[0x78, 0x01]);
        assert_ne!(small[43] & 0b110, 0, "a compressed first block");
    }

    #[test]
    fn long_streams_span_idat_chunks_and_wide_rows_span_stored_blocks() {
        // 3 MiB of noise is stored: three chunks of 1 MiB and a short one
        let (w, h) = (1536u32, 2048u32);
        let pixels = noise((w * h) as usize);
        let encoded = encode_png_gray8(w, h, &pixels, 2).unwrap();
        let idats = encoded.windows(4).filter(|k| k == b"IDAT").count();
        assert_eq!(idats, 4);
        assert_eq!(decode(&encoded).1, pixels);
        // rows wider than a stored block, in RGB
        let (w, h) = (30_000u32, 20u32);
        let pixels = noise((w * h * 3) as usize);
        let (info, data) = decode(&encode_png_rgb8(w, h, &pixels, 2).unwrap());
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(data, pixels);
        // a deflated stream longer than a chunk
        let structured: Vec<u8> = (0..4096 * 2048u32)
            .map(|i| ((i % 4096) / 16) as u8 ^ (pixels[(i % 60_000) as usize] & 7))
            .collect();
        let encoded = encode_png_gray8(4096, 2048, &structured, 2).unwrap();
        assert!(encoded.windows(4).filter(|k| k == b"IDAT").count() > 1);
        assert_eq!(decode(&encoded).1, structured);
    }

    #[test]
    fn every_shape_and_format_decodes_to_its_pixels() {
        let bytes = noise(3 * 300_000);
        // noise and flat runs, so both the stored and the deflated paths
        // and fdeflate's zero runs are taken
        let flat_then_noise = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|i| {
                    if i < len / 2 {
                        0
                    } else {
                        bytes[i % bytes.len()]
                    }
                })
                .collect()
        };
        for (w, h) in [
            (1u32, 1u32),
            (1, 17),
            (17, 1),
            (3, 300),
            (1023, 9),
            (300_000, 1),
            (70_000, 5),
            (600, 600),
        ] {
            let n = (w * h) as usize;
            for pixels in [bytes[..n].to_vec(), flat_then_noise(n)] {
                let (info, data) = decode(&encode_png_gray8(w, h, &pixels, 2).unwrap());
                assert_eq!((info.width, info.height), (w, h));
                assert_eq!(data, pixels, "gray8 {w}×{h}");
            }
            if n * 3 <= bytes.len() {
                let rgb = flat_then_noise(3 * n);
                let (info, data) = decode(&encode_png_rgb8(w, h, &rgb, 3).unwrap());
                assert_eq!(info.color_type, png::ColorType::Rgb);
                assert_eq!(data, rgb, "rgb8 {w}×{h}");
            }
            let samples: Vec<u16> = flat_then_noise(2 * n)
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            let (_, data) = decode(&encode_png_gray16(w, h, &samples).unwrap());
            let expected: Vec<u8> = samples.iter().flat_map(|v| v.to_be_bytes()).collect();
            assert_eq!(data, expected, "gray16 {w}×{h}");
        }
        assert!(matches!(
            encode_png_rgb8(2, 2, &bytes[..11], 1),
            Err(CoreError::InvalidRequest(_))
        ));
    }

    #[test]
    fn windowed_png_is_the_mapped_plane() {
        let (w, h) = (700u32, 600u32);
        let u16s: Vec<u16> = (0..w * h).map(|i| (i * 7919 % 65_536) as u16).collect();
        let f32s: Vec<f32> = u16s.iter().map(|&v| v as f32 - 100.5).collect();
        let mut gray = Vec::new();
        for window in [
            window(10.5, 30_000.25),
            window(5.0, 5.0),
            window(f64::MIN, f64::MAX),
        ] {
            window_to_u8(&u16s, window, &mut gray);
            let encoded = encode_png_windowed(w, h, &u16s, window, 4).unwrap();
            assert_eq!(decode(&encoded).1, gray);
            window_to_u8(&f32s, window, &mut gray);
            let encoded = encode_png_windowed(w, h, &f32s, window, 1).unwrap();
            assert_eq!(decode(&encoded).1, gray);
        }
        assert!(matches!(
            encode_png_windowed(w, h - 1, &u16s, window(0.0, 1.0), 1),
            Err(CoreError::InvalidRequest(_))
        ));
    }

    #[test]
    fn png16_keeps_values_and_offsets_signed() {
        let u: Vec<u16> = vec![0, 1, 300, 65_535, 4096, 7];
        let (info, data) = decode(&encode_png_gray16(3, 2, &u).unwrap());
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(info.bit_depth, png::BitDepth::Sixteen);
        let back: Vec<u16> = data
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(back, u);

        let i: Vec<i16> = vec![-32_768, -1, 0, 32_767];
        let (_, data) = decode(&encode_png_gray16(2, 2, &i).unwrap());
        let back: Vec<u16> = data
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(back, vec![0, 32_767, 32_768, 65_535]);

        let (info, data) = decode(&encode_png_gray16(2, 1, &[-128i8, 5]).unwrap());
        assert_eq!(info.bit_depth, png::BitDepth::Sixteen);
        assert_eq!(data, vec![0, 0, 0, 133]);
        let (_, data) = decode(&encode_png_gray16(1, 1, &[200u8]).unwrap());
        assert_eq!(data, vec![0, 200]);
    }

    #[test]
    fn png16_rejects_wide_types_with_the_dtype() {
        let e = encode_png_gray16(1, 1, &[1.0f32]).unwrap_err();
        assert!(matches!(e, CoreError::InvalidRequest(_)));
        assert_eq!(
            e.to_string(),
            "bits=16 is available for integer images of up to 16 bits; this image is float32 \
             — use format=npy for exact samples or the default 8-bit rendering"
        );
        let e = encode_png_gray16(1, 1, &[1u32]).unwrap_err();
        assert!(e.to_string().contains("this image is uint32"), "{e}");
    }

    /// Expected `.npy` bytes: magic, version 1.0, little-endian header
    /// length, then `dict` padded with spaces to `total - 1` bytes and '\n'.
    fn expected_header(dict: &str, total: usize) -> Vec<u8> {
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
        h.extend_from_slice(dict.as_bytes());
        h.resize(total - 1, b' ');
        h.push(b'\n');
        h
    }

    #[test]
    fn npy_header_matches_numpy() {
        let samples: Vec<u16> = (0..12).collect();
        let npy = encode_npy(&[3, 4], &samples);
        // numpy.save(f, np.arange(12, dtype='<u2').reshape(3, 4)): header
        // length 118 ('v\x00'), data at byte 128.
        let header = expected_header(
            "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }",
            128,
        );
        assert_eq!(&npy[..128], &header[..]);
        assert_eq!(&npy[8..10], b"v\x00");
        assert_eq!(npy.len(), 128 + 24);
        assert_eq!(&npy[128..132], &[0, 0, 1, 0]);

        // One axis, one-byte type (no byte order).
        let npy = encode_npy(&[5], &[1i8, -1, 2, -2, 3]);
        let header = expected_header(
            "{'descr': '|i1', 'fortran_order': False, 'shape': (5,), }",
            128,
        );
        assert_eq!(&npy[..128], &header[..]);
        assert_eq!(&npy[128..], &[1, 255, 2, 254, 3]);

        // Zero dimensions: "()" and no spare digits.
        let npy = encode_npy(&[], &[1.5f64]);
        // (10 + 55 + 1 = 66 bytes do not fit 64, so the data is at 128.)
        let header = expected_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
            128,
        );
        assert_eq!(&npy[..128], &header[..]);
        assert_eq!(&npy[128..], &1.5f64.to_le_bytes());
    }

    #[test]
    fn npy_spare_digits_can_cross_an_alignment_boundary() {
        // The dict is 104 bytes; numpy adds 21 - 1 spare spaces for the
        // first axis, so 10 + 104 + 20 + 1 = 135 bytes exceed 128 and the
        // data starts at 192 (it would start at 128 without them).
        let shape = [
            0u64,
            1_000_000_000,
            1_000_000_000,
            1_000_000_000,
            1_000_000_000,
        ];
        let npy = encode_npy::<f32>(&shape, &[]);
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \
                    (0, 1000000000, 1000000000, 1000000000, 1000000000), }";
        assert_eq!(dict.len(), 104);
        assert_eq!(npy, expected_header(dict, 192));
    }
}
