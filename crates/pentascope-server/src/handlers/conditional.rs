//! Validators and conditional GET for what is computed from one image
//! (`/zarr/…`, `/slice`, `/render`, `/thumbnail`): each response carries a
//! strong `ETag` ([`pentascope_app::validator`]) and `Cache-Control`, and
//! what follows from the pixels alone its `Last-Modified` (the image's
//! creation: the time a look changed is not recorded, so what is drawn
//! with it has none). A request whose `If-None-Match` holds the current
//! tag is answered 304 without the work. The check runs after
//! the image was looked up for the caller, so a deleted image or revoked
//! access answers 404 or 401, never 304.
//!
//! `Cache-Control: no-cache`: a cache may keep the bytes but asks every
//! time (a 304 costs a round trip, not the transfer or the decoding), so a
//! changed look, a deletion or a revoked key shows at once. `private` as
//! soon as access control applies, so that no shared cache serves one
//! caller's image to another.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pentascope_app::validator::{entity_tag, Basis};
use pentascope_app::{Caller, Who};
use pentascope_store::ImageRecord;

/// The validators of one response.
#[derive(Debug, Clone)]
pub struct Validators {
    etag: HeaderValue,
    /// The image's creation, for what follows from its pixels alone.
    last_modified: Option<HeaderValue>,
    cache_control: HeaderValue,
}

impl Validators {
    /// The validators of the response to `request` (path and query) about
    /// `record`, drawn on `basis`, for `caller`.
    pub fn new(record: &ImageRecord, basis: Basis, request: &str, caller: &Caller) -> Validators {
        let etag = entity_tag(record, basis, request);
        let last_modified = match basis {
            Basis::Pixels => humantime::parse_rfc3339(&record.created_at)
                .ok()
                .and_then(|created| HeaderValue::from_str(&httpdate::fmt_http_date(created)).ok()),
            Basis::Look => None,
        };
        Validators {
            etag: HeaderValue::from_str(&etag).expect("a quoted hex digest is a header value"),
            last_modified,
            cache_control: HeaderValue::from_static(match caller.who {
                Who::Open => "no-cache",
                _ => "private, no-cache",
            }),
        }
    }

    /// 304 Not Modified when `headers`' `If-None-Match` lists the current
    /// tag. `*` is not honoured, nor `If-Modified-Since`: a date holds for
    /// every URL of the image, valid or not, and only a tag this response
    /// was sent with spares the work.
    pub fn not_modified(&self, headers: &HeaderMap) -> Option<Response> {
        let current = self.etag.as_bytes();
        let unchanged = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .map(|tag| tag.trim_ascii())
            // If-None-Match compares weakly: W/"x" matches "x"
            .any(|tag| tag.strip_prefix(b"W/").unwrap_or(tag) == current);
        unchanged.then(|| {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            self.apply(&mut response);
            response
        })
    }

    /// Adds the validators to `response`.
    pub fn apply(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        if let Some(modified) = &self.last_modified {
            headers.insert(header::LAST_MODIFIED, modified.clone());
        }
        headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
    }
}
