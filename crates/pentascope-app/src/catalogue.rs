//! The catalogue: naming, describing, tagging and annotating images,
//! datasets that group them, and paged search over everything a caller
//! may see.
//!
//! Every request value is validated here, against [`CatalogueLimits`],
//! before it reaches a query; search text becomes words of letters and
//! digits, never query syntax. Pages are keyset pages: a cursor holds the
//! last row's sort key and id, signed with the server's key together with
//! a digest of the query it belongs to, so a cursor that was altered or
//! is used with other filters is refused.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use pentascope_core::Limit;
use pentascope_store::record::Catalogue;
use pentascope_store::records::catalogue::{
    search_words, After, DatasetChange, DatasetId, DatasetQuery, DatasetRecord, ImageFilter,
    ImageQuery, Page, Sort, SortField, SortKey, Visibility,
};
use pentascope_store::records::Scope;
use pentascope_store::{ImageId, ImageKind, ImageRecord, StoreError};
use pentascope_tiff::FileNotes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::{Caller, Who};
use crate::app::App;
use crate::audit::{fields_set, Action};
use crate::config::CatalogueLimits;
use crate::error::AppError;

/// Rows a page holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows a page may hold.
pub const MAX_LIMIT: u32 = 1000;
/// The longest search text, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// The most words a search may hold.
pub const MAX_QUERY_WORDS: usize = 32;

/// A listing of images as a client asks for it, every value as sent.
#[derive(Debug, Clone, Default)]
pub struct ImageSearch {
    /// Words that must each begin a word of the image's text.
    pub q: Option<String>,
    /// A dataset id (`dataset_<n>`).
    pub dataset: Option<String>,
    /// Tags that must all be present.
    pub tags: Vec<String>,
    /// `key=value` pairs that must all be present.
    pub annotations: Vec<String>,
    /// Owner's user name.
    pub owner: Option<String>,
    /// Sample type.
    pub dtype: Option<String>,
    /// TIFF flavour.
    pub flavour: Option<String>,
    /// `upload`, `pca_scores` or `labels`.
    pub kind: Option<String>,
    /// RFC 3339 time (UTC) or date.
    pub created_after: Option<String>,
    /// RFC 3339 time (UTC) or date.
    pub created_before: Option<String>,
    /// `created`, `-created` (default), `name`, `-name`, `size`, `-size`.
    pub sort: Option<String>,
    /// Rows per page (default 100, at most 1,000).
    pub limit: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A listing of datasets as a client asks for it.
#[derive(Debug, Clone, Default)]
pub struct DatasetSearch {
    /// Words that must each begin a word of the name or description.
    pub q: Option<String>,
    /// Owner's user name.
    pub owner: Option<String>,
    /// `created`, `-created` (default), `name`, `-name`.
    pub sort: Option<String>,
    /// Rows per page.
    pub limit: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// One page of a listing, with the cursor of the next.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    /// Every match the caller may see.
    pub count: u64,
    /// This page.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Key-value annotations as clients send them: `[["key", "value"], …]`,
/// or `{"key": "value", "key2": ["v1", "v2"]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AnnotationsInput {
    /// Ordered pairs.
    Pairs(Vec<(String, String)>),
    /// A map; a list of values gives the key several times.
    Map(serde_json::Map<String, serde_json::Value>),
}

impl AnnotationsInput {
    fn into_pairs(self) -> Result<Vec<(String, String)>, AppError> {
        match self {
            AnnotationsInput::Pairs(pairs) => Ok(pairs),
            AnnotationsInput::Map(map) => {
                let mut pairs = Vec::new();
                for (key, value) in map {
                    let values = match value {
                        serde_json::Value::String(s) => vec![s],
                        serde_json::Value::Array(list) => list
                            .into_iter()
                            .map(|v| match v {
                                serde_json::Value::String(s) => Ok(s),
                                _ => Err(()),
                            })
                            .collect::<Result<_, ()>>()
                            .map_err(|()| annotations_shape())?,
                        _ => return Err(annotations_shape()),
                    };
                    pairs.extend(values.into_iter().map(|v| (key.clone(), v)));
                }
                Ok(pairs)
            }
        }
    }
}

fn annotations_shape() -> AppError {
    AppError::InvalidArguments(
        "annotations are [[\"key\", \"value\"], …] or {\"key\": \"value\" or [\"value\", …]}"
            .into(),
    )
}

/// A change to an image's catalogue entry; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CatalogueChange {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Replaces every tag.
    pub tags: Option<Vec<String>>,
    /// Replaces every annotation.
    pub annotations: Option<AnnotationsInput>,
    /// Tags to add (after `tags`).
    pub add_tags: Option<Vec<String>>,
    /// Tags to remove (after `add_tags`).
    pub remove_tags: Option<Vec<String>>,
}

impl CatalogueChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// The names of the fields it sets.
    pub fn fields(&self) -> Vec<&'static str> {
        fields_set([
            ("name", self.name.is_some()),
            ("description", self.description.is_some()),
            ("tags", self.tags.is_some()),
            ("annotations", self.annotations.is_some()),
            ("add_tags", self.add_tags.is_some()),
            ("remove_tags", self.remove_tags.is_some()),
        ])
    }
}

/// What an upload or an import says about its image, fields as sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewEntry {
    /// Its name (default: the file's name).
    pub name: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// `key=value` annotations.
    pub annotations: Vec<String>,
    /// Datasets to put it in: ids (`dataset_<n>`, which must exist) or
    /// names (the caller's dataset of that name, made if missing).
    pub datasets: Vec<String>,
}

/// A [`NewEntry`] checked: what is written with the image, and the
/// datasets it goes into once published.
#[derive(Debug, Clone, Default)]
pub struct CheckedEntry {
    name: Option<String>,
    description: String,
    tags: Vec<String>,
    annotations: Vec<(String, String)>,
    datasets: Vec<DatasetRef>,
}

#[derive(Debug, Clone)]
enum DatasetRef {
    Id(DatasetId),
    Name(String),
}

impl CheckedEntry {
    /// The catalogue entry of an image whose file is called `file_name`.
    pub fn catalogue(&self, file_name: &str) -> Catalogue {
        Catalogue {
            name: self.name.clone().unwrap_or_else(|| file_name.to_string()),
            description: self.description.clone(),
            tags: self.tags.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

impl CatalogueLimits {
    /// `entry` with what the file itself carries added: its description
    /// where none was given, its tags and annotations before the given ones.
    /// What the limits refuse is left out with a warning, since the file is
    /// read all the same.
    pub fn with_file_notes(
        &self,
        mut entry: Catalogue,
        notes: &FileNotes,
        warnings: &mut Vec<String>,
    ) -> Catalogue {
        if entry.description.is_empty() {
            if let Some(d) = &notes.description {
                match self.description(d) {
                    Ok(()) => entry.description = d.clone(),
                    Err(e) => warnings.push(format!("the file's description was not kept: {e}")),
                }
            }
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in notes.tags.iter().chain(&entry.tags) {
            if tags.contains(tag) {
                continue;
            }
            if tags.len() == self.max_tags {
                warnings.push(format!(
                    "tags past the first {} were not kept",
                    self.max_tags
                ));
                break;
            }
            match self.tag(tag) {
                Ok(()) => tags.push(tag.clone()),
                Err(e) => warnings.push(format!("a tag of the file was not kept: {e}")),
            }
        }
        entry.tags = tags;
        let mut pairs = Vec::new();
        for (key, value) in notes.annotations.iter().chain(&entry.annotations) {
            if pairs.len() == self.max_annotations {
                warnings.push(format!(
                    "annotations past the first {} were not kept",
                    self.max_annotations
                ));
                break;
            }
            match self.annotation(key, value) {
                Ok(()) => pairs.push((key.clone(), value.clone())),
                Err(e) => warnings.push(format!("an annotation of the file was not kept: {e}")),
            }
        }
        entry.annotations = pairs;
        entry
    }
}

/// The signed part of a cursor.
#[derive(Debug, Serialize, Deserialize)]
struct CursorBody {
    /// Digest of the query it continues.
    q: String,
    /// The last row's sort key.
    k: SortKey,
    /// The last row's id.
    i: i64,
}

/// What a caller may see in listings.
pub fn visibility(caller: &Caller) -> Visibility {
    match &caller.who {
        Who::Open => Visibility::All,
        Who::User {
            scope: Scope::Admin,
            ..
        } => Visibility::All,
        Who::User { name, .. } => Visibility::OwnOrPublic(name.clone()),
        Who::Anonymous | Who::Link { .. } => Visibility::Nothing,
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> AppError {
    AppError::InvalidArguments(message.into())
}

/// A 400 for a value past the catalogue's `limit`.
fn over(limit: Limit, message: String) -> AppError {
    AppError::OverLimit { limit, message }
}

/// Refuses control characters (newlines and tabs too, unless `multiline`).
fn plain_text(what: &str, text: &str, multiline: bool) -> Result<(), AppError> {
    match text
        .chars()
        .find(|&c| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
    {
        Some(c) => Err(invalid(format!(
            "{what} holds the control character U+{:04X}; control characters are not allowed",
            c as u32
        ))),
        None => Ok(()),
    }
}

impl CatalogueLimits {
    fn name(&self, what: &str, name: &str) -> Result<(), AppError> {
        if name.is_empty() {
            return Err(invalid(format!("{what} must not be empty")));
        }
        if name.chars().count() > self.max_name_chars {
            return Err(over(
                Limit::MaxNameChars,
                format!(
                    "{what} has {} characters; at most {} are allowed",
                    name.chars().count(),
                    self.max_name_chars
                ),
            ));
        }
        plain_text(what, name, false)
    }

    fn description(&self, text: &str) -> Result<(), AppError> {
        if text.len() > self.max_description_bytes {
            return Err(over(
                Limit::MaxDescriptionBytes,
                format!(
                    "the description has {} bytes; at most {} are allowed",
                    text.len(),
                    self.max_description_bytes
                ),
            ));
        }
        plain_text("the description", text, true)
    }

    fn tag(&self, tag: &str) -> Result<(), AppError> {
        if tag.is_empty() {
            return Err(invalid("a tag must not be empty"));
        }
        let chars = tag.chars().count();
        if chars > self.max_tag_chars {
            return Err(over(
                Limit::MaxTagChars,
                format!(
                    "the tag {:?}… has {chars} characters; at most {} are allowed",
                    tag.chars().take(32).collect::<String>(),
                    self.max_tag_chars
                ),
            ));
        }
        plain_text(&format!("the tag {tag:?}"), tag, false)
    }

    /// Checks tags one by one and as a set, dropping repeats (the first
    /// spelling and place are kept).
    fn tags(&self, tags: Vec<String>) -> Result<Vec<String>, AppError> {
        let mut seen = HashSet::new();
        let mut kept = Vec::new();
        for tag in tags {
            self.tag(&tag)?;
            if seen.insert(tag.clone()) {
                kept.push(tag);
            }
        }
        if kept.len() > self.max_tags {
            return Err(over(
                Limit::MaxTags,
                format!(
                    "{} tags given; an image may have at most {}",
                    kept.len(),
                    self.max_tags
                ),
            ));
        }
        Ok(kept)
    }

    fn annotation(&self, key: &str, value: &str) -> Result<(), AppError> {
        if key.is_empty() {
            return Err(invalid("an annotation key must not be empty"));
        }
        let chars = key.chars().count();
        if chars > self.max_key_chars {
            return Err(over(
                Limit::MaxKeyChars,
                format!(
                    "the annotation key {:?}… has {chars} characters; at most {} are allowed",
                    key.chars().take(32).collect::<String>(),
                    self.max_key_chars
                ),
            ));
        }
        if value.len() > self.max_value_bytes {
            return Err(over(
                Limit::MaxValueBytes,
                format!(
                    "the value of annotation {key:?} has {} bytes; at most {} are allowed",
                    value.len(),
                    self.max_value_bytes
                ),
            ));
        }
        plain_text(&format!("the annotation key {key:?}"), key, false)?;
        plain_text(&format!("the value of annotation {key:?}"), value, true)
    }

    fn annotations(&self, pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>, AppError> {
        if pairs.len() > self.max_annotations {
            return Err(over(
                Limit::MaxAnnotations,
                format!(
                    "{} annotations given; an image may have at most {}",
                    pairs.len(),
                    self.max_annotations
                ),
            ));
        }
        for (key, value) in &pairs {
            self.annotation(key, value)?;
        }
        Ok(pairs)
    }
}

/// Splits `key=value` at the first `=`.
pub fn key_value(text: &str, what: &str) -> Result<(String, String), AppError> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| invalid(format!("{what} must be key=value, got {text:?}")))
}

/// The words of a search text, bounded.
fn query_words(q: &str, parameter: &str) -> Result<Vec<String>, AppError> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(invalid(format!(
            "{parameter} has {} bytes; at most {MAX_QUERY_BYTES} are allowed",
            q.len()
        )));
    }
    let mut seen = HashSet::new();
    let words: Vec<String> = search_words(q).filter(|w| seen.insert(w.clone())).collect();
    if words.is_empty() && !q.trim().is_empty() {
        return Err(invalid(format!(
            "{parameter} {q:?} has no word to search for: words are letters and digits"
        )));
    }
    if words.len() > MAX_QUERY_WORDS {
        return Err(invalid(format!(
            "{parameter} has {} words; at most {MAX_QUERY_WORDS} are allowed",
            words.len()
        )));
    }
    Ok(words)
}

pub(crate) fn limit(text: Option<&str>) -> Result<u32, AppError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            invalid(format!(
                "limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"
            ))
        })
}

/// An RFC 3339 time in UTC (`…Z`) or a date, as the stored form (UTC,
/// milliseconds) so that it compares as text.
pub(crate) fn time_bound(text: &str, parameter: &str) -> Result<String, AppError> {
    let trimmed = text.trim();
    let full = if trimmed.len() == 10 {
        format!("{trimmed}T00:00:00Z")
    } else {
        trimmed.to_string()
    };
    let bad = || {
        invalid(format!(
            "{parameter} must be an RFC 3339 time in UTC such as 2026-12-06T10:00:00Z, or a date such as 2026-12-06; got {text:?}"
        ))
    };
    if !full.ends_with(['Z', 'z']) {
        return Err(bad());
    }
    let at = humantime::parse_rfc3339(&full).map_err(|_| bad())?;
    Ok(humantime::format_rfc3339_millis(at).to_string())
}

/// A filter value compared as text: bounded, with no control characters
/// (PostgreSQL refuses NUL in text).
pub(crate) fn filter_text(value: &str, parameter: &str) -> Result<String, AppError> {
    if value.len() > 4096 + 256 {
        return Err(invalid(format!("{parameter} is too long")));
    }
    plain_text(parameter, value, true)?;
    Ok(value.to_string())
}

impl App {
    /// Checks what an upload or import says about its image, before any
    /// pixel is written: limits, and that each dataset given by id exists
    /// and the caller may add to it.
    pub async fn check_entry(
        &self,
        caller: &Caller,
        entry: NewEntry,
    ) -> Result<CheckedEntry, AppError> {
        let limits = &self.config.catalogue;
        if let Some(name) = &entry.name {
            limits.name("the name", name)?;
        }
        let description = entry.description.unwrap_or_default();
        limits.description(&description)?;
        let tags = limits.tags(entry.tags)?;
        let pairs = entry
            .annotations
            .iter()
            .map(|a| key_value(a, "an annotation"))
            .collect::<Result<Vec<_>, _>>()?;
        let annotations = limits.annotations(pairs)?;
        let mut datasets = Vec::new();
        for reference in entry.datasets {
            datasets.push(match reference.parse::<DatasetId>() {
                Ok(id) => {
                    self.dataset_to_modify(caller, &id.to_string()).await?;
                    DatasetRef::Id(id)
                }
                Err(()) => {
                    limits.name("a dataset name", &reference)?;
                    DatasetRef::Name(reference)
                }
            });
        }
        Ok(CheckedEntry {
            name: entry.name,
            description,
            tags,
            annotations,
            datasets,
        })
    }

    /// Puts a newly published image into the datasets its upload named,
    /// making the caller's datasets given by a name that has none yet.
    pub async fn file_entry(
        &self,
        caller: &Caller,
        image: ImageId,
        entry: &CheckedEntry,
    ) -> Result<(), AppError> {
        for reference in &entry.datasets {
            let id = match reference {
                DatasetRef::Id(id) => *id,
                DatasetRef::Name(name) => {
                    match self.catalogue.dataset_named(name, caller.owner()).await? {
                        Some(id) => id,
                        None => {
                            self.catalogue
                                .create_dataset(name, "", caller.owner())
                                .await?
                                .dataset_id
                        }
                    }
                }
            };
            self.catalogue.link(id, image).await?;
        }
        Ok(())
    }

    /// A page of the images `caller` may see that match `search`.
    pub async fn search_images(
        &self,
        caller: &Caller,
        search: &ImageSearch,
    ) -> Result<Listing<ImageRecord>, AppError> {
        caller.require(Scope::Read)?;
        let sort = match search.sort.as_deref() {
            None => Sort {
                field: SortField::Created,
                descending: true,
            },
            Some(s) => Sort::parse(s).ok_or_else(|| {
                invalid(format!(
                    "sort must be one of created, -created, name, -name, size, -size; got {s:?}"
                ))
            })?,
        };
        let limit = limit(search.limit.as_deref())?;
        let mut filter = ImageFilter {
            words: match &search.q {
                Some(q) => query_words(q, "q")?,
                None => Vec::new(),
            },
            ..ImageFilter::default()
        };
        if let Some(d) = &search.dataset {
            filter.dataset = Some(d.parse().map_err(|()| {
                invalid(format!(
                    "dataset must be a dataset id such as dataset_1, got {d:?}"
                ))
            })?);
        }
        for tag in &search.tags {
            filter.tags.push(filter_text(tag, "tag")?);
        }
        for a in &search.annotations {
            let (k, v) = key_value(a, "annotation")?;
            filter.annotations.push((
                filter_text(&k, "annotation")?,
                filter_text(&v, "annotation")?,
            ));
        }
        filter.owner = search
            .owner
            .as_deref()
            .map(|o| filter_text(o, "owner"))
            .transpose()?;
        if let Some(d) = &search.dtype {
            pentascope_core::DType::from_name(d).ok_or_else(|| {
                invalid(format!(
                    "dtype must be a sample type such as uint8, uint16, float32; got {d:?}"
                ))
            })?;
            filter.dtype = Some(d.clone());
        }
        filter.flavour = search
            .flavour
            .as_deref()
            .map(|f| filter_text(f, "flavour"))
            .transpose()?;
        if let Some(k) = &search.kind {
            filter.kind = Some(ImageKind::parse(k).ok_or_else(|| {
                invalid(format!(
                    "kind must be upload, pca_scores or labels; got {k:?}"
                ))
            })?);
        }
        filter.created_after = search
            .created_after
            .as_deref()
            .map(|t| time_bound(t, "created_after"))
            .transpose()?;
        filter.created_before = search
            .created_before
            .as_deref()
            .map(|t| time_bound(t, "created_before"))
            .transpose()?;
        let digest = query_digest(&format!("images\n{}\n{filter:?}", sort.as_str()));
        let after = self.after(search.cursor.as_deref(), &digest).await?;
        let page = self
            .catalogue
            .query_images(&ImageQuery {
                visibility: visibility(caller),
                filter,
                sort,
                after,
                limit,
            })
            .await?;
        self.listing(page, &digest, |last| (sort.key_of(last), last.id.0))
            .await
    }

    /// Changes an image's name, description, tags or annotations (owner or
    /// admin).
    pub async fn update_catalogue(
        &self,
        caller: &Caller,
        id: &str,
        change: CatalogueChange,
    ) -> Result<ImageRecord, AppError> {
        caller.require(Scope::Write)?;
        let record = self.image_to_modify(caller, id).await?;
        let fields = change.fields().join(", ");
        let limits = &self.config.catalogue;
        let mut entry = record.catalogue.clone();
        if let Some(name) = change.name {
            limits.name("the name", &name)?;
            entry.name = name;
        }
        if let Some(description) = change.description {
            limits.description(&description)?;
            entry.description = description;
        }
        if let Some(tags) = change.tags {
            entry.tags = tags;
        }
        entry.tags.extend(change.add_tags.unwrap_or_default());
        if let Some(remove) = change.remove_tags {
            let remove: HashSet<String> = remove.into_iter().collect();
            entry.tags.retain(|t| !remove.contains(t));
        }
        entry.tags = limits.tags(entry.tags)?;
        if let Some(annotations) = change.annotations {
            entry.annotations = limits.annotations(annotations.into_pairs()?)?;
        }
        if !self.catalogue.set_catalogue(record.id, &entry).await? {
            return Err(StoreError::NotFound(record.id.to_string()).into());
        }
        self.audit(caller, Action::ImageUpdate, &record.id.to_string(), &fields)
            .await;
        self.image(caller, id).await
    }

    /// Adds one annotation to an image (owner or admin).
    pub async fn annotate(
        &self,
        caller: &Caller,
        id: &str,
        key: String,
        value: String,
    ) -> Result<ImageRecord, AppError> {
        let record = self.image(caller, id).await?;
        let mut pairs = record.catalogue.annotations;
        pairs.push((key, value));
        self.update_catalogue(
            caller,
            id,
            CatalogueChange {
                annotations: Some(AnnotationsInput::Pairs(pairs)),
                ..CatalogueChange::default()
            },
        )
        .await
    }

    /// The datasets an image is in that `caller` may see.
    pub async fn datasets_of(
        &self,
        caller: &Caller,
        image: &ImageRecord,
    ) -> Result<Vec<(DatasetId, String)>, AppError> {
        Ok(self
            .catalogue
            .datasets_of(image.id, &visibility(caller))
            .await?)
    }

    /// Makes a dataset owned by `caller`.
    pub async fn create_dataset(
        &self,
        caller: &Caller,
        name: &str,
        description: &str,
    ) -> Result<DatasetRecord, AppError> {
        caller.require(Scope::Write)?;
        self.config.catalogue.name("the dataset name", name)?;
        self.config.catalogue.description(description)?;
        let dataset = self
            .catalogue
            .create_dataset(name, description, caller.owner())
            .await?;
        self.audit(
            caller,
            Action::DatasetCreate,
            &dataset.dataset_id.to_string(),
            "",
        )
        .await;
        Ok(dataset)
    }

    /// A dataset `caller` may see (404 otherwise).
    pub async fn dataset(&self, caller: &Caller, id: &str) -> Result<DatasetRecord, AppError> {
        caller.require(Scope::Read)?;
        let not_found = || AppError::NotFound(format!("dataset {id:?} not found"));
        let parsed: DatasetId = id.parse().map_err(|()| not_found())?;
        self.catalogue
            .dataset(parsed, &visibility(caller))
            .await?
            .filter(|d| visible(caller, d))
            .ok_or_else(not_found)
    }

    /// A dataset `caller` may change: 404 if they cannot see it, 403 if
    /// they see but do not own it.
    async fn dataset_to_modify(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<DatasetRecord, AppError> {
        caller.require(Scope::Write)?;
        let dataset = self.dataset(caller, id).await?;
        if !caller.may_change(dataset.owner.as_deref()) {
            return Err(AppError::Forbidden(format!(
                "only the owner of {} or an admin can change it",
                dataset.dataset_id
            )));
        }
        Ok(dataset)
    }

    /// Renames, describes or shares a dataset (owner or admin).
    pub async fn update_dataset(
        &self,
        caller: &Caller,
        id: &str,
        change: DatasetChange,
    ) -> Result<DatasetRecord, AppError> {
        let dataset = self.dataset_to_modify(caller, id).await?;
        if let Some(name) = &change.name {
            self.config.catalogue.name("the dataset name", name)?;
        }
        if let Some(description) = &change.description {
            self.config.catalogue.description(description)?;
        }
        self.catalogue
            .update_dataset(dataset.dataset_id, &change)
            .await?;
        let fields = fields_set([
            ("name", change.name.is_some()),
            ("description", change.description.is_some()),
            ("public", change.public.is_some()),
        ]);
        self.audit(
            caller,
            Action::DatasetUpdate,
            &dataset.dataset_id.to_string(),
            &fields.join(", "),
        )
        .await;
        self.dataset(caller, id).await
    }

    /// Deletes a dataset; its images stay (owner or admin).
    pub async fn delete_dataset(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<DatasetRecord, AppError> {
        let dataset = self.dataset_to_modify(caller, id).await?;
        self.catalogue.delete_dataset(dataset.dataset_id).await?;
        self.audit(
            caller,
            Action::DatasetDelete,
            &dataset.dataset_id.to_string(),
            &dataset.name,
        )
        .await;
        Ok(dataset)
    }

    /// Puts an image `caller` may read into a dataset they may change;
    /// `false` if it was there already.
    pub async fn link_image(
        &self,
        caller: &Caller,
        dataset: &str,
        image: &str,
    ) -> Result<bool, AppError> {
        let dataset = self.dataset_to_modify(caller, dataset).await?;
        let image = self.image(caller, image).await?;
        let linked = self.catalogue.link(dataset.dataset_id, image.id).await?;
        if linked {
            self.audit(
                caller,
                Action::DatasetLink,
                &dataset.dataset_id.to_string(),
                &image.id.to_string(),
            )
            .await;
        }
        Ok(linked)
    }

    /// Takes an image out of a dataset `caller` may change.
    pub async fn unlink_image(
        &self,
        caller: &Caller,
        dataset: &str,
        image: &str,
    ) -> Result<(), AppError> {
        let dataset = self.dataset_to_modify(caller, dataset).await?;
        let image = self.image(caller, image).await?;
        if !self.catalogue.unlink(dataset.dataset_id, image.id).await? {
            return Err(AppError::NotFound(format!(
                "{} is not in {}",
                image.id, dataset.dataset_id
            )));
        }
        self.audit(
            caller,
            Action::DatasetUnlink,
            &dataset.dataset_id.to_string(),
            &image.id.to_string(),
        )
        .await;
        Ok(())
    }

    /// A page of the datasets `caller` may see.
    pub async fn search_datasets(
        &self,
        caller: &Caller,
        search: &DatasetSearch,
    ) -> Result<Listing<DatasetRecord>, AppError> {
        caller.require(Scope::Read)?;
        let sort = match search.sort.as_deref() {
            None => Sort {
                field: SortField::Created,
                descending: true,
            },
            Some(s) => Sort::parse(s)
                .filter(|s| s.field != SortField::Size)
                .ok_or_else(|| {
                    invalid(format!(
                        "sort must be one of created, -created, name, -name; got {s:?}"
                    ))
                })?,
        };
        let limit = limit(search.limit.as_deref())?;
        let words = match &search.q {
            Some(q) => query_words(q, "q")?,
            None => Vec::new(),
        };
        let owner = search
            .owner
            .as_deref()
            .map(|o| filter_text(o, "owner"))
            .transpose()?;
        let digest = query_digest(&format!(
            "datasets\n{}\n{words:?}\n{owner:?}",
            sort.as_str()
        ));
        let after = self.after(search.cursor.as_deref(), &digest).await?;
        let page: Page<DatasetRecord> = self
            .catalogue
            .query_datasets(&DatasetQuery {
                visibility: visibility(caller),
                words,
                owner,
                sort,
                after,
                limit,
            })
            .await?;
        self.listing(page, &digest, |last| {
            let key = match sort.field {
                SortField::Name => SortKey::Text(last.name.clone()),
                _ => SortKey::Text(last.created_at.clone()),
            };
            (key, last.dataset_id.0)
        })
        .await
    }

    /// A page of the tags on images `caller` may see, by name, with how
    /// many such images carry each; `prefix` narrows (autocomplete).
    pub async fn tags(
        &self,
        caller: &Caller,
        prefix: Option<&str>,
        limit_text: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Listing<(String, u64)>, AppError> {
        caller.require(Scope::Read)?;
        let limit = limit(limit_text)?;
        let prefix = prefix
            .filter(|p| !p.is_empty())
            .map(|p| {
                if p.chars().count() > self.config.catalogue.max_tag_chars {
                    return Err(invalid(format!(
                        "prefix is longer than the longest tag ({} characters)",
                        self.config.catalogue.max_tag_chars
                    )));
                }
                filter_text(p, "prefix")
            })
            .transpose()?;
        let digest = query_digest(&format!("tags\n{prefix:?}"));
        let after = match self.after(cursor, &digest).await?.map(|a| a.key) {
            Some(SortKey::Text(tag)) => Some(tag),
            Some(SortKey::Int(_)) => return Err(invalid("cursor is not a cursor of this listing")),
            None => None,
        };
        let page = self
            .catalogue
            .tags(
                &visibility(caller),
                prefix.as_deref(),
                after.as_deref(),
                limit,
            )
            .await?;
        self.listing(page, &digest, |(tag, _)| (SortKey::Text(tag.clone()), 0))
            .await
    }

    /// Where the page a cursor names starts (`None`: the first page).
    pub(crate) async fn after(
        &self,
        cursor: Option<&str>,
        digest: &str,
    ) -> Result<Option<After>, AppError> {
        match cursor {
            Some(c) => Ok(Some(self.read_cursor(c, digest).await?)),
            None => Ok(None),
        }
    }

    /// A page with the cursor of the next one, made from its last row's
    /// sort key and id.
    pub(crate) async fn listing<T>(
        &self,
        page: Page<T>,
        digest: &str,
        key_of: impl Fn(&T) -> (SortKey, i64),
    ) -> Result<Listing<T>, AppError> {
        let next_cursor = match (page.more, page.items.last()) {
            (true, Some(last)) => {
                let (key, id) = key_of(last);
                Some(self.write_cursor(digest, key, id).await?)
            }
            _ => None,
        };
        Ok(Listing {
            count: page.count,
            items: page.items,
            next_cursor,
        })
    }

    async fn write_cursor(&self, digest: &str, key: SortKey, id: i64) -> Result<String, AppError> {
        let body = serde_json::to_vec(&CursorBody {
            q: digest.to_string(),
            k: key,
            i: id,
        })
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let mut mac = self.server_mac("pentascope-cursor-v1").await?;
        mac.update(&body);
        let signature = mac.finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(&signature[..16])
        ))
    }

    async fn read_cursor(&self, cursor: &str, digest: &str) -> Result<After, AppError> {
        let tampered = || invalid("cursor is not a cursor this server gave (altered or cut?)");
        if cursor.len() > 4096 + 256 {
            return Err(tampered());
        }
        let (body, signature) = cursor.split_once('.').ok_or_else(tampered)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| tampered())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| tampered())?;
        let mut mac = self.server_mac("pentascope-cursor-v1").await?;
        mac.update(&body);
        mac.verify_truncated_left(&signature)
            .map_err(|_| tampered())?;
        let body: CursorBody = serde_json::from_slice(&body).map_err(|_| tampered())?;
        if body.q != digest {
            return Err(invalid(
                "cursor belongs to another query: send the same filters and sort as the page it came from",
            ));
        }
        Ok(After {
            key: body.k,
            id: body.i,
        })
    }
}

/// Whether `caller` may see a dataset.
fn visible(caller: &Caller, dataset: &DatasetRecord) -> bool {
    match visibility(caller) {
        Visibility::All => true,
        Visibility::OwnOrPublic(name) => dataset.public || dataset.owner.as_deref() == Some(&name),
        Visibility::Nothing => false,
    }
}

pub(crate) fn query_digest(canonical: &str) -> String {
    hex::encode(&Sha256::digest(canonical.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_words_never_syntax() {
        assert_eq!(
            query_words("\"DAPI\" NEAR(mouse*) -- 100% c:\\x", "q").unwrap(),
            ["dapi", "near", "mouse", "100", "c", "x"]
        );
        assert!(query_words("\"*%--", "q").is_err());
        assert!(query_words(&"é".repeat(600), "q").is_err());
        let many = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(query_words(&many, "q")
            .unwrap_err()
            .to_string()
            .contains("at most 32"));
    }

    #[test]
    fn times_are_utc_rfc3339_or_dates() {
        assert_eq!(
            time_bound("2026-12-06", "created_after").unwrap(),
            "2026-12-06T00:00:00.000Z"
        );
        assert_eq!(
            time_bound("2026-12-06T10:11:12.5Z", "x").unwrap(),
            "2026-12-06T10:11:12.500Z"
        );
        for bad in ["yesterday", "2026-12-06T10:00:00+02:00", "2026-13-01", ""] {
            assert!(time_bound(bad, "created_before").is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_carry_the_setting() {
        let limits = CatalogueLimits::default();
        let err = limits.tags(vec!["x".repeat(129)]).unwrap_err();
        assert_eq!(err.limit(), Some(Limit::MaxTagChars), "{err}");
        let err = err.to_string();
        assert!(err.contains("128") && !err.contains("--max"), "{err}");
        assert_eq!(
            limits
                .tags(vec!["a".into(), "b".into(), "a".into()])
                .unwrap(),
            ["a", "b"]
        );
        assert!(limits.tag("a\u{0}b").is_err() && limits.tag("").is_err());
        assert!(limits.annotation("k", &"v".repeat(4097)).is_err());
        assert!(limits.annotation("k", "line 1\nline 2").is_ok());
        assert!(limits.annotation("k\n", "v").is_err());
        let many = (0..1025)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(limits
            .annotations(many)
            .unwrap_err()
            .to_string()
            .contains("1024"));
    }

    #[test]
    fn annotations_come_as_pairs_or_maps() {
        let map: AnnotationsInput =
            serde_json::from_str(r#"{"Stain": "DAPI", "Mouse": ["M12", "M13"]}"#).unwrap();
        let mut pairs = map.into_pairs().unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("Mouse".to_string(), "M12".to_string()),
                ("Mouse".into(), "M13".into()),
                ("Stain".into(), "DAPI".into())
            ]
        );
        let pairs: AnnotationsInput = serde_json::from_str(r#"[["a", "1"], ["a", "2"]]"#).unwrap();
        assert_eq!(pairs.into_pairs().unwrap().len(), 2);
        let bad: AnnotationsInput = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert!(bad.into_pairs().is_err());
    }
}
