//! Decoding one strip or tile: read its bytes, decompress, undo the
//! predictor and bring samples to native byte order.
//!
//! Chunks are read with positioned reads (`pread`), so any number of threads
//! can decode chunks of the same file at once.

use std::io::Read;

use crate::codecs;
use crate::ifd::{Codec, PageLayout};
use crate::jpeg;
use crate::ReadAt;
use crate::Sample;
use crate::TiffError;

/// Where a chunk sits and how many of its rows are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkRef {
    /// Index into the page's offsets / byte counts.
    pub index: usize,
    /// Sample plane for planar-separate pages (0 otherwise).
    pub sample: u16,
    /// Top-left pixel of the chunk in the page.
    pub x0: u32,
    /// Top row of the chunk in the page.
    pub y0: u32,
    /// Rows of the chunk that lie in the image: the only ones decoded.
    pub decoded_rows: u32,
}

/// Decodes the first `decoded_rows` rows of `chunk` into `out`, which holds
/// exactly `decoded_rows` × chunk width × samples-in-chunk samples; the
/// decompressor is stopped there, whatever the stream would go on to produce.
pub(crate) fn decode_chunk<T: Sample, R: ReadAt + ?Sized>(
    file: &R,
    page: &PageLayout,
    big_endian: bool,
    chunk: &ChunkRef,
    out: &mut [T],
) -> Result<(), TiffError> {
    let samples_in_chunk = if page.planar_separate {
        1
    } else {
        usize::from(page.samples)
    };
    let row_len = page.chunk_size().0 as usize * samples_in_chunk;
    if page.codec == Codec::Jpeg {
        // JPEG pages hold uint8 samples only (checked when the IFD is read)
        let out: &mut [u8] = bytemuck::try_cast_slice_mut(out).map_err(|_| {
            TiffError::Format(format!("a JPEG page decoded as {} samples", T::DTYPE))
        })?;
        return jpeg::decode(file, page, chunk, samples_in_chunk, out);
    }
    if page.codec.decodes_frames() {
        return codecs::decode_frame(
            file,
            page,
            chunk,
            samples_in_chunk,
            bytemuck::cast_slice_mut(out),
        );
    }
    if page.is_packed() {
        // the packed rows take at most as many bytes as their widened samples
        let row_bytes = page.stored_row_bytes() as usize;
        let mut packed = vec![0u8; row_bytes * chunk.decoded_rows as usize];
        read_stored(file, page, chunk, &mut packed)?;
        unpack_rows(&packed, row_bytes, page.bits_per_sample, row_len, out);
        return Ok(());
    }
    read_stored(file, page, chunk, bytemuck::cast_slice_mut(out))?;
    match page.predictor {
        3 => undo_float_predictor::<T>(out, row_len, samples_in_chunk),
        predictor => {
            if big_endian && std::mem::size_of::<T>() > 1 {
                for v in out.iter_mut() {
                    *v = v.swap_bytes();
                }
            }
            if predictor == 2 {
                for row in out.chunks_exact_mut(row_len) {
                    for i in samples_in_chunk..row.len() {
                        row[i] = row[i].wrapping_add(row[i - samples_in_chunk]);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fills `out_bytes` with the chunk's stored (decompressed) bytes, refusing
/// a chunk that holds fewer.
fn read_stored<R: ReadAt + ?Sized>(
    file: &R,
    page: &PageLayout,
    chunk: &ChunkRef,
    out_bytes: &mut [u8],
) -> Result<(), TiffError> {
    let offset = page.offsets[chunk.index];
    let count = page.byte_counts[chunk.index] as usize;
    let expected = out_bytes.len();
    let corrupt = |what: String| {
        TiffError::Format(format!(
            "strip/tile {} of a {}×{} page: {what}",
            chunk.index, page.width, page.height
        ))
    };
    match page.codec {
        Codec::None => {
            if count < expected {
                return Err(corrupt(format!(
                    "holds {count} bytes but its pixels need {expected}"
                )));
            }
            file.read_exact_at(out_bytes, offset)?;
        }
        codec => {
            let mut raw = vec![0u8; count];
            file.read_exact_at(&mut raw, offset)?;
            let produced = decompress(codec, &raw, out_bytes).map_err(&corrupt)?;
            if produced < expected {
                return Err(corrupt(format!(
                    "decompresses to {produced} bytes but its pixels need {expected} \
                     (corrupt or truncated data)"
                )));
            }
        }
    }
    Ok(())
}

/// Widens packed unsigned samples of `bits` bits (1 to 15) into `out` (uint8
/// up to 7 bits, uint16 above), `row_len` samples a row. TIFF packs them
/// most significant bit first, whatever the file's byte order, and starts
/// each row on a byte boundary (`row_bytes` bytes a row).
fn unpack_rows<T: Sample>(
    packed: &[u8],
    row_bytes: usize,
    bits: u16,
    row_len: usize,
    out: &mut [T],
) {
    let bits = u32::from(bits);
    let mask = (1u32 << bits) - 1;
    let width = std::mem::size_of::<T>();
    let out_bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
    for (src, dst) in packed
        .chunks_exact(row_bytes)
        .zip(out_bytes.chunks_exact_mut(row_len * width))
    {
        let mut bytes = src.iter();
        // bits read from the row but not yet given out, right-aligned
        let (mut pending, mut pending_bits) = (0u32, 0u32);
        for sample in dst.chunks_exact_mut(width) {
            while pending_bits < bits {
                pending = (pending << 8) | u32::from(bytes.next().copied().unwrap_or(0));
                pending_bits += 8;
            }
            pending_bits -= bits;
            let value = (pending >> pending_bits) & mask;
            pending &= (1u32 << pending_bits) - 1;
            // `value` < 2^bits fits the type the page's dtype gives it
            // (uint8 or uint16), and so does the cast
            if let [byte] = sample {
                *byte = value as u8;
            } else {
                sample.copy_from_slice(&(value as u16).to_ne_bytes());
            }
        }
    }
}

/// Decompresses `raw` into `out`, returning how many bytes were produced
/// (at most `out.len()`; extra output, such as a padded last strip, is dropped).
fn decompress(codec: Codec, raw: &[u8], out: &mut [u8]) -> Result<usize, String> {
    match codec {
        Codec::None => {
            let n = raw.len().min(out.len());
            out[..n].copy_from_slice(&raw[..n]);
            Ok(n)
        }
        Codec::Deflate => {
            let mut z = flate2::Decompress::new(true);
            loop {
                let before = z.total_out();
                let status = z
                    .decompress(
                        &raw[z.total_in() as usize..],
                        &mut out[z.total_out() as usize..],
                        flate2::FlushDecompress::Finish,
                    )
                    .map_err(|e| format!("invalid Deflate data: {e}"))?;
                let done = z.total_out() as usize;
                if status == flate2::Status::StreamEnd
                    || done == out.len()
                    || z.total_out() == before
                {
                    return Ok(done);
                }
            }
        }
        Codec::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| format!("invalid Zstd data: {e}"))?;
            let mut done = 0;
            while done < out.len() {
                match dec.read(&mut out[done..]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) => return Err(format!("invalid Zstd data: {e}")),
                }
            }
            Ok(done)
        }
        Codec::Lzw => {
            let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let (mut inp, mut done) = (0usize, 0usize);
            loop {
                let r = dec.decode_bytes(&raw[inp..], &mut out[done..]);
                inp += r.consumed_in;
                done += r.consumed_out;
                match r.status {
                    Ok(weezl::LzwStatus::Done) => return Ok(done),
                    Ok(weezl::LzwStatus::NoProgress) => return Ok(done),
                    Ok(weezl::LzwStatus::Ok) => {
                        if done == out.len() || (r.consumed_in == 0 && r.consumed_out == 0) {
                            return Ok(done);
                        }
                    }
                    // Some writers end strips without an end-of-information code
                    // once all pixels are out; that is not an error.
                    Err(_) if done == out.len() => return Ok(done),
                    Err(e) => return Err(format!("invalid LZW data: {e}")),
                }
            }
        }
        // decoded whole by `jpeg::decode`, never as a byte stream
        Codec::Jpeg => Err("JPEG data cannot be decompressed as a byte stream".into()),
        Codec::Lzma => codecs::lzma::decompress(raw, out),
        // decoded whole by `codecs::decode_frame`
        Codec::Ccitt(_) | Codec::WebP | Codec::Jpeg2000 | Codec::JpegXl => {
            Err("image codecs' data cannot be decompressed as a byte stream".into())
        }
        Codec::PackBits => {
            let (mut i, mut done) = (0usize, 0usize);
            while i < raw.len() && done < out.len() {
                let n = raw[i] as i8;
                i += 1;
                if n >= 0 {
                    let len = n as usize + 1;
                    let len = len.min(raw.len() - i).min(out.len() - done);
                    out[done..done + len].copy_from_slice(&raw[i..i + len]);
                    i += len;
                    done += len;
                } else if n != -128 {
                    let len = (1 - n as isize) as usize;
                    let Some(&b) = raw.get(i) else { break };
                    i += 1;
                    let len = len.min(out.len() - done);
                    out[done..done + len].fill(b);
                    done += len;
                }
            }
            Ok(done)
        }
    }
}

/// Undoes TIFF's floating-point predictor (Adobe technical note 3): each
/// row's bytes were split into planes (most significant byte first, whatever
/// the file's byte order) and differenced with a stride of one pixel.
fn undo_float_predictor<T: Sample>(out: &mut [T], row_len: usize, samples: usize) {
    let size = std::mem::size_of::<T>();
    let mut row_bytes = vec![0u8; row_len * size];
    for row in out.chunks_exact_mut(row_len) {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(row);
        for i in samples..bytes.len() {
            bytes[i] = bytes[i].wrapping_add(bytes[i - samples]);
        }
        row_bytes.copy_from_slice(bytes);
        for j in 0..row_len {
            for k in 0..size {
                // plane k holds byte k counted from the most significant end
                let dst = if cfg!(target_endian = "little") {
                    size - 1 - k
                } else {
                    k
                };
                bytes[j * size + dst] = row_bytes[k * row_len + j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_round_trip_example() {
        // The example from the TIFF 6.0 specification.
        let raw = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let mut out = [0u8; 24];
        let n = decompress(Codec::PackBits, &raw, &mut out).unwrap();
        assert_eq!(n, 24);
        assert_eq!(
            out,
            [
                0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
                0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA
            ]
        );
    }

    #[test]
    fn float_predictor_inverts_encoding() {
        let values = [1.5f32, -2.25, 1e10, 0.0, 3.0, 7.75];
        let row_len = values.len();
        // encode: split into MSB-first byte planes, then difference
        let mut planes = vec![0u8; row_len * 4];
        for (j, v) in values.iter().enumerate() {
            for (k, b) in v.to_be_bytes().iter().enumerate() {
                planes[k * row_len + j] = *b;
            }
        }
        for i in (1..planes.len()).rev() {
            planes[i] = planes[i].wrapping_sub(planes[i - 1]);
        }
        let mut out: Vec<f32> = bytemuck::pod_collect_to_vec(&planes);
        undo_float_predictor(&mut out, row_len, 1);
        assert_eq!(out, values);
    }
}
