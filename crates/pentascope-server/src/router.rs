//! Every route in one table, [`routes`]: its method, path, the query
//! parameters it accepts and its handler. The router is built from the
//! table, unknown query parameters are refused with the valid ones named,
//! and a test checks the table against `openapi.json`.

use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::handlers::{analyze, images, jobs, slice, upload};
use crate::AppState;

/// One route.
pub struct Route {
    /// Its method.
    pub method: Method,
    /// Its path, with `{name}` for path parameters.
    pub path: &'static str,
    /// The query parameters it accepts; any other is a 400.
    pub query: &'static [&'static str],
    /// Whether the request timeout applies (not to uploads, which take as
    /// long as their client sends).
    timed: bool,
    endpoint: MethodRouter<AppState>,
}

impl Route {
    fn new<H, T>(method: Method, path: &'static str, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        Route {
            method,
            path,
            query: &[],
            timed: true,
            endpoint: on(filter, handler),
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
    vec![
        Route::new(Method::POST, "/upload", upload::upload)
            .query(&["axes"])
            .upload(upload_limit),
        Route::new(Method::GET, "/metadata", images::metadata).query(IMAGE),
        Route::new(Method::GET, "/slice", slice::slice).query(&[
            "image_id", "z", "time", "channel", "min", "max", "auto", "bits", "format",
        ]),
        Route::new(Method::GET, "/statistics", images::statistics)
            .query(&["image_id", "recompute"]),
        Route::new(Method::POST, "/analyze", analyze::analyze),
        Route::new(Method::GET, "/images", images::list),
        Route::new(Method::GET, "/images/{id}", images::get),
        Route::new(Method::DELETE, "/images/{id}", images::delete),
        Route::new(Method::GET, "/images/{id}/download", images::download).query(&["format"]),
        Route::new(Method::GET, "/jobs/{id}", jobs::get_job),
        Route::new(Method::GET, "/health", images::health),
        Route::new(Method::GET, "/openapi.json", images::openapi),
    ]
}

/// The service's router.
pub fn router(app: AppState) -> Router {
    let upload_limit = usize::try_from(app.config.max_upload_bytes).unwrap_or(usize::MAX);
    let timeout = app.config.request_timeout;
    routes(upload_limit)
        .into_iter()
        .fold(Router::new(), |router, route| {
            let allowed = route.query;
            let deadline = route.timed.then_some(timeout);
            let guarded = route.endpoint.layer(axum::middleware::from_fn(
                move |req: Request, next: Next| guard(allowed, deadline, req, next),
            ));
            router.route(route.path, guarded)
        })
        .fallback(images::no_route)
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// Refuses query parameters the route does not know (a misspelt `t=1`
/// would otherwise be silently ignored and plane 0 served), and answers 503
/// when a request takes longer than `deadline` (its work is cancelled with
/// it).
async fn guard(
    allowed: &'static [&'static str],
    deadline: Option<Duration>,
    req: Request,
    next: Next,
) -> Response {
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
    ApiError::bad_request(format!(
        "unknown query parameter(s) {} for {} {}; valid: {valid}",
        unknown.join(", "),
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route, with each of its query parameters, is in the OpenAPI
    /// document, and the document has no route the router lacks.
    #[test]
    fn openapi_documents_every_route_and_query_parameter() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
        let routes = routes(1);
        for route in &routes {
            let method = route.method.as_str().to_ascii_lowercase();
            let op = &doc["paths"][route.path][&method];
            assert!(
                op.is_object(),
                "{} {} is not documented",
                route.method,
                route.path
            );
            let documented: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .chain(doc["paths"][route.path]["parameters"].as_array())
                .flatten()
                .filter_map(|p| match p["$ref"].as_str() {
                    Some(r) => {
                        let name = r.rsplit('/').next()?;
                        doc["components"]["parameters"][name]["name"]
                            .as_str()
                            .map(str::to_string)
                    }
                    None => p["name"].as_str().map(str::to_string),
                })
                .collect();
            for name in route.query {
                assert!(
                    documented.iter().any(|d| d == name),
                    "{} {}: query parameter {name} is not documented",
                    route.method,
                    route.path
                );
            }
        }
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    routes
                        .iter()
                        .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method)),
                    "openapi.json documents {method} {path}, which no route serves"
                );
            }
        }
    }
}
