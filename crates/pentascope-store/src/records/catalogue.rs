//! The catalogue's records: queries over images (filters, sort, keyset
//! pages, visibility), datasets and their links, tags with counts, and the
//! words each image is found by.
//!
//! Visibility is part of every query, so an image a caller may not read is
//! never returned, counted or used to build a page.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::record::{Catalogue, ImageId, ImageKind, ImageRecord};

/// A dataset id, `dataset_<n>`, with `n` allocated by the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetId(pub i64);

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dataset_{}", self.0)
    }
}

impl FromStr for DatasetId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let n = s.strip_prefix("dataset_").ok_or(())?;
        // one spelling per id, as image ids
        if n.is_empty()
            || !n.bytes().all(|b| b.is_ascii_digit())
            || n.len() > 1 && n.starts_with('0')
        {
            return Err(());
        }
        n.parse().map(DatasetId).map_err(|_| ())
    }
}

impl Serialize for DatasetId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Written `dataset_<n>`.
impl schemars::JsonSchema for DatasetId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DatasetId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^dataset_(0|[1-9][0-9]*)$",
            "description": "A dataset id: `dataset_` followed by a number the service allocated.",
            "examples": ["dataset_1"],
        })
    }
}

impl<'de> Deserialize<'de> for DatasetId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("invalid dataset id {s:?}")))
    }
}

/// A dataset: a named group of images, owned like an image.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Dataset")]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetRecord {
    /// Its id.
    pub dataset_id: DatasetId,
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The user who owns it; `None` when made while access control was off.
    pub owner: Option<String>,
    /// Whether every authenticated user may see it.
    pub public: bool,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Images in it that the asking caller may read.
    pub image_count: u64,
}

/// What a caller may see, applied inside every query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Everything (access control off, admins, the command line).
    All,
    /// What this user owns, and what is public.
    OwnOrPublic(String),
    /// Nothing (no credentials).
    Nothing,
}

/// The order of a listing; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub field: SortField,
    /// Largest first.
    pub descending: bool,
}

/// What a listing is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// Creation time.
    Created,
    /// Name (bytewise).
    Name,
    /// File size (datasets: not allowed).
    Size,
}

impl Sort {
    /// Parses `created`, `-created`, `name`, `-name`, `size`, `-size`.
    pub fn parse(s: &str) -> Option<Sort> {
        let (descending, field) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let field = match field {
            "created" => SortField::Created,
            "name" => SortField::Name,
            "size" => SortField::Size,
            _ => return None,
        };
        Some(Sort { field, descending })
    }

    /// The spelling [`Sort::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match (self.field, self.descending) {
            (SortField::Created, false) => "created",
            (SortField::Created, true) => "-created",
            (SortField::Name, false) => "name",
            (SortField::Name, true) => "-name",
            (SortField::Size, false) => "size",
            (SortField::Size, true) => "-size",
        }
    }

    /// The sort key of an image under this order.
    pub fn key_of(self, r: &ImageRecord) -> SortKey {
        match self.field {
            SortField::Created => SortKey::Text(r.created_at.clone()),
            SortField::Name => SortKey::Text(r.catalogue.name.clone()),
            SortField::Size => SortKey::Int(r.byte_size as i64),
        }
    }
}

/// A sort column's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortKey {
    /// Times and names.
    Text(String),
    /// Sizes.
    Int(i64),
}

/// Where a page starts: just after this row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// The previous row's sort key.
    pub key: SortKey,
    /// The previous row's id.
    pub id: i64,
}

/// Which images a listing holds; every field narrows it (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    /// Words that must each begin a word of the image's text
    /// ([`search_words`]'s form).
    pub words: Vec<String>,
    /// In this dataset.
    pub dataset: Option<DatasetId>,
    /// Carrying each of these tags.
    pub tags: Vec<String>,
    /// Carrying each of these key-value pairs.
    pub annotations: Vec<(String, String)>,
    /// Owned by this user.
    pub owner: Option<String>,
    /// Of this sample type (`uint16`, …).
    pub dtype: Option<String>,
    /// Read from this TIFF flavour.
    pub flavour: Option<String>,
    /// Of this kind.
    pub kind: Option<ImageKind>,
    /// Created strictly after this time (RFC 3339, UTC, milliseconds).
    pub created_after: Option<String>,
    /// Created strictly before this time.
    pub created_before: Option<String>,
}

/// A page of images.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageQuery {
    /// Who asks.
    pub visibility: Visibility,
    /// What matches.
    pub filter: ImageFilter,
    /// In which order.
    pub sort: Sort,
    /// After which row (`None`: the first page).
    pub after: Option<After>,
    /// At most this many.
    pub limit: u32,
}

/// A page of datasets.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetQuery {
    /// Who asks (also what `image_count` counts).
    pub visibility: Visibility,
    /// Words that must each begin a word of the name or description.
    pub words: Vec<String>,
    /// Owned by this user.
    pub owner: Option<String>,
    /// By creation time or name.
    pub sort: Sort,
    /// After which row.
    pub after: Option<After>,
    /// At most this many.
    pub limit: u32,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Everything that matches (all pages).
    pub count: u64,
    /// This page's rows.
    pub items: Vec<T>,
    /// Whether rows follow this page.
    pub more: bool,
}

/// A change to a dataset; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetChange {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub public: Option<bool>,
}

/// The catalogue's records.
#[async_trait]
pub trait CatalogueRepo: Send + Sync {
    /// A page of images with the number of all matches.
    async fn query_images(&self, query: &ImageQuery) -> Result<Page<ImageRecord>, StoreError>;
    /// Replaces a published image's name, description, tags and
    /// annotations; `false` if there is no such image.
    async fn set_catalogue(&self, id: ImageId, catalogue: &Catalogue) -> Result<bool, StoreError>;
    /// Recomputes the words of these images (after a change to something
    /// they are found by, such as a dataset's name).
    async fn reindex(&self, ids: &[ImageId]) -> Result<(), StoreError>;
    /// Indexes published images that have no words yet (images published
    /// before the catalogue existed); how many.
    async fn index_unindexed(&self) -> Result<u64, StoreError>;
    /// Makes a dataset.
    async fn create_dataset(
        &self,
        name: &str,
        description: &str,
        owner: Option<&str>,
    ) -> Result<DatasetRecord, StoreError>;
    /// A dataset, its `image_count` counting what `visibility` sees.
    async fn dataset(
        &self,
        id: DatasetId,
        visibility: &Visibility,
    ) -> Result<Option<DatasetRecord>, StoreError>;
    /// The oldest dataset of this name owned by `owner`.
    async fn dataset_named(
        &self,
        name: &str,
        owner: Option<&str>,
    ) -> Result<Option<DatasetId>, StoreError>;
    /// A page of datasets.
    async fn query_datasets(&self, query: &DatasetQuery)
        -> Result<Page<DatasetRecord>, StoreError>;
    /// Changes a dataset; `false` if there is none.
    async fn update_dataset(
        &self,
        id: DatasetId,
        change: &DatasetChange,
    ) -> Result<bool, StoreError>;
    /// Deletes a dataset (its images stay); `false` if there was none.
    async fn delete_dataset(&self, id: DatasetId) -> Result<bool, StoreError>;
    /// Puts an image in a dataset; `false` if it was there already.
    async fn link(&self, dataset: DatasetId, image: ImageId) -> Result<bool, StoreError>;
    /// Takes an image out of a dataset; `false` if it was not in it.
    async fn unlink(&self, dataset: DatasetId, image: ImageId) -> Result<bool, StoreError>;
    /// The datasets an image is in that `visibility` sees, by id.
    async fn datasets_of(
        &self,
        image: ImageId,
        visibility: &Visibility,
    ) -> Result<Vec<(DatasetId, String)>, StoreError>;
    /// Tags on images `visibility` sees, by name, with how many such
    /// images carry each; `prefix` narrows, `after` pages.
    async fn tags(
        &self,
        visibility: &Visibility,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<(String, u64)>, StoreError>;
}

/// Longest word kept in the index (longer ones are cut).
const MAX_WORD_CHARS: usize = 64;
/// Most distinct words kept per image; an image's later words beyond are
/// not searchable (PostgreSQL's tsvector holds at most 1 MiB).
pub const MAX_IMAGE_WORDS: usize = 20_000;

/// The words of a text as the index keeps them: runs of letters and
/// digits, lower-cased, at most 64 characters each. Both backends index
/// and search these, so they agree on what matches; and a word holds no
/// character that SQLite's FTS5 or PostgreSQL's tsquery would read as
/// syntax.
pub fn search_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD_CHARS)
                .flat_map(char::to_lowercase)
                .collect()
        })
}

/// The distinct words an image is found by: its name, file name,
/// description, channel names, tags, annotation keys and values, and the
/// names of its datasets, space-separated.
pub fn image_words(record: &ImageRecord, datasets: &[String]) -> String {
    let c = &record.catalogue;
    let texts = [c.name.as_str(), c.description.as_str()]
        .into_iter()
        .chain(record.original_filename.as_deref())
        .chain(record.details.channel_names.iter().map(String::as_str))
        .chain(c.tags.iter().map(String::as_str))
        .chain(
            c.annotations
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        )
        .chain(datasets.iter().map(String::as_str));
    let mut seen = HashSet::new();
    let mut doc = String::new();
    for word in texts.flat_map(search_words) {
        if seen.len() == MAX_IMAGE_WORDS {
            break;
        }
        if seen.insert(word.clone()) {
            if !doc.is_empty() {
                doc.push(' ');
            }
            doc.push_str(&word);
        }
    }
    doc
}

/// The words of a dataset's name and description, each with a leading
/// space (so a word prefix is ` prefix` wherever it occurs).
pub fn dataset_words(name: &str, description: &str) -> String {
    let mut seen = HashSet::new();
    search_words(name)
        .chain(search_words(description))
        .filter(|w| seen.insert(w.clone()))
        .map(|w| format!(" {w}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_lower_cased() {
        let words: Vec<String> =
            search_words("Mouse_M12 \"DAPI\"*NEAR--x%ÉCOLE\0β-tubulin").collect();
        assert_eq!(
            words,
            ["mouse", "m12", "dapi", "near", "x", "école", "β", "tubulin"]
        );
        assert_eq!(search_words(&"a".repeat(100)).next().unwrap().len(), 64);
    }

    #[test]
    fn dataset_ids_parse_strictly() {
        assert_eq!("dataset_7".parse::<DatasetId>(), Ok(DatasetId(7)));
        for bad in ["dataset_", "dataset_07", "7", "image_7", "dataset_1 "] {
            assert!(bad.parse::<DatasetId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sorts_parse_and_spell_back() {
        for s in ["created", "-created", "name", "-name", "size", "-size"] {
            assert_eq!(Sort::parse(s).unwrap().as_str(), s);
        }
        assert!(Sort::parse("--name").is_none() && Sort::parse("id").is_none());
    }
}
