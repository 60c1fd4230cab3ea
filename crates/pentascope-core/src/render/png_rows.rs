//! A PNG writer fed one row at a time: rows are produced, filtered and
//! deflated while they are in cache, and the stream goes straight into the
//! output. Nothing holds a whole filtered or windowed copy of the image, and
//! the compressed bytes are written once (the png crate's writer kept its
//! own growing buffer of them and copied it into chunks).

use std::io;

/// The eight bytes every PNG file starts with.
const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Bytes of deflate stream per IDAT chunk. Well below PNG's 2³¹ − 1 limit;
/// an image's stream that is longer spans several chunks.
const IDAT_CHUNK_BYTES: usize = 1 << 20;

/// Filtered rows handed to the compressor at a time: enough to amortise a
/// call, small enough to stay in cache.
const BATCH_BYTES: usize = 64 * 1024;

/// Largest stored deflate block.
const STORED_BLOCK_MAX: usize = 65_535;

/// Every this many rows, one row is compressed in [`Encoding::choose`]'s
/// trial.
const TRIAL_ROW_STRIDE: usize = 16;
/// Below this many bytes an image is deflated without a trial.
const TRIAL_MIN_BYTES: usize = 256 * 1024;
/// Deflate is used when the trial shrinks its rows by at least this part.
const MIN_DEFLATE_SAVING: f64 = 0.05;

/// A PNG pixel format: colour type and bit depth as IHDR spells them.
#[derive(Debug, Clone, Copy)]
pub(super) struct PixelFormat {
    color_type: u8,
    bit_depth: u8,
    /// Bytes of one pixel.
    pub(super) bytes: usize,
}

/// 8-bit grey.
pub(super) const GRAY8: PixelFormat = PixelFormat {
    color_type: 0,
    bit_depth: 8,
    bytes: 1,
};
/// 16-bit grey (samples big-endian).
pub(super) const GRAY16: PixelFormat = PixelFormat {
    color_type: 0,
    bit_depth: 16,
    bytes: 2,
};
/// 8-bit RGB.
pub(super) const RGB8: PixelFormat = PixelFormat {
    color_type: 2,
    bit_depth: 8,
    bytes: 3,
};

/// How the rows are deflated.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    /// fdeflate with the Up filter; the output is expected near this many
    /// bytes per input byte.
    Deflate { ratio: f64 },
    /// Stored blocks, rows unfiltered: noise that deflate would barely
    /// shrink, at a fraction of the time.
    Stored,
}

impl Encoding {
    /// Deflate when a trial on every 16th row (Up-filtered against the row
    /// above it, as the encoder would) saves at least 5%, or the image is
    /// too small to bother. Noisy planes (deflate saves 1–2% of them, at
    /// about 3 ms a megapixel) are then stored in a few hundred
    /// microseconds; planes with background or structure, which deflate
    /// halves, are compressed.
    fn choose(height: usize, row_bytes: usize, row_of: &mut impl FnMut(usize, &mut [u8])) -> Self {
        let total = height.saturating_mul(row_bytes);
        let pairs = height / TRIAL_ROW_STRIDE;
        if total < TRIAL_MIN_BYTES || row_bytes == 0 || pairs == 0 {
            return Encoding::Deflate { ratio: 1.0 };
        }
        let (mut above, mut row) = (vec![0u8; row_bytes], vec![0u8; row_bytes]);
        let mut trial = Vec::with_capacity(pairs * (row_bytes + 1));
        for pair in 0..pairs {
            let y = pair * TRIAL_ROW_STRIDE;
            row_of(y, &mut above);
            row_of(y + 1, &mut row);
            trial.push(2);
            trial.extend(row.iter().zip(&above).map(|(a, b)| a.wrapping_sub(*b)));
        }
        let ratio = fdeflate::compress_to_vec(&trial).len() as f64 / trial.len() as f64;
        if ratio <= 1.0 - MIN_DEFLATE_SAVING {
            Encoding::Deflate { ratio }
        } else {
            Encoding::Stored
        }
    }
}

/// Encodes a `width × height` PNG of `format` whose row `y` is written by
/// `row_of(y, row)` into `row` (`width × format.bytes` bytes). The caller
/// has checked that both sizes are at least 1 and that the image fits in
/// memory.
pub(super) fn encode_rows(
    width: u32,
    height: u32,
    format: PixelFormat,
    mut row_of: impl FnMut(usize, &mut [u8]),
) -> io::Result<Vec<u8>> {
    let row_bytes = width as usize * format.bytes;
    let rows = height as usize;
    let encoding = Encoding::choose(rows, row_bytes, &mut row_of);
    let filtered = rows.saturating_mul(row_bytes + 1);
    // room for what the trial predicts (stored blocks: exactly), so the
    // output is rarely copied to grow and rarely much larger than needed
    let stream = match encoding {
        Encoding::Deflate { ratio } => (filtered as f64 * ratio * 1.02) as usize + 4096,
        Encoding::Stored => filtered + filtered / STORED_BLOCK_MAX * 5 + rows * 5 + 16,
    };
    let mut out = Vec::with_capacity(stream + stream / IDAT_CHUNK_BYTES * 12 + 64);
    out.extend_from_slice(&SIGNATURE);
    let mut header = [0u8; 13];
    header[..4].copy_from_slice(&width.to_be_bytes());
    header[4..8].copy_from_slice(&height.to_be_bytes());
    header[8] = format.bit_depth;
    header[9] = format.color_type;
    // compression, filter method and interlacing: the only defined values
    write_chunk(&mut out, *b"IHDR", &header);
    // the zlib stream is written after one IDAT chunk's header and cut
    // into chunks at the end: a writer that checked for a full chunk at
    // each of fdeflate's 8-byte writes cost a tenth of the encoding
    let idat = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(b"IDAT");
    let (mut row, mut above) = (vec![0u8; row_bytes], vec![0u8; row_bytes]);
    let mut batch = Vec::with_capacity(BATCH_BYTES.max(row_bytes + 1) + row_bytes + 1);
    match encoding {
        Encoding::Deflate { .. } => {
            let mut deflate = fdeflate::Compressor::new(&mut out)?;
            for y in 0..rows {
                row_of(y, &mut row);
                // Up: each byte minus the one above it (zeros above row 0)
                batch.push(2);
                batch.extend(row.iter().zip(&above).map(|(a, b)| a.wrapping_sub(*b)));
                std::mem::swap(&mut row, &mut above);
                if batch.len() >= BATCH_BYTES {
                    deflate.write_data(&batch)?;
                    batch.clear();
                }
            }
            deflate.write_data(&batch)?;
            deflate.finish()?;
        }
        Encoding::Stored => {
            let mut checksum = simd_adler32::Adler32::new();
            // zlib header: deflate, 32 KiB window, no dictionary, level 0
            out.extend_from_slice(&[0x78, 0x01]);
            for y in 0..rows {
                if !batch.is_empty() && batch.len() + 1 + row_bytes > STORED_BLOCK_MAX {
                    write_stored(&mut out, &batch, &mut checksum);
                    batch.clear();
                }
                row_of(y, &mut row);
                batch.push(0);
                batch.extend_from_slice(&row);
            }
            write_stored(&mut out, &batch, &mut checksum);
            // an empty final block ends the stream
            out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
            out.extend_from_slice(&checksum.finish().to_be_bytes());
        }
    }
    split_idat(&mut out, idat);
    write_chunk(&mut out, *b"IEND", &[]);
    Ok(out)
}

/// Writes `data` as non-final stored deflate blocks.
fn write_stored(out: &mut Vec<u8>, data: &[u8], checksum: &mut simd_adler32::Adler32) {
    checksum.write(data);
    for block in data.chunks(STORED_BLOCK_MAX) {
        let len = block.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
}

/// Turns the IDAT chunk header at `start` and the whole stream after it
/// (the rest of `out`) into IDAT chunks of at most [`IDAT_CHUNK_BYTES`]
/// each, with their lengths and CRCs. Pieces move back from the last, each
/// once, to make room for the headers between them.
fn split_idat(out: &mut Vec<u8>, start: usize) {
    let data = start + 8;
    let len = out.len() - data;
    let chunks = len.div_ceil(IDAT_CHUNK_BYTES).max(1);
    out.resize(out.len() + (chunks - 1) * 12, 0);
    for i in (0..chunks).rev() {
        let from = data + i * IDAT_CHUNK_BYTES;
        let piece = IDAT_CHUNK_BYTES.min(len - i * IDAT_CHUNK_BYTES);
        let at = start + i * (IDAT_CHUNK_BYTES + 12);
        out.copy_within(from..from + piece, at + 8);
        out[at..at + 4].copy_from_slice(&(piece as u32).to_be_bytes());
        out[at + 4..at + 8].copy_from_slice(b"IDAT");
        let crc = crc32fast::hash(&out[at + 4..at + 8 + piece]);
        if i + 1 == chunks {
            out.extend_from_slice(&crc.to_be_bytes());
        } else {
            out[at + 8 + piece..at + 12 + piece].copy_from_slice(&crc.to_be_bytes());
        }
    }
}

/// Appends a whole chunk: length, type, data, CRC of type and data.
fn write_chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start + 4..]);
    out.extend_from_slice(&crc.to_be_bytes());
}
