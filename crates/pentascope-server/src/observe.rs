//! What every request leaves behind: a request id (the client's
//! `X-Request-Id` when it is sane, else a new one) and a W3C trace context
//! (continuing the client's `traceparent` when valid, else a new trace),
//! both returned in the response and carried by every log line of the
//! request, the trace also into the jobs it submits; one log line
//! when it ends with its route template, status, duration and user; and
//! its duration in the metrics (by method, route template and status). A
//! request whose client leaves before the answer ends too, with status 499
//! (nginx's "client closed request"). The raw path and query are never
//! logged: a signed link's secret is in the path (`/s/<token>/…`) and the
//! browser pages take a key in the query.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use pentascope_app::trace::TraceContext;
use pentascope_app::{Caller, Who};
use tracing::Instrument;

use crate::exporter::{HTTP_ACTIVE, HTTP_DURATION};

/// The header carrying a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The W3C Trace Context header, both ways.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Longest request id taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// The route label of requests no route served (refused before routing:
/// a bad key, no such route).
pub const UNROUTED: &str = "unrouted";

/// The status logged for a request whose client left before the answer.
const CLIENT_LEFT: u16 = 499;

/// What the layers inside learn about a request, for its log line and
/// metrics: in the request's extensions, filled in by the front door (the
/// caller) and the router's guard (the route template).
#[derive(Debug, Default)]
pub struct RequestFacts {
    route: OnceLock<&'static str>,
    user: OnceLock<String>,
}

impl RequestFacts {
    /// The route template (`/images/{id}`) serving the request.
    pub fn set_route(&self, route: &'static str) {
        let _ = self.route.set(route);
    }

    /// Who is calling.
    pub fn set_caller(&self, caller: &Caller) {
        let _ = self.user.set(user_label(caller));
    }
}

/// The client's request id if it is one we may repeat in logs and headers:
/// 1 to 128 visible ASCII characters.
fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    let ok = (1..=MAX_REQUEST_ID).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic);
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// This request's span in the client's trace (a child of its
/// `traceparent`), or a new trace when there is no valid one; several
/// `traceparent` headers are invalid, as the recommendation says.
fn request_trace(req: &Request) -> TraceContext {
    let mut values = req.headers().get_all(&TRACEPARENT).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(TraceContext::parse)
            .map_or_else(TraceContext::new_root, |parent| parent.child()),
        _ => TraceContext::new_root(),
    }
}

/// Who made a request, as logs name them: a user's name, `link` for a
/// signed link (its secret never), `anonymous` without credentials, `-`
/// with access control off or before the caller is known.
fn user_label(caller: &Caller) -> String {
    match &caller.who {
        Who::User { name, .. } => name.clone(),
        Who::Link { .. } => "link".into(),
        Who::Anonymous => "anonymous".into(),
        Who::Open => "-".into(),
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

/// A request being served: counted as active until dropped, and then
/// logged and measured, with status 499 when it was dropped unanswered
/// (the client left and the request's future with it).
struct InFlight {
    started: Instant,
    method: Method,
    method_label: &'static str,
    request_id: String,
    trace: TraceContext,
    span: tracing::Span,
    facts: Arc<RequestFacts>,
    status: Option<u16>,
}

impl InFlight {
    fn start(req: &Request) -> InFlight {
        let request_id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(sane_request_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let trace = request_trace(req);
        let method_label = method_label(req.method());
        metrics::gauge!(HTTP_ACTIVE, "http_request_method" => method_label).increment(1.0);
        InFlight {
            started: Instant::now(),
            method: req.method().clone(),
            method_label,
            span: tracing::info_span!(
                "request",
                request_id = %request_id,
                trace_id = %trace.trace_id()
            ),
            request_id,
            trace,
            facts: Arc::default(),
            status: None,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let method_label = self.method_label;
        metrics::gauge!(HTTP_ACTIVE, "http_request_method" => method_label).decrement(1.0);
        let route = self.facts.route.get().copied().unwrap_or(UNROUTED);
        let status = self.status.unwrap_or(CLIENT_LEFT);
        let elapsed = self.started.elapsed().as_secs_f64();
        metrics::histogram!(
            HTTP_DURATION,
            "http_request_method" => method_label,
            "http_route" => route,
            "http_response_status_code" => status.to_string(),
        )
        .record(elapsed);
        let user = self.facts.user.get().map_or("-", String::as_str);
        let duration_ms = elapsed * 1e3;
        self.span.in_scope(|| {
            tracing::info!(
                target: "pentascope::request",
                request_id = %self.request_id,
                trace_id = %self.trace.trace_id(),
                method = %self.method,
                route = %route,
                status,
                duration_ms,
                user = %user,
                "request"
            );
        });
    }
}

/// Gives the request its id and trace context, logs its outcome and
/// records its duration (outermost layer).
pub async fn observe(mut req: Request, next: Next) -> Response {
    let mut in_flight = InFlight::start(&req);
    req.extensions_mut().insert(in_flight.facts.clone());
    let mut response = in_flight
        .trace
        .scope(next.run(req))
        .instrument(in_flight.span.clone())
        .await;
    in_flight.status = Some(response.status().as_u16());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&in_flight.request_id) {
        headers.insert(REQUEST_ID.clone(), value);
    }
    if let Ok(value) = HeaderValue::from_str(&in_flight.trace.to_string()) {
        headers.insert(TRACEPARENT.clone(), value);
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
