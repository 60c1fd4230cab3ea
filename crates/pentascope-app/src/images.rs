//! Looking images up, listing, statistics and deletion.

use std::sync::Arc;

use pentascope_core::stats::{ChannelStats, Histogram};
use pentascope_passes::analysis::{recompute_statistics, ScoresReader};
use pentascope_passes::cancel::Cancel;
use pentascope_passes::PassError;
use pentascope_store::pixels::{PixelReader, PixelStore};
use pentascope_store::{ImageId, ImageRecord, StoreError};
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::app::{blocking, App};
use crate::audit::Action;
use crate::error::AppError;
use pentascope_store::records::Scope;

/// Statistics over every sample of every channel, as NumPy computes them
/// on the whole array (NaN if any sample is NaN).
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct Overall {
    /// Samples.
    pub count: u64,
    /// Their smallest, largest, mean and deviation.
    #[serde(flatten)]
    pub moments: Moments,
}

/// The smallest and largest sample, the mean and the population standard
/// deviation (JSON writes NaN as null).
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct Moments {
    /// Smallest sample.
    #[schemars(with = "Option<f64>")]
    pub min: f64,
    /// Largest sample.
    #[schemars(with = "Option<f64>")]
    pub max: f64,
    /// Mean.
    #[schemars(with = "Option<f64>")]
    pub mean: f64,
    /// Population standard deviation.
    #[schemars(with = "Option<f64>")]
    pub std: f64,
}

impl Moments {
    fn of(c: &ChannelStats) -> Moments {
        Moments {
            min: c.min,
            max: c.max,
            mean: c.mean,
            std: c.std,
        }
    }
}

/// The arguments of `heavy_statistics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsArgs {
    /// The image, `image_<n>`.
    pub image_id: String,
}

/// Per-channel statistics as `GET /statistics` and `heavy_statistics`
/// answer them: one array per statistic (one entry per channel), the
/// histograms, and the original service's `per_channel` and `global`
/// shapes of the same numbers. NaN follows NumPy: any NaN sample makes
/// that channel's mean, std, min and max NaN, infinities propagate into
/// mean, min and max and make std NaN; JSON writes NaN and infinities as
/// null. Percentiles and histograms consider only finite samples.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Statistics {
    /// The image.
    pub image_id: ImageId,
    /// Mean, as `arr.astype(numpy.float64).mean()` over the channel.
    #[schemars(with = "Vec<Option<f64>>")]
    pub mean: Vec<f64>,
    /// Population standard deviation (ddof = 0), as
    /// `arr.astype(numpy.float64).std()`.
    #[schemars(with = "Vec<Option<f64>>")]
    pub std: Vec<f64>,
    /// Smallest sample.
    #[schemars(with = "Vec<Option<f64>>")]
    pub min: Vec<f64>,
    /// Largest sample.
    #[schemars(with = "Vec<Option<f64>>")]
    pub max: Vec<f64>,
    /// Number of samples (T·Z·Height·Width, NaN included).
    pub count: Vec<u64>,
    /// 0.1th percentile of the finite samples (NumPy's `method="lower"`:
    /// the sorted value at index floor(0.001 · (n − 1))); the default
    /// black point of `/slice`.
    #[schemars(with = "Vec<Option<f64>>")]
    pub display_min: Vec<f64>,
    /// 99.9th percentile of the finite samples (`method="higher"`: the
    /// sorted value at index ceil(0.999 · (n − 1))); the default white
    /// point of `/slice`.
    #[schemars(with = "Vec<Option<f64>>")]
    pub display_max: Vec<f64>,
    /// A histogram of each channel's finite samples.
    pub histograms: Vec<Histogram>,
    /// The same numbers per channel, as the original service answered.
    pub per_channel: Vec<ChannelSummary>,
    /// Over every sample of every channel.
    pub global: Overall,
}

/// One channel's summary in the original service's shape.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct ChannelSummary {
    /// The channel, from 0.
    pub channel: usize,
    /// Its smallest, largest, mean and deviation.
    #[serde(flatten)]
    pub moments: Moments,
}

impl Statistics {
    /// The statistics of image `id` from its channels' statistics.
    pub fn of(id: ImageId, statistics: &[ChannelStats]) -> Statistics {
        let col = |f: fn(&ChannelStats) -> f64| statistics.iter().map(f).collect::<Vec<f64>>();
        Statistics {
            image_id: id,
            mean: col(|c| c.mean),
            std: col(|c| c.std),
            min: col(|c| c.min),
            max: col(|c| c.max),
            count: statistics.iter().map(|c| c.count).collect(),
            display_min: col(|c| c.display_min),
            display_max: col(|c| c.display_max),
            histograms: statistics.iter().map(|c| c.histogram.clone()).collect(),
            per_channel: statistics
                .iter()
                .enumerate()
                .map(|(channel, c)| ChannelSummary {
                    channel,
                    moments: Moments::of(c),
                })
                .collect(),
            global: overall(statistics),
        }
    }
}

/// [`Overall`] from per-channel statistics: the mean weighted by counts,
/// the variance pooled with each channel's distance from that mean.
pub fn overall(channels: &[ChannelStats]) -> Overall {
    let count: u64 = channels.iter().map(|c| c.count).sum();
    let n = count as f64;
    let fold = |f: fn(f64, f64) -> f64, start: f64, pick: fn(&ChannelStats) -> f64| {
        channels.iter().map(pick).fold(start, |a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                f(a, b)
            }
        })
    };
    let mean = channels
        .iter()
        .map(|c| c.mean * c.count as f64)
        .sum::<f64>()
        / n;
    let variance = channels
        .iter()
        .map(|c| c.count as f64 * (c.std * c.std + (c.mean - mean) * (c.mean - mean)))
        .sum::<f64>()
        / n;
    Overall {
        count,
        moments: Moments {
            min: fold(f64::min, f64::INFINITY, |c| c.min),
            max: fold(f64::max, f64::NEG_INFINITY, |c| c.max),
            mean,
            std: variance.sqrt(),
        },
    }
}

/// What a deletion removed.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    /// The image deleted.
    pub image_id: ImageId,
    /// Images derived from it (PCA scores, labels, and images derived from
    /// those), deleted with it.
    pub derived_images_deleted: Vec<ImageId>,
}

/// Opens an image's pixels for reading (blocking): stored images from the
/// pixel store, PCA score images as a projection of their source.
pub fn open_pixels(
    pixels: &dyn PixelStore,
    record: &ImageRecord,
) -> Result<Arc<dyn PixelReader>, StoreError> {
    match (&record.details.pca, record.source_image_id) {
        (Some(model), Some(source)) => Ok(Arc::new(ScoresReader::new(
            pixels.open(source)?,
            model.clone(),
        ))),
        _ => pixels.open(record.id),
    }
}

impl App {
    /// `error` from work on image `id`, as the client should see it: a read
    /// that found chunks missing or was cancelled because the image was
    /// deleted meanwhile is an unknown image.
    pub(crate) async fn unless_deleted(&self, id: ImageId, error: AppError) -> AppError {
        let raced = matches!(
            error,
            AppError::Store(StoreError::MissingChunk(_))
                | AppError::Pass(
                    PassError::Store(StoreError::MissingChunk(_)) | PassError::Cancelled
                )
        );
        if raced && matches!(self.images.get(id).await, Ok(None)) {
            return StoreError::NotFound(id.to_string()).into();
        }
        error
    }

    /// A published image by its id string (`image_<n>`), if `caller` may
    /// read it: an image they may not read is as unknown as one that does
    /// not exist.
    pub async fn image(&self, caller: &Caller, id: &str) -> Result<ImageRecord, AppError> {
        caller.require(Scope::Read)?;
        let parsed: ImageId = id
            .parse()
            .map_err(|_| StoreError::NotFound(format!("{id:?}")))?;
        Ok(self
            .images
            .get(parsed)
            .await?
            .filter(|r| caller.can_read(r))
            .ok_or_else(|| StoreError::NotFound(parsed.to_string()))?)
    }

    /// The images of `record`'s file that `caller` may read, in the order
    /// of the file's series (tifffile's): `record` alone for a file of one
    /// series. Images of the file that were deleted are gone from it.
    pub async fn file_images(
        &self,
        caller: &Caller,
        record: &ImageRecord,
    ) -> Result<Vec<ImageRecord>, AppError> {
        let Some(series) = &record.details.series else {
            return Ok(vec![record.clone()]);
        };
        let mut images = Vec::new();
        for id in self.images.series_of(series.first).await? {
            if id == record.id {
                images.push(record.clone());
            } else if let Some(r) = self.images.get(id).await?.filter(|r| caller.can_read(r)) {
                images.push(r);
            }
        }
        images.sort_by_key(|r| r.details.series.as_ref().map_or(0, |s| s.index));
        Ok(images)
    }

    /// An image `caller` may delete or change: 404 if they cannot read it,
    /// 403 if they can read but not change it (a public image of another).
    pub(crate) async fn image_to_modify(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ImageRecord, AppError> {
        let record = self.image(caller, id).await?;
        if !caller.can_modify(&record) {
            return Err(AppError::Forbidden(format!(
                "only the owner of {} or an admin can change or delete it",
                record.id
            )));
        }
        Ok(record)
    }

    /// Every published image `caller` may read, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<ImageRecord>, AppError> {
        caller.require(Scope::Read)?;
        let mut images = self.images.list().await?;
        images.retain(|r| caller.can_read(r));
        Ok(images)
    }

    /// Per-channel statistics of an image: those gathered at ingest, or,
    /// with `recompute`, re-read from every stored pixel (a check of the
    /// store and a measure of its read speed; the record is unchanged).
    /// A recomputation stops when the caller stops waiting or the image
    /// is deleted.
    pub async fn statistics(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        recompute: bool,
    ) -> Result<(ImageRecord, Vec<ChannelStats>), AppError> {
        let record = self.image(caller, id).await?;
        if !recompute {
            let statistics = record.statistics.clone();
            return Ok((record, statistics));
        }
        let (app, cancel) = (self.clone(), Cancel::new());
        let observed = cancel.clone();
        App::detached(&cancel, async move {
            let _reading = app.reading(record.id, &observed);
            let (pixels, reading) = (app.pixels.clone(), record.clone());
            let part_pixels = app.config.part_pixels;
            let recomputed = blocking(move || {
                let reader = open_pixels(&*pixels, &reading)?;
                Ok(recompute_statistics(&*reader, part_pixels, &observed)?)
            })
            .await;
            match recomputed {
                Ok(statistics) => Ok((record, statistics)),
                Err(e) => Err(app.unless_deleted(record.id, e).await),
            }
        })
        .await
    }

    /// Deletes an image with the images derived from it: records first (so
    /// nothing new reads it), then cached readers and slices, then pixels.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<Deleted, AppError> {
        caller.require(Scope::Write)?;
        let record = self.image_to_modify(caller, id).await?;
        if !self.images.delete(record.id).await? {
            return Err(StoreError::NotFound(record.id.to_string()).into());
        }
        self.cancel_readers(record.id);
        self.caches.forget(record.id);
        // images derived from it, and from those, breadth first
        let mut derived = Vec::new();
        let mut next = vec![record.id];
        while let Some(parent) = next.pop() {
            for d in self.images.derived_from(parent).await? {
                if self.images.delete(d).await? {
                    self.cancel_readers(d);
                    self.caches.forget(d);
                    derived.push(d);
                    next.push(d);
                }
            }
        }
        derived.sort();
        let (pixels, id) = (self.pixels.clone(), record.id);
        let removed = derived.clone();
        blocking(move || {
            pixels.delete(id)?;
            // stored derived images (labels) have pixels; virtual ones none
            for d in removed {
                pixels.delete(d)?;
            }
            Ok(())
        })
        .await?;
        let detail = match derived.as_slice() {
            [] => String::new(),
            some => format!(
                "with derived {}",
                some.iter()
                    .map(ImageId::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.audit(caller, Action::ImageDelete, &id.to_string(), &detail)
            .await;
        Ok(Deleted {
            image_id: id,
            derived_images_deleted: derived,
        })
    }
}
