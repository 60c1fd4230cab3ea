//! A PNG writer fed one row at a time: rows are produced, filtered and
//! deflated while they are in cache, and the stream goes straight into the
//! output. Nothing holds a whole filtered or windowed copy of the image, and
//! the compressed bytes are written once (the png crate's writer kept its
//! own growing buffer of them and copied it into chunks).

use std::io;

use rayon::prelude::*;

use super::literal_block::{LiteralBlock, LiteralCode, LiteralTable};

/// The eight bytes every PNG file starts with.
const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Bytes of deflate stream per IDAT chunk. Well below PNG's 2³¹ − 1 limit;
/// an image's stream that is longer spans several chunks.
const IDAT_CHUNK_BYTES: usize = 1 << 20;

/// Filtered rows handed to the compressor at a time: enough to amortise a
/// call, small enough to stay in cache.
const BATCH_BYTES: usize = 64 * 1024;

/// Filtered bytes of one part of an image whose block of literals is
/// coded in parts in parallel (a block each, the blocks appended): at
/// least this many, so that a part's header (about 100 bytes) and its
/// hand-off stay small beside it.
const LITERAL_PART_MIN_BYTES: usize = 256 * 1024;
/// Most parts an image's literals are coded in.
const LITERAL_PARTS_MAX: usize = 4;

/// zlib's header: deflate, 32 KiB window, no dictionary, fastest level.
const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];

/// Largest stored deflate block.
const STORED_BLOCK_MAX: usize = 65_535;

/// Every this many rows, one row is compressed in [`Encoding::choose`]'s
/// trial.
const TRIAL_ROW_STRIDE: usize = 16;
/// ... or more rows apart, so that the trial is at most about this many
/// bytes (a code for 256 byte values needs no more; the trial was a
/// twentieth of a slice's encoding at 64 KiB).
const TRIAL_MAX_BYTES: usize = 32 * 1024;
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
#[derive(Debug, Clone, PartialEq)]
enum Encoding {
    /// fdeflate with the Up filter; the output is expected near this many
    /// bytes per input byte.
    Deflate { ratio: f64 },
    /// One block of literals under a code built from the trial's bytes
    /// ([`LiteralBlock`]), Up-filtered: noisy planes, whose bytes it codes
    /// smaller than fdeflate's fixed code does and in about half the time.
    Literals { code: Box<LiteralCode>, ratio: f64 },
    /// Stored blocks, rows unfiltered: noise that neither would shrink,
    /// at a fraction of the time.
    Stored,
}

impl Encoding {
    /// A trial on every 16th row or fewer (Up-filtered against the row
    /// above it, as the encoder would) chooses: the smaller of fdeflate
    /// and a block of literals coded for the trial's bytes, if it saves
    /// at least 5%, else stored blocks. Images too small to bother are
    /// deflated. Planes with background (runs that fdeflate codes in a few
    /// bits) are deflated; planes of structure under noise, whose filtered
    /// bytes rarely repeat, are coded as literals; noise (which neither
    /// shrinks by more than 1–2%, at about 1 ms a megapixel) is stored in a
    /// few hundred microseconds.
    fn choose(height: usize, row_bytes: usize, row_of: &impl Fn(usize, &mut [u8])) -> Self {
        let total = height.saturating_mul(row_bytes);
        let most_pairs = (TRIAL_MAX_BYTES / (row_bytes + 1)).max(1);
        let stride = (height / most_pairs).max(TRIAL_ROW_STRIDE);
        let pairs = height / stride;
        if total < TRIAL_MIN_BYTES || row_bytes == 0 || pairs == 0 {
            return Encoding::Deflate { ratio: 1.0 };
        }
        let (mut above, mut row) = (vec![0u8; row_bytes], vec![0u8; row_bytes]);
        let mut trial = Vec::with_capacity(pairs * (row_bytes + 1));
        for pair in 0..pairs {
            let y = pair * stride;
            row_of(y, &mut above);
            row_of(y + 1, &mut row);
            trial.push(2);
            trial.extend(row.iter().zip(&above).map(|(a, b)| a.wrapping_sub(*b)));
        }
        let deflated = fdeflate::compress_to_vec(&trial).len() as f64 / trial.len() as f64;
        let mut counts = [0u64; 256];
        for &byte in &trial {
            counts[usize::from(byte)] += 1;
        }
        let code = LiteralCode::for_counts(&counts);
        let literals = code.block_bits(&counts) as f64 / 8.0 / trial.len() as f64;
        if deflated.min(literals) > 1.0 - MIN_DEFLATE_SAVING {
            Encoding::Stored
        } else if literals <= deflated {
            Encoding::Literals {
                code: Box::new(code),
                ratio: literals,
            }
        } else {
            Encoding::Deflate { ratio: deflated }
        }
    }
}

/// Encodes a `width × height` PNG of `format` whose row `y` is written by
/// `row_of(y, row)` into `row` (`width × format.bytes` bytes), on up to
/// `threads` threads for large images coded as literals. The caller has
/// checked that both sizes are at least 1 and that the image fits in
/// memory.
pub(super) fn encode_rows(
    width: u32,
    height: u32,
    format: PixelFormat,
    threads: usize,
    row_of: impl Fn(usize, &mut [u8]) + Sync,
) -> io::Result<Vec<u8>> {
    let row_bytes = width as usize * format.bytes;
    let rows = height as usize;
    let encoding = Encoding::choose(rows, row_bytes, &row_of);
    let filtered = rows.saturating_mul(row_bytes + 1);
    // room for what the trial predicts (stored blocks: exactly), so the
    // output is rarely copied to grow and rarely much larger than needed
    let stream = match encoding {
        Encoding::Deflate { ratio } | Encoding::Literals { ratio, .. } => {
            (filtered as f64 * ratio * 1.02) as usize + 4096
        }
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
    match encoding {
        Encoding::Deflate { .. } => {
            let mut deflate = fdeflate::Compressor::new(&mut out)?;
            up_filtered_batches(0..rows, row_bytes, &row_of, |batch| {
                deflate.write_data(batch)
            })?;
            deflate.finish()?;
        }
        Encoding::Literals { code, ratio } => {
            out.extend_from_slice(&ZLIB_HEADER);
            let table = LiteralTable::new(&code);
            let parts = (filtered / LITERAL_PART_MIN_BYTES)
                .min(threads.min(LITERAL_PARTS_MAX))
                .min(rows)
                .max(1);
            let checksum = literal_parts(&table, parts, ratio, rows, row_bytes, &row_of, &mut out)?;
            out.extend_from_slice(&checksum.to_be_bytes());
        }
        Encoding::Stored => {
            let mut checksum = simd_adler32::Adler32::new();
            out.extend_from_slice(&ZLIB_HEADER);
            let mut batch = Vec::with_capacity(batch_capacity(row_bytes));
            let mut row = vec![0u8; row_bytes];
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

/// Codes the Up-filtered rows as blocks of literals under `table`, a
/// block for each of `parts` parts of the rows, the parts in parallel,
/// and appends them to `out` (each but the last ends on a byte boundary,
/// so they are simply appended). Returns the Adler-32 of the filtered
/// rows. `ratio` is the expected output per filtered byte.
fn literal_parts(
    table: &LiteralTable,
    parts: usize,
    ratio: f64,
    rows: usize,
    row_bytes: usize,
    row_of: &(impl Fn(usize, &mut [u8]) + Sync),
    out: &mut Vec<u8>,
) -> io::Result<u32> {
    let part_rows = |i: usize| rows * i / parts..rows * (i + 1) / parts;
    let code_part = |i: usize, out: &mut Vec<u8>| {
        let mut block = LiteralBlock::start(table, out, i + 1 == parts);
        let mut checksum = simd_adler32::Adler32::new();
        up_filtered_batches(part_rows(i), row_bytes, row_of, |batch| {
            checksum.write(batch);
            block.write(batch, out);
            Ok(())
        })?;
        block.finish(out);
        Ok(checksum.finish())
    };
    if parts == 1 {
        return code_part(0, out);
    }
    // the first part straight into `out`, the others into buffers of their own
    let (first, rest) = rayon::join(
        || code_part(0, out),
        || {
            (1..parts)
                .into_par_iter()
                .map(|i| {
                    let part = part_rows(i);
                    let bytes = (part.end - part.start) * (row_bytes + 1);
                    let mut own = Vec::with_capacity((bytes as f64 * ratio * 1.02) as usize + 4096);
                    let checksum = code_part(i, &mut own)?;
                    Ok((own, checksum, bytes))
                })
                .collect::<io::Result<Vec<_>>>()
        },
    );
    let mut checksum = first?;
    for (bytes, part_checksum, len) in rest? {
        out.extend_from_slice(&bytes);
        checksum = adler32_combine(checksum, part_checksum, len);
    }
    Ok(checksum)
}

/// The Adler-32 of two byte strings one after the other, from the first's
/// checksum and the second's checksum and length (zlib's
/// `adler32_combine`).
fn adler32_combine(first: u32, second: u32, second_len: usize) -> u32 {
    const BASE: u64 = 65_521;
    let rem = second_len as u64 % BASE;
    let (a1, b1) = (u64::from(first & 0xffff), u64::from(first >> 16));
    let (a2, b2) = (u64::from(second & 0xffff), u64::from(second >> 16));
    // a = a1 + a2 - 1: both started from 1; b = b1 + b2 + rem·(a1 - 1)
    let a = (a1 + a2 + BASE - 1) % BASE;
    let b = (b1 + b2 + rem * a1 + BASE - rem) % BASE;
    (b << 16 | a) as u32
}

/// Room for a batch of rows of `row_bytes` (each after its filter byte):
/// [`BATCH_BYTES`] or one row, and the row that crosses the mark.
fn batch_capacity(row_bytes: usize) -> usize {
    BATCH_BYTES.max(row_bytes + 1) + row_bytes + 1
}

/// Hands the rows `rows`, each Up-filtered (each byte minus the one above
/// it, zeros above row 0) after its filter-type byte, to `sink` in batches
/// of about [`BATCH_BYTES`].
fn up_filtered_batches(
    rows: std::ops::Range<usize>,
    row_bytes: usize,
    row_of: &impl Fn(usize, &mut [u8]),
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(batch_capacity(row_bytes));
    let (mut row, mut above) = (vec![0u8; row_bytes], vec![0u8; row_bytes]);
    if rows.start > 0 {
        row_of(rows.start - 1, &mut above);
    }
    for y in rows {
        row_of(y, &mut row);
        batch.push(2);
        batch.extend(row.iter().zip(&above).map(|(a, b)| a.wrapping_sub(*b)));
        std::mem::swap(&mut row, &mut above);
        if batch.len() >= BATCH_BYTES {
            sink(&batch)?;
            batch.clear();
        }
    }
    sink(&batch)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w × h` plane: `level(x, y)` plus noise of about ±`noise` grey
    /// levels (a sum of xorshift bytes, roughly Gaussian), clamped.
    fn plane(w: usize, h: usize, noise: u32, level: impl Fn(usize, usize) -> f64) -> Vec<u8> {
        let mut next = crate::test_support::xorshift(0x9e37_79b9_7f4a_7c15);
        (0..w * h)
            .map(|i| {
                let r = next();
                let sum: i64 = (0..4).map(|k| ((r >> (16 * k)) & 0xffff) as i64).sum();
                let n = (sum - 2 * 65_535) as f64 / 65_535.0 * f64::from(noise);
                (level(i % w, i / w) + n).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    }

    fn encoding_of(w: usize, pixels: &[u8]) -> Encoding {
        let row_of = |y: usize, row: &mut [u8]| row.copy_from_slice(&pixels[y * w..][..w]);
        Encoding::choose(pixels.len() / w, w, &row_of)
    }

    fn decode(png: &[u8]) -> Vec<u8> {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut out = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut out).unwrap();
        out
    }

    #[test]
    fn combined_checksums_are_the_checksum_of_the_whole() {
        let bytes: Vec<u8> = plane(4000, 100, 200, |x, y| ((x * y) % 256) as f64);
        let adler = |b: &[u8]| {
            let mut a = simd_adler32::Adler32::new();
            a.write(b);
            a.finish()
        };
        for cut in [0, 1, 5552, 65_521, 200_000, bytes.len()] {
            let (first, second) = bytes.split_at(cut);
            assert_eq!(
                adler32_combine(adler(first), adler(second), second.len()),
                adler(&bytes),
                "{cut}"
            );
        }
    }

    #[test]
    fn each_kind_of_plane_gets_the_encoding_that_suits_it() {
        let (w, h) = (1024, 768);
        let waves = |x: usize, y: usize| {
            128.0 + 90.0 * ((x as f64 / 97.0).sin() * (y as f64 / 131.0).cos())
        };
        // a camera's plane windowed to 8 bits: structure under a few grey
        // levels of noise
        let camera = plane(w, h, 12, waves);
        // a dark background round a bright, noisy object
        let object = plane(w, h, 12, |x, y| {
            let inside = (x as f64 - 500.0).hypot(y as f64 - 400.0) < 150.0;
            if inside {
                180.0
            } else {
                -100.0
            }
        });
        // uniform bytes: nothing to save
        let noise: Vec<u8> = plane(w, h, 0, |x, y| ((x * 7919 + y * 104_729) % 256) as f64)
            .iter()
            .zip(plane(w, h, 12, |_, _| 128.0))
            .map(|(a, b)| a ^ b.wrapping_mul(167))
            .collect();
        for (pixels, want) in [
            (&camera, "literals"),
            (&object, "deflate"),
            (&noise, "stored"),
        ] {
            let got = match encoding_of(w, pixels) {
                Encoding::Literals { .. } => "literals",
                Encoding::Deflate { .. } => "deflate",
                Encoding::Stored => "stored",
            };
            assert_eq!(got, want);
            let png = encode_rows(w as u32, h as u32, GRAY8, 3, |y, row| {
                row.copy_from_slice(&pixels[y * w..][..w])
            })
            .unwrap();
            assert_eq!(decode(&png), *pixels, "{want}");
            if want == "literals" {
                // smaller than fdeflate makes the same filtered rows
                let mut filtered = Vec::new();
                let zeros = vec![0u8; w];
                for y in 0..h {
                    let above = if y == 0 {
                        &zeros[..]
                    } else {
                        &pixels[(y - 1) * w..][..w]
                    };
                    filtered.push(2);
                    filtered.extend(
                        pixels[y * w..][..w]
                            .iter()
                            .zip(above)
                            .map(|(a, b)| a.wrapping_sub(*b)),
                    );
                }
                let deflated = fdeflate::compress_to_vec(&filtered).len();
                assert!(
                    png.len() < deflated,
                    "{} bytes against {deflated}",
                    png.len()
                );
            }
        }
    }
}
