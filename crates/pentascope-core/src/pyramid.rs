//! Downsampled levels of a plane (an image pyramid), built from its rows as
//! they stream by: level `k` halves level `k - 1` in both directions, so
//! each of its pixels stands for a `2^k × 2^k` block of full-resolution
//! pixels (fewer at the right and bottom edges).
//!
//! Intensity data take the block's mean, computed exactly from sums of the
//! full-resolution samples (not means of means) and rounded half away from
//! zero for integer types; label images take the block's top-left sample,
//! so that levels hold only labels that exist.

use crate::Sample;

/// How a block of pixels becomes one pixel of the next level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Downsample {
    /// The block's mean (intensity data).
    #[default]
    Mean,
    /// The block's top-left sample (labels).
    Nearest,
}

/// One level's pending row: sums over the full-resolution pixels of each
/// block column, for the level-0 rows gathered so far.
struct PendingRow {
    sums: Vec<f64>,
    /// Level-0 rows in `sums`.
    rows: u64,
    /// Rows of the level above added (two make a row of this level).
    parts: u32,
}

/// Builds levels `1..=levels` of a band of rows of one plane. The band's
/// first row must be a multiple of `2^levels` (or the band must end the
/// plane's rows), so that each band's levels are independent of the others.
pub struct PyramidBand<T: Sample> {
    width: usize,
    method: Downsample,
    /// Level-0 rows seen.
    rows_seen: u64,
    pending: Vec<PendingRow>,
    out: Vec<Vec<T>>,
}

/// Width (or height) of level `k` of `n` full-resolution pixels.
pub fn level_len(n: u64, k: u32) -> u64 {
    n.div_ceil(1u64 << k)
}

impl<T: Sample> PyramidBand<T> {
    /// A band of a plane `width` pixels wide, building `levels` levels.
    pub fn new(width: usize, levels: u32, method: Downsample) -> PyramidBand<T> {
        PyramidBand {
            width,
            method,
            rows_seen: 0,
            pending: (1..=levels)
                .map(|k| PendingRow {
                    sums: vec![0.0; level_len(width as u64, k) as usize],
                    rows: 0,
                    parts: 0,
                })
                .collect(),
            out: vec![Vec::new(); levels as usize],
        }
    }

    /// Adds the band's next full-resolution row (`width` samples).
    pub fn push_row(&mut self, row: &[T]) {
        debug_assert_eq!(row.len(), self.width);
        match self.method {
            Downsample::Nearest => {
                for (i, out) in self.out.iter_mut().enumerate() {
                    let step = 1usize << (i + 1);
                    if self.rows_seen.is_multiple_of(step as u64) {
                        out.extend(row.iter().step_by(step));
                    }
                }
            }
            Downsample::Mean => {
                if let Some(first) = self.pending.first_mut() {
                    for (sum, pair) in first.sums.iter_mut().zip(row.chunks(2)) {
                        *sum += pair.iter().map(|v| v.to_f64()).sum::<f64>();
                    }
                    first.rows += 1;
                    first.parts += 1;
                    if first.parts == 2 {
                        self.emit(0);
                    }
                }
            }
        }
        self.rows_seen += 1;
    }

    /// Writes level `index + 1`'s pending row out and adds it to the next
    /// level, cascading while levels complete a row.
    fn emit(&mut self, mut index: usize) {
        loop {
            let scale = 1u64 << (index + 1);
            let width = self.width as u64;
            let (done, rest) = self.pending.split_at_mut(index + 1);
            let row = &mut done[index];
            for (j, sum) in row.sums.iter().enumerate() {
                let columns = scale.min(width - j as u64 * scale);
                self.out[index].push(T::from_f64_rounded(*sum / (row.rows * columns) as f64));
            }
            let rows = row.rows;
            let next = rest.first_mut().map(|next| {
                for (sum, pair) in next.sums.iter_mut().zip(row.sums.chunks(2)) {
                    *sum += pair.iter().sum::<f64>();
                }
                next.rows += rows;
                next.parts += 1;
                next.parts == 2
            });
            row.sums.iter_mut().for_each(|s| *s = 0.0);
            row.rows = 0;
            row.parts = 0;
            match next {
                Some(true) => index += 1,
                _ => return,
            }
        }
    }

    /// Ends the band (its last rows may not fill a block) and returns each
    /// level's rows, level 1 first, row-major.
    pub fn finish(mut self) -> Vec<Vec<T>> {
        if self.method == Downsample::Mean {
            for index in 0..self.pending.len() {
                // a partial row; emitting it may complete the next level's
                // row, or leave that one partial for its own turn
                if self.pending[index].parts > 0 {
                    self.emit(index);
                }
            }
        }
        self.out
    }
}

/// Reads one plane's level `k` from its full-resolution rows (all of them,
/// row-major): for tests and small planes.
pub fn downsample_plane<T: Sample>(
    plane: &[T],
    width: usize,
    k: u32,
    method: Downsample,
) -> Vec<T> {
    let mut band = PyramidBand::new(width, k, method);
    for row in plane.chunks_exact(width) {
        band.push_row(row);
    }
    band.finish().pop().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mean of each `2^k` block of a plane, over its pixels inside the
    /// plane, rounded half away from zero: the definition, computed
    /// directly.
    fn block_means(plane: &[u16], width: usize, k: u32) -> Vec<u16> {
        let height = plane.len() / width;
        let s = 1usize << k;
        let (h, w) = (height.div_ceil(s), width.div_ceil(s));
        let mut out = Vec::new();
        for i in 0..h {
            for j in 0..w {
                let (mut sum, mut n) = (0.0, 0.0);
                for y in i * s..((i + 1) * s).min(height) {
                    for x in j * s..((j + 1) * s).min(width) {
                        sum += f64::from(plane[y * width + x]);
                        n += 1.0;
                    }
                }
                out.push((sum / n).round() as u16);
            }
        }
        out
    }

    #[test]
    fn levels_are_exact_block_means_at_odd_sizes() {
        for (height, width) in [(13, 7), (8, 8), (1, 9), (33, 17)] {
            let plane: Vec<u16> = (0..height * width)
                .map(|i| ((i * 7919 + 13) % 65535) as u16)
                .collect();
            for k in 1..=4 {
                assert_eq!(
                    downsample_plane(&plane, width, k, Downsample::Mean),
                    block_means(&plane, width, k),
                    "{height}×{width}, level {k}"
                );
            }
        }
    }

    #[test]
    fn bands_aligned_to_the_top_level_build_the_same_levels() {
        let (height, width) = (37usize, 11usize);
        let plane: Vec<u16> = (0..height * width)
            .map(|i| (i * 31 % 1000) as u16)
            .collect();
        let mut whole = PyramidBand::new(width, 3, Downsample::Mean);
        plane.chunks_exact(width).for_each(|r| whole.push_row(r));
        let whole = whole.finish();
        let mut joined = vec![Vec::new(); 3];
        for band in plane.chunks(8 * width) {
            let mut b = PyramidBand::new(width, 3, Downsample::Mean);
            band.chunks_exact(width).for_each(|r| b.push_row(r));
            for (all, part) in joined.iter_mut().zip(b.finish()) {
                all.extend(part);
            }
        }
        assert_eq!(joined, whole);
    }

    #[test]
    fn labels_keep_the_top_left_sample() {
        let plane: Vec<u16> = (0..5 * 5).map(|i| i as u16).collect();
        assert_eq!(
            downsample_plane(&plane, 5, 1, Downsample::Nearest),
            vec![0, 2, 4, 10, 12, 14, 20, 22, 24]
        );
        assert_eq!(
            downsample_plane(&plane, 5, 2, Downsample::Nearest),
            vec![0, 4, 20, 24]
        );
    }

    #[test]
    fn integer_means_round_half_away_from_zero_and_floats_keep_fractions() {
        let plane: Vec<i16> = vec![-1, -2, 1, 2];
        assert_eq!(
            downsample_plane(&plane, 4, 1, Downsample::Mean),
            vec![-2, 2]
        );
        let plane: Vec<f32> = vec![1.0, 2.0];
        assert_eq!(downsample_plane(&plane, 2, 1, Downsample::Mean), vec![1.5]);
    }
}
