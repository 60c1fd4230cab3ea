//! A deflate block of literals only, under a Huffman code built for the
//! data (RFC 1951 §3.2.7, a "dynamic" block without length/distance
//! pairs).
//!
//! Filtered rows of a noisy plane have few repeats for LZ77 to find, but
//! their bytes cluster near zero: coding each byte with the code of its
//! frequency in a sample is most of what deflate can save on them, and it
//! needs no match search. Four bytes cost two lookups in a table of byte
//! pairs and one shift into a 64-bit accumulator.

/// Byte values plus the end-of-block symbol.
const LITERALS: usize = 257;
const END_OF_BLOCK: usize = 256;
/// Longest code: two pairs of codes (52 bits) and the up to 7 bits left
/// from the last flush fit in the 64-bit accumulator, and a pair's code
/// (26 bits) and its length fit in 32 bits.
const MAX_CODE_BITS: u8 = 13;
/// Bits of a pair's code in a [`LiteralTable`] entry; its length above.
const PAIR_CODE_BITS: u32 = 2 * MAX_CODE_BITS as u32;
/// Longest code of the code-length alphabet (RFC 1951: 3-bit lengths).
const MAX_CODE_LENGTH_BITS: u8 = 7;
/// The order in which the code-length code's lengths are sent.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// Bytes encoded between copies of the staging buffer into the output.
const STAGE_BYTES: usize = 8 * 1024;

/// A prefix code for bytes and the end of the block, at most
/// [`MAX_CODE_BITS`] long.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LiteralCode {
    lengths: [u8; LITERALS],
}

impl LiteralCode {
    /// The code for bytes as frequent as `counts` says. Every byte gets a
    /// code (one is added to each count), since the rows it will code are
    /// more than the ones counted.
    pub(super) fn for_counts(counts: &[u64; 256]) -> LiteralCode {
        let mut weights = [1u64; LITERALS];
        for (w, &n) in weights.iter_mut().zip(counts) {
            *w = n.saturating_add(1);
        }
        let mut lengths = [0u8; LITERALS];
        code_lengths(&weights, MAX_CODE_BITS, &mut lengths);
        LiteralCode { lengths }
    }

    /// Bits of a block that codes bytes counted in `counts`, header
    /// included.
    pub(super) fn block_bits(&self, counts: &[u64; 256]) -> u64 {
        let data: u64 = counts
            .iter()
            .zip(&self.lengths)
            .map(|(&n, &len)| n.saturating_mul(len.into()))
            .fold(0, u64::saturating_add);
        let mut header = BitWriter::default();
        let mut sink = Vec::new();
        self.write_header(&mut header, &mut sink, false);
        data.saturating_add(sink.len() as u64 * 8 + u64::from(header.bits))
    }

    /// Writes the block's header: final or not, the code's lengths
    /// run-length coded under a code-length code of their own.
    fn write_header(&self, bits: &mut BitWriter, out: &mut Vec<u8>, last: bool) {
        // two distance codes of one bit: a complete code that is never used
        let mut all = [0u8; LITERALS + 2];
        all[..LITERALS].copy_from_slice(&self.lengths);
        all[LITERALS..].fill(1);
        let runs = run_length_coded(&all);
        let mut counts = [0u64; 19];
        for &(symbol, _) in &runs {
            counts[usize::from(symbol)] += 1;
        }
        // a code of one symbol is incomplete, which zlib refuses for this
        // alphabet: a second symbol, never sent, completes it
        if counts.iter().filter(|&&n| n > 0).count() < 2 {
            let unused = counts.iter().position(|&n| n == 0).unwrap_or(0);
            counts[unused] = 1;
        }
        let mut cl_lengths = [0u8; 19];
        code_lengths(&counts, MAX_CODE_LENGTH_BITS, &mut cl_lengths);
        let cl_codes = canonical_codes(&cl_lengths);
        let sent = (4..=19)
            .rev()
            .find(|&n| cl_lengths[CODE_LENGTH_ORDER[n - 1]] != 0)
            .unwrap_or(4);
        bits.put(out, u64::from(last) | (2 << 1), 3);
        bits.put(out, (LITERALS - 257) as u64, 5);
        bits.put(out, 2 - 1, 5);
        bits.put(out, (sent - 4) as u64, 4);
        for &symbol in &CODE_LENGTH_ORDER[..sent] {
            bits.put(out, cl_lengths[symbol].into(), 3);
        }
        for &(symbol, extra) in &runs {
            let s = usize::from(symbol);
            bits.put(out, cl_codes[s].into(), cl_lengths[s].into());
            match symbol {
                16 => bits.put(out, extra.into(), 2),
                17 => bits.put(out, extra.into(), 3),
                18 => bits.put(out, extra.into(), 7),
                _ => {}
            }
        }
    }
}

/// A code ready to write with: its header's code and the codes of every
/// pair of bytes, built once and shared by the blocks that use it (one per
/// part of an image encoded in parallel).
pub(super) struct LiteralTable {
    code: LiteralCode,
    /// Codes of every pair of bytes (first byte low): the code in the low
    /// [`PAIR_CODE_BITS`] bits, its length above them.
    pairs: Box<[u32; 1 << 16]>,
    codes: [u16; LITERALS],
}

impl LiteralTable {
    pub(super) fn new(code: &LiteralCode) -> LiteralTable {
        let lengths = code.lengths;
        let codes = canonical_codes(&lengths);
        let mut pairs: Box<[u32; 1 << 16]> = vec![0u32; 1 << 16]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("a vector of 2^16"));
        for (second, row) in pairs.chunks_exact_mut(256).enumerate() {
            let (c2, l2) = (u32::from(codes[second]), u32::from(lengths[second]));
            for (first, pair) in row.iter_mut().enumerate() {
                let (c1, l1) = (u32::from(codes[first]), u32::from(lengths[first]));
                *pair = (c1 | c2 << l1) | (l1 + l2) << PAIR_CODE_BITS;
            }
        }
        LiteralTable {
            code: code.clone(),
            pairs,
            codes,
        }
    }
}

/// Writes one block of literals: [`LiteralBlock::start`], any number of
/// [`LiteralBlock::write`], then [`LiteralBlock::finish`].
pub(super) struct LiteralBlock<'t> {
    table: &'t LiteralTable,
    bits: BitWriter,
    last: bool,
}

impl<'t> LiteralBlock<'t> {
    /// Writes the header of a block under `table`'s code to `out`: the
    /// final block of the stream when `last`, else one that
    /// [`LiteralBlock::finish`] ends on a byte boundary, so that the next
    /// block can be written on its own (by another thread) and appended.
    pub(super) fn start(table: &'t LiteralTable, out: &mut Vec<u8>, last: bool) -> Self {
        let mut bits = BitWriter::default();
        table.code.write_header(&mut bits, out, last);
        LiteralBlock { table, bits, last }
    }

    /// Codes `data`, appending whole bytes of the stream to `out`.
    pub(super) fn write(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let pairs: &[u32; 1 << 16] = &self.table.pairs;
        let (mut acc, mut n) = (self.bits.acc, u64::from(self.bits.bits));
        let mut stage = [0u8; STAGE_BYTES + 16];
        let mut at = 0usize;
        let mut quads = data.chunks_exact(4);
        const CODE: u64 = (1 << PAIR_CODE_BITS) - 1;
        for quad in &mut quads {
            let quad = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
            let (p0, p1) = (
                u64::from(pairs[(quad & 0xffff) as usize]),
                u64::from(pairs[(quad >> 16) as usize]),
            );
            let (l0, l1) = (p0 >> PAIR_CODE_BITS, p1 >> PAIR_CODE_BITS);
            // at most 4 × 13 new bits over at most 7 old ones
            acc |= ((p0 & CODE) | (p1 & CODE) << l0) << n;
            n += l0 + l1;
            stage[at..at + 8].copy_from_slice(&acc.to_le_bytes());
            at += (n >> 3) as usize;
            acc >>= n & 56;
            n &= 7;
            if at >= STAGE_BYTES {
                out.extend_from_slice(&stage[..at]);
                at = 0;
            }
        }
        out.extend_from_slice(&stage[..at]);
        self.bits = BitWriter {
            acc,
            bits: n as u32,
        };
        let (codes, lengths) = (&self.table.codes, &self.table.code.lengths);
        for &byte in quads.remainder() {
            let b = usize::from(byte);
            self.bits.put(out, codes[b].into(), lengths[b].into());
        }
    }

    /// Ends the block and pads the stream to a whole byte: a block that is
    /// not the last is followed by an empty stored block, whose header
    /// pads to a byte boundary (zlib's sync flush).
    pub(super) fn finish(mut self, out: &mut Vec<u8>) {
        let code = self.table.codes[END_OF_BLOCK];
        let len = self.table.code.lengths[END_OF_BLOCK];
        self.bits.put(out, code.into(), len.into());
        if !self.last {
            // not final, stored; then its length 0 and that length's complement
            self.bits.put(out, 0, 3);
            self.bits.flush(out);
            out.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        } else {
            self.bits.flush(out);
        }
    }
}

/// Bits not yet written as whole bytes, least significant first.
#[derive(Default)]
struct BitWriter {
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// Appends the `len` (at most 32) low bits of `value`.
    fn put(&mut self, out: &mut Vec<u8>, value: u64, len: u32) {
        self.acc |= value << self.bits;
        self.bits += len;
        while self.bits >= 8 {
            out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    /// Writes what is left, padded with zeros to a byte.
    fn flush(&mut self, out: &mut Vec<u8>) {
        if self.bits > 0 {
            out.push(self.acc as u8);
        }
        *self = BitWriter::default();
    }
}

/// Lengths of a prefix code for symbols of `weights` (0: unused) with no
/// code longer than `limit`. An optimal (Huffman) code when that one fits;
/// else the weights are halved, flattening the tree, until it does (all
/// weights equal give a balanced tree, which fits any limit used here).
///
/// Built with two queues instead of a heap: leaves sorted by weight, and
/// merged nodes, which are made in order of weight; the lighter front is
/// taken each time (a code is built per rendered plane).
fn code_lengths(weights: &[u64], limit: u8, lengths: &mut [u8]) {
    let mut weights = weights.to_vec();
    let mut used: Vec<usize> = (0..weights.len()).filter(|&s| weights[s] > 0).collect();
    lengths.fill(0);
    match used[..] {
        [] => return,
        [only] => {
            lengths[only] = 1;
            return;
        }
        _ => {}
    }
    let leaves = used.len();
    let nodes = (2 * leaves).saturating_sub(1);
    let mut weight_of = Vec::with_capacity(nodes);
    let mut parent = vec![0usize; nodes];
    let mut depth = vec![0u8; nodes];
    loop {
        lengths.fill(0);
        used.sort_unstable_by_key(|&s| (weights[s], s));
        weight_of.clear();
        weight_of.extend(used.iter().map(|&s| weights[s]));
        let (mut leaf, mut merged) = (0, leaves);
        for node in leaves..nodes {
            let mut lightest = || {
                let take_leaf = leaf < leaves
                    && (merged >= weight_of.len() || weight_of[leaf] <= weight_of[merged]);
                let taken = if take_leaf { &mut leaf } else { &mut merged };
                *taken += 1;
                *taken - 1
            };
            let (a, b) = (lightest(), lightest());
            parent[a] = node;
            parent[b] = node;
            weight_of.push(weight_of[a].saturating_add(weight_of[b]));
        }
        // the root is the last node; every other node's parent comes later
        depth[nodes - 1] = 0;
        for node in (0..nodes - 1).rev() {
            depth[node] = depth[parent[node]].saturating_add(1);
        }
        if depth[..leaves].iter().all(|&d| d <= limit) {
            for (i, &s) in used.iter().enumerate() {
                lengths[s] = depth[i];
            }
            return;
        }
        for w in weights.iter_mut().filter(|w| **w > 0) {
            *w = (*w / 2).max(1);
        }
    }
}

/// Deflate's canonical codes for `lengths`, bit-reversed so that they are
/// sent least significant bit first.
fn canonical_codes<const N: usize>(lengths: &[u8; N]) -> [u16; N] {
    let mut per_length = [0u16; 16];
    for &len in lengths.iter().filter(|&&l| l > 0) {
        per_length[usize::from(len)] += 1;
    }
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for len in 1..16 {
        code = (code + per_length[len - 1]) << 1;
        next[len] = code;
    }
    let mut codes = [0u16; N];
    for (c, &len) in codes.iter_mut().zip(lengths) {
        if len > 0 {
            let l = usize::from(len);
            *c = next[l].reverse_bits() >> (16 - l);
            next[l] += 1;
        }
    }
    codes
}

/// Code lengths as code-length symbols with their extra bits: 0–15 a
/// length, 16 the previous length 3–6 more times, 17 and 18 3–10 and
/// 11–138 zeros.
fn run_length_coded(lengths: &[u8]) -> Vec<(u8, u8)> {
    let mut symbols = Vec::new();
    let mut i = 0;
    while i < lengths.len() {
        let len = lengths[i];
        let run = lengths[i..].iter().take_while(|&&l| l == len).count();
        let mut left = run;
        if len == 0 {
            while left >= 11 {
                let n = left.min(138);
                symbols.push((18, (n - 11) as u8));
                left -= n;
            }
            if left >= 3 {
                symbols.push((17, (left - 3) as u8));
                left = 0;
            }
        } else {
            symbols.push((len, 0));
            left -= 1;
            while left >= 3 {
                let n = left.min(6);
                symbols.push((16, (n - 3) as u8));
                left -= n;
            }
        }
        symbols.extend(std::iter::repeat_n((len, 0), left));
        i += run;
    }
    symbols
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A raw deflate stream of `data` in one literal block under the code
    /// of `counts`, written in pieces of `piece` bytes.
    fn deflate(data: &[u8], counts: &[u64; 256], piece: usize) -> Vec<u8> {
        deflate_parts(&[data], counts, piece)
    }

    /// A raw deflate stream of `parts` one after the other, each a block
    /// written into a buffer of its own (as threads would) and appended.
    fn deflate_parts(parts: &[&[u8]], counts: &[u64; 256], piece: usize) -> Vec<u8> {
        let table = LiteralTable::new(&LiteralCode::for_counts(counts));
        let mut out = Vec::new();
        for (i, data) in parts.iter().enumerate() {
            let mut own = Vec::new();
            let mut block = LiteralBlock::start(&table, &mut own, i + 1 == parts.len());
            for part in data.chunks(piece.max(1)) {
                block.write(part, &mut own);
            }
            block.finish(&mut own);
            out.extend_from_slice(&own);
        }
        out
    }

    /// Blocks that end on a byte boundary, written apart and appended, are
    /// one stream of their bytes in order, whatever the bits each block
    /// left over.
    #[test]
    fn blocks_written_apart_inflate_to_their_concatenation() {
        let noisy = residuals(40_001, 9);
        let counts = counts_of(&noisy);
        for cuts in [
            vec![0, 1, 2, 3, 40_001],
            vec![0, 7, 7, 1000, 25_003, 40_001],
            vec![0, 20_000, 40_001],
        ] {
            let parts: Vec<&[u8]> = cuts.windows(2).map(|c| &noisy[c[0]..c[1]]).collect();
            for piece in [1, 5, 4096] {
                let stream = deflate_parts(&parts, &counts, piece);
                assert_eq!(inflate(&stream), noisy, "{cuts:?} {piece}");
            }
        }
    }

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(stream)
            .read_to_end(&mut out)
            .expect("a valid deflate stream");
        out
    }

    fn counts_of(data: &[u8]) -> [u64; 256] {
        let mut counts = [0u64; 256];
        for &b in data {
            counts[usize::from(b)] += 1;
        }
        counts
    }

    /// Bytes near zero, as filtered rows of a noisy plane are.
    fn residuals(len: usize, spread: u32) -> Vec<u8> {
        let mut next = crate::test_support::xorshift(0x2545_f491_4f6c_dd1d);
        (0..len)
            .map(|_| {
                let state = next();
                let a = (state >> 32) as u32 % spread;
                let b = (state & 0xffff_ffff) as u32 % spread;
                (a as i32 - b as i32) as u8
            })
            .collect()
    }

    #[test]
    fn blocks_inflate_to_their_bytes() {
        let noisy = residuals(100_003, 15);
        let all_values: Vec<u8> = (0..=255u8).cycle().take(4099).collect();
        for (data, counts) in [
            (noisy.clone(), counts_of(&noisy)),
            // a code from another sample: every byte must still have one
            (all_values.clone(), counts_of(&noisy[..1000])),
            (noisy.clone(), [0; 256]),
            (vec![7u8; 5000], counts_of(&[7u8; 5000])),
            (vec![], counts_of(&noisy)),
            (vec![200, 1, 2], counts_of(&noisy)),
        ] {
            for piece in [1, 3, 4, 4096, 1 << 20] {
                assert_eq!(inflate(&deflate(&data, &counts, piece)), data, "{piece}");
            }
        }
    }

    #[test]
    fn the_predicted_size_is_the_written_size() {
        for data in [residuals(65_536, 9), residuals(10_000, 200), vec![0u8; 999]] {
            let counts = counts_of(&data);
            let code = LiteralCode::for_counts(&counts);
            let written = deflate(&data, &counts, 4096).len() as u64;
            // plus the end of block and the padding to a byte
            let predicted = code.block_bits(&counts).div_ceil(8);
            assert!(
                (predicted..=predicted + 2).contains(&written),
                "{predicted} predicted, {written} written"
            );
        }
        // residuals of ±8 cost about 4 bits a byte, not 8
        let data = residuals(65_536, 9);
        let bits = LiteralCode::for_counts(&counts_of(&data)).block_bits(&counts_of(&data));
        assert!(bits < 65_536 * 9 / 2, "{bits} bits");
    }

    #[test]
    fn codes_stay_within_the_limit_and_are_complete() {
        // Fibonacci weights would give a 30-bit code unlimited
        let mut weights = [0u64; LITERALS];
        let (mut a, mut b) = (1u64, 1u64);
        for w in weights.iter_mut().take(40) {
            *w = a;
            (a, b) = (b, a + b);
        }
        let mut lengths = [0u8; LITERALS];
        code_lengths(&weights, MAX_CODE_BITS, &mut lengths);
        assert!(lengths.iter().all(|&l| l <= MAX_CODE_BITS));
        let kraft: f64 = lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 0.5f64.powi(l.into()))
            .sum();
        assert_eq!(kraft, 1.0);
        assert_eq!(lengths.iter().filter(|&&l| l > 0).count(), 40);
    }
}
