//! The browser pages (`/`, `/view/{id}`, `/docs`) and their scripts and
//! style sheet, compiled into the binary: no file, CDN or npm is needed
//! to serve them. The pages hold no data; their scripts call the API with
//! the user's key (or under the signed link the page was opened with).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Content-Security-Policy of every page: scripts, styles, images and API
/// calls from this service only (images also as `blob:` URLs made from
/// authenticated fetches), nothing inline.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; \
                   style-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'self'";

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // the assets change with the binary; revalidation is cheap
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the images as thumbnails, and an upload form.
pub async fn index() -> Response {
    page(include_str!("../../assets/index.html"))
}

/// `GET /view/{id}`: the viewer (the id is read by its script from the
/// address, so any id answers the page; the API says whether it exists).
pub async fn view() -> Response {
    page(include_str!("../../assets/view.html"))
}

/// `GET /docs`: the API reference, rendered from `/openapi.json`.
pub async fn docs() -> Response {
    page(include_str!("../../assets/docs.html"))
}

const JS: &str = "text/javascript; charset=utf-8";

/// `GET /assets/common.js`: keys, links and API calls shared by the pages.
pub async fn common_js() -> Response {
    asset(JS, include_str!("../../assets/common.js"))
}

/// `GET /assets/index.js`.
pub async fn index_js() -> Response {
    asset(JS, include_str!("../../assets/index.js"))
}

/// `GET /assets/viewer.js`.
pub async fn viewer_js() -> Response {
    asset(JS, include_str!("../../assets/viewer.js"))
}

/// `GET /assets/docs.js`.
pub async fn docs_js() -> Response {
    asset(JS, include_str!("../../assets/docs.js"))
}

/// `GET /assets/tus.min.js`: tus-js-client's browser bundle, vendored
/// (`assets/vendor/update.sh`), for the upload form's resumable uploads.
pub async fn tus_js() -> Response {
    asset(JS, include_str!("../../assets/tus.min.js"))
}

/// `GET /assets/style.css`.
pub async fn style_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/style.css"),
    )
}

#[cfg(test)]
mod tests {
    const PAGES: [(&str, &str); 3] = [
        ("index.html", include_str!("../../assets/index.html")),
        ("view.html", include_str!("../../assets/view.html")),
        ("docs.html", include_str!("../../assets/docs.html")),
    ];
    const SCRIPTS: [(&str, &str); 5] = [
        ("common.js", include_str!("../../assets/common.js")),
        ("index.js", include_str!("../../assets/index.js")),
        ("viewer.js", include_str!("../../assets/viewer.js")),
        ("docs.js", include_str!("../../assets/docs.js")),
        ("style.css", include_str!("../../assets/style.css")),
    ];

    /// Every script and style sheet a page loads is a route of the
    /// router, and nothing is loaded from elsewhere (the pages work
    /// offline, under the Content-Security-Policy they are sent with).
    #[test]
    fn pages_load_only_their_own_assets() {
        let routes: Vec<&str> = crate::router::routes(1).iter().map(|r| r.path).collect();
        for (name, html) in PAGES {
            for attr in ["src=\"", "href=\""] {
                for piece in html.split(attr).skip(1) {
                    let target = piece.split('"').next().unwrap();
                    if let Some(asset) = target.rsplit_once("assets/").map(|(_, a)| a) {
                        let path = format!("/assets/{asset}");
                        assert!(routes.contains(&path.as_str()), "{name}: {target}");
                    }
                    assert!(
                        !target.starts_with("http") && !target.starts_with("//"),
                        "{name} loads {target} from elsewhere"
                    );
                }
            }
            assert!(
                !html.contains("style=\""),
                "{name}: inline styles break the CSP"
            );
            assert!(
                !html.contains("<script>") && !html.contains("<style"),
                "{name}: inline scripts and styles break the CSP"
            );
        }
        for (name, text) in SCRIPTS {
            for scheme in ["http://", "https://"] {
                assert!(
                    !text
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("//"))
                        .any(|l| l.contains(scheme) && !l.contains("(?:https?:")),
                    "{name} mentions {scheme}: the pages must not fetch from elsewhere"
                );
            }
        }
    }
}
