//! Hostile chunks for the codecs beyond the classic ones (LZMA, CCITT,
//! WebP, JPEG 2000, JPEG XL), through the codec fuzz target's harness: the
//! seeds in `fuzz/seeds/codec/` (one small valid chunk per codec, written
//! by imagecodecs and Pillow's libtiff) decode; cut, garbage and bit-flipped
//! copies are decoded or refused, never a panic, and a chunk cut in half is
//! refused as corrupt; frames larger than their tile are refused before
//! they are decoded, and a bomb stops at the chunk's size.

#[allow(dead_code)]
mod util;

use std::path::PathBuf;

use pentascope_tiff::{DType, Limits, TiffError};

/// The seeds of the codecs this file covers, by name: (file, samples
/// decoded from it).
const SEEDS: [(&str, u64); 8] = [
    ("lzma_hpredict_u16", 256),
    ("ccitt_rle", 256),
    ("ccitt_g3", 256),
    ("ccitt_g4", 256),
    ("webp_rgb", 768),
    ("webp_rgba_lossless", 1024),
    ("jpeg2000_u16", 256),
    ("jpegxl_rgb", 768),
];

fn seed(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/codec")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode(data: &[u8]) -> Result<u64, TiffError> {
    util::codec_target(data, &util::tight_limits()).map(|(_, decoded)| decoded)
}

#[test]
fn every_codec_seed_decodes() {
    for (name, samples) in SEEDS {
        assert_eq!(decode(&seed(name)).unwrap(), samples, "{name}");
    }
}

#[test]
fn cut_garbage_and_flipped_chunks_are_refused_or_decoded_never_a_panic() {
    const HEADER: usize = 7;
    for (name, _) in SEEDS {
        let data = seed(name);
        let payload = data.len() - HEADER;
        // cut in half: too few rows or bytes for the chunk
        let half = decode(&data[..HEADER + payload / 2]).unwrap_err();
        assert!(matches!(half, TiffError::Format(_)), "{name}: {half}");
        // every cut, garbage of the stream's length, and every bit flipped
        // in the first 64 bytes: any outcome but a panic
        for cut in 0..data.len() {
            let _ = decode(&data[..cut]);
        }
        let garbage: Vec<u8> = (0..payload as u32)
            .map(|i| (i.wrapping_mul(7919) % 251) as u8)
            .collect();
        let refused = decode(&[&data[..HEADER], &garbage[..]].concat()).unwrap_err();
        assert!(matches!(refused, TiffError::Format(_)), "{name}: {refused}");
        for bit in 0..(payload.min(64) * 8) {
            let mut flipped = data.clone();
            flipped[HEADER + bit / 8] ^= 1 << (bit % 8);
            let _ = decode(&flipped);
        }
    }
}

/// The seed `name`'s stream in a one-strip page of `width`×`height`.
fn in_page(name: &str, width: u32, height: u32) -> Result<u64, TiffError> {
    let data = seed(name);
    let compression = util::COMPRESSIONS[usize::from(data[0])];
    let dtype = DType::ALL[usize::from(data[2])];
    let samples = u16::from(data[5]) + 1;
    util::decode_one_chunk(
        compression,
        1,
        dtype,
        (width, height, samples),
        false,
        &data[7..],
        &util::tight_limits(),
    )
    .map(|(_, decoded)| decoded)
}

#[test]
fn frames_other_than_their_strip_are_refused_before_decoding() {
    for name in ["webp_rgb", "jpeg2000_u16", "jpegxl_rgb"] {
        let e = in_page(name, 8, 8).unwrap_err();
        assert!(
            matches!(&e, TiffError::Format(m) if m.contains("16×16")),
            "{name}: {e}"
        );
    }
}

#[test]
fn a_header_declaring_a_huge_frame_is_refused_before_decoding() {
    // JPEG 2000: SIZ's image and tile sizes (after SOC, marker and lengths)
    // set to 60000×60000, 7 GB of uint16
    let mut j2k = seed("jpeg2000_u16");
    for at in [7 + 8, 7 + 12, 7 + 24, 7 + 28] {
        j2k[at..at + 4].copy_from_slice(&60000u32.to_be_bytes());
    }
    let e = decode(&j2k).unwrap_err();
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("60000×60000")),
        "{e}"
    );
    // WebP: the lossy key frame's width and height (14 bits each) at most
    let mut webp = seed("webp_rgb");
    let frame = 7 + 12 + 8 + 6;
    webp[frame..frame + 4].copy_from_slice(&[0xFF, 0x3F, 0xFF, 0x3F]);
    let e = decode(&webp).unwrap_err();
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("16383×16383")),
        "{e}"
    );
}

#[test]
fn an_lzma_bomb_stops_at_the_strip() {
    // 256 MiB of zeros (40 KiB of xz) into a 16×16 uint16 strip
    let data = seed("lzma_hpredict_u16");
    let zeros = std::io::Read::take(std::io::repeat(0), 256 << 20);
    let bomb = [&data[..7], &liblzma::encode_all(zeros, 6).unwrap()[..]].concat();
    let started = std::time::Instant::now();
    assert_eq!(decode(&bomb).unwrap(), 256);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

#[test]
fn ccitt_pages_must_be_bilevel() {
    // a CCITT page of 8-bit samples is refused when opened
    let mut tiff = util::TiffBuilder::classic();
    let blob = tiff.blob(seed("ccitt_g4")[7..].to_vec());
    tiff.page(util::PageSpec {
        compression: 4,
        ..util::PageSpec::new(16, 16, blob)
    });
    let file = tiff.write();
    let e = pentascope_tiff::TiffFile::open(file.path(), &Limits::default(), None)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&e, TiffError::Unsupported(m) if m.contains("CCITT") && m.contains("bilevel")),
        "{e}"
    );
}
