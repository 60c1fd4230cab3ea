//! Which limit a refusal hit, for the front door to name.
//!
//! Every layer below the front door refuses work past a configured limit
//! with one of these and a message that gives the values; only the front
//! door (the CLI, the HTTP API) knows what the limit is called there (a
//! flag, an environment variable) and adds that.

/// A limit that some layer checks: the TIFF reader's, the computations',
/// the uploads' and the catalogue's. [`Limit::Fixed`] is a cap built into
/// the code, which no setting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// One of the TIFF reader's [`Limits`](crate::Limits) (never
    /// [`pentascope_tiff::Limit::Fixed`]: see [`Limit::from`]).
    Reader(pentascope_tiff::Limit),
    /// The memory that slice and render requests may hold at once.
    SliceMemory,
    /// The provisional labels one segmentation may hand out.
    MaxLabels,
    /// The largest upload (and what an archive may unpack to).
    MaxUploadBytes,
    /// The longest image or dataset name, in characters.
    MaxNameChars,
    /// The longest description, in bytes.
    MaxDescriptionBytes,
    /// The longest tag, in characters.
    MaxTagChars,
    /// The most tags on one image.
    MaxTags,
    /// The longest annotation key, in characters.
    MaxKeyChars,
    /// The longest annotation value, in bytes.
    MaxValueBytes,
    /// The most annotations on one image.
    MaxAnnotations,
    /// A cap of the code itself (a size past 2^64, a reader's fixed
    /// bound): nothing to raise.
    Fixed,
}

impl From<pentascope_tiff::Limit> for Limit {
    /// The reader's limit; its fixed caps are [`Limit::Fixed`], so that
    /// there is one way to say "no setting".
    fn from(limit: pentascope_tiff::Limit) -> Limit {
        match limit {
            pentascope_tiff::Limit::Fixed => Limit::Fixed,
            reader => Limit::Reader(reader),
        }
    }
}

impl Limit {
    /// Every limit, for the front door's table of names and its tests.
    pub fn all() -> impl Iterator<Item = Limit> {
        pentascope_tiff::Limit::ALL
            .into_iter()
            .map(Limit::from)
            .filter(|l| *l != Limit::Fixed)
            .chain([
                Limit::SliceMemory,
                Limit::MaxLabels,
                Limit::MaxUploadBytes,
                Limit::MaxNameChars,
                Limit::MaxDescriptionBytes,
                Limit::MaxTagChars,
                Limit::MaxTags,
                Limit::MaxKeyChars,
                Limit::MaxValueBytes,
                Limit::MaxAnnotations,
                Limit::Fixed,
            ])
    }
}
