//! Entity tags for the responses computed from one image (Zarr keys,
//! slices, renders, thumbnails), so that a client holding one can be
//! answered 304 Not Modified without the work.
//!
//! An image's pixels never change once published: its id and creation time
//! stand for them. Its look (default windows, colours, channel names, and
//! the statistics auto-contrast comes from) does change, through
//! `PATCH /images/{id}`, so responses drawn with it are tagged with it too.
//! A tag also covers the request's path and query, so it matches only the
//! response it was sent with (a tag of one chunk never answers a request
//! for another key), and the version of pentascope, whose rendering may
//! differ from another version's.

use pentascope_store::ImageRecord;
use sha2::{Digest, Sha256};

/// What a response's bytes follow from, besides the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The pixels alone (chunks, exact samples, fixed windows).
    Pixels,
    /// The pixels and the image's look (renders, auto-contrast slices, the
    /// group's metadata with its `omero` rendering).
    Look,
}

/// A strong entity tag (quoted, as the `ETag` header carries it) for the
/// response to `request` (its path and query) about `record`.
pub fn entity_tag(record: &ImageRecord, basis: Basis, request: &str) -> String {
    let mut digest = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // length-prefixed, so that no two sequences of fields collide
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    };
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(&record.id.0.to_le_bytes());
    field(record.created_at.as_bytes());
    field(request.as_bytes());
    if basis == Basis::Look {
        // serialising these plain records cannot fail; an empty field
        // would only tag less precisely
        field(&serde_json::to_vec(&record.details).unwrap_or_default());
        field(&serde_json::to_vec(&record.original_filename).unwrap_or_default());
        for s in &record.statistics {
            for v in [s.min, s.max, s.mean, s.std, s.display_min, s.display_max] {
                field(&v.to_bits().to_le_bytes());
            }
        }
    }
    format!("\"{}\"", hex::encode(&digest.finalize()[..16]))
}
