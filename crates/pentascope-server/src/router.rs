//! Every route in one table, [`routes`]: its method, path, who may call it
//! ([`Access`]), the query parameters it accepts and its handler. The
//! router is built from the table; one guard refuses callers the route's
//! access rule does not admit and unknown query parameters (naming the
//! valid ones); the API document is generated from the table
//! (`crate::openapi`) and tests check the access rules against each other.

use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use crate::access::{front_door, Cors};
use crate::error::ApiError;
use crate::handlers::{
    admin, analyze, catalogue, images, jobs, metrics, pages, render, segment, slice, tus, upload,
    zarr,
};
use crate::observe::{observe, RequestFacts};
use crate::openapi::{operations as ops, Operation};
use crate::AppState;
use pentascope_app::{Caller, Who};
use pentascope_store::records::Scope;

/// Who may call a route (with access control required; with it off,
/// everyone may call everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// A key with at least this scope.
    Key(Scope),
    /// A key with scope `read`, or a signed link to the image the request
    /// names (the image is checked by the use case).
    KeyOrLink,
}

/// One route.
pub struct Route {
    /// Its method.
    pub method: Method,
    /// Its path, with `{name}` for path parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The query parameters it accepts; any other is a 400.
    pub query: &'static [&'static str],
    /// Whether the request timeout applies (not to uploads, which take as
    /// long as their client sends).
    timed: bool,
    endpoint: MethodRouter<AppState>,
    /// What the API document says of it (`crate::openapi`).
    pub(crate) doc: fn() -> Operation,
}

impl Route {
    fn new<H, T>(
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
        doc: fn() -> Operation,
    ) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        Route {
            method,
            path,
            access,
            query: &[],
            timed: true,
            endpoint: on(filter, handler),
            doc,
        }
    }

    fn query(mut self, names: &'static [&'static str]) -> Route {
        self.query = names;
        self
    }

    fn upload(mut self, max_bytes: usize) -> Route {
        self.endpoint = self.endpoint.layer(DefaultBodyLimit::max(max_bytes));
        self.timed = false;
        self
    }
}

/// Every route of the service. `upload_limit` is the largest upload body.
pub fn routes(upload_limit: usize) -> Vec<Route> {
    const IMAGE: &[&str] = &["image_id"];
    use Access::{Key, KeyOrLink, Public};
    use Method as M;
    use Scope::{Admin, Read, Write};
    vec![
        Route::new(
            M::POST,
            "/upload",
            Key(Write),
            upload::upload,
            ops::upload_image,
        )
        .query(&["axes"])
        .upload(upload_limit),
        // resumable uploads (tus 1.0.0); OPTIONS is the protocol's discovery
        Route::new(
            M::OPTIONS,
            "/uploads",
            Public,
            tus::options,
            ops::tus_options,
        ),
        Route::new(
            M::POST,
            "/uploads",
            Key(Write),
            tus::create,
            ops::create_upload,
        )
        .upload(upload_limit),
        Route::new(
            M::HEAD,
            "/uploads/{id}",
            Key(Write),
            tus::head,
            ops::upload_offset,
        ),
        Route::new(
            M::PATCH,
            "/uploads/{id}",
            Key(Write),
            tus::patch,
            ops::append_upload,
        )
        .upload(upload_limit),
        Route::new(
            M::DELETE,
            "/uploads/{id}",
            Key(Write),
            tus::terminate,
            ops::terminate_upload,
        ),
        Route::new(
            M::GET,
            "/uploads/{id}",
            Key(Read),
            tus::get,
            ops::get_upload,
        ),
        Route::new(
            M::GET,
            "/metadata",
            KeyOrLink,
            images::metadata,
            ops::get_metadata,
        )
        .query(IMAGE),
        Route::new(M::GET, "/slice", KeyOrLink, slice::slice, ops::get_slice).query(&[
            "image_id", "z", "time", "channel", "min", "max", "auto", "bits", "format",
        ]),
        Route::new(M::GET, "/render", KeyOrLink, render::render, ops::render).query(&[
            "image_id", "z", "time", "c", "m", "p", "region", "size", "tile", "format", "q",
        ]),
        Route::new(
            M::GET,
            "/thumbnail",
            KeyOrLink,
            render::thumbnail,
            ops::thumbnail,
        )
        .query(&["image_id", "size"]),
        Route::new(
            M::GET,
            "/statistics",
            KeyOrLink,
            images::statistics,
            ops::get_statistics,
        )
        .query(&["image_id", "recompute"]),
        Route::new(
            M::POST,
            "/analyze",
            Key(Write),
            analyze::analyze,
            ops::analyze_image,
        ),
        Route::new(
            M::POST,
            "/segment",
            Key(Write),
            segment::segment,
            ops::segment_image,
        ),
        Route::new(
            M::GET,
            "/images",
            Key(Read),
            catalogue::list,
            ops::list_images,
        )
        .query(&[
            "q",
            "dataset",
            "tag",
            "annotation",
            "owner",
            "dtype",
            "flavour",
            "kind",
            "created_after",
            "created_before",
            "sort",
            "limit",
            "cursor",
        ]),
        Route::new(M::GET, "/tags", Key(Read), catalogue::tags, ops::list_tags)
            .query(&["prefix", "limit", "cursor"]),
        Route::new(
            M::POST,
            "/datasets",
            Key(Write),
            catalogue::create_dataset,
            ops::create_dataset,
        ),
        Route::new(
            M::GET,
            "/datasets",
            Key(Read),
            catalogue::list_datasets,
            ops::list_datasets,
        )
        .query(&["q", "owner", "sort", "limit", "cursor"]),
        Route::new(
            M::GET,
            "/datasets/{id}",
            Key(Read),
            catalogue::get_dataset,
            ops::get_dataset,
        ),
        Route::new(
            M::PATCH,
            "/datasets/{id}",
            Key(Write),
            catalogue::patch_dataset,
            ops::patch_dataset,
        ),
        Route::new(
            M::DELETE,
            "/datasets/{id}",
            Key(Write),
            catalogue::delete_dataset,
            ops::delete_dataset,
        ),
        Route::new(
            M::PUT,
            "/datasets/{id}/images/{image_id}",
            Key(Write),
            catalogue::link_image,
            ops::link_image,
        ),
        Route::new(
            M::DELETE,
            "/datasets/{id}/images/{image_id}",
            Key(Write),
            catalogue::unlink_image,
            ops::unlink_image,
        ),
        Route::new(
            M::GET,
            "/images/{id}",
            KeyOrLink,
            images::get,
            ops::get_image,
        ),
        Route::new(
            M::PATCH,
            "/images/{id}",
            Key(Write),
            images::patch,
            ops::patch_image,
        ),
        Route::new(
            M::DELETE,
            "/images/{id}",
            Key(Write),
            images::delete,
            ops::delete_image,
        ),
        Route::new(
            M::GET,
            "/images/{id}/download",
            KeyOrLink,
            images::download,
            ops::download_image,
        )
        .query(&["format"]),
        Route::new(
            M::GET,
            "/images/{id}/objects",
            KeyOrLink,
            segment::objects,
            ops::list_objects,
        )
        .query(&["format", "offset", "limit"]),
        Route::new(
            M::POST,
            "/images/{id}/links",
            Key(Write),
            images::create_link,
            ops::create_link,
        ),
        Route::new(
            M::GET,
            "/images/{id}/original-metadata",
            KeyOrLink,
            images::original_metadata,
            ops::get_original_metadata,
        ),
        // GET routes answer HEAD too
        Route::new(
            M::GET,
            "/zarr/{id}/{*key}",
            KeyOrLink,
            zarr::zarr_key,
            ops::get_zarr_key,
        ),
        Route::new(M::GET, "/jobs/{id}", Key(Read), jobs::get_job, ops::get_job),
        Route::new(
            M::GET,
            "/admin/users",
            Key(Admin),
            admin::users,
            ops::list_users,
        ),
        Route::new(
            M::POST,
            "/admin/users",
            Key(Admin),
            admin::create_user,
            ops::create_user,
        ),
        Route::new(
            M::GET,
            "/admin/tokens",
            Key(Admin),
            admin::tokens,
            ops::list_tokens,
        )
        .query(&["user"]),
        Route::new(
            M::POST,
            "/admin/tokens",
            Key(Admin),
            admin::create_token,
            ops::create_token,
        ),
        Route::new(
            M::DELETE,
            "/admin/tokens/{id}",
            Key(Admin),
            admin::revoke_token,
            ops::revoke_token,
        ),
        Route::new(
            M::GET,
            "/admin/audit",
            Key(Admin),
            admin::audit,
            ops::list_audit,
        )
        .query(&[
            "user", "action", "kind", "object", "after", "before", "limit", "cursor",
        ]),
        Route::new(M::GET, "/health", Public, images::health, ops::get_health),
        // counts and route templates only, but what a lab does and how much
        // of it is the admins' to see
        Route::new(
            M::GET,
            "/metrics",
            Key(Admin),
            metrics::metrics,
            ops::get_metrics,
        ),
        Route::new(
            M::GET,
            "/openapi.json",
            Public,
            images::openapi,
            ops::get_open_api,
        ),
        // the browser pages and their assets: they hold no data, their
        // scripts call the routes above with the user's key or link
        Route::new(M::GET, "/", Public, pages::index, ops::index_page).query(&["key"]),
        Route::new(M::GET, "/view/{id}", Public, pages::view, ops::viewer_page).query(&["key"]),
        Route::new(M::GET, "/docs", Public, pages::docs, ops::docs_page),
        Route::new(
            M::GET,
            "/assets/common.js",
            Public,
            pages::common_js,
            ops::asset_common_js,
        ),
        Route::new(
            M::GET,
            "/assets/index.js",
            Public,
            pages::index_js,
            ops::asset_index_js,
        ),
        Route::new(
            M::GET,
            "/assets/viewer.js",
            Public,
            pages::viewer_js,
            ops::asset_viewer_js,
        ),
        Route::new(
            M::GET,
            "/assets/docs.js",
            Public,
            pages::docs_js,
            ops::asset_docs_js,
        ),
        Route::new(
            M::GET,
            "/assets/tus.min.js",
            Public,
            pages::tus_js,
            ops::asset_tus_js,
        ),
        Route::new(
            M::GET,
            "/assets/style.css",
            Public,
            pages::style_css,
            ops::asset_style_css,
        ),
    ]
}

/// The service's router: the front door (CORS, signed links, keys) before
/// routing, then each route behind its guard.
pub fn router(app: AppState) -> Router {
    let upload_limit = usize::try_from(app.config.max_upload_bytes).unwrap_or(usize::MAX);
    let timeout = app.config.request_timeout;
    let routed = routes(upload_limit)
        .into_iter()
        .fold(Router::new(), |router, route| {
            let (access, allowed, path) = (route.access, route.query, route.path);
            let deadline = route.timed.then_some(timeout);
            let guarded = route.endpoint.layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    // for the request's log line and metrics
                    if let Some(facts) = req.extensions().get::<Arc<RequestFacts>>() {
                        facts.set_route(path);
                    }
                    guard(access, allowed, deadline, req, next)
                },
            ));
            router.route(route.path, guarded)
        })
        .fallback(images::no_route)
        .with_state(app.clone());
    let cors = Cors::new(&app.config.cors_origins);
    let front = axum::middleware::from_fn(move |req: Request, next: Next| {
        front_door(app.clone(), cors.clone(), req, next)
    });
    // a layer on the router itself would run after routing, too late to
    // take a signed link's prefix off the path
    Router::new()
        .fallback_service(tower::Layer::layer(&front, routed))
        .layer(axum::middleware::from_fn(observe))
}

/// Whether the request's caller may call a route with `access`.
fn admit(access: Access, req: &Request) -> Result<(), ApiError> {
    let caller = req
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| ApiError::internal("no caller: the front door was bypassed"))?;
    match (access, &caller.who) {
        (Access::Public, _) | (Access::KeyOrLink, Who::Link { .. }) => Ok(()),
        (Access::Key(_), Who::Link { image, .. }) => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "a signed link only opens the GET routes of {image} (metadata, slice, render, thumbnail, statistics, download); {} {} needs an API key",
                req.method(),
                req.uri().path()
            ),
            detail: None,
        }),
        (Access::Key(scope), _) => Ok(caller.require(scope)?),
        (Access::KeyOrLink, _) => Ok(caller.require(Scope::Read)?),
    }
}

/// Refuses callers `access` does not admit (401 or 403), query parameters
/// the route does not know (a misspelt `t=1` would otherwise be silently
/// ignored and plane 0 served), and answers 503 when a request takes
/// longer than `deadline` (its work is cancelled with it).
async fn guard(
    access: Access,
    allowed: &'static [&'static str],
    deadline: Option<Duration>,
    req: Request,
    next: Next,
) -> Response {
    let request = format!("{} {}", req.method(), req.uri().path());
    if let Err(refused) = admit(access, &req) {
        refused.log_refusal(&request);
        return refused.into_response();
    }
    let unknown: Vec<String> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| pair.split('=').next())
                .filter(|name| !name.is_empty() && !allowed.contains(name))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if unknown.is_empty() {
        let Some(deadline) = deadline else {
            return next.run(req).await;
        };
        return match tokio::time::timeout(deadline, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!(
                    "the request took longer than {} s (PENTASCOPE_REQUEST_TIMEOUT); \
                     long analyses can run as jobs with \"async\": true",
                    deadline.as_secs()
                ),
                detail: None,
            }
            .into_response(),
        };
    }
    let valid = if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    let refused = ApiError::bad_request(format!(
        "unknown query parameter(s) {} for {request}; valid: {valid}",
        unknown.join(", "),
    ));
    refused.log_refusal(&request);
    refused.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The access rules agree with what each route does: only health, the
    /// API description and the browser pages with their static assets
    /// (which hold no data: their scripts call the data routes with the
    /// user's key) are public, reading routes need `read` (those naming
    /// one image may be opened by its signed link), changing routes need
    /// `write`, and users, keys and metrics need `admin`.
    #[test]
    fn every_route_has_the_access_rule_its_kind_needs() {
        for route in routes(1) {
            let expected = match (route.method.as_str(), route.path) {
                ("GET", "/health" | "/openapi.json") => Access::Public,
                // tus' discovery of the protocol's version and extensions
                ("OPTIONS", "/uploads") => Access::Public,
                ("GET", "/" | "/docs" | "/view/{id}") => Access::Public,
                ("GET", path)
                    if path.starts_with("/assets/")
                        && (path.ends_with(".js") || path.ends_with(".css")) =>
                {
                    Access::Public
                }
                (_, path) if path.starts_with("/admin/") => Access::Key(Scope::Admin),
                ("GET", "/metrics") => Access::Key(Scope::Admin),
                // listings and what is not one image
                (
                    "GET",
                    "/images" | "/jobs/{id}" | "/tags" | "/datasets" | "/datasets/{id}"
                    | "/uploads/{id}",
                ) => Access::Key(Scope::Read),
                ("GET", _) => Access::KeyOrLink,
                _ => Access::Key(Scope::Write),
            };
            assert_eq!(
                route.access, expected,
                "{} {} has the wrong access rule",
                route.method, route.path
            );
        }
    }
}
