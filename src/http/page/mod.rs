//! The station page: plain HTML, CSS and JavaScript files embedded in the binary, served at
//! `/` and under `/ui/` while `[ui] enabled` (checked on every request, so a reload turns it on
//! or off), with a strict Content-Security-Policy. `/ui/config.json` hands the page the public
//! addresses and the station's name it shows, `/ui/logo` the station's logo. The page calls the
//! JSON API and the webcast socket only: no rule lives here or in its files.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, AppState};
use crate::config::UiSettings;

/// Only this origin's files, no inline script or style, no framing, no plugins; media from
/// this origin, from the page's own `blob:` URLs (a DJ's local file), from Icecast's origin
/// (`icecast_url`, where listeners play streams) and from the origins of `servers` (the
/// `public_url`s `/listen` redirects players to).
pub fn content_security_policy(
    ui: &UiSettings,
    servers: &[crate::config::IcecastServer],
) -> String {
    let mut origins: Vec<String> = Vec::new();
    for u in ui
        .icecast_url
        .iter()
        .chain(servers.iter().filter_map(|s| s.public_url.as_ref()))
    {
        if let Ok(u) = url::Url::parse(u) {
            let origin = u.origin().ascii_serialization();
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    let icecast: String = origins.iter().map(|o| format!(" {o}")).collect();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
         media-src 'self' blob:{icecast}; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

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
const ASSETS: [Asset; 11] = [
    asset!("/", HTML, "index.html"),
    asset!("/ui/app.css", CSS, "app.css"),
    asset!("/ui/app.js", JS, "app.js"),
    asset!("/ui/api.js", JS, "api.js"),
    asset!("/ui/dom.js", JS, "dom.js"),
    asset!("/ui/events.js", JS, "events.js"),
    asset!("/ui/admin.js", JS, "admin.js"),
    asset!("/ui/chart.js", JS, "chart.js"),
    asset!("/ui/public.js", JS, "public.js"),
    asset!("/ui/studio.js", JS, "studio.js"),
    asset!("/ui/audio.js", JS, "audio.js"),
];

/// The page's routes: one per embedded file, `/ui/config.json` and `/ui/logo`.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/ui/config.json", get(config))
        .route("/ui/logo", get(logo));
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
    let api = state.api.load();
    if !api.ui.enabled {
        return ApiError::NotFound.into_response();
    }
    let mut resp = render().into_response();
    let headers = resp.headers_mut();
    // Made of validated URLs' origins: always a valid header value.
    let servers = state.placement.servers();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&api.ui, &servers)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    for (name, value) in [
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
/// the station streams in, how the station presents itself, and whether this jars takes
/// webcasts (the page's studio streams through `/webcast`).
async fn config(State(state): State<AppState>) -> Response {
    let api = state.api.load();
    let ui = &api.ui;
    serve(&state, || {
        Json(serde_json::json!({
            "icecast_url": ui.icecast_url,
            // Listen links go through jars' /listen, which picks a server.
            "listen": crate::rules::placement::listens_through_jars(&state.placement.servers()),
            "relay_url": ui.relay_url,
            "mount_extension": ui.mount_extension,
            "station_name": ui.station_name,
            "station_description": ui.station_description,
            "logo": ui.logo.as_ref().map(|_| LOGO_PATH),
            "webcast": state.webcast.enabled(),
        }))
    })
}

/// Where the logo is served.
const LOGO_PATH: &str = "/ui/logo";

/// `GET /ui/logo`: the station's logo (`[ui] logo`), 404 without one. An SVG opened on its own
/// runs nothing: the page's policy forbids inline script, and `sandbox` everything else.
async fn logo(State(state): State<AppState>) -> Response {
    let Some(logo) = state.api.load().ui.logo.clone() else {
        return ApiError::NotFound.into_response();
    };
    let mut resp = serve(&state, || {
        (
            [(header::CONTENT_TYPE, logo.content_type)],
            axum::body::Bytes::from_owner(logo.bytes.clone()),
        )
    });
    if resp.status().is_success() {
        if let Some(csp) = resp.headers().get(header::CONTENT_SECURITY_POLICY).cloned() {
            let mut sandboxed = csp.as_bytes().to_vec();
            sandboxed.extend_from_slice(b"; sandbox");
            if let Ok(v) = HeaderValue::from_bytes(&sandboxed) {
                resp.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
        }
    }
    resp
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
                served.contains(&path.as_str()) || path == "/ui/config.json" || path == LOGO_PATH,
                "{path} is referenced but not served"
            );
        }
    }

    #[test]
    fn media_may_come_from_icecast_and_nothing_else_from_elsewhere() {
        let ui = |icecast: Option<&str>| UiSettings {
            enabled: true,
            icecast_url: icecast.map(str::to_string),
            relay_url: Some("wss://relay.example".into()),
            mount_extension: ".mp3".into(),
            station_name: None,
            station_description: None,
            logo: None,
        };
        let csp = content_security_policy(&ui(Some("https://radio.example:8443/stream")), &[]);
        assert!(
            csp.contains("; media-src 'self' blob: https://radio.example:8443; "),
            "{csp}"
        );
        for directive in csp.split("; ").filter(|d| !d.starts_with("media-src")) {
            assert!(!directive.contains("radio.example"), "{directive}");
            assert!(!directive.contains("relay.example"), "{directive}");
        }
        assert!(content_security_policy(&ui(None), &[]).contains("; media-src 'self' blob:; "));
        assert!(!csp.contains("unsafe"));
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
