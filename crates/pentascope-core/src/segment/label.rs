//! Connected components of a foreground and their region properties, as
//! `skimage.measure.label(foreground)` and `skimage.measure.regionprops`
//! compute them, streamed plane by plane.
//!
//! **Connectivity** is scikit-image's default, full connectivity: 8
//! neighbours within a plane, and across neighbouring planes the 9 pixels
//! of the 3×3 block (26 neighbours in 3D).
//!
//! **Numbering** is scikit-image's: objects are numbered 1, 2, … in raster
//! order (Z, then Y, then X) of their first pixel; background is 0.
//!
//! **How.** [`Labeler::add_plane`] labels each plane's 2D components with a
//! two-pass union-find local to the plane, gives each component a
//! *provisional label* (increasing in raster order of its first pixel, and
//! from plane to plane), writes them into the caller's buffer, and unites
//! them with the components they touch in the previous plane. Only the
//! previous plane's provisional labels and the table of provisional labels
//! are kept, never the volume. [`Labeler::finish`] resolves the table:
//! an object's final label is the rank of its smallest provisional label.
//! The caller then rewrites each stored plane with [`Labels::relabel`]. For
//! a single plane (2D) provisional labels already are the final ones
//! ([`Labels::is_identity`]).
//!
//! **Region properties** ([`RegionProps`]) are accumulated per provisional
//! label in the same pass and merged at the end: area, centroid (from exact
//! integer coordinate sums), half-open bounding box, and the mean (a
//! compensated `f64` sum), minimum and maximum of an intensity image.
//! Planes are numbered in the order they are fed, from 0: a 2D image has
//! `z = 0` in its centroid and the Z range `0..1` in its bounding box.

use super::CompensatedSum;
use crate::dtype::Sample;
use crate::error::CoreError;

/// Default bound on provisional labels (one per 2D component per plane):
/// 2^24, about 1.5 GiB of bookkeeping at about 90 bytes each.
pub const DEFAULT_MAX_PROVISIONAL_LABELS: u32 = 1 << 24;

/// What one provisional label (a 2D component of one plane) accumulates.
#[derive(Debug, Clone, Copy)]
struct Piece {
    z: u32,
    area: u64,
    sum_y: u64,
    sum_x: u64,
    min_y: u32,
    max_y: u32,
    min_x: u32,
    max_x: u32,
    intensity: CompensatedSum,
    min_intensity: f64,
    max_intensity: f64,
}

impl Piece {
    fn new(z: u32) -> Piece {
        Piece {
            z,
            area: 0,
            sum_y: 0,
            sum_x: 0,
            min_y: u32::MAX,
            max_y: 0,
            min_x: u32::MAX,
            max_x: 0,
            intensity: CompensatedSum::default(),
            min_intensity: f64::INFINITY,
            max_intensity: f64::NEG_INFINITY,
        }
    }

    #[inline(always)]
    fn add(&mut self, y: u32, x: u32, v: f64) {
        self.area += 1;
        self.sum_y += u64::from(y);
        self.sum_x += u64::from(x);
        self.min_y = self.min_y.min(y);
        self.max_y = self.max_y.max(y);
        self.min_x = self.min_x.min(x);
        self.max_x = self.max_x.max(x);
        self.intensity.add(v);
        self.min_intensity = nan_min(self.min_intensity, v);
        self.max_intensity = nan_max(self.max_intensity, v);
    }
}

/// `min` that propagates NaN, as NumPy's does.
#[inline(always)]
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `max` that propagates NaN, as NumPy's does.
#[inline(always)]
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The properties of one object, as `skimage.measure.regionprops` names
/// them (2D images: see the module documentation for Z).
#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegionProps {
    /// The object's label (1-based, raster order of its first pixel).
    pub label: u32,
    /// Number of pixels.
    pub area: u64,
    /// Mean pixel coordinate `(z, y, x)`.
    pub centroid: [f64; 3],
    /// Half-open bounding box `(min_z, min_y, min_x, max_z, max_y, max_x)`:
    /// the object lies in `min <= coordinate < max`.
    pub bbox: [u64; 6],
    /// Mean of the intensity image over the object (`f64`).
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub mean_intensity: f64,
    /// Smallest intensity in the object (NaN if any is NaN).
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub min_intensity: f64,
    /// Largest intensity in the object (NaN if any is NaN).
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub max_intensity: f64,
}

/// An object's sums, merged from its pieces.
#[derive(Debug, Clone, Copy)]
struct Region {
    area: u64,
    sum: [u128; 3],
    min: [u32; 3],
    max: [u32; 3],
    intensity: CompensatedSum,
    min_intensity: f64,
    max_intensity: f64,
}

impl Region {
    const EMPTY: Region = Region {
        area: 0,
        sum: [0; 3],
        min: [u32::MAX; 3],
        max: [0; 3],
        intensity: CompensatedSum {
            sum: 0.0,
            compensation: 0.0,
        },
        min_intensity: f64::INFINITY,
        max_intensity: f64::NEG_INFINITY,
    };

    fn merge(&mut self, p: &Piece) {
        self.area += p.area;
        self.sum[0] += u128::from(p.z) * u128::from(p.area);
        self.sum[1] += u128::from(p.sum_y);
        self.sum[2] += u128::from(p.sum_x);
        for (a, (lo, hi)) in [(p.z, p.z), (p.min_y, p.max_y), (p.min_x, p.max_x)]
            .into_iter()
            .enumerate()
        {
            self.min[a] = self.min[a].min(lo);
            self.max[a] = self.max[a].max(hi);
        }
        self.intensity.merge(p.intensity);
        self.min_intensity = nan_min(self.min_intensity, p.min_intensity);
        self.max_intensity = nan_max(self.max_intensity, p.max_intensity);
    }

    fn props(&self, label: u32) -> RegionProps {
        let n = self.area as f64;
        RegionProps {
            label,
            area: self.area,
            centroid: self.sum.map(|s| s as f64 / n),
            bbox: [
                u64::from(self.min[0]),
                u64::from(self.min[1]),
                u64::from(self.min[2]),
                u64::from(self.max[0]) + 1,
                u64::from(self.max[1]) + 1,
                u64::from(self.max[2]) + 1,
            ],
            mean_intensity: self.intensity.value() / n,
            min_intensity: self.min_intensity,
            max_intensity: self.max_intensity,
        }
    }
}

/// Measures the objects of a labels image already made (by [`Labeler`] or
/// anyone numbering objects `1..=count`, 0 for background), fed plane by
/// plane with its intensity image: the same [`RegionProps`] the labeler
/// gives, summed in the same way (per plane, then merged).
///
/// Memory: about 200 bytes per object, whatever the number of planes.
#[derive(Debug, Clone)]
pub struct RegionTable {
    /// Index of the next plane.
    z: u32,
    /// Properties so far of objects `1..=count` (index 0 unused).
    regions: Vec<Region>,
    /// The current plane's part of each object (index 0 unused).
    pieces: Vec<Piece>,
    /// The objects the current plane holds, in order of first pixel.
    touched: Vec<u32>,
}

impl RegionTable {
    /// A table of objects `1..=count`.
    pub fn new(count: u32) -> RegionTable {
        let n = count as usize + 1;
        RegionTable {
            z: 0,
            regions: vec![Region::EMPTY; n],
            pieces: vec![Piece::new(0); n],
            touched: Vec::new(),
        }
    }

    /// Adds the next plane: `labels` and `intensities`, `width` pixels a
    /// row. Errors ([`CoreError::InvalidRequest`]): planes of different
    /// sizes, or a label above the table's count.
    pub fn add_plane<T: Sample>(
        &mut self,
        width: usize,
        labels: &[u32],
        intensities: &[T],
    ) -> Result<(), CoreError> {
        if labels.len() != intensities.len() || width == 0 || !labels.len().is_multiple_of(width) {
            return Err(CoreError::InvalidRequest(format!(
                "a plane of {} labels and {} intensities is not rows of {width}",
                labels.len(),
                intensities.len()
            )));
        }
        let count = self.regions.len() - 1;
        for (i, (&label, &v)) in labels.iter().zip(intensities).enumerate() {
            if label == 0 {
                continue;
            }
            let Some(piece) = self.pieces.get_mut(label as usize) else {
                return Err(CoreError::InvalidRequest(format!(
                    "label {label} in a labels image of {count} objects"
                )));
            };
            if piece.area == 0 {
                *piece = Piece::new(self.z);
                self.touched.push(label);
            }
            // planes are below u32::MAX pixels a side, as the labeler's
            piece.add((i / width) as u32, (i % width) as u32, v.to_f64());
        }
        for &label in &self.touched {
            let piece = std::mem::replace(&mut self.pieces[label as usize], Piece::new(0));
            self.regions[label as usize].merge(&piece);
        }
        self.touched.clear();
        self.z += 1;
        Ok(())
    }

    /// The properties of objects `1..=count`, in label order (an object
    /// never seen has area 0, a NaN centroid and mean, and infinite
    /// extremes).
    pub fn finish(&self) -> Vec<RegionProps> {
        self.regions
            .iter()
            .enumerate()
            .skip(1)
            .map(|(label, r)| r.props(label as u32))
            .collect()
    }
}

/// Labels the connected components of a foreground fed plane by plane in Z
/// order (see the module documentation).
///
/// Memory: two `u32` per pixel of a plane (the previous plane's labels and
/// scratch), plus about 90 bytes per provisional label.
#[derive(Debug, Clone)]
pub struct Labeler {
    height: usize,
    width: usize,
    /// Index of the next plane.
    z: u32,
    /// Provisional labels of the previous plane (empty before the first).
    previous: Vec<u32>,
    /// Union-find over provisional labels (index 0 unused); a root is the
    /// smallest provisional label of its object.
    parent: Vec<u32>,
    /// Accumulated properties per provisional label (index 0 unused).
    pieces: Vec<Piece>,
    /// Scratch: union-find over one plane's local labels.
    local_parent: Vec<u32>,
    /// Scratch: local label → provisional label.
    local_to_global: Vec<u32>,
    max_provisional: u32,
}

impl Labeler {
    /// A labeler for planes of `height × width` pixels, refusing more than
    /// `max_provisional_labels` provisional labels
    /// ([`DEFAULT_MAX_PROVISIONAL_LABELS`] is a good choice; at most
    /// `u32::MAX - 1`).
    ///
    /// Errors ([`CoreError::InvalidRequest`]): a plane of `u32::MAX` pixels
    /// or more.
    pub fn new(
        height: usize,
        width: usize,
        max_provisional_labels: u32,
    ) -> Result<Self, CoreError> {
        let pixels = height.checked_mul(width);
        if !matches!(pixels, Some(p) if p < u32::MAX as usize) {
            return Err(CoreError::InvalidRequest(format!(
                "a {height}×{width} plane has too many pixels to label (at most {} per plane)",
                u32::MAX - 1
            )));
        }
        Ok(Labeler {
            height,
            width,
            z: 0,
            previous: Vec::new(),
            parent: vec![0],
            pieces: vec![Piece::new(0)],
            local_parent: Vec::new(),
            local_to_global: Vec::new(),
            max_provisional: max_provisional_labels.min(u32::MAX - 1),
        })
    }

    /// Planes fed so far.
    pub fn planes(&self) -> u32 {
        self.z
    }

    /// Provisional labels handed out so far.
    pub fn provisional_labels(&self) -> u32 {
        // At most `max_provisional`, which fits.
        (self.pieces.len() - 1) as u32
    }

    /// Labels the next plane: pixels where `is_foreground(sample)` holds are
    /// foreground, and the samples are also the intensities measured.
    /// Writes each pixel's provisional label (0 for background) into
    /// `labels`, for the caller to store and later pass to
    /// [`Labels::relabel`].
    ///
    /// Errors ([`CoreError::InvalidRequest`]): buffers that are not one
    /// plane long, more planes than `u32::MAX - 1`, or more provisional
    /// labels than the limit (the error names it). After an error the
    /// labeler must not be used further.
    pub fn add_plane<T: Sample>(
        &mut self,
        samples: &[T],
        is_foreground: impl Fn(T) -> bool,
        labels: &mut [u32],
    ) -> Result<(), CoreError> {
        self.check_lengths(&[samples.len(), labels.len()])?;
        self.label_plane(|i| is_foreground(samples[i]), samples, labels)
    }

    /// Labels the next plane from a foreground mask, measuring `intensity`
    /// (any sample type). Otherwise as [`Self::add_plane`].
    pub fn add_masked_plane<T: Sample>(
        &mut self,
        mask: &[bool],
        intensity: &[T],
        labels: &mut [u32],
    ) -> Result<(), CoreError> {
        self.check_lengths(&[mask.len(), intensity.len(), labels.len()])?;
        self.label_plane(|i| mask[i], intensity, labels)
    }

    fn check_lengths(&self, lengths: &[usize]) -> Result<(), CoreError> {
        let pixels = self.height * self.width;
        if let Some(bad) = lengths.iter().find(|&&l| l != pixels) {
            return Err(CoreError::InvalidRequest(format!(
                "a buffer of {bad} values for a {}×{} plane of {pixels} pixels",
                self.height, self.width
            )));
        }
        if self.z == u32::MAX - 1 {
            return Err(CoreError::InvalidRequest(format!(
                "more than {} planes",
                u32::MAX - 1
            )));
        }
        Ok(())
    }

    fn label_plane<T: Sample>(
        &mut self,
        fg: impl Fn(usize) -> bool,
        intensity: &[T],
        labels: &mut [u32],
    ) -> Result<(), CoreError> {
        let (h, w) = (self.height, self.width);
        // Pass A: local labels with 8-connectivity. Only the already
        // visited neighbours matter: W, NW, N, NE. If N is foreground it is
        // connected to NW, NE and W already (they are its neighbours, met
        // in earlier steps); otherwise NE may join W or NW (which are
        // connected to each other).
        let parent = &mut self.local_parent;
        parent.clear();
        parent.push(0);
        for y in 0..h {
            let row = y * w;
            for x in 0..w {
                let i = row + x;
                if !fg(i) {
                    labels[i] = 0;
                    continue;
                }
                let north = if y > 0 { labels[i - w] } else { 0 };
                labels[i] = if north != 0 {
                    north
                } else {
                    let west = if x > 0 { labels[i - 1] } else { 0 };
                    let north_west = if y > 0 && x > 0 { labels[i - w - 1] } else { 0 };
                    let north_east = if y > 0 && x + 1 < w {
                        labels[i - w + 1]
                    } else {
                        0
                    };
                    let left = if west != 0 { west } else { north_west };
                    if north_east != 0 {
                        if left != 0 {
                            union(parent, north_east, left);
                        }
                        north_east
                    } else if left != 0 {
                        left
                    } else {
                        // At most one label per pixel, and planes have fewer
                        // than u32::MAX pixels.
                        let l = parent.len() as u32;
                        parent.push(l);
                        l
                    }
                };
            }
        }

        // Pass B: a provisional label per local component, in order of the
        // components' smallest local label, i.e. of their first pixel.
        let roots = (1..parent.len())
            .filter(|&l| parent[l] as usize == l)
            .count();
        let first = self.pieces.len();
        let total = first - 1 + roots;
        if total > self.max_provisional as usize {
            return Err(CoreError::InvalidRequest(format!(
                "more than {} provisional labels (max_provisional_labels) after {} planes: \
                 the foreground has too many objects per plane",
                self.max_provisional,
                self.z + 1
            )));
        }
        let map = &mut self.local_to_global;
        map.clear();
        map.resize(parent.len(), 0);
        let mut next = first as u32;
        for l in 1..parent.len() {
            let p = parent[l] as usize;
            map[l] = if p == l {
                next += 1;
                next - 1
            } else {
                // Roots are smaller than their members: mapped already.
                map[p]
            };
        }
        self.parent.extend(first as u32..next);
        self.pieces
            .extend((first..next as usize).map(|_| Piece::new(self.z)));

        // Pass C: provisional labels, properties, and unions with the
        // previous plane's 3×3 block above each pixel.
        let has_previous = !self.previous.is_empty();
        let mut last_union = (0u32, 0u32);
        for y in 0..h {
            let row = y * w;
            let (y0, y1) = (y.saturating_sub(1), (y + 1).min(h - 1));
            for x in 0..w {
                let i = row + x;
                let local = labels[i];
                if local == 0 {
                    continue;
                }
                let g = map[local as usize];
                labels[i] = g;
                // Coordinates fit: planes have fewer than u32::MAX pixels.
                self.pieces[g as usize].add(y as u32, x as u32, intensity[i].to_f64());
                if has_previous {
                    let (x0, x1) = (x.saturating_sub(1), (x + 1).min(w - 1));
                    for yy in y0..=y1 {
                        for &p in &self.previous[yy * w + x0..=yy * w + x1] {
                            if p != 0 && (g, p) != last_union {
                                union(&mut self.parent, g, p);
                                last_union = (g, p);
                            }
                        }
                    }
                }
            }
        }
        self.previous.clear();
        self.previous.extend_from_slice(labels);
        self.z += 1;
        Ok(())
    }

    /// Resolves the provisional labels into final labels and merges the
    /// region properties.
    pub fn finish(mut self) -> Labels {
        let n = self.pieces.len();
        let mut relabel = vec![0u32; n];
        let mut count = 0u32;
        for g in 1..n {
            let r = find(&mut self.parent, g as u32) as usize;
            relabel[g] = if r == g {
                count += 1;
                count
            } else {
                relabel[r]
            };
        }
        let mut regions = vec![Region::EMPTY; count as usize];
        for (g, piece) in self.pieces.iter().enumerate().skip(1) {
            regions[relabel[g] as usize - 1].merge(piece);
        }
        let identity = relabel.iter().enumerate().all(|(g, &l)| g == l as usize);
        Labels {
            relabel,
            identity,
            regions: regions
                .iter()
                .enumerate()
                .map(|(i, r)| r.props(i as u32 + 1))
                .collect(),
        }
    }
}

/// The root of `a`, halving the path on the way.
#[inline]
fn find(parent: &mut [u32], mut a: u32) -> u32 {
    while parent[a as usize] != a {
        let grand = parent[parent[a as usize] as usize];
        parent[a as usize] = grand;
        a = grand;
    }
    a
}

/// Unites the sets of `a` and `b`; the smaller root becomes the root.
#[inline]
fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

/// The result of labelling: the map from provisional to final labels, and
/// every object's properties in label order.
#[derive(Debug, Clone)]
pub struct Labels {
    relabel: Vec<u32>,
    identity: bool,
    /// Properties of objects `1..=count`, in label order.
    pub regions: Vec<RegionProps>,
}

impl Labels {
    /// Number of objects (the largest label).
    pub fn count(&self) -> u32 {
        // Labels are u32, so their number is too.
        self.regions.len() as u32
    }

    /// The final label of a provisional label (0 for 0 and for labels the
    /// labeler never handed out).
    #[inline]
    pub fn final_label(&self, provisional: u32) -> u32 {
        self.relabel.get(provisional as usize).copied().unwrap_or(0)
    }

    /// The whole map: entry `p` is the final label of provisional label
    /// `p` (entry 0 is 0), for callers that store it or relabel elsewhere.
    pub fn map(&self) -> &[u32] {
        &self.relabel
    }

    /// Whether every provisional label is already final, so that stored
    /// planes need no rewriting (always the case for a single plane).
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Rewrites a stored plane of provisional labels into final labels, in
    /// place.
    pub fn relabel(&self, plane: &mut [u32]) {
        if self.identity {
            return;
        }
        for l in plane {
            *l = self.final_label(*l);
        }
    }
}

/// A labelled image held in memory.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// Final labels, one per sample, in the input's layout.
    pub labels: Vec<u32>,
    /// Properties of objects `1..=n`, in label order.
    pub regions: Vec<RegionProps>,
}

/// Labels a `planes × height × width` volume held in memory (a 2D image is
/// one plane), foreground where `is_foreground(sample)` holds, measuring the
/// samples themselves.
pub fn label_slice<T: Sample>(
    samples: &[T],
    planes: usize,
    height: usize,
    width: usize,
    is_foreground: impl Fn(T) -> bool,
) -> Result<Labelled, CoreError> {
    let plane = height.checked_mul(width);
    if plane.and_then(|p| p.checked_mul(planes)) != Some(samples.len()) {
        return Err(CoreError::InvalidRequest(format!(
            "{} samples do not make a {planes}×{height}×{width} volume",
            samples.len()
        )));
    }
    let mut labeler = Labeler::new(height, width, DEFAULT_MAX_PROVISIONAL_LABELS)?;
    let mut labels = vec![0u32; samples.len()];
    let plane = height * width;
    if plane > 0 {
        for (s, l) in samples.chunks(plane).zip(labels.chunks_mut(plane)) {
            labeler.add_plane(s, &is_foreground, l)?;
        }
    }
    let result = labeler.finish();
    result.relabel(&mut labels);
    Ok(Labelled {
        labels,
        regions: result.regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label2d(rows: &[&str]) -> Labelled {
        let h = rows.len();
        let w = rows.first().map_or(0, |r| r.len());
        let data: Vec<u8> = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
            .collect();
        label_slice(&data, 1, h, w, |v| v > 0).unwrap()
    }

    /// A table measured from the labels of a labelled volume gives the
    /// labeler's properties.
    #[test]
    fn region_table_measures_what_the_labeler_measured() {
        let (planes, h, w) = (4, 9, 11);
        let samples: Vec<u16> = (0..planes * h * w)
            .map(|i| ((i * 2_654_435_761usize) >> 7) as u16 % 100)
            .collect();
        let labelled = label_slice(&samples, planes, h, w, |v| v > 85).unwrap();
        assert!(labelled.regions.len() > 3);
        let mut table = RegionTable::new(labelled.regions.len() as u32);
        for (labels, values) in labelled.labels.chunks(h * w).zip(samples.chunks(h * w)) {
            table.add_plane(w, labels, values).unwrap();
        }
        let measured = table.finish();
        assert_eq!(measured.len(), labelled.regions.len());
        for (m, r) in measured.iter().zip(&labelled.regions) {
            assert_eq!(
                (m.label, m.area, m.bbox, m.centroid),
                (r.label, r.area, r.bbox, r.centroid)
            );
            for (a, b) in [
                (m.mean_intensity, r.mean_intensity),
                (m.min_intensity, r.min_intensity),
                (m.max_intensity, r.max_intensity),
            ] {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs(),
                    "label {}: {a} vs {b}",
                    m.label
                );
            }
        }
        let too_high = table.add_plane(w, &vec![u32::MAX; h * w], &samples[..h * w]);
        assert!(too_high.is_err());
        assert!(table.add_plane(w, &[1, 2], &samples[..3]).is_err());
    }

    #[test]
    fn eight_connectivity_and_raster_numbering() {
        let l = label2d(&["..#.#", "#.#.#", "###.."]);
        assert_eq!(l.labels, vec![0, 0, 1, 0, 2, 1, 0, 1, 0, 2, 1, 1, 1, 0, 0]);
        // A U shape joined only at the bottom, and diagonal chains.
        let l = label2d(&["#.#.#", "#.#.#", "###.#", "...#."]);
        assert_eq!(l.regions.len(), 1);
        let l = label2d(&["...#", "..#.", "#...", ".#.."]);
        assert_eq!(
            l.labels,
            vec![0, 0, 0, 1, 0, 0, 1, 0, 2, 0, 0, 0, 0, 2, 0, 0]
        );
        let r = &l.regions[0];
        assert_eq!(r.area, 2);
        assert_eq!(r.centroid, [0.0, 0.5, 2.5]);
        assert_eq!(r.bbox, [0, 0, 2, 1, 2, 4]);
    }

    #[test]
    fn volumes_join_across_planes_and_renumber() {
        // Plane 0 has two pieces that a later plane joins through a
        // diagonal (26-connectivity); a third object starts in plane 1
        // before the joining pixel in raster order.
        let (h, w) = (3, 3);
        #[rustfmt::skip]
        let data: Vec<u8> = vec![
            1, 0, 1,
            0, 0, 0,
            0, 0, 0,

            0, 0, 0,
            0, 0, 0,
            5, 0, 0,

            0, 9, 0,
            0, 0, 0,
            0, 0, 0,
        ];
        let l = label_slice(&data, 3, h, w, |v| v > 0).unwrap();
        // Plane 2's pixel (0, 1) would touch both pixels of plane 0, but only
        // neighbouring planes connect, so all four stay apart.
        assert_eq!(l.regions.len(), 4);
        assert_eq!(&l.labels[..3], &[1, 0, 2]);
        assert_eq!(l.labels[15], 3);
        assert_eq!(l.labels[19], 4);

        #[rustfmt::skip]
        let data: Vec<u8> = vec![
            1, 0, 1,
            0, 0, 0,
            0, 0, 0,

            0, 0, 0,
            3, 0, 0,
            0, 2, 0,
        ];
        let l = label_slice(&data, 2, h, w, |v| v > 0).unwrap();
        // Plane 1's (1, 0) touches plane 0's (0, 0), and (2, 1) is its
        // diagonal neighbour: one object, numbered from plane 0.
        assert_eq!(l.regions.len(), 2);
        assert_eq!(
            l.labels,
            vec![1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0]
        );
        let mut data = data;
        data[0] = 0;
        data[1] = 7;
        let l = label_slice(&data, 2, h, w, |v| v > 0).unwrap();
        // Now plane 0 has (0,1) and (0,2) adjacent: one object, which
        // plane 1's (1,0) touches diagonally across planes.
        assert_eq!(l.regions.len(), 1);
        let r = &l.regions[0];
        assert_eq!(r.area, 4);
        assert_eq!(r.bbox, [0, 0, 0, 2, 3, 3]);
        assert_eq!(r.min_intensity, 1.0);
        assert_eq!(r.max_intensity, 7.0);
        assert_eq!(r.mean_intensity, 13.0 / 4.0);
        assert_eq!(r.centroid, [0.5, 0.75, 1.0]);
    }

    #[test]
    fn provisional_labels_resolve_in_a_second_pass() {
        let (h, w) = (1, 3);
        let mut labeler = Labeler::new(h, w, 100).unwrap();
        let planes: [[u8; 3]; 2] = [[1, 0, 1], [0, 1, 0]];
        let mut stored = vec![[0u32; 3]; 2];
        for (p, s) in planes.iter().zip(stored.iter_mut()) {
            labeler.add_plane(p, |v| v > 0, s).unwrap();
        }
        assert_eq!(stored, vec![[1, 0, 2], [0, 3, 0]]);
        let labels = labeler.finish();
        assert!(!labels.is_identity());
        assert_eq!(labels.count(), 1);
        for s in &mut stored {
            labels.relabel(s);
        }
        assert_eq!(stored, vec![[1, 0, 1], [0, 1, 0]]);
        assert_eq!(labels.final_label(99), 0);
    }

    #[test]
    fn hostile_shapes_and_limits() {
        // Empty planes, a single pixel, wrong buffer lengths.
        let l = label_slice::<u8>(&[], 3, 0, 5, |v| v > 0).unwrap();
        assert!(l.regions.is_empty());
        let l = label_slice(&[7u16], 1, 1, 1, |v| v > 0).unwrap();
        assert_eq!(l.labels, vec![1]);
        assert_eq!(l.regions[0].bbox, [0, 0, 0, 1, 1, 1]);
        assert!(label_slice(&[1u8, 2, 3], 1, 2, 2, |v| v > 0).is_err());
        let mut labeler = Labeler::new(0, 7, 10).unwrap();
        labeler.add_plane::<u8>(&[], |v| v > 0, &mut []).unwrap();
        labeler.add_plane::<u8>(&[], |v| v > 0, &mut []).unwrap();
        assert_eq!(labeler.planes(), 2);
        assert_eq!(labeler.finish().count(), 0);
        let mut labeler = Labeler::new(2, 2, 10).unwrap();
        let mut out = [0u32; 3];
        assert!(labeler.add_plane(&[1u8; 4], |v| v > 0, &mut out).is_err());
        assert!(Labeler::new(1 << 20, 1 << 20, 10).is_err());
        assert!(Labeler::new(usize::MAX, 2, 10).is_err());
        // The provisional label limit.
        let mut labeler = Labeler::new(1, 5, 2).unwrap();
        let mut out = [0u32; 5];
        let e = labeler
            .add_plane(&[1u8, 0, 1, 0, 1], |v| v > 0, &mut out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_provisional_labels"), "{e}");
        // NaN intensities propagate into min and max, as NumPy's.
        let mut labeler = Labeler::new(1, 2, 10).unwrap();
        let mut out = [0u32; 2];
        labeler
            .add_masked_plane(&[true, true], &[f32::NAN, 1.0], &mut out)
            .unwrap();
        let r = &labeler.finish().regions[0];
        assert!(r.min_intensity.is_nan() && r.max_intensity.is_nan() && r.mean_intensity.is_nan());
    }
}
