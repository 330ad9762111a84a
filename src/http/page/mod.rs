//! The station page: plain HTML, CSS and JavaScript files embedded in the binary, served at
//! `/` and under `/ui/` while `[ui] enabled` (checked on every request, so a reload turns it on
//! or off), with a strict Content-Security-Policy. `/ui/config.json` hands the page the public
//! addresses it shows. The page calls the JSON API only: no rule lives here or in its files.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, AppState};

/// Only this origin's files, no inline script or style, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its path, media type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $content_type:expr, $file:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_str!(concat!("files/", $file)),
        }
    };
}

/// Every file of the page.
const ASSETS: [Asset; 8] = [
    asset!("/", HTML, "index.html"),
    asset!("/ui/app.css", CSS, "app.css"),
    asset!("/ui/app.js", JS, "app.js"),
    asset!("/ui/api.js", JS, "api.js"),
    asset!("/ui/dom.js", JS, "dom.js"),
    asset!("/ui/events.js", JS, "events.js"),
    asset!("/ui/admin.js", JS, "admin.js"),
    asset!("/ui/chart.js", JS, "chart.js"),
];

/// The page's routes: one per embedded file, and `/ui/config.json`.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/ui/config.json", get(config));
    for asset in &ASSETS {
        let (content_type, body) = (asset.content_type, asset.body);
        router = router.route(
            asset.path,
            get(move |State(state): State<AppState>| async move {
                serve(&state, || ([(header::CONTENT_TYPE, content_type)], body))
            }),
        );
    }
    router
}

/// `render()` with the page's security headers while the page is enabled; 404 otherwise.
fn serve<R: IntoResponse>(state: &AppState, render: impl FnOnce() -> R) -> Response {
    if !state.api.load().ui.enabled {
        return ApiError::NotFound.into_response();
    }
    let mut resp = render().into_response();
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // A new binary may bring new files: always revalidate (they are small).
        (header::CACHE_CONTROL, "no-cache"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// `GET /ui/config.json`: the public addresses the page shows (`[ui]`), the mount extension
/// the station streams in, and whether listen links go through jars' `/listen` (some
/// `[[icecast.servers]]` entry has a `public_url`).
async fn config(State(state): State<AppState>) -> Response {
    let api = state.api.load();
    let ui = &api.ui;
    let listen = state
        .placement
        .servers()
        .iter()
        .any(|s| s.public_url.is_some());
    serve(&state, || {
        Json(serde_json::json!({
            "icecast_url": ui.icecast_url,
            "relay_url": ui.relay_url,
            "mount_extension": ui.mount_extension,
            "listen": listen,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_served() {
        let served: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        let html = ASSETS[0].body;
        // Scripts import each other by relative path (`./api.js`).
        let mut wanted: Vec<String> = Vec::new();
        for asset in &ASSETS {
            for part in asset.body.split(['"', '\'']) {
                let part = part.trim();
                if let Some(file) = part.strip_prefix("./") {
                    if file.ends_with(".js") {
                        wanted.push(format!("/ui/{file}"));
                    }
                } else if part.starts_with("/ui/") && !part.contains(' ') {
                    wanted.push(part.to_string());
                }
            }
        }
        assert!(html.contains("/ui/app.js") && html.contains("/ui/app.css"));
        for path in &wanted {
            assert!(
                served.contains(&path.as_str()) || path == "/ui/config.json",
                "{path} is referenced but not served"
            );
        }
    }

    #[test]
    fn no_inline_script_or_style_and_nothing_from_elsewhere() {
        for asset in &ASSETS {
            // The SVG namespace is a name, not an address fetched.
            let body = asset.body.replace("'http://www.w3.org/2000/svg'", "");
            for forbidden in ["http://", "https://", "//cdn", " style=\"", "javascript:"] {
                assert!(
                    !body.contains(forbidden),
                    "{} contains {forbidden:?}",
                    asset.path
                );
            }
            for forbidden in ["innerHTML", "outerHTML", "insertAdjacentHTML", "eval("] {
                assert!(
                    !body.contains(forbidden),
                    "{} uses {forbidden} (text goes in with textContent)",
                    asset.path
                );
            }
        }
        let html = ASSETS[0].body;
        assert_eq!(html.matches("<script").count(), 1, "one module script");
        assert!(html.contains("<script type=\"module\" src=\"/ui/app.js\"></script>"));
        assert!(!html.contains("<style"));
    }
}
