//! The station page (`/`, `/ui/…`): how it is served (headers, `[ui] enabled`, reload), and in a
//! real headless Chromium against a real jars (and a real Icecast where streams are involved):
//! logging in, errors in words, going live (with an encoder, and from the page's studio),
//! listener and guest links, the public face, and the admins' tools.

use crate::support;

mod admin;
mod chart;
mod errors;
mod live;
mod served;
mod studio;

use support::browser::{self, Browser};
use support::TestServer;

/// Applies `toml` to the running `server` as SIGHUP does (`jars::setup::reload`).
pub(crate) fn reload(server: &TestServer, toml: &str) {
    let path = server.dir.path().join("reloaded.toml");
    std::fs::write(&path, toml).unwrap();
    let overrides = jars::config::Overrides {
        config: Some(path),
        data_dir: Some(server.dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        database_url: None,
    };
    jars::setup::reload(&server.state, &server.config, &overrides, &|_| Ok(())).unwrap();
}

/// A browser on `server`'s page.
pub(crate) async fn open_page(server: &TestServer) -> Browser {
    browser::require_chromium();
    let b = Browser::start().await;
    b.goto(&server.url("/")).await;
    // The page has started when its first refresh has finished.
    b.wait_text("#updated", "first refresh", |t| t.starts_with("Updated"))
        .await;
    b
}

/// The page's own report of failures (`#alert`), empty when none.
pub(crate) async fn alert(b: &Browser) -> String {
    let v = b
        .run("return document.getElementById('alert').textContent")
        .await;
    v.as_str().unwrap_or_default().to_string()
}
