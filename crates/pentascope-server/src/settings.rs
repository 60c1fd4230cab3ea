//! How each limit is raised at this front door: the one table from a
//! [`Limit`] to its command-line flag and environment variable.
//!
//! The layers below (TIFF reader, core, store, passes, app) say which limit
//! a refusal hit and never how it is set; the HTTP error mapping
//! ([`crate::error`]) and the CLI append the names from here. The binary
//! crate, which defines the flags with clap, tests that every name here is
//! one of its flags and that flag's variable.

use pentascope_app::AppError;
use pentascope_core::Limit;
use pentascope_tiff::Limit as Reader;

/// A setting as an operator changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The command-line flag, with its dashes (`--max-series`).
    pub flag: &'static str,
    /// The environment variable (`PENTASCOPE_MAX_SERIES`).
    pub env: &'static str,
}

/// The setting that raises `limit`; `None` for a cap no setting changes.
pub fn setting(limit: Limit) -> Option<Setting> {
    let (flag, env) = match limit {
        Limit::Reader(Reader::MaxSamples) => ("--max-samples", "PENTASCOPE_MAX_SAMPLES"),
        Limit::Reader(Reader::MaxPlanePixels) => {
            ("--max-plane-pixels", "PENTASCOPE_MAX_PLANE_PIXELS")
        }
        Limit::Reader(Reader::MaxPages) => ("--max-pages", "PENTASCOPE_MAX_PAGES"),
        Limit::Reader(Reader::MaxChunkBytes) => ("--max-chunk-bytes", "PENTASCOPE_MAX_CHUNK_BYTES"),
        Limit::Reader(Reader::MaxMetadataBytes) => {
            ("--max-metadata-bytes", "PENTASCOPE_MAX_METADATA_BYTES")
        }
        Limit::Reader(Reader::MaxChannels) => ("--max-channels", "PENTASCOPE_MAX_CHANNELS"),
        Limit::Reader(Reader::MaxSeries) => ("--max-series", "PENTASCOPE_MAX_SERIES"),
        Limit::SliceMemory => ("--slice-memory-mib", "PENTASCOPE_SLICE_MEMORY_MIB"),
        Limit::MaxLabels => ("--max-labels", "PENTASCOPE_MAX_LABELS"),
        Limit::MaxUploadBytes => ("--max-upload-bytes", "PENTASCOPE_MAX_UPLOAD_BYTES"),
        Limit::MaxNameChars => ("--max-name-chars", "PENTASCOPE_MAX_NAME_CHARS"),
        Limit::MaxDescriptionBytes => (
            "--max-description-bytes",
            "PENTASCOPE_MAX_DESCRIPTION_BYTES",
        ),
        Limit::MaxTagChars => ("--max-tag-chars", "PENTASCOPE_MAX_TAG_CHARS"),
        Limit::MaxTags => ("--max-tags", "PENTASCOPE_MAX_TAGS"),
        Limit::MaxKeyChars => ("--max-key-chars", "PENTASCOPE_MAX_KEY_CHARS"),
        Limit::MaxValueBytes => ("--max-value-bytes", "PENTASCOPE_MAX_VALUE_BYTES"),
        Limit::MaxAnnotations => ("--max-annotations", "PENTASCOPE_MAX_ANNOTATIONS"),
        // fixed caps; a limit added below without a setting here is
        // caught by the binary's test over `Limit::all()`
        _ => return None,
    };
    Some(Setting { flag, env })
}

/// `message`, followed by the setting that raises `limit` if there is one:
/// `… more than the configured maximum of 1024 (--max-series /
/// PENTASCOPE_MAX_SERIES)`.
pub fn with_setting(message: impl std::fmt::Display, limit: Option<Limit>) -> String {
    match limit.and_then(setting) {
        Some(Setting { flag, env }) => format!("{message} ({flag} / {env})"),
        None => message.to_string(),
    }
}

/// An error's message as the front door shows it: naming the setting of
/// the limit it hit, if any.
pub fn describe(e: &AppError) -> String {
    with_setting(e, e.limit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_caps_name_nothing_and_settings_are_appended() {
        assert_eq!(setting(Limit::Fixed), None);
        assert_eq!(setting(Limit::Reader(Reader::Fixed)), None);
        assert_eq!(
            with_setting("too many", Some(Limit::Reader(Reader::MaxSeries))),
            "too many (--max-series / PENTASCOPE_MAX_SERIES)"
        );
        assert_eq!(with_setting("too big", Some(Limit::Fixed)), "too big");
        assert_eq!(with_setting("plain", None), "plain");
        for limit in Limit::all().filter(|l| *l != Limit::Fixed) {
            let named = setting(limit).unwrap_or_else(|| panic!("{limit:?} has no setting"));
            assert!(named.flag.starts_with("--"), "{named:?}");
            assert!(named.env.starts_with("PENTASCOPE_"), "{named:?}");
        }
    }
}
