//! How the page is served: its files with a strict Content-Security-Policy (media from
//! Icecast's origin only), the public addresses and the station's name from `[ui]`, its logo
//! (sandboxed), and `[ui] enabled = false` (applied by a reload too).

use super::*;
use support::{client, error_name};

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    client().get(server.url(path)).send().await.unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_and_its_files_carry_a_strict_policy() {
    let server = TestServer::start(
        "[ui]\nicecast_url = \"https://radio.example:8443/\"\nmount_extension = \".ogg\"",
    )
    .await;
    for (path, media_type) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/api.js", "text/javascript"),
        ("/ui/chart.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/config.json", "application/json"),
    ] {
        let resp = get(&server, path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            header(&resp, "content-type").starts_with(media_type),
            "{path}"
        );
        let csp = header(&resp, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert!(
            csp.contains("media-src 'self' blob: https://radio.example:8443;"),
            "{path}: {csp}"
        );
        assert!(csp.contains("connect-src 'self';"), "{path}: {csp}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        assert_eq!(header(&resp, "referrer-policy"), "no-referrer");
    }
    let html = get(&server, "/").await.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/ui/app.js\"></script>"));
    assert!(html.contains("<label for=\"login-user\">"));
    // The first paint says jars is being asked; "nothing on air" waits for its answer.
    assert!(html.contains("<p id=\"on-air-checking\" class=\"quiet\">Checking what is on air…</p>"));
    assert!(html.contains("<p id=\"on-air-empty\" class=\"quiet\" hidden>"));
    let config: serde_json::Value = get(&server, "/ui/config.json").await.json().await.unwrap();
    assert_eq!(config["icecast_url"], "https://radio.example:8443");
    assert_eq!(config["relay_url"], serde_json::Value::Null);
    assert_eq!(config["mount_extension"], ".ogg");
    assert_eq!(config["station_name"], serde_json::Value::Null);
    assert_eq!(config["logo"], serde_json::Value::Null);
    assert_eq!(config["webcast"], false);
    assert_eq!(get(&server, "/ui/logo").await.status(), 404, "no logo set");
    let missing = get(&server, "/ui/nothing.js").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(error_name(&missing.text().await.unwrap()), "NotFound");
}

#[tokio::test]
async fn a_disabled_page_is_not_served_until_a_reload_enables_it() {
    let server = TestServer::start("[ui]\nenabled = false").await;
    for path in ["/", "/ui/app.js", "/ui/config.json"] {
        let resp = get(&server, path).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert!(resp.headers().get("content-security-policy").is_none());
        assert_eq!(error_name(&resp.text().await.unwrap()), "NotFound");
    }
    // The API is untouched.
    assert_eq!(get(&server, "/jars/events").await.status(), 200);

    reload(&server, "[ui]\nicecast_url = \"http://127.0.0.1:8000\"");
    assert_eq!(get(&server, "/").await.status(), 200);
    let config: serde_json::Value = get(&server, "/ui/config.json").await.json().await.unwrap();
    assert_eq!(config["icecast_url"], "http://127.0.0.1:8000");

    reload(&server, "[ui]\nenabled = false");
    assert_eq!(get(&server, "/").await.status(), 404);
}

#[tokio::test]
async fn the_station_name_line_and_logo_come_from_ui() {
    let files = tempfile::tempdir().unwrap();
    let logo = files.path().join("logo.svg");
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    std::fs::write(&logo, svg).unwrap();
    let server = TestServer::start(&format!(
        "[ui]\nstation_name = \"Radio Example\"\nstation_description = \"Live every evening\"\n\
         logo = \"{}\"",
        logo.display()
    ))
    .await;
    let config: serde_json::Value = get(&server, "/ui/config.json").await.json().await.unwrap();
    assert_eq!(config["station_name"], "Radio Example");
    assert_eq!(config["station_description"], "Live every evening");
    assert_eq!(config["logo"], "/ui/logo");
    let resp = get(&server, "/ui/logo").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "image/svg+xml");
    let csp = header(&resp, "content-security-policy").to_string();
    // Opened on its own, the SVG runs nothing.
    assert!(csp.ends_with("; sandbox"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(resp.text().await.unwrap(), svg);
}
