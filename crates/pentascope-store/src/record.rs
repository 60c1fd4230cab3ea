//! Image records: what the database keeps about each image.

use std::fmt;
use std::str::FromStr;

use pentascope_core::stats::ChannelStats;
use pentascope_core::{DType, Shape5};
use pentascope_tiff::{Acquisition, Flavour, PhysicalSizes, SeriesKind};
use serde::{Deserialize, Serialize};

/// The current time as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// An image id, `image_<n>`, with `n` allocated by the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(pub i64);

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "image_{}", self.0)
    }
}

impl FromStr for ImageId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let n = s.strip_prefix("image_").ok_or(())?;
        // one spelling per id: `image_01` is not `image_1`
        if n.is_empty()
            || !n.bytes().all(|b| b.is_ascii_digit())
            || n.len() > 1 && n.starts_with('0')
        {
            return Err(());
        }
        n.parse().map(ImageId).map_err(|_| ())
    }
}

impl Serialize for ImageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Written `image_<n>`.
impl schemars::JsonSchema for ImageId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ImageId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^image_(0|[1-9][0-9]*)$",
            "description": "An image id: `image_` followed by a number the service allocated.",
            "examples": ["image_1"],
        })
    }
}

impl<'de> Deserialize<'de> for ImageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("invalid image id {s:?}")))
    }
}

/// Where an image came from.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// Uploaded by a client.
    Upload,
    /// PCA scores derived from another image.
    PcaScores,
    /// Segmentation labels (object labels or k-means clusters) derived
    /// from another image.
    Labels,
}

impl ImageKind {
    /// Every kind.
    pub const ALL: [ImageKind; 3] = [ImageKind::Upload, ImageKind::PcaScores, ImageKind::Labels];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Upload => "upload",
            ImageKind::PcaScores => "pca_scores",
            ImageKind::Labels => "labels",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<ImageKind> {
        ImageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Metadata kept as one JSON document beside the record's columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageDetails {
    /// The file's own axes as read (e.g. `TCZYX`).
    pub source_axes: String,
    /// Channel names (may be empty).
    pub channel_names: Vec<String>,
    /// Physical sizes where known.
    pub physical_sizes: PhysicalSizes,
    /// How the image was acquired, where its file says.
    #[serde(default)]
    pub acquisition: Acquisition,
    /// Metadata problems that were worked around.
    pub warnings: Vec<String>,
    /// Chunk shape of the stored array (TZCYX); all zero for virtual images.
    pub chunk_shape: [u64; 5],
    /// Each channel's default look as set with `PATCH /images/{id}`
    /// (overrides the file's and the computed defaults).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rendering: Vec<ChannelLook>,
    /// For PCA score images: the model whose projection of the source image
    /// they are. Such images are virtual: planes are projected on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca: Option<pentascope_core::pca::PcaModel>,
    /// For an image of a file of several series: which one it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesOfFile>,
    /// The stored pyramid levels whose pixels are the file's own (its
    /// scanner's downsampling, as tifffile's `series.levels`), not
    /// pentascope's block means.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels_from_file: Vec<u32>,
    /// For labels images of objects: what of the source image they label,
    /// so that the objects can be measured again from the two images
    /// (`GET /images/{id}/objects`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmented: Option<Segmented>,
}

/// Which series of its file an image is: each series of a file of
/// several is stored as an image of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesOfFile {
    /// The image of the file's first series (tifffile's `series[0]`).
    pub first: ImageId,
    /// Its place among the file's series, from 0.
    pub index: u64,
    /// The series' name as tifffile gives it (may be empty).
    pub name: String,
    /// What it is (`main`, `thumbnail`, `label`, `macro`, `image`).
    pub kind: SeriesKind,
}

/// What of its source image a labels image of objects labels: the Z planes
/// from `z` (as many as the labels image has) at `time` and `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segmented {
    /// Time point.
    pub time: u64,
    /// Channel (the intensities measured).
    pub channel: u64,
    /// The source's Z plane of the labels image's first plane.
    pub z: u64,
    /// Whether the Z planes were labelled together (scope `volume`: areas
    /// in voxels).
    pub volume: bool,
}

/// A channel's default look, as a user set it; unset fields keep the
/// defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelLook {
    /// `RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// `{start, end}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Whether the channel is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// A display window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Shown as black.
    pub start: f64,
    /// Shown at full colour.
    pub end: f64,
}

/// A published image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Its id.
    pub id: ImageId,
    /// Upload or derived.
    pub kind: ImageKind,
    /// For derived images, the image they were computed from.
    pub source_image_id: Option<ImageId>,
    /// The uploaded file's name.
    pub original_filename: Option<String>,
    /// The uploaded file's size in bytes.
    pub byte_size: u64,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Sample type.
    pub dtype: DType,
    /// Canonical shape.
    pub shape: Shape5,
    /// TIFF flavour (derived images: plain).
    pub flavour: Flavour,
    /// Further metadata.
    pub details: ImageDetails,
    /// Per-channel statistics gathered when the pixels were written.
    pub statistics: Vec<ChannelStats>,
    /// The user who owns it (derived images: the source's owner); `None`
    /// for images created while access control was off.
    pub owner: Option<String>,
    /// Whether every authenticated user may read it.
    pub public: bool,
    /// What a lab wrote about it: name, description, tags, annotations.
    pub catalogue: Catalogue,
}

/// What a lab writes about an image to find it again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    /// Its name (default: the uploaded file's name).
    pub name: String,
    /// Free text.
    pub description: String,
    /// A set of labels, in the order they were first given.
    pub tags: Vec<String>,
    /// Key-value pairs in order, a key possibly several times (as OME's
    /// `MapAnnotation`).
    pub annotations: Vec<(String, String)>,
}

impl Catalogue {
    /// A catalogue entry holding only a name.
    pub fn named(name: impl Into<String>) -> Catalogue {
        Catalogue {
            name: name.into(),
            ..Catalogue::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_parse_strictly() {
        assert_eq!("image_12".parse::<ImageId>(), Ok(ImageId(12)));
        assert_eq!(ImageId(3).to_string(), "image_3");
        for bad in ["image_", "image_x", "12", "image_-1", "image_1 ", "IMAGE_1"] {
            assert!(bad.parse::<ImageId>().is_err(), "{bad}");
        }
    }
}
