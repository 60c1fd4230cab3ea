//! What every request leaves behind: a request id (the client's
//! `X-Request-Id` when it is sane, else a new one), returned in the
//! response and carried by every log line of the request; one log line
//! when it ends with its route template, status, duration and user; and
//! its duration in the metrics (by method, route template and status). The
//! raw path and query are never logged: a signed link's secret is in the
//! path (`/s/<token>/…`) and the browser pages take a key in the query.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use pentascope_app::Caller;
use tracing::Instrument;

use crate::exporter::{HTTP_ACTIVE, HTTP_DURATION};

/// The header carrying a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// The route template (`/images/{id}`) that served a request, put in the
/// response's extensions by the router's guard. Requests refused before
/// routing (a bad key, no such route) have none.
#[derive(Debug, Clone, Copy)]
pub struct RouteTemplate(pub &'static str);

/// The route label of requests no route served.
pub const UNROUTED: &str = "unrouted";

/// The client's request id if it is one we may repeat in logs and headers:
/// 1 to 128 visible ASCII characters.
fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    let ok = (1..=MAX_REQUEST_ID).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic);
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// Who made a request, as logs name them: a user's name, `link` for a
/// signed link (its secret never), `anonymous` without credentials, `-`
/// with access control off.
fn user_label(caller: Option<&Caller>) -> String {
    match caller {
        Some(Caller::User { name, .. }) => name.clone(),
        Some(Caller::Link { .. }) => "link".into(),
        Some(Caller::Anonymous) => "anonymous".into(),
        Some(Caller::Open) | None => "-".into(),
    }
}

/// A method as a metric label: the standard ones, else `_OTHER` (as
/// OpenTelemetry says), so clients cannot invent label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

/// Counts a request as active until dropped (also when the client leaves
/// and the request's future is dropped half-way).
struct Active(&'static str);

impl Active {
    fn start(method: &'static str) -> Active {
        metrics::gauge!(HTTP_ACTIVE, "http_request_method" => method).increment(1.0);
        Active(method)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_ACTIVE, "http_request_method" => self.0).decrement(1.0);
    }
}

/// Gives the request its id, logs its outcome and records its duration
/// (outermost layer).
pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method_label = method_label(req.method());
    let active = Active::start(method_label);
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(req).instrument(span.clone()).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or(UNROUTED, |r| r.0);
    let status = response.status().as_u16();
    let user = user_label(response.extensions().get::<Caller>());
    let elapsed = started.elapsed().as_secs_f64();
    drop(active);
    metrics::histogram!(
        HTTP_DURATION,
        "http_request_method" => method_label,
        "http_route" => route,
        "http_response_status_code" => status.to_string(),
    )
    .record(elapsed);
    let duration_ms = elapsed * 1e3;
    span.in_scope(|| {
        tracing::info!(
            target: "pentascope::request",
            request_id = %request_id,
            method = %method,
            route = %route,
            status,
            duration_ms,
            user = %user,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ids_are_taken_from_clients() {
        let id = |s: &str| sane_request_id(&HeaderValue::from_str(s).unwrap());
        assert_eq!(id("abc-123_x.y").as_deref(), Some("abc-123_x.y"));
        assert_eq!(id(""), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id(&"a".repeat(MAX_REQUEST_ID)).map(|s| s.len()), Some(128));
        assert_eq!(id(&"a".repeat(MAX_REQUEST_ID + 1)), None);
        let non_ascii = HeaderValue::from_bytes("é".as_bytes()).unwrap();
        assert_eq!(sane_request_id(&non_ascii), None);
    }
}
