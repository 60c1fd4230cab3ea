//! Segmentation of a plane or a Z stack: Otsu's threshold, a given
//! threshold or k-means on the intensities, with the objects of a
//! thresholded foreground (connected components, scikit-image's numbering
//! and `regionprops`) and a stored labels image derived from the source
//! (see `pentascope_passes::segment` and `pentascope_core::segment`).

use std::sync::Arc;

use pentascope_core::segment::kmeans::{check_clusters, DEFAULT_CLUSTERS};
use pentascope_core::segment::RegionProps;
use pentascope_core::Shape5;
use pentascope_passes::cancel::Cancel;
use pentascope_passes::segment::{
    labels_dtype, measure_objects, segment, Method, SegmentOutcome, SegmentRequest,
};
use pentascope_passes::PassError;
use pentascope_store::pixels::{ArrayLayout, Compression, ImageAttributes, ZSTD_LEVEL};
use pentascope_store::record::{now_rfc3339, Catalogue, ImageDetails, Segmented};
use pentascope_store::records::Scope;
use pentascope_store::{ImageId, ImageKind, ImageRecord, StoreError};
use pentascope_tiff::{Flavour, PhysicalSizes};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access::Caller;
use crate::app::{blocking, App};
use crate::error::AppError;
use crate::images::open_pixels;
use crate::Progress;

/// How a segmentation separates the pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentMethod {
    /// Otsu's threshold (scikit-image's `threshold_otsu`), then objects.
    #[default]
    Otsu,
    /// k-means on the intensities; clusters numbered by increasing centre.
    Kmeans,
    /// A given threshold (`threshold`), then objects.
    Threshold,
}

impl SegmentMethod {
    fn name(self) -> &'static str {
        match self {
            SegmentMethod::Otsu => "otsu",
            SegmentMethod::Kmeans => "kmeans",
            SegmentMethod::Threshold => "threshold",
        }
    }
}

/// What is segmented: one plane, or every Z plane at that time and channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentScope {
    /// The plane at (`time`, `z`, `channel`).
    #[default]
    Plane,
    /// All Z planes at (`time`, `channel`), labelled in 3D.
    Volume,
}

/// The arguments of a segmentation, as `POST /segment` and the
/// `heavy_segmentation` task take them (`t` and `c`, the Celery task's
/// names, are accepted for `time` and `channel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentArgs {
    /// The source image, `image_<n>`.
    pub image_id: String,
    /// The method (default Otsu).
    #[serde(default)]
    pub method: SegmentMethod,
    /// The threshold of method `threshold` (foreground is `> threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Clusters of method `kmeans` (default 2, at most 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_clusters: Option<u64>,
    /// Z plane (scope `plane`; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<u64>,
    /// Time point (default 0).
    #[serde(default, alias = "t", skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// Channel (default 0).
    #[serde(default, alias = "c", skip_serializing_if = "Option::is_none")]
    pub channel: Option<u64>,
    /// Plane (default) or volume.
    #[serde(default)]
    pub scope: SegmentScope,
}

/// One object: scikit-image's `regionprops` in the source image's
/// coordinates, with its area in physical units when the image has them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SegmentObject {
    /// Label, area (pixels), centroid `(z, y, x)`, half-open bbox
    /// `(min_z, min_y, min_x, max_z, max_y, max_x)` and intensities.
    #[serde(flatten)]
    pub props: RegionProps,
    /// Area in `area_unit` (pixel area times the pixel's physical area or
    /// volume), when the image has physical sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_physical: Option<f64>,
}

impl SegmentObject {
    /// An object measured in a labels image whose first plane is the
    /// source's plane `z0`, in the source's coordinates.
    fn in_source(mut props: RegionProps, z0: u64, pixel_area: Option<f64>) -> SegmentObject {
        props.centroid[0] += z0 as f64;
        props.bbox[0] += z0;
        props.bbox[3] += z0;
        SegmentObject {
            area_physical: pixel_area.map(|a| a * props.area as f64),
            props,
        }
    }
}

/// Every object of a labels image, measured again from it and its source:
/// what `GET /images/{id}/objects` pages or streams.
#[derive(Debug, Clone)]
pub struct ObjectTable {
    /// The labels image.
    pub labels_image_id: ImageId,
    /// The image segmented, whose intensities are measured.
    pub source_image_id: ImageId,
    /// Unit of `area_physical`, when the source has physical sizes.
    pub area_unit: Option<String>,
    /// The objects, in label order, as `POST /segment` gives them inline.
    pub objects: Vec<SegmentObject>,
}

/// The outcome of a segmentation, as `POST /segment` answers it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "SegmentResponse")]
pub struct SegmentResult {
    /// The source image.
    pub image_id: ImageId,
    /// `otsu`, `kmeans` or `threshold`.
    #[schemars(extend("enum" = ["otsu", "kmeans", "threshold"]))]
    pub method: &'static str,
    /// `plane` or `volume`.
    #[schemars(extend("enum" = ["plane", "volume"]))]
    pub scope: &'static str,
    /// The Z plane segmented (scope `plane`), else null.
    pub z: Option<u64>,
    /// Time point.
    pub time: u64,
    /// Channel.
    pub channel: u64,
    /// Samples segmented.
    pub n_samples: u64,
    /// The threshold (foreground is `> threshold`); null for k-means.
    pub threshold: Option<f64>,
    /// Share of samples in the foreground; null for k-means.
    pub foreground_fraction: Option<f64>,
    /// Objects found; null for k-means.
    pub n_objects: Option<u64>,
    /// The objects, inline up to `inline_limit`.
    pub objects: Option<Vec<SegmentObject>>,
    /// Why `objects` is absent.
    pub objects_omitted: Option<String>,
    /// Most objects returned inline.
    pub inline_limit: u64,
    /// Unit of `area_physical` (e.g. `micrometer^2`), when the image has
    /// physical sizes.
    pub area_unit: Option<String>,
    /// Clusters (k-means).
    pub n_clusters: Option<usize>,
    /// Samples per cluster, keyed by cluster number as a string (k-means).
    pub label_counts: Option<Map<String, Value>>,
    /// Cluster centres, ascending (k-means).
    pub cluster_centers: Option<Vec<f64>>,
    /// Sum of squared distances to the cluster centres (k-means).
    pub inertia: Option<f64>,
    /// The derived labels image.
    pub labels_image_id: ImageId,
    /// Its sample type: `uint32` object labels or `uint8` cluster numbers.
    #[schemars(extend("enum" = ["uint32", "uint8"]))]
    pub labels_dtype: String,
}

/// A checked segmentation: the source and what to do with it.
struct Plan {
    source: ImageRecord,
    request: SegmentRequest,
    method: SegmentMethod,
    scope: SegmentScope,
}

impl App {
    fn segment_plan(&self, source: ImageRecord, args: &SegmentArgs) -> Result<Plan, AppError> {
        let s = source.shape;
        let bad = AppError::InvalidArguments;
        let check = |name: &str, value: Option<u64>, size: u64| match value {
            Some(v) if v >= size => Err(bad(format!(
                "{name} = {v} is out of range: {} has {size} {name} value{} (0..={})",
                source.id,
                if size == 1 { "" } else { "s" },
                size - 1
            ))),
            _ => Ok(value.unwrap_or(0)),
        };
        let t = check("time", args.time, s.t)?;
        let c = check("channel", args.channel, s.c)?;
        let z = match args.scope {
            SegmentScope::Plane => {
                let z = check("z", args.z, s.z)?;
                z..z + 1
            }
            SegmentScope::Volume => {
                if args.z.is_some_and(|z| z != 0) {
                    return Err(bad(
                        "z applies to scope \"plane\"; scope \"volume\" segments every z".into(),
                    ));
                }
                0..s.z
            }
        };
        if args.method != SegmentMethod::Threshold && args.threshold.is_some() {
            return Err(bad(format!(
                "threshold applies to method \"threshold\", not {:?}",
                args.method.name()
            )));
        }
        if args.method != SegmentMethod::Kmeans && args.n_clusters.is_some() {
            return Err(bad(format!(
                "n_clusters applies to method \"kmeans\", not {:?}",
                args.method.name()
            )));
        }
        let method = match args.method {
            SegmentMethod::Otsu => Method::Otsu,
            SegmentMethod::Threshold => match args.threshold {
                Some(v) if v.is_finite() => Method::Threshold(v),
                Some(v) => return Err(bad(format!("threshold must be finite, got {v}"))),
                None => {
                    return Err(bad(
                        "method \"threshold\" needs \"threshold\": a number; foreground is \
                         intensity > threshold"
                            .into(),
                    ))
                }
            },
            SegmentMethod::Kmeans => {
                let k = args.n_clusters.unwrap_or(DEFAULT_CLUSTERS as u64);
                let k = usize::try_from(k).unwrap_or(usize::MAX);
                check_clusters(k)?;
                Method::KMeans(k)
            }
        };
        Ok(Plan {
            source,
            request: SegmentRequest {
                t,
                c,
                z,
                method,
                max_labels: self.config.max_labels,
            },
            method: args.method,
            scope: args.scope,
        })
    }

    /// Checks a segmentation's arguments against its source image, which
    /// `caller` must be allowed to read (and must hold the `write` scope).
    pub async fn segment_check(&self, caller: &Caller, args: &SegmentArgs) -> Result<(), AppError> {
        caller.require(Scope::Write)?;
        let source = self.image(caller, &args.image_id).await?;
        self.segment_plan(source, args).map(|_| ())
    }

    /// Segments a plane or a volume and publishes the labels image, with
    /// the objects inline up to the configured cap. It stops, leaving
    /// nothing behind, when the caller stops waiting or the source image is
    /// deleted.
    pub async fn segment(
        self: &Arc<Self>,
        caller: &Caller,
        args: &SegmentArgs,
        progress: Progress,
    ) -> Result<SegmentResult, AppError> {
        let (app, args, cancel) = (self.clone(), args.clone(), Cancel::new());
        let (caller, observed) = (caller.clone(), cancel.clone());
        App::detached(&cancel, async move {
            app.segment_until_cancelled(&caller, &args, progress, observed)
                .await
        })
        .await
    }

    async fn segment_until_cancelled(
        &self,
        caller: &Caller,
        args: &SegmentArgs,
        progress: Progress,
        cancel: Cancel,
    ) -> Result<SegmentResult, AppError> {
        caller.require(Scope::Write)?;
        let source = self.image(caller, &args.image_id).await?;
        let plan = self.segment_plan(source, args)?;
        let source = plan.source.clone();
        let reading = self.reading(source.id, &cancel);
        let planes = plan.request.z.end - plan.request.z.start;
        let shape = Shape5::new(1, planes, 1, source.shape.y, source.shape.x);
        let dtype = labels_dtype(plan.request.method);
        let layout = ArrayLayout::for_image(shape, dtype);
        let channel_name = match plan.method {
            SegmentMethod::Kmeans => "clusters",
            _ => "labels",
        };
        let mut physical_sizes = source.details.physical_sizes.clone();
        physical_sizes.t = None;
        let attributes = ImageAttributes {
            name: format!(
                "{} {channel_name}",
                source
                    .original_filename
                    .clone()
                    .unwrap_or_else(|| source.id.to_string())
            ),
            channel_names: vec![channel_name.into()],
            physical_sizes: physical_sizes.clone(),
            // levels of a labels image hold labels, not their means
            downsample: pentascope_core::pyramid::Downsample::Nearest,
            levels_from_file: Vec::new(),
        };
        let labels_id = self.images.reserve(ImageKind::Labels).await?;
        let (pixels, reading_record, request) =
            (self.pixels.clone(), source.clone(), plan.request.clone());
        let observed = cancel.clone();
        let computed = blocking(move || {
            let reader = open_pixels(&*pixels, &reading_record)?;
            let writer = pixels.create(
                labels_id,
                layout,
                &attributes,
                Compression::Zstd(ZSTD_LEVEL),
            )?;
            match segment(&*reader, &*writer, &request, &*progress, &observed) {
                Ok(outcome) if !observed.is_cancelled() => Ok((outcome, writer)),
                Ok(_) => {
                    writer.abort();
                    Err(PassError::Cancelled.into())
                }
                Err(e) => {
                    writer.abort();
                    Err(e.into())
                }
            }
        })
        .await;
        let (outcome, writer) = match computed {
            Ok(done) => done,
            Err(e) => {
                self.images.discard(labels_id).await?;
                return Err(self.unless_deleted(source.id, e).await);
            }
        };
        let record = ImageRecord {
            id: labels_id,
            kind: ImageKind::Labels,
            source_image_id: Some(source.id),
            original_filename: source.original_filename.clone(),
            byte_size: 0,
            created_at: now_rfc3339(),
            dtype,
            shape,
            flavour: Flavour::Plain,
            details: ImageDetails {
                source_axes: "TZCYX".into(),
                channel_names: vec![channel_name.into()],
                physical_sizes,
                acquisition: Default::default(),
                rendering: Vec::new(),
                warnings: Vec::new(),
                chunk_shape: layout.chunk_shape(),
                pca: None,
                series: None,
                levels_from_file: Vec::new(),
                segmented: (plan.method != SegmentMethod::Kmeans).then_some(Segmented {
                    time: plan.request.t,
                    channel: plan.request.c,
                    z: plan.request.z.start,
                    volume: plan.scope == SegmentScope::Volume,
                }),
            },
            statistics: vec![outcome.statistics.clone()],
            // derived images belong to whoever owns their source
            owner: source.owner.clone(),
            public: source.public,
            catalogue: Catalogue::named(format!("{} (labels)", source.catalogue.name)),
        };
        self.publish(writer, &record).await?;
        drop(reading);
        // a delete of the source that raced the segmentation must not leave
        // an orphaned labels image behind
        if self.images.get(source.id).await?.is_none() {
            self.images.delete(labels_id).await?;
            let pixels = self.pixels.clone();
            blocking(move || Ok(pixels.delete(labels_id)?)).await?;
            return Err(StoreError::NotFound(source.id.to_string()).into());
        }
        tracing::info!(source = %source.id, labels = %labels_id, method = plan.method.name(), "segmented");
        Ok(self.segment_result(&plan, outcome, labels_id))
    }

    fn segment_result(
        &self,
        plan: &Plan,
        outcome: SegmentOutcome,
        labels_id: ImageId,
    ) -> SegmentResult {
        let request = &plan.request;
        let cap = self.config.inline_objects_cap;
        let z0 = request.z.start;
        let volume = plan.scope == SegmentScope::Volume;
        let (area_unit, pixel_area) = physical_area(&plan.source.details.physical_sizes, volume);
        let n_objects = outcome.objects.len() as u64;
        let thresholded = outcome.clusters.is_none();
        let objects = (thresholded && n_objects <= cap).then(|| {
            outcome
                .objects
                .into_iter()
                .map(|props| SegmentObject::in_source(props, z0, pixel_area))
                .collect()
        });
        let objects_omitted = (thresholded && n_objects > cap).then(|| {
            format!(
                "{n_objects} objects exceed the inline limit of {cap}; list them with \
                 /images/{labels_id}/objects (JSON pages, or ?format=csv); the labels image {labels_id} holds them \
                 (/images/{labels_id}/download?format=npy)"
            )
        });
        let clusters = outcome.clusters;
        SegmentResult {
            image_id: plan.source.id,
            method: plan.method.name(),
            scope: if volume { "volume" } else { "plane" },
            z: (!volume).then_some(z0),
            time: request.t,
            channel: request.c,
            n_samples: outcome.samples,
            threshold: outcome.threshold,
            foreground_fraction: thresholded
                .then(|| outcome.foreground as f64 / outcome.samples.max(1) as f64),
            n_objects: thresholded.then_some(n_objects),
            objects,
            objects_omitted,
            inline_limit: cap,
            area_unit: if thresholded { area_unit } else { None },
            n_clusters: clusters.as_ref().map(|c| c.centres.len()),
            label_counts: clusters.as_ref().map(|c| {
                c.counts
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| (i.to_string(), Value::from(n)))
                    .collect()
            }),
            cluster_centers: clusters.as_ref().map(|c| c.centres.clone()),
            inertia: clusters.as_ref().map(|c| c.inertia),
            labels_image_id: labels_id,
            labels_dtype: labels_dtype(request.method).name().into(),
        }
    }
}

impl App {
    /// Every object of labels image `id` (made by a thresholded
    /// segmentation), measured from it and its source image as the
    /// segmentation measured them: for results beyond the inline cap. It
    /// stops when the caller stops waiting or either image is deleted.
    pub async fn objects(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
    ) -> Result<ObjectTable, AppError> {
        let labels = self.image(caller, id).await?;
        if labels.kind != ImageKind::Labels {
            return Err(AppError::InvalidArguments(format!(
                "{} is not a labels image: objects are listed for the labels images that \
                 POST /segment makes (labels_image_id)",
                labels.id
            )));
        }
        let no_objects = || {
            AppError::InvalidArguments(format!(
                "{} holds k-means clusters, or was made by a version that did not record what \
                 it labels: it has no objects to list; segment its source again with method \
                 otsu or threshold",
                labels.id
            ))
        };
        let origin = labels.details.segmented.ok_or_else(no_objects)?;
        let source_id = labels.source_image_id.ok_or_else(no_objects)?;
        // the labels image derives its access from its source: a caller
        // that reads it (by key or link) reads its objects
        let source = self
            .images
            .get(source_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(source_id.to_string()))?;
        // objects are 1..=max; the memory budget bounds their table
        let count = labels.statistics.first().map_or(0.0, |s| s.max);
        if !(0.0..=f64::from(u32::MAX)).contains(&count) {
            return Err(StoreError::Corrupt(format!(
                "{} has labels up to {count}, not 32-bit labels",
                labels.id
            ))
            .into());
        }
        let count = count as u32;
        let plane = labels.shape.y * labels.shape.x;
        let _memory = self
            .render_share(
                plane * (4 + source.dtype.size() as u64) + u64::from(count) * 200,
                &format!("measuring the {count} objects of {}", labels.id),
            )
            .await?;
        let (app, cancel) = (self.clone(), Cancel::new());
        let observed = cancel.clone();
        let (labels_id, source_sizes) = (labels.id, source.details.physical_sizes.clone());
        let measured = App::detached(&cancel, async move {
            let _reading = (
                app.reading(labels.id, &observed),
                app.reading(source.id, &observed),
            );
            let (pixels, source_id) = (app.pixels.clone(), source.id);
            let measured = blocking(move || {
                let labels_reader = open_pixels(&*pixels, &labels)?;
                let source_reader = open_pixels(&*pixels, &source)?;
                Ok(measure_objects(
                    &*labels_reader,
                    &*source_reader,
                    (origin.time, origin.channel, origin.z),
                    count,
                    &observed,
                )?)
            })
            .await;
            match measured {
                Ok(objects) => Ok(objects),
                Err(e) => {
                    let e = app.unless_deleted(labels_id, e).await;
                    Err(app.unless_deleted(source_id, e).await)
                }
            }
        })
        .await?;
        let (area_unit, pixel_area) = physical_area(&source_sizes, origin.volume);
        Ok(ObjectTable {
            labels_image_id: labels_id,
            source_image_id: source_id,
            area_unit,
            objects: measured
                .into_iter()
                .filter(|props| props.area > 0)
                .map(|props| SegmentObject::in_source(props, origin.z, pixel_area))
                .collect(),
        })
    }
}

/// The unit and physical size of one pixel's area (x·y) or, for volumes,
/// one voxel's volume (x·y·z), when the image has those sizes in one unit.
fn physical_area(sizes: &PhysicalSizes, volume: bool) -> (Option<String>, Option<f64>) {
    let mut axes = vec![&sizes.x, &sizes.y];
    if volume {
        axes.push(&sizes.z);
    }
    let Some(all) = axes.into_iter().cloned().collect::<Option<Vec<_>>>() else {
        return (None, None);
    };
    if all
        .iter()
        .any(|s| s.unit != all[0].unit || !s.value.is_finite())
    {
        return (None, None);
    }
    let product = all.iter().map(|s| s.value).product::<f64>();
    (
        Some(format!("{}^{}", all[0].unit, all.len())),
        Some(product),
    )
}
