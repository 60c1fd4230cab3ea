//! The JSON documents the handlers answer with, one type each: what they
//! hold is what they serialise, and `GET /openapi.json` describes them
//! from these types (`crate::openapi`).

use std::collections::BTreeMap;

use pentascope_app::analyze::PcaResult;
use pentascope_app::images::Statistics;
use pentascope_app::render::{DefaultRendering, Level};
use pentascope_app::segment::SegmentObject;
use pentascope_app::segment::SegmentResult;
use pentascope_app::DependencyHealth;
use pentascope_core::DType;
use pentascope_store::record::ImageKind;
use pentascope_store::records::{
    AuditRecord, DatasetId, DatasetRecord, JobRecord, JobState, TokenRecord, UserRecord,
};
use pentascope_store::{ImageId, ImageRecord};
use pentascope_tiff::{Acquisition, Flavour, PhysicalSizes, SeriesKind};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::Value;

/// A 5D shape in TZCYX order: `[T, Z, Channels, Height, Width]`.
type Shape = [u64; 5];

/// Everything known about one image, as `/metadata`, `/images` and
/// `/images/{id}` answer. The pixels are stored as a 5D array in TZCYX
/// order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Metadata {
    /// The image.
    pub image_id: ImageId,
    /// Its sample type, as NumPy names it (PCA score images: float32).
    pub dtype: DType,
    /// `[T, Z, Channels, Height, Width]`.
    pub shape: Shape,
    /// The order of the axes of `shape`: always `TZCYX`.
    #[schemars(extend("const" = "TZCYX"))]
    pub axes: &'static str,
    /// Time points.
    #[serde(rename = "T")]
    pub t: u64,
    /// Z slices.
    #[serde(rename = "Z")]
    pub z: u64,
    /// Channels (the samples of RGB pixels count as channels).
    #[serde(rename = "Channels")]
    pub channels: u64,
    /// Rows (Y) per plane.
    #[serde(rename = "Height")]
    pub height: u64,
    /// Columns (X) per plane.
    #[serde(rename = "Width")]
    pub width: u64,
    /// One entry per channel: its name from the file, or null where the
    /// file names none. PCA score images: PC1, PC2, …
    pub channel_names: Vec<Option<String>>,
    /// Physical pixel sizes and time step, where the file states them
    /// (OME-XML, ImageJ, TIFF resolution tags); null where unknown.
    pub physical_sizes: PhysicalSizes,
    /// How the image was acquired, where its metadata says (only what the
    /// file states is present).
    pub acquisition: Acquisition,
    /// Where the axis metadata came from.
    pub flavour: Flavour,
    /// The file's own axis order as read (e.g. `TCZYX`, `ZYXS`); `TZCYX`
    /// for derived images.
    pub source_axes: String,
    /// The uploaded file's name (derived images: their source's).
    pub original_filename: Option<String>,
    /// The uploaded file's size in bytes (0 for derived images).
    pub byte_size: u64,
    /// When the image was created, RFC 3339 in UTC with milliseconds.
    pub created_at: String,
    /// `upload`, or the scores of a PCA (`pca_scores`) or the labels of a
    /// segmentation (`labels`).
    pub kind: ImageKind,
    /// For derived images, the image they were computed from.
    pub source_image_id: Option<ImageId>,
    /// The chunk shape of the stored Zarr array, TZCYX.
    pub chunk_shape: [u64; 5],
    /// Per channel, the default display window `[display_min,
    /// display_max]`: the 0.1th and 99.9th percentiles of the channel's
    /// finite samples over the whole image.
    pub display_range: Vec<[f64; 2]>,
    /// Problems with the file's metadata that were worked around.
    pub warnings: Vec<String>,
    /// The user who owns the image (derived images: their source's owner);
    /// null for images created while access control was off.
    pub owner: Option<String>,
    /// Whether every authenticated user may read it (`PATCH /images/{id}`).
    pub public: bool,
    /// The image's name (default: the uploaded file's name).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Tags, in the order first given.
    pub tags: Vec<String>,
    /// Key-value annotations in order, a key possibly several times (OME
    /// MapAnnotation): `[[key, value], …]`.
    #[schemars(with = "Vec<[String; 2]>")]
    pub annotations: Vec<(String, String)>,
    /// The resolution levels `/render?tile=` serves: level 0 is full
    /// resolution, each halves it, down to the level that fits in one tile.
    pub levels: Vec<Level>,
    /// For an image of a file of several series: which series of the file
    /// it is, as tifffile's `TiffFile.series` lists them. Null for a file
    /// of one series.
    pub series: Option<SeriesOfFile>,
    /// The stored pyramid levels whose pixels are the file's own
    /// downsampled copies (tifffile's `series.levels`) rather than means of
    /// 2^k blocks. Empty for most images.
    pub levels_from_file: Vec<u32>,
    /// The default rendering (as NGFF's `omero` metadata).
    pub rendering: DefaultRendering,
    /// (`GET /images/{id}` and `PATCH` only) the other images of the
    /// image's file, one per series, as far as the caller may see them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<SeriesImage>")]
    pub siblings: Option<Vec<SeriesImage>>,
    /// (`GET /images/{id}` and `PATCH` only) the datasets holding the image
    /// that the caller may see.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<DatasetName>")]
    pub datasets: Option<Vec<DatasetName>>,
}

impl Metadata {
    /// The metadata of `r`, without its siblings and datasets.
    pub fn of(r: &ImageRecord) -> Metadata {
        let s = r.shape;
        Metadata {
            image_id: r.id,
            dtype: r.dtype,
            shape: s.to_array(),
            axes: pentascope_core::shape::CANONICAL_AXES,
            t: s.t,
            z: s.z,
            channels: s.c,
            height: s.y,
            width: s.x,
            channel_names: (0..s.c as usize)
                .map(|c| {
                    r.details
                        .channel_names
                        .get(c)
                        .filter(|n| !n.is_empty())
                        .cloned()
                })
                .collect(),
            physical_sizes: r.details.physical_sizes.clone(),
            acquisition: r.details.acquisition.clone(),
            flavour: r.flavour,
            source_axes: r.details.source_axes.clone(),
            original_filename: r.original_filename.clone(),
            byte_size: r.byte_size,
            created_at: r.created_at.clone(),
            kind: r.kind,
            source_image_id: r.source_image_id,
            chunk_shape: r.details.chunk_shape,
            display_range: r
                .statistics
                .iter()
                .map(|c| [c.display_min, c.display_max])
                .collect(),
            warnings: r.details.warnings.clone(),
            owner: r.owner.clone(),
            public: r.public,
            name: r.catalogue.name.clone(),
            description: r.catalogue.description.clone(),
            tags: r.catalogue.tags.clone(),
            annotations: r.catalogue.annotations.clone(),
            levels: pentascope_app::render::levels(s),
            series: r.details.series.as_ref().map(|f| SeriesOfFile {
                index: f.index,
                name: f.name.clone(),
                kind: f.kind,
                first_image_id: f.first,
            }),
            levels_from_file: r.details.levels_from_file.clone(),
            rendering: pentascope_app::render::default_rendering(r),
            siblings: None,
            datasets: None,
        }
    }
}

/// Which series of its file an image is.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SeriesOfFile {
    /// Its place among the file's series, from 0.
    pub index: u64,
    /// tifffile's series name (`Baseline`, `Label`, an OME `Image`'s
    /// `Name`), or empty.
    pub name: String,
    /// What it is to its file.
    pub kind: SeriesKind,
    /// The image of the file's first series (which may since have been
    /// deleted).
    pub first_image_id: ImageId,
}

/// A dataset holding an image.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetName {
    /// The dataset.
    pub dataset_id: DatasetId,
    /// Its name.
    pub name: String,
}

/// One series of an uploaded file, stored as an image of its own.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SeriesImage {
    /// The image.
    pub image_id: ImageId,
    /// Its place among the file's series, from 0.
    pub series: u64,
    /// tifffile's series name, or empty.
    pub name: String,
    /// What it is to its file.
    pub kind: SeriesKind,
    /// `[T, Z, Channels, Height, Width]`.
    pub shape: Shape,
    /// Its sample type.
    pub dtype: DType,
}

impl SeriesImage {
    /// The entry of `record`.
    pub fn of(record: &ImageRecord) -> SeriesImage {
        let series = record.details.series.as_ref();
        SeriesImage {
            image_id: record.id,
            series: series.map_or(0, |s| s.index),
            name: series.map_or(String::new(), |s| s.name.clone()),
            kind: series.map_or(SeriesKind::Main, |s| s.kind),
            shape: record.shape.to_array(),
            dtype: record.dtype,
        }
    }
}

/// What an upload answers once its image is published.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UploadResponse {
    /// `File uploaded successfully`.
    #[schemars(extend("const" = "File uploaded successfully"))]
    pub message: &'static str,
    /// The image of the file's first series.
    pub image_id: ImageId,
    /// Its `[T, Z, Channels, Height, Width]` as stored.
    pub shape: Shape,
    /// Its sample type.
    pub dtype: DType,
    /// Every image of the file, one per series in tifffile's order
    /// (`image_id` is the first). One entry for most files.
    pub image_ids: Vec<SeriesImage>,
}

/// Where a resumable upload stands; once its image is published, with the
/// fields of `POST /upload`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ResumableUpload {
    /// The upload's id.
    pub upload_id: String,
    /// Bytes received and flushed to disk.
    pub offset: u64,
    /// The file's length.
    pub length: u64,
    /// The file's name.
    pub file_name: String,
    /// When it is removed if no byte arrives meanwhile (an HTTP date).
    pub expires: String,
    /// Whether its image is published.
    pub published: bool,
    /// Once published: `POST /upload`'s answer.
    #[serde(flatten)]
    pub image: Option<UploadResponse>,
}

/// A page of images.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImageList {
    /// How many images match, over all pages (only images the caller may
    /// read).
    pub count: u64,
    /// This page's images, in the order asked for.
    pub images: Vec<Metadata>,
    /// Pass as `cursor` (with the same filters and sort) for the next
    /// page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of tags with how many images carry each.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TagList {
    /// Distinct tags over all pages.
    pub count: u64,
    /// This page's tags.
    pub tags: Vec<TagCount>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A tag and the number of images (that the caller may see) carrying it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TagCount {
    /// The tag.
    pub tag: String,
    /// Images carrying it.
    pub images: u64,
}

/// A page of datasets.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetList {
    /// Matching datasets over all pages.
    pub count: u64,
    /// This page's datasets.
    pub datasets: Vec<DatasetRecord>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A deleted dataset (its images are kept).
#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetDeleted {
    /// `<dataset_id> deleted; its images were kept`.
    pub message: String,
    /// The deleted dataset.
    pub dataset_id: DatasetId,
}

/// An image put in or taken out of a dataset.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetLink {
    /// The dataset.
    pub dataset_id: String,
    /// The image.
    pub image_id: String,
    /// (`PUT`) false when the image was in the dataset already.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub added: Option<bool>,
    /// (`DELETE`) true.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub removed: Option<bool>,
}

/// A deleted image.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteResponse {
    /// `<image_id> deleted`.
    pub message: String,
    /// The deleted image.
    pub image_id: ImageId,
    /// Images derived from this one (PCA scores, labels images, and images
    /// derived from those), deleted with it.
    pub derived_images_deleted: Vec<ImageId>,
}

/// A signed link: a URL prefix that reads one image without a key until
/// it expires.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SignedLink {
    /// The image it opens.
    pub image_id: ImageId,
    /// When it stops working (RFC 3339, UTC).
    pub expires_at: String,
    /// `/s/<token>/`: put it before the path of any GET route of the image
    /// (`/s/<token>/slice?image_id=…`).
    pub prefix: String,
    /// The prefix as an absolute URL, from the request's Host header.
    pub url: String,
    /// Ready-made paths under the prefix (`metadata`, `slice`,
    /// `download`).
    pub examples: BTreeMap<&'static str, String>,
}

/// The service and, to callers with a key, each dependency.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// `ok` when every dependency answers (HTTP 200), `degraded`
    /// otherwise (HTTP 503).
    #[schemars(extend("enum" = ["ok", "degraded"]))]
    pub status: &'static str,
    /// The service's version.
    pub version: &'static str,
    /// The metadata database.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DependencyHealth")]
    pub database: Option<DependencyHealth>,
    /// The pixel store.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DependencyHealth")]
    pub storage: Option<DependencyHealth>,
    /// The job queue: in-process runners or a Celery broker on Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DependencyHealth")]
    pub broker: Option<DependencyHealth>,
}

/// A submitted job (`202 Accepted`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobAccepted {
    /// The job's id (a UUID, as Celery task ids are).
    pub job_id: String,
    /// The task, e.g. `heavy_pca`.
    pub task: String,
    /// `PENDING`.
    pub state: JobState,
    /// Where its state, progress and outcome are: `/jobs/<job_id>`.
    pub status_url: String,
}

impl JobAccepted {
    /// The answer for `job`.
    pub fn of(job: &JobRecord) -> JobAccepted {
        JobAccepted {
            job_id: job.id.clone(),
            task: job.task.clone(),
            state: job.state,
            status_url: format!("/jobs/{}", job.id),
        }
    }
}

/// A background job's state, progress and outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Job {
    /// Its id.
    pub job_id: String,
    /// The task, e.g. `heavy_pca`.
    pub task: String,
    /// The task's arguments, plus, when known, the user it acts for
    /// (`owner`) and the W3C trace context of the request that submitted it
    /// (`traceparent`).
    pub kwargs: Value,
    /// Celery's state names. A STARTED job whose runner died is claimed
    /// again when its lease runs out; after 3 interrupted runs it becomes
    /// FAILURE.
    pub state: JobState,
    /// Fraction done, 0 to 1.
    pub progress: f64,
    /// Once SUCCESS: the task's answer (for `heavy_pca` the answer of
    /// `POST /analyze`, for `heavy_segmentation` that of `POST /segment`,
    /// for `heavy_statistics` that of `GET /statistics`).
    #[schemars(schema_with = "job_result")]
    pub result: Option<Value>,
    /// Once FAILURE: why.
    pub error: Option<String>,
    /// How many times a runner has started it.
    pub attempts: i64,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// The schema of a job's result: the answer of the route its task stands
/// for, or null until it succeeds.
fn job_result(generator: &mut SchemaGenerator) -> Schema {
    let answers = [
        generator.subschema_for::<PcaResult>(),
        generator.subschema_for::<SegmentResult>(),
        generator.subschema_for::<Statistics>(),
    ];
    json_schema!({ "anyOf": [answers[0], answers[1], answers[2], { "type": "null" }] })
}

impl Job {
    /// The answer for `job`.
    pub fn of(job: JobRecord) -> Job {
        Job {
            job_id: job.id,
            task: job.task,
            kwargs: job.kwargs,
            state: job.state,
            progress: job.progress,
            result: job.result,
            error: job.error,
            attempts: job.attempts,
            created_at: job.created_at,
            updated_at: job.updated_at,
        }
    }
}

/// A page of a labels image's objects.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ObjectPage<'a> {
    /// The labels image.
    pub image_id: ImageId,
    /// The image segmented, whose intensities are measured.
    pub source_image_id: ImageId,
    /// Objects in all.
    pub n_objects: u64,
    /// Unit of `area_physical` (e.g. `micrometer^2`), when the source has
    /// physical sizes.
    pub area_unit: Option<&'a str>,
    /// Objects before this page.
    pub offset: u64,
    /// Most objects in a page.
    pub limit: u64,
    /// The `offset` of the next page; null on the last.
    pub next_offset: Option<u64>,
    /// The page's objects, in label order.
    pub objects: &'a [SegmentObject],
}

/// Every user.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserList {
    /// How many.
    pub count: usize,
    /// The users, by name.
    pub users: Vec<UserRecord>,
}

/// API keys, without their secrets.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenList {
    /// How many.
    pub count: usize,
    /// The keys.
    pub tokens: Vec<TokenRecord>,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditPage {
    /// Every matching entry (all pages).
    pub count: u64,
    /// This page's entries.
    pub entries: Vec<AuditRecord>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}
