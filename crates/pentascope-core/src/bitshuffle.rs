//! Undoing a bit shuffle: the layout blosc and the bitshuffle library give
//! `n` elements of `size` bytes (`n` a multiple of 8) before compressing
//! them. The shuffled bytes are `8 · size` bit rows of `n / 8` bytes: row
//! `8 · j + k` holds bit `k` of byte `j` of every element, element `e` at bit
//! `e % 8` of the row's byte `e / 8`.
//!
//! Undoing it is an 8 × 8 bit transpose per byte plane and group of 8
//! elements. blosc's own routine does it in two passes over the block with
//! SSE2 at about 2 GB/s per core, which made reading bit-shuffled chunks
//! slower than reading raw ones (BENCHMARKS.md, ninth session). Here 32 groups are gathered from their rows with byte
//! unpacks, transposed in 64-bit lanes and, for 2-byte elements, the two
//! byte planes are interleaved in the same pass; AVX2 is chosen at run time
//! (with GFNI, whose affine instruction is a whole 8 × 8 transpose, where
//! the CPU has it: 6.8 → 12.5 GB/s for 2-byte samples in cache), and a
//! scalar loop with the same result covers other CPUs and the tail.

use std::ops::Range;

/// Undoes the bit shuffle into `dst` of elements of `planes.len()` bytes;
/// `planes[j]` holds the 8 bit rows of byte `j` (`dst.len() / planes.len()`
/// bytes: the shuffled block's bytes `j·n .. (j+1)·n` for `n` elements),
/// wherever they are (blosc stores a split block's planes as separate
/// streams, raw or compressed). `scratch` holds the byte planes of elements
/// of more than 2 bytes.
///
/// # Panics
/// If a plane is not `n` bytes or `n` is not a multiple of 8: the caller
/// checks both (a blosc block whose element count is not a multiple of 8 is
/// stored unshuffled).
pub fn bit_unshuffle(planes: &[&[u8]], dst: &mut [u8], scratch: &mut Vec<u8>) {
    let size = planes.len();
    assert!(size > 0 && dst.len().is_multiple_of(8 * size));
    assert!(planes.iter().all(|p| p.len() == dst.len() / size));
    bit_unshuffle_part(planes, 0, dst, scratch);
}

/// [`bit_unshuffle`] of elements `first ..` of the block whose planes are
/// `planes` (each `8 · k` bytes for `8 · k` elements), as many as `dst`
/// holds: a row of a chunk written where it belongs, without the whole
/// block decoded first.
///
/// # Panics
/// If the planes differ in length or are not a multiple of 8 bytes, if
/// `first` or `dst`'s element count is not a multiple of 8, or if the
/// elements run past the block: callers check these.
pub fn bit_unshuffle_part(planes: &[&[u8]], first: usize, dst: &mut [u8], scratch: &mut Vec<u8>) {
    let size = planes.len();
    assert!(size > 0 && dst.len().is_multiple_of(8 * size) && first.is_multiple_of(8));
    let n = planes[0].len();
    assert!(n.is_multiple_of(8) && planes.iter().all(|p| p.len() == n));
    let count = dst.len() / size;
    assert!(first.checked_add(count).is_some_and(|end| end <= n));
    if count == 0 {
        return;
    }
    let groups = first / 8..(first + count) / 8;
    match planes {
        [plane] => plane_from_rows(plane, groups, dst),
        [low, high] => pairs_from_planes(low, high, groups, dst),
        _ => {
            scratch.clear();
            scratch.resize(dst.len(), 0);
            for (rows, plane) in planes.iter().zip(scratch.chunks_exact_mut(count)) {
                plane_from_rows(rows, groups.clone(), plane);
            }
            for (e, element) in dst.chunks_exact_mut(size).enumerate() {
                for (j, byte) in element.iter_mut().enumerate() {
                    *byte = scratch[j * count + e];
                }
            }
        }
    }
}

/// Groups `groups` of one byte plane: 8 bit rows of `rows.len() / 8`
/// bytes, into `out` (8 bytes per group).
fn plane_from_rows(rows: &[u8], groups: Range<usize>, out: &mut [u8]) {
    let stride = rows.len() / 8;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("gfni") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 and GFNI, checked just above.
        let done = unsafe { gfni::plane_from_rows(rows, stride, groups.clone(), out) };
        return scalar_plane(rows, stride, done..groups.end, groups.start, out);
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2, checked just above.
        let done = unsafe { avx2::plane_from_rows(rows, stride, groups.clone(), out) };
        return scalar_plane(rows, stride, done..groups.end, groups.start, out);
    }
    scalar_plane(rows, stride, groups.clone(), groups.start, out)
}

/// Two-byte elements: groups `groups` of the bit rows of the low and high
/// bytes into interleaved pairs.
fn pairs_from_planes(low: &[u8], high: &[u8], groups: Range<usize>, dst: &mut [u8]) {
    let stride = low.len() / 8;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("gfni") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 and GFNI, checked just above.
        let done = unsafe { gfni::pairs_from_planes(low, high, stride, groups.clone(), dst) };
        return scalar_pairs(low, high, stride, done..groups.end, groups.start, dst);
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2, checked just above.
        let done = unsafe { avx2::pairs_from_planes(low, high, stride, groups.clone(), dst) };
        return scalar_pairs(low, high, stride, done..groups.end, groups.start, dst);
    }
    scalar_pairs(low, high, stride, groups.clone(), groups.start, dst)
}

/// The 8 × 8 bit transpose of `x` (byte `k`, bit `m`) → (byte `m`, bit `k`).
#[inline]
fn transpose8(mut x: u64) -> u64 {
    let mut t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^= t ^ (t << 28);
    x
}

/// Group `g`'s bytes of the 8 rows `stride` apart, row `k` in byte `k`.
#[inline]
fn gather(rows: &[u8], stride: usize, g: usize) -> u64 {
    (0..8).fold(0, |x, k| x | (u64::from(rows[k * stride + g]) << (8 * k)))
}

/// Groups `groups` of 8 rows `stride` apart into `out`, whose first 8
/// bytes are group `base`'s.
fn scalar_plane(rows: &[u8], stride: usize, groups: Range<usize>, base: usize, out: &mut [u8]) {
    for g in groups {
        let bytes = transpose8(gather(rows, stride, g)).to_le_bytes();
        out[8 * (g - base)..][..8].copy_from_slice(&bytes);
    }
}

/// As [`scalar_plane`], the low and high bytes interleaved.
fn scalar_pairs(
    low_rows: &[u8],
    high_rows: &[u8],
    stride: usize,
    groups: Range<usize>,
    base: usize,
    dst: &mut [u8],
) {
    for g in groups {
        let low = transpose8(gather(low_rows, stride, g)).to_le_bytes();
        let high = transpose8(gather(high_rows, stride, g)).to_le_bytes();
        let at = 16 * (g - base);
        for (m, pair) in dst[at..at + 16].chunks_exact_mut(2).enumerate() {
            pair[0] = low[m];
            pair[1] = high[m];
        }
    }
}

/// The vector kernels of one instruction set: `$features` enabled, 8 × 8
/// bit transposes by `$transpose` of 64-bit lanes whose byte `k` holds row
/// `k` (or row `7 - k` when `$reversed`).
#[cfg(target_arch = "x86_64")]
macro_rules! unshuffle_kernels {
    ($features:literal, $transpose:ident, $reversed:literal) => {
        #[inline]
        #[target_feature(enable = $features)]
        fn load(s: &[u8], at: usize) -> __m256i {
            bytemuck::pod_read_unaligned(&s[at..at + 32])
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn store(d: &mut [u8], at: usize, v: __m256i) {
            d[at..at + 32].copy_from_slice(bytemuck::bytes_of(&v));
        }

        /// Groups `g0 .. g0 + 32` of 8 rows `stride` apart, each transposed:
        /// vector `i` holds groups `2i, 2i + 1, 2i + 16, 2i + 17` (from `g0`),
        /// one per 64-bit lane, as unpacking within 128-bit lanes leaves them.
        #[inline]
        #[target_feature(enable = $features)]
        fn gather32(rows: &[u8], stride: usize, g0: usize) -> [__m256i; 8] {
            let a: [__m256i; 8] = std::array::from_fn(|k| {
                let row = if $reversed { 7 - k } else { k };
                load(rows, row * stride + g0)
            });
            let b: [__m256i; 8] = std::array::from_fn(|i| {
                let (x, y) = (a[2 * (i / 2)], a[2 * (i / 2) + 1]);
                if i % 2 == 0 {
                    _mm256_unpacklo_epi8(x, y)
                } else {
                    _mm256_unpackhi_epi8(x, y)
                }
            });
            // rows 0-3 from b[0..4], rows 4-7 from b[4..8]
            let c: [__m256i; 8] = std::array::from_fn(|i| {
                let base = 4 * (i / 4);
                let (x, y) = (b[base + (i % 4) / 2], b[base + 2 + (i % 4) / 2]);
                if i % 2 == 0 {
                    _mm256_unpacklo_epi16(x, y)
                } else {
                    _mm256_unpackhi_epi16(x, y)
                }
            });
            std::array::from_fn(|i| {
                let (x, y) = (c[i / 2], c[4 + i / 2]);
                $transpose(if i % 2 == 0 {
                    _mm256_unpacklo_epi32(x, y)
                } else {
                    _mm256_unpackhi_epi32(x, y)
                })
            })
        }

        /// The whole 32-group runs of [`super::scalar_plane`] from the
        /// start of `groups`; returns the first group not done.
        #[target_feature(enable = $features)]
        pub(super) fn plane_from_rows(
            rows: &[u8],
            stride: usize,
            groups: Range<usize>,
            out: &mut [u8],
        ) -> usize {
            let mut g0 = groups.start;
            while g0 + 32 <= groups.end {
                let d = gather32(rows, stride, g0);
                for i in (0..8).step_by(2) {
                    let g = g0 - groups.start + 2 * i;
                    store(
                        out,
                        8 * g,
                        _mm256_permute2x128_si256::<0x20>(d[i], d[i + 1]),
                    );
                    store(
                        out,
                        8 * (g + 16),
                        _mm256_permute2x128_si256::<0x31>(d[i], d[i + 1]),
                    );
                }
                g0 += 32;
            }
            g0
        }

        /// The whole 32-group runs of [`super::scalar_pairs`] from the
        /// start of `groups`; returns the first group not done.
        #[target_feature(enable = $features)]
        pub(super) fn pairs_from_planes(
            low_rows: &[u8],
            high_rows: &[u8],
            stride: usize,
            groups: Range<usize>,
            dst: &mut [u8],
        ) -> usize {
            let mut g0 = groups.start;
            while g0 + 32 <= groups.end {
                let low = gather32(low_rows, stride, g0);
                let high = gather32(high_rows, stride, g0);
                for i in 0..8 {
                    // lanes: groups a | a + 16 (unpacklo), a + 1 | a + 17 (unpackhi)
                    let first = _mm256_unpacklo_epi8(low[i], high[i]);
                    let second = _mm256_unpackhi_epi8(low[i], high[i]);
                    let a = g0 - groups.start + 2 * i;
                    store(
                        dst,
                        16 * a,
                        _mm256_permute2x128_si256::<0x20>(first, second),
                    );
                    store(
                        dst,
                        16 * (a + 16),
                        _mm256_permute2x128_si256::<0x31>(first, second),
                    );
                }
                g0 += 32;
            }
            g0
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// One delta swap of [`super::transpose8`] in each 64-bit lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn swap<const SHIFT: i32>(x: __m256i, mask: i64) -> __m256i {
        let t = _mm256_and_si256(
            _mm256_xor_si256(x, _mm256_srli_epi64::<SHIFT>(x)),
            _mm256_set1_epi64x(mask),
        );
        _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64::<SHIFT>(t)))
    }

    /// [`super::transpose8`] in each 64-bit lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose8(x: __m256i) -> __m256i {
        let x = swap::<7>(x, 0x00AA_00AA_00AA_00AA);
        let x = swap::<14>(x, 0x0000_CCCC_0000_CCCC);
        swap::<28>(x, 0x0000_0000_F0F0_F0F0)
    }

    unshuffle_kernels!("avx2", transpose8, false);
}

/// The AVX2 kernels with each transpose one GFNI instruction instead of
/// nine shifts and masks (the transposes were most of their time).
#[cfg(target_arch = "x86_64")]
mod gfni {
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// The 8 × 8 bit transpose of each 64-bit lane whose byte `k` holds
    /// row `7 - k`: the affine map takes `x` as its bit matrix, applied to
    /// byte `m` = bit `m` alone, which picks bit `m` of every row.
    #[inline]
    #[target_feature(enable = "avx2,gfni")]
    fn transpose8(x: __m256i) -> __m256i {
        _mm256_gf2p8affine_epi64_epi8::<0>(_mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64), x)
    }

    unshuffle_kernels!("avx2,gfni", transpose8, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout by its definition, bit by bit.
    fn shuffle_by_definition(size: usize, elements: &[u8]) -> Vec<u8> {
        let n = elements.len() / size;
        let mut rows = vec![0u8; elements.len()];
        for e in 0..n {
            for j in 0..size {
                for k in 0..8 {
                    let bit = (elements[e * size + j] >> k) & 1;
                    rows[(8 * j + k) * (n / 8) + e / 8] |= bit << (e % 8);
                }
            }
        }
        rows
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn undoes_the_layout_for_every_size_and_count() {
        // counts below, at and past the 256 elements of one vector step
        for size in [1, 2, 3, 4, 8, 16] {
            for n in [8, 16, 248, 256, 264, 512, 4096 + 8, 65536] {
                let elements = pseudo_random(n * size, (size * 7919 + n) as u64);
                let rows = shuffle_by_definition(size, &elements);
                let planes: Vec<&[u8]> = rows.chunks_exact(n).collect();
                let mut out = vec![0u8; elements.len()];
                bit_unshuffle(&planes, &mut out, &mut Vec::new());
                assert!(out == elements, "size {size}, {n} elements");
            }
        }
    }

    /// Every kernel this CPU can run gives the scalar loop's bytes (the
    /// dispatch picks only the fastest), from the start of a block or from
    /// a group within it.
    #[test]
    fn every_kernel_agrees_with_the_scalar_loop() {
        let elements = pseudo_random(2 * 1024 + 16, 5);
        let n = elements.len() / 2;
        let groups = n / 8;
        let rows = shuffle_by_definition(2, &elements);
        let (low, high) = rows.split_at(n);
        let mut scalar = vec![0u8; elements.len()];
        scalar_pairs(low, high, groups, 0..groups, 0, &mut scalar);
        assert_eq!(scalar, elements);
        let plane = &elements[..n];
        let plane_rows = shuffle_by_definition(1, plane);
        let mut scalar = vec![0u8; n];
        scalar_plane(&plane_rows, groups, 0..groups, 0, &mut scalar);
        assert_eq!(scalar, plane);

        #[cfg(target_arch = "x86_64")]
        {
            type PlaneKernel = fn(&[u8], usize, Range<usize>, &mut [u8]) -> usize;
            type PairsKernel = fn(&[u8], &[u8], usize, Range<usize>, &mut [u8]) -> usize;
            let mut kernels: Vec<(&str, PlaneKernel, PairsKernel)> = Vec::new();
            if std::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX2, checked just above.
                kernels.push((
                    "avx2",
                    |r, s, g, o| unsafe { avx2::plane_from_rows(r, s, g, o) },
                    |l, h, s, g, d| unsafe { avx2::pairs_from_planes(l, h, s, g, d) },
                ));
            } else {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI runs on CPUs with AVX2"
                );
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("gfni") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX2 and GFNI, checked just above.
                kernels.push((
                    "gfni",
                    |r, s, g, o| unsafe { gfni::plane_from_rows(r, s, g, o) },
                    |l, h, s, g, d| unsafe { gfni::pairs_from_planes(l, h, s, g, d) },
                ));
            }
            for (name, plane_kernel, pairs_kernel) in kernels {
                for start in [0, 3, 64] {
                    let range = start..groups;
                    let mut out = vec![0u8; 8 * range.len()];
                    let done = plane_kernel(&plane_rows, groups, range.clone(), &mut out);
                    assert_eq!(done, start + range.len() / 32 * 32, "{name}");
                    scalar_plane(&plane_rows, groups, done..groups, start, &mut out);
                    assert_eq!(
                        out,
                        plane[8 * start..],
                        "{name}: one byte plane from {start}"
                    );
                    let mut out = vec![0u8; 16 * range.len()];
                    let done = pairs_kernel(low, high, groups, range.clone(), &mut out);
                    assert_eq!(done, start + range.len() / 32 * 32, "{name}");
                    scalar_pairs(low, high, groups, done..groups, start, &mut out);
                    assert_eq!(out, elements[16 * start..], "{name}: pairs from {start}");
                }
            }
        }
    }

    /// Any run of whole groups of a block unshuffles to the same bytes as
    /// the whole block does there, for every element size.
    #[test]
    fn parts_of_a_block_are_the_blocks_bytes() {
        for size in [1, 2, 3, 4, 8] {
            let n = 4096 + 8;
            let elements = pseudo_random(n * size, (size * 31) as u64);
            let rows = shuffle_by_definition(size, &elements);
            let planes: Vec<&[u8]> = rows.chunks_exact(n).collect();
            for (first, count) in [
                (0, n),
                (0, 512),
                (512, 512),
                (8, 256 + 8),
                (n - 8, 8),
                (1024, 0),
            ] {
                let mut part = vec![0u8; count * size];
                bit_unshuffle_part(&planes, first, &mut part, &mut Vec::new());
                assert!(
                    part == elements[first * size..(first + count) * size],
                    "size {size}, elements {first}..+{count}"
                );
            }
        }
    }
}
