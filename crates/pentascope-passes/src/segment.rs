//! Segmentation of a stored image's plane or Z stack into a labels image,
//! streamed plane by plane (see `pentascope_core::segment`): the range, a
//! histogram (Otsu, k-means), Lloyd passes for k-means on floats, then one
//! pass that writes provisional object labels (or cluster numbers) into the
//! staged labels image and a last pass that rewrites the stored planes
//! with the final labels when labelling across planes merged objects.
//!
//! Memory: a plane of samples, a plane or two of labels, the labeler's two
//! planes and its table of provisional labels, and one histogram; never
//! the stack.

use std::ops::Range;

use pentascope_core::segment::kmeans::{self, KMeansHistogram, LloydPass, DEFAULT_MAX_PASSES};
use pentascope_core::segment::label::Labeler;
use pentascope_core::segment::otsu::{OtsuHistogram, DEFAULT_MAX_INTEGER_BINS};
use pentascope_core::segment::{
    CompensatedSum, RangeAccumulator, RegionProps, RegionTable, SampleRange,
};
use pentascope_core::stats::{ChannelStats, StatsAccumulator};
use pentascope_core::{dispatch_dtype, CoreError, DType, Limit, PlaneIndex, Sample};
use pentascope_store::pixels::{PixelReader, PixelWriter};
use pentascope_store::StoreError;

use crate::error::PassError;
use rayon::prelude::*;

use crate::cancel::Cancel;

/// How the foreground (or the clusters) are found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Otsu's threshold (scikit-image's `threshold_otsu`); foreground is
    /// `sample > threshold`.
    Otsu,
    /// A given threshold; foreground is `sample > threshold`, compared as
    /// NumPy compares an array with a Python float (in float32 for float32
    /// data, in float64 otherwise).
    Threshold(f64),
    /// k-means on the intensities with this many clusters.
    KMeans(usize),
}

/// What to segment: planes `z` at time `t` and channel `c` of the source.
#[derive(Debug, Clone)]
pub struct SegmentRequest {
    /// Time point.
    pub t: u64,
    /// Channel.
    pub c: u64,
    /// Z planes (one for a plane, all for a volume).
    pub z: Range<u64>,
    /// The method.
    pub method: Method,
    /// Most provisional labels (2D pieces over all planes) the labeler may
    /// hand out.
    pub max_labels: u32,
}

/// The k-means clustering found.
#[derive(Debug, Clone)]
pub struct Clusters {
    /// Centres, ascending (cluster `i` has centre `centres[i]`).
    pub centres: Vec<f64>,
    /// Samples assigned to each cluster.
    pub counts: Vec<u64>,
    /// Sum of squared distances of the samples to their cluster's centre.
    pub inertia: f64,
    /// Whether Lloyd's iterations reached a fixed point.
    pub converged: bool,
}

/// What a segmentation found; the labels are in the writer.
#[derive(Debug, Clone)]
pub struct SegmentOutcome {
    /// The threshold (Otsu and manual threshold).
    pub threshold: Option<f64>,
    /// Foreground samples (Otsu and manual threshold).
    pub foreground: u64,
    /// Samples segmented.
    pub samples: u64,
    /// The objects, in label order (Otsu and manual threshold).
    pub objects: Vec<RegionProps>,
    /// The clusters (k-means).
    pub clusters: Option<Clusters>,
    /// Statistics of the labels image written.
    pub statistics: ChannelStats,
}

/// The sample type of a labels image: `u32` object labels, `u8` clusters.
pub fn labels_dtype(method: Method) -> DType {
    match method {
        Method::KMeans(_) => DType::U8,
        Method::Otsu | Method::Threshold(_) => DType::U32,
    }
}

/// Segments planes `request.z` of `reader` (at `request.t`, `request.c`)
/// and writes the labels image into `writer`, whose layout must be
/// `1 × planes × 1 × Y × X` of [`labels_dtype`]. `progress` is told the
/// fraction done. On error the caller aborts the writer.
pub fn segment(
    reader: &dyn PixelReader,
    writer: &dyn PixelWriter,
    request: &SegmentRequest,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &Cancel,
) -> Result<SegmentOutcome, PassError> {
    let out = writer.layout();
    let src = reader.layout().shape;
    let planes = request.z.end - request.z.start;
    if out.shape.to_array() != [1, planes, 1, src.y, src.x]
        || out.dtype != labels_dtype(request.method)
    {
        return Err(PassError::Store(StoreError::Pixels(format!(
            "a labels image of shape {:?} and type {} for {planes} planes of {}×{}",
            out.shape.to_array(),
            out.dtype,
            src.y,
            src.x
        ))));
    }
    dispatch_dtype!(reader.layout().dtype, T => segment_typed::<T>(reader, writer, request, progress, cancel))
}

/// Samples per piece when a plane's range is found in parallel.
const PIECE: usize = 1 << 18;

struct Passes<'a> {
    reader: &'a dyn PixelReader,
    request: &'a SegmentRequest,
    cancel: &'a Cancel,
    progress: &'a (dyn Fn(f64) + Sync),
    /// Plane passes expected in all, and done.
    total: f64,
    done: f64,
}

impl Passes<'_> {
    /// Calls `f` with every plane's samples in Z order (the next plane is
    /// read while `f` works on the current one).
    fn each<T: Sample>(
        &mut self,
        mut f: impl FnMut(u64, &[T]) -> Result<(), PassError> + Send,
    ) -> Result<(), PassError> {
        let (t, c) = (self.request.t, self.request.c);
        let reader = self.reader;
        let read = |z: u64| reader.read_plane::<T>(PlaneIndex::new(t, z, c));
        let mut zs = self.request.z.clone();
        let Some(first) = zs.next() else {
            return Ok(());
        };
        let mut current = (first, read(first)?);
        loop {
            self.cancel.check()?;
            let next = zs.next();
            let (z, samples) = &current;
            let (done, fetched) = rayon::join(
                || f(*z - self.request.z.start, samples),
                || next.map(|z| read(z).map(|s| (z, s))),
            );
            done?;
            self.done += 1.0;
            (self.progress)((self.done / self.total).min(1.0));
            match fetched {
                Some(plane) => current = plane?,
                None => return Ok(()),
            }
        }
    }
}

fn range_of<T: Sample>(samples: &[T]) -> RangeAccumulator<T> {
    samples
        .par_chunks(PIECE)
        .map(|piece| {
            let mut acc = RangeAccumulator::new();
            acc.add(piece);
            acc
        })
        .reduce(RangeAccumulator::new, |mut a, b| {
            a.merge(&b);
            a
        })
}

/// Compares samples of type `T` with a threshold as NumPy compares an
/// array of `T` with a Python float (NEP 50): in float32 for float32 data,
/// in float64 otherwise.
fn above<T: Sample>(threshold: f64) -> impl Fn(T) -> bool + Copy {
    let float32 = T::DTYPE == DType::F32;
    let t = if float32 {
        f64::from(threshold as f32)
    } else {
        threshold
    };
    move |v: T| v.to_f64() > t
}

fn segment_typed<T: Sample>(
    reader: &dyn PixelReader,
    writer: &dyn PixelWriter,
    request: &SegmentRequest,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &Cancel,
) -> Result<SegmentOutcome, PassError> {
    let planes = request.z.end - request.z.start;
    let mut passes = Passes {
        reader,
        request,
        cancel,
        progress,
        total: (planes * 4) as f64,
        done: 0.0,
    };
    let mut range = RangeAccumulator::<T>::new();
    if !matches!(request.method, Method::Threshold(_)) {
        passes.each::<T>(|_, samples| {
            range.merge(&range_of(samples));
            Ok(())
        })?;
    }
    match request.method {
        Method::Otsu => {
            let range = range.finish()?;
            let mut hist = OtsuHistogram::new(&range, DEFAULT_MAX_INTEGER_BINS)?;
            passes.each::<T>(|_, samples| {
                hist.add(samples);
                Ok(())
            })?;
            let threshold = hist.threshold()?;
            label(
                &mut passes,
                writer,
                above::<T>(threshold.to_f64()),
                threshold.to_f64(),
            )
        }
        Method::Threshold(threshold) => {
            if !threshold.is_finite() {
                return Err(CoreError::InvalidRequest(format!(
                    "the threshold must be a finite number, got {threshold}"
                ))
                .into());
            }
            label(&mut passes, writer, above::<T>(threshold), threshold)
        }
        Method::KMeans(k) => {
            let range = range.finish()?;
            cluster(&mut passes, writer, &range, k)
        }
    }
}

/// Writes a whole plane `z` of the labels image, band by band.
fn write_plane<L: Sample>(writer: &dyn PixelWriter, z: u64, plane: &[L]) -> Result<(), PassError> {
    let layout = *writer.layout();
    let width = layout.shape.x as usize;
    for rows in layout.bands() {
        let (a, b) = (rows.start as usize * width, rows.end as usize * width);
        writer.write_band(
            PlaneIndex::new(0, z, 0),
            rows.start,
            pentascope_core::dtype::as_bytes(&plane[a..b]),
        )?;
    }
    Ok(())
}

fn label<T: Sample>(
    passes: &mut Passes<'_>,
    writer: &dyn PixelWriter,
    is_foreground: impl Fn(T) -> bool + Copy + Send + Sync,
    threshold: f64,
) -> Result<SegmentOutcome, PassError> {
    let shape = writer.layout().shape;
    let (height, width) = (shape.y as usize, shape.x as usize);
    let request = passes.request;
    let mut labeler = Labeler::new(height, width, request.max_labels)?;
    let mut plane = vec![0u32; height * width];
    let (mut foreground, mut samples) = (0u64, 0u64);
    let mut stats = StatsAccumulator::<u32>::new();
    passes.each::<T>(|z, values| {
        labeler
            .add_plane(values, is_foreground, &mut plane)
            .map_err(|e| match e {
                CoreError::InvalidRequest(m) if m.contains("max_provisional_labels") => {
                    CoreError::too_large(
                        Limit::MaxLabels,
                        format!("{m}; the limit is {} labels", request.max_labels),
                    )
                }
                other => other,
            })?;
        foreground += plane.iter().filter(|&&l| l != 0).count() as u64;
        samples += values.len() as u64;
        write_plane(writer, z, &plane)?;
        // final unless objects merged across planes (then taken again)
        stats.add(&plane);
        Ok(())
    })?;
    drop(plane);
    let labels = labeler.finish();
    if !labels.is_identity() {
        stats = StatsAccumulator::new();
        let partial = (0..shape.z)
            .into_par_iter()
            .map(|z| {
                passes.cancel.check()?;
                let mut plane = read_labels(writer, z)?;
                labels.relabel(&mut plane);
                write_plane(writer, z, &plane)?;
                let mut acc = StatsAccumulator::<u32>::new();
                acc.add(&plane);
                Ok(acc)
            })
            .collect::<Result<Vec<_>, PassError>>()?;
        for acc in partial {
            stats.merge(acc);
        }
    }
    (passes.progress)(1.0);
    Ok(SegmentOutcome {
        threshold: Some(threshold),
        foreground,
        samples,
        objects: labels.regions,
        clusters: None,
        statistics: stats.finish(),
    })
}

fn read_labels(writer: &dyn PixelWriter, z: u64) -> Result<Vec<u32>, PassError> {
    let shape = writer.layout().shape;
    let mut plane = vec![0u32; (shape.y * shape.x) as usize];
    writer.read_rows(
        PlaneIndex::new(0, z, 0),
        0..shape.y,
        bytemuck::cast_slice_mut(&mut plane),
    )?;
    Ok(plane)
}

fn cluster<T: Sample>(
    passes: &mut Passes<'_>,
    writer: &dyn PixelWriter,
    range: &SampleRange<T>,
    k: usize,
) -> Result<SegmentOutcome, PassError> {
    kmeans::check_clusters(k)?;
    let mut hist = KMeansHistogram::new(range, kmeans::DEFAULT_KMEANS_BINS)?;
    passes.each::<T>(|_, samples| {
        hist.add(samples);
        Ok(())
    })?;
    let mut model = hist.solve(k)?;
    for _ in 0..DEFAULT_MAX_PASSES {
        if model.converged {
            break;
        }
        passes.total += (passes.request.z.end - passes.request.z.start) as f64;
        let mut pass = LloydPass::new(&model)?;
        passes.each::<T>(|_, samples| {
            pass.add(samples);
            Ok(())
        })?;
        model = pass.finish();
    }
    let assigner = model.assigner();
    let shape = writer.layout().shape;
    let mut plane = vec![0u8; (shape.y * shape.x) as usize];
    let mut counts = vec![0u64; k];
    let mut inertia = vec![CompensatedSum::default(); k];
    let mut stats = StatsAccumulator::<u8>::new();
    let mut samples = 0u64;
    passes.each::<T>(|z, values| {
        for (o, &v) in plane.iter_mut().zip(values) {
            let x = v.to_f64();
            let cluster = assigner.cluster_of(x);
            // at most 256 clusters
            *o = cluster as u8;
            counts[cluster] += 1;
            let d = x - model.centres[cluster];
            inertia[cluster].add(d * d);
        }
        samples += values.len() as u64;
        stats.add(&plane);
        write_plane(writer, z, &plane)
    })?;
    (passes.progress)(1.0);
    Ok(SegmentOutcome {
        threshold: None,
        foreground: 0,
        samples,
        objects: Vec::new(),
        clusters: Some(Clusters {
            centres: model.centres.clone(),
            counts,
            inertia: inertia.iter().map(|s| s.value()).sum(),
            converged: model.converged,
        }),
        statistics: stats.finish(),
    })
}

/// Measures the objects `1..=count` of a labels image (`u32`,
/// `1 × planes × 1 × Y × X`) against its source: planes `z..z + planes` at
/// time `t` and channel `c` of `source` are the intensities. The same
/// properties [`segment`] found, in the labels image's coordinates (its
/// first plane is Z 0). Memory: two planes and about 200 bytes per object.
pub fn measure_objects(
    labels: &dyn PixelReader,
    source: &dyn PixelReader,
    (t, c, z): (u64, u64, u64),
    count: u32,
    cancel: &Cancel,
) -> Result<Vec<RegionProps>, PassError> {
    let (l, s) = (labels.layout(), source.layout().shape);
    let planes = l.shape.z;
    if l.dtype != DType::U32
        || [l.shape.t, l.shape.c, l.shape.y, l.shape.x] != [1, 1, s.y, s.x]
        || t >= s.t
        || c >= s.c
        || z.checked_add(planes).is_none_or(|end| end > s.z)
    {
        return Err(PassError::Store(StoreError::Corrupt(format!(
            "a labels image of shape {:?} and type {} does not label planes {z}.. at time {t}, \
             channel {c} of an image of shape {:?}",
            l.shape.to_array(),
            l.dtype,
            s.to_array()
        ))));
    }
    dispatch_dtype!(source.layout().dtype, T => {
        let mut table = RegionTable::new(count);
        for p in 0..planes {
            cancel.check()?;
            let (ids, values) = rayon::join(
                || labels.read_plane::<u32>(PlaneIndex::new(0, p, 0)),
                || source.read_plane::<T>(PlaneIndex::new(t, z + p, c)),
            );
            table
                .add_plane(s.x as usize, &ids?, &values?)
                .map_err(|e| StoreError::Corrupt(format!("labels plane {p}: {e}")))?;
        }
        Ok(table.finish())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pentascope_core::segment::label::label_slice;
    use pentascope_core::Shape5;
    use pentascope_store::pixels::{
        ArrayLayout, Compression, ImageAttributes, LocalStore, PixelStore, ZSTD_LEVEL,
    };
    use pentascope_store::ImageId;

    /// A U shape whose arms meet only in the last plane: labelled plane by
    /// plane, the arms get two provisional labels that merge at the end, so
    /// the stored planes are rewritten. The result equals labelling the
    /// volume in memory.
    #[test]
    fn volume_objects_merged_across_planes_are_relabelled_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), pentascope_store::pixels::Durability::Os).unwrap();
        let (z, y, x) = (4u64, 5u64, 6u64);
        let mut volume = vec![0u16; (z * y * x) as usize];
        for zz in 0..z {
            for yy in 0..y {
                let at = |xx: u64| ((zz * y + yy) * x + xx) as usize;
                volume[at(0)] = 100; // left arm
                volume[at(5)] = 100; // right arm
                if zz == z - 1 {
                    for xx in 0..x {
                        volume[at(xx)] = 100; // the bottom joins them
                    }
                }
            }
        }
        volume[((y + 2) * x + 3) as usize] = 50; // an isolated pixel in plane 1
        let source_id = ImageId(1);
        let layout = ArrayLayout::for_image(Shape5::new(1, z, 1, y, x), DType::U16);
        let w = store
            .create(
                source_id,
                layout,
                &ImageAttributes::default(),
                Compression::Zstd(ZSTD_LEVEL),
            )
            .unwrap();
        for zz in 0..z {
            let plane = &volume[(zz * y * x) as usize..((zz + 1) * y * x) as usize];
            w.write_band(PlaneIndex::new(0, zz, 0), 0, bytemuck::cast_slice(plane))
                .unwrap();
        }
        w.commit().unwrap();
        let reader = store.open(source_id).unwrap();
        let request = SegmentRequest {
            t: 0,
            c: 0,
            z: 0..z,
            method: Method::Threshold(10.0),
            max_labels: 1000,
        };
        let labels_layout = ArrayLayout::for_image(Shape5::new(1, z, 1, y, x), DType::U32);
        let writer = store
            .create(
                ImageId(2),
                labels_layout,
                &ImageAttributes::default(),
                Compression::Zstd(ZSTD_LEVEL),
            )
            .unwrap();
        let outcome = segment(&*reader, &*writer, &request, &|_| {}, &Cancel::new()).unwrap();
        writer.commit().unwrap();
        let expected =
            label_slice(&volume, z as usize, y as usize, x as usize, |v| v > 10).unwrap();
        assert_eq!(outcome.objects, expected.regions);
        assert_eq!(outcome.objects.len(), 2);
        let stored = store.open(ImageId(2)).unwrap();
        let mut all = Vec::new();
        for zz in 0..z {
            all.extend(stored.read_plane::<u32>(PlaneIndex::new(0, zz, 0)).unwrap());
        }
        assert_eq!(all, expected.labels);
        assert_eq!(outcome.statistics.max, 2.0);
        let fg = volume.iter().filter(|&&v| v > 10).count() as u64;
        assert_eq!((outcome.foreground, outcome.samples), (fg, z * y * x));

        // too many labels: a 413-class error naming the limit
        let request = SegmentRequest {
            max_labels: 1,
            ..request
        };
        let writer = store
            .create(
                ImageId(3),
                labels_layout,
                &ImageAttributes::default(),
                Compression::Zstd(ZSTD_LEVEL),
            )
            .unwrap();
        let e = segment(&*reader, &*writer, &request, &|_| {}, &Cancel::new()).unwrap_err();
        writer.abort();
        assert!(
            matches!(&e, PassError::Core(CoreError::LimitsExceeded { limit: Limit::MaxLabels, message })
                if message.contains("the limit is 1 labels")),
            "{e}"
        );
    }
}
