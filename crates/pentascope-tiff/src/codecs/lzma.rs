//! LZMA (TIFF compression 34925): an xz stream (or a legacy `.lzma` one),
//! decoded by liblzma, the library imagecodecs uses, built from source by
//! the `liblzma` crate.
//!
//! Bounds: the decoder writes into the chunk's buffer and is stopped when it
//! is full (a bomb stops at the chunk's size, as Deflate and Zstd do), and
//! the memory liblzma may take for its dictionary is capped at
//! [`MAX_LZMA_MEMORY`].

use liblzma::stream::{Action, Status, Stream};

/// Most memory liblzma may use to decode one chunk: the dictionary of xz's
/// strongest preset (64 MiB) and its tables fit; a stream asking for more is
/// refused.
pub const MAX_LZMA_MEMORY: u64 = 96 << 20;

/// Decompresses `raw` into `out`, returning how many bytes were produced
/// (at most `out.len()`).
pub(crate) fn decompress(raw: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let invalid = |e: liblzma::stream::Error| format!("invalid LZMA data: {e}");
    let mut stream = Stream::new_auto_decoder(MAX_LZMA_MEMORY, 0).map_err(invalid)?;
    loop {
        let (read, done) = (stream.total_in() as usize, stream.total_out() as usize);
        let status = stream
            .process(&raw[read..], &mut out[done..], Action::Finish)
            .map_err(|e| match e {
                liblzma::stream::Error::MemLimit => format!(
                    "the LZMA stream needs more than the {} MiB pentascope gives a chunk's \
                     decoder",
                    MAX_LZMA_MEMORY >> 20
                ),
                e => invalid(e),
            })?;
        let produced = stream.total_out() as usize;
        if status == Status::StreamEnd
            || produced == out.len()
            || (produced == done && stream.total_in() as usize == read)
        {
            return Ok(produced);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(data: &[u8]) -> Vec<u8> {
        liblzma::encode_all(data, 6).unwrap()
    }

    #[test]
    fn a_stream_round_trips_and_a_bomb_stops_at_the_chunk() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = vec![0u8; data.len()];
        assert_eq!(decompress(&xz(&data), &mut out), Ok(data.len()));
        assert_eq!(out, data);
        // 64 MiB of zeros into a 1 KiB chunk
        let bomb = xz(&vec![0u8; 64 << 20]);
        let mut small = vec![1u8; 1024];
        assert_eq!(decompress(&bomb, &mut small), Ok(1024));
        assert!(small.iter().all(|b| *b == 0));
    }

    #[test]
    fn garbage_and_truncated_streams_are_errors_or_short() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 241) as u8).collect();
        let stream = xz(&data);
        let mut out = vec![0u8; data.len()];
        // a cut stream gives fewer bytes than the chunk needs (refused by
        // the caller) or an error, never a panic
        let cut = decompress(&stream[..stream.len() / 2], &mut out);
        assert!(!matches!(cut, Ok(n) if n >= data.len()), "{cut:?}");
        for garbage in [
            &[][..],
            &[0u8; 64][..],
            &[0xFD, b'7', b'z', b'X', b'Z', 0, 0xFF][..],
        ] {
            let got = decompress(garbage, &mut out);
            assert!(got.is_err() || got == Ok(0), "{got:?}");
        }
    }
}
