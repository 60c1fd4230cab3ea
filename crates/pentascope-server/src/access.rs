//! The front door every request passes before routing: CORS, signed links
//! (`/s/<token>/…` is served as `/…` for the link's caller) and API keys.
//! It puts the [`Caller`] in the request's extensions; the router's guard
//! then checks it against the route's [`crate::router::Access`], and use
//! cases check ownership.

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pentascope_app::{App, Caller};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::error::ApiError;
use crate::observe::RequestFacts;

/// Where signed links live: `/s/<token>/<route>`.
pub const LINK_PREFIX: &str = "/s/";

/// Origins browsers may call from, as configured.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Arc<[String]>,
}

impl Cors {
    /// From `--cors-origins` (`*` allows any origin, never with
    /// credentials).
    pub fn new(origins: &[String]) -> Cors {
        Cors {
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_string())
                .collect(),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        if self.origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == text)
            .then(|| origin.clone())
    }

    fn decorate(&self, allowed: HeaderValue, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "Content-Range, Content-Length, Accept-Ranges, ETag, Location, Tus-Resumable, \
                 Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, \
                 Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, \
                 Pentascope-Image-Id",
            ),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// CORS, links and keys, before routing (see the module documentation).
pub async fn front_door(app: Arc<App>, cors: Cors, mut req: Request, next: Next) -> Response {
    let allowed = cors.allow(req.headers().get(header::ORIGIN));
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return preflight_answer(&cors, allowed, req.headers());
    }
    let path = req.uri().path();
    let tus_path = path == "/uploads" || path.starts_with("/uploads/");
    let mut response = match identify(&app, &mut req).await {
        Ok(caller) => {
            let address = client_address(&app.config.trusted_proxies, &req);
            let caller = caller.at_address(address);
            // for the request's log line
            if let Some(facts) = req.extensions().get::<Arc<RequestFacts>>() {
                facts.set_caller(&caller);
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            e.log_refusal(&format!(
                "{} {}",
                req.method(),
                shown_path(req.uri().path())
            ));
            e.into_response()
        }
    };
    if let Some(allowed) = allowed {
        cors.decorate(allowed, response.headers_mut());
    }
    if tus_path {
        // tus: every answer names the protocol version, refusals too
        response.headers_mut().insert(
            crate::handlers::tus::TUS_RESUMABLE,
            HeaderValue::from_static(crate::handlers::tus::TUS_VERSION),
        );
    }
    response
}

/// The client's address: the peer's, or, when the peer is a trusted
/// proxy, the nearest address in `X-Forwarded-For` that is not one (each
/// proxy appends the address it was called from; what precedes a trusted
/// proxy's entry may be made up by the client).
fn client_address(trusted: &[IpAddr], req: &Request) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for entry in forwarded.iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return Some(address),
            // garbage: what precedes it cannot be trusted either
            Err(_) => break,
        }
    }
    Some(peer)
}

/// `path` as it may be logged: a signed link's token (a secret) hidden.
pub fn shown_path(path: &str) -> String {
    match path.strip_prefix(LINK_PREFIX) {
        Some(rest) => {
            let route = rest.split_once('/').map_or("", |(_, route)| route);
            format!("{LINK_PREFIX}<token>/{route}")
        }
        None => path.to_string(),
    }
}

fn preflight_answer(cors: &Cors, allowed: Option<HeaderValue>, headers: &HeaderMap) -> Response {
    let Some(allowed) = allowed else {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("(none)");
        return ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "cross-origin requests from {origin} are not allowed; the allowed origins are \
                 set with --cors-origins / PENTASCOPE_CORS_ORIGINS (now: {})",
                if cors.origins.is_empty() {
                    "none".to_string()
                } else {
                    cors.origins.join(", ")
                }
            ),
            detail: None,
        }
        .into_response();
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    cors.decorate(allowed, h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, Range, Content-Type, Tus-Resumable, Upload-Length, Upload-Offset, \
             Upload-Metadata, Upload-Checksum, Upload-Defer-Length",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// The caller of a request: a signed link (whose prefix is taken off the
/// path) or the `Authorization` header.
async fn identify(app: &App, req: &mut Request) -> Result<Caller, ApiError> {
    if let Some(rest) = req.uri().path().strip_prefix(LINK_PREFIX) {
        let (token, route) = rest.split_once('/').unwrap_or((rest, ""));
        let caller = app.authenticate_link(token).await?;
        let path_and_query = match req.uri().query() {
            Some(q) => format!("/{route}?{q}"),
            None => format!("/{route}"),
        };
        *req.uri_mut() = Uri::builder()
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| ApiError::bad_request("malformed path after the signed link"))?;
        return Ok(caller);
    }
    let authorization = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::from(pentascope_app::AppError::Unauthenticated(
                "the Authorization header is not text".into(),
            ))
        })?),
        None => None,
    };
    Ok(app.authenticate(authorization).await?)
}
