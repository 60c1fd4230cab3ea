//! The codec table of BENCHMARKS.md ("Compression for readers"): for each
//! candidate compression, its stored size, its write (encode) speed and its
//! decode speed on one core, over the chunks pentascope would store.
//!
//! ```text
//! cargo run --release -p pentascope-store --example codecs -- \
//!     [--max-mib N] LABEL=FILE.tif[,FILE.tif…] …
//! ```
//!
//! Each labelled group of TIFF files makes one table. Every file is cut as
//! an ingest cuts it (its subchunks: 512 × 512 for planes of 512 pixels or
//! more a side, the whole plane below), reading at most `--max-mib` (default
//! 256) of its planes. Speeds are of raw bytes per second of one thread
//! (blosc runs single-threaded), decode being the best of five passes
//! (after a checked one), without and with the CRC32C every stored chunk
//! ends with (checked and stripped before the codec decodes).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pentascope_core::{dispatch_dtype, DType, Limits, Sample};
use pentascope_store::pixels::{ArrayLayout, BloscCoder, Compression, Shuffle};
use pentascope_tiff::TiffFile;
use zarrs::array::codec::Crc32cCodec;
use zarrs::array::{BytesRepresentation, BytesToBytesCodecTraits, CodecOptions};

/// The candidates, in table order.
fn candidates() -> Vec<Compression> {
    let blosc = |coder, level, shuffle| Compression::Blosc {
        coder,
        level,
        shuffle,
    };
    vec![
        Compression::None,
        blosc(BloscCoder::Lz4, 5, Shuffle::Bytes),
        blosc(BloscCoder::Lz4, 9, Shuffle::Bytes),
        blosc(BloscCoder::Lz4, 1, Shuffle::Bits),
        blosc(BloscCoder::Lz4, 5, Shuffle::Bits),
        blosc(BloscCoder::Lz4, 9, Shuffle::Bits),
        blosc(BloscCoder::Zstd, 1, Shuffle::Bytes),
        blosc(BloscCoder::Zstd, 1, Shuffle::Bits),
        Compression::Zstd(-1),
        Compression::Zstd(1),
    ]
}

/// One file's chunks: the sample type and each chunk's bytes.
struct Chunks {
    dtype: DType,
    chunks: Vec<Vec<u8>>,
}

/// The subchunks of the first planes of `path`, up to `max_bytes`.
fn chunks_of(path: &Path, max_bytes: u64) -> Result<Chunks, String> {
    let tiff = TiffFile::open(path, &Limits::default(), None).map_err(|e| e.to_string())?;
    let series = tiff.series().clone();
    let dtype = series.dtype;
    let layout = ArrayLayout::for_image(series.shape, dtype);
    let chunks = dispatch_dtype!(dtype, T => chunks_typed::<T>(&tiff, &layout, max_bytes))?;
    Ok(Chunks { dtype, chunks })
}

fn chunks_typed<T: Sample>(
    tiff: &TiffFile,
    layout: &ArrayLayout,
    max_bytes: u64,
) -> Result<Vec<Vec<u8>>, String> {
    let [sub_rows, sub_columns] = layout.level_subchunk(0).map(|n| n as usize);
    let (height, width) = (layout.shape.y as usize, layout.shape.x as usize);
    let size = std::mem::size_of::<T>();
    let mut chunks = Vec::new();
    let mut taken = 0u64;
    for group in tiff.series().page_groups() {
        let Some(page) = group.page else { continue };
        let mut planes: Vec<Vec<T>> = vec![Vec::new(); group.planes.len()];
        tiff.read_band(page, 0..height as u32, &mut planes)
            .map_err(|e| e.to_string())?;
        for plane in &planes {
            let bytes = pentascope_core::dtype::as_bytes(plane);
            for y0 in (0..height).step_by(sub_rows) {
                for x0 in (0..width).step_by(sub_columns) {
                    // a subchunk at the edge is stored padded to full size
                    let mut chunk = vec![0u8; sub_rows * sub_columns * size];
                    let columns = (width - x0).min(sub_columns) * size;
                    for y in y0..(y0 + sub_rows).min(height) {
                        let from = (y * width + x0) * size;
                        let to = (y - y0) * sub_columns * size;
                        chunk[to..to + columns].copy_from_slice(&bytes[from..from + columns]);
                    }
                    chunks.push(chunk);
                }
            }
            taken += bytes.len() as u64;
            if taken >= max_bytes {
                return Ok(chunks);
            }
        }
    }
    Ok(chunks)
}

/// Raw bytes, stored bytes, encode time and best decode time of one
/// candidate over some chunks.
#[derive(Default, Clone, Copy)]
struct Measured {
    raw: u64,
    stored: u64,
    encode: Duration,
    decode: Duration,
    /// Decoding after checking and stripping each chunk's CRC32C.
    decode_checked: Duration,
}

/// Decoding passes timed, of which the fastest counts (the machine is
/// shared).
const PASSES: usize = 5;

fn measure(compression: Compression, files: &[Chunks]) -> Result<Measured, String> {
    let options = CodecOptions::default().with_concurrent_target(1);
    let mut m = Measured::default();
    for file in files {
        let codec = compression.codec(file.dtype)?;
        let mut encoded = Vec::with_capacity(file.chunks.len());
        let start = Instant::now();
        for chunk in &file.chunks {
            let stored = match &codec {
                Some(codec) => codec
                    .encode(std::borrow::Cow::Borrowed(chunk), &options)
                    .map_err(|e| e.to_string())?
                    .into_owned(),
                None => chunk.clone(),
            };
            encoded.push(stored);
        }
        m.encode += start.elapsed();
        let decode = |stored: &[u8], len: usize| -> Result<Vec<u8>, String> {
            Ok(match &codec {
                Some(codec) => codec
                    .decode(
                        std::borrow::Cow::Borrowed(stored),
                        &BytesRepresentation::FixedSize(len as u64),
                        &options,
                    )
                    .map_err(|e| e.to_string())?
                    .into_owned(),
                // what reading a chunk stored as it is costs: one copy
                None => stored.to_vec(),
            })
        };
        for (chunk, stored) in file.chunks.iter().zip(&encoded) {
            if decode(stored, chunk.len())? != *chunk {
                return Err(format!("{compression} does not round-trip"));
            }
        }
        let mut best = Duration::MAX;
        for _ in 0..PASSES {
            let start = Instant::now();
            for (chunk, stored) in file.chunks.iter().zip(&encoded) {
                std::hint::black_box(decode(stored, chunk.len())?);
            }
            best = best.min(start.elapsed());
        }
        m.decode += best;
        let crc = Crc32cCodec::new();
        let checked: Vec<Vec<u8>> = encoded
            .iter()
            .map(|stored| {
                crc.encode(std::borrow::Cow::Borrowed(stored), &options)
                    .map(|c| c.into_owned())
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let mut best = Duration::MAX;
        for _ in 0..PASSES {
            let start = Instant::now();
            for ((chunk, stored), with_crc) in file.chunks.iter().zip(&encoded).zip(&checked) {
                let stripped = crc
                    .decode(
                        std::borrow::Cow::Borrowed(with_crc),
                        &BytesRepresentation::FixedSize(stored.len() as u64),
                        &options,
                    )
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(decode(&stripped, chunk.len())?);
            }
            best = best.min(start.elapsed());
        }
        m.decode_checked += best;
        m.raw += file.chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        m.stored += encoded.iter().map(|c| c.len() as u64).sum::<u64>();
    }
    Ok(m)
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64().max(1e-9)
}

fn main() -> Result<(), String> {
    let mut max_mib = 256u64;
    let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--max-mib" {
            max_mib = args
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or("--max-mib takes a number")?;
        } else if let Some((label, files)) = arg.split_once('=') {
            groups.push((label.into(), files.split(',').map(PathBuf::from).collect()));
        } else {
            return Err(format!("expected LABEL=FILE[,FILE…], got {arg:?}"));
        }
    }
    if groups.is_empty() {
        return Err("usage: codecs [--max-mib N] LABEL=FILE.tif[,FILE.tif…] …".into());
    }
    for (label, paths) in groups {
        let mut files = Vec::new();
        for path in &paths {
            match chunks_of(path, max_mib << 20) {
                Ok(chunks) => files.push(chunks),
                Err(e) => eprintln!("skipping {}: {e}", path.display()),
            }
        }
        let raw: u64 = files
            .iter()
            .flat_map(|f| &f.chunks)
            .map(|c| c.len() as u64)
            .sum();
        println!(
            "\n{label}: {} files, {} chunks, {:.1} MB\n",
            files.len(),
            files.iter().map(|f| f.chunks.len()).sum::<usize>(),
            raw as f64 / 1e6
        );
        println!("| codec | stored | write MB/s | decode MB/s (1 core) | decode + CRC32C MB/s |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for compression in candidates() {
            let m = measure(compression, &files)?;
            println!(
                "| {compression} | {:.1}% | {:.0} | {:.0} | {:.0} |",
                100.0 * m.stored as f64 / m.raw.max(1) as f64,
                mb_per_s(m.raw, m.encode),
                mb_per_s(m.raw, m.decode),
                mb_per_s(m.raw, m.decode_checked),
            );
        }
    }
    Ok(())
}
