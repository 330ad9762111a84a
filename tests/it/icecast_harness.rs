//! Self-test of the real-Icecast harness (`tests/it/support/icecast.rs`) and proof that the
//! example configuration (`icecast-examples/icecast.xml`) sends Icecast 2.4.4's URL-auth
//! callbacks for event mounts, and only for them.
//!
//! A minimal responder stands in for jars: it records every callback and allows
//! everything, except a listener or source whose password is "deny"; a listener with
//! password "timelimit" is allowed with `icecast-auth-timelimit: 3`.

use crate::support;

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use support::icecast::{self, Icecast};
use uuid::Uuid;

const CALLBACK_USER: &str = "icecast-test";
// Characters that need escaping in XML and a colon: Basic splits at the first one.
const CALLBACK_PASSWORD: &str = "cb s3cret&<pw>:x";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Callback {
    authorization: Option<String>,
    fields: Vec<(String, String)>,
}

impl Callback {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn action(&self) -> &str {
        self.get("action").unwrap_or_default()
    }

    fn is(&self, action: &str, mount: &str) -> bool {
        self.action() == action && self.get("mount") == Some(mount)
    }
}

type Calls = Arc<Mutex<Vec<Callback>>>;

struct Responder {
    url: String,
    calls: Calls,
}

impl Responder {
    async fn start() -> Responder {
        let calls: Calls = Arc::default();
        let app = Router::new()
            .route("/icecast/auth", post(answer))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Responder {
            url: format!("http://{addr}/icecast/auth"),
            calls,
        }
    }

    fn calls(&self) -> Vec<Callback> {
        self.calls.lock().unwrap().clone()
    }

    /// Index and copy of the first callback matching `pred`, waiting up to `timeout`.
    async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Callback) -> bool,
    ) -> (usize, Callback) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.calls().into_iter().enumerate().find(|(_, c)| pred(c)) {
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "no {what} callback within {timeout:?}; callbacks seen: {:#?}",
                    self.calls()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(State(calls): State<Calls>, headers: HeaderMap, body: Bytes) -> HeaderMap {
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).expect("callback body is a form");
    let callback = Callback {
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
        fields,
    };
    let mut reply = HeaderMap::new();
    match callback.get("pass") {
        Some("deny") => {
            reply.insert(
                "icecast-auth-message",
                HeaderValue::from_static("denied-by-test-responder"),
            );
        }
        Some("timelimit") => {
            reply.insert("icecast-auth-user", HeaderValue::from_static("1"));
            reply.insert("icecast-auth-timelimit", HeaderValue::from_static("3"));
        }
        _ => {
            reply.insert("icecast-auth-user", HeaderValue::from_static("1"));
        }
    }
    calls.lock().unwrap().push(callback);
    reply
}

async fn setup() -> (Responder, Icecast) {
    icecast::require_icecast();
    let responder = Responder::start().await;
    let icecast = Icecast::start(&responder.url, CALLBACK_USER, CALLBACK_PASSWORD);
    (responder, icecast)
}

fn event_mount(extension: &str) -> String {
    format!("/{}{extension}", Uuid::new_v4())
}

/// (a) starts from the example config (as root: as another user), (b) source accepted
/// after stream_auth then mount_add, (c) listener gets audio; listener_add carries the
/// query string and the Referer, listener_remove the duration, (g) every callback
/// carries the configured Basic credentials, (h) stopping the source: mount_remove.
#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_and_listener_lifecycle() {
    let (responder, icecast) = setup().await;
    let port = icecast.port;

    // (a) Icecast dropped root privileges through the <changeowner> the harness added.
    if icecast::running_as_root() {
        let proc_dir = format!("/proc/{}", icecast.pid());
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let uid = std::fs::metadata(&proc_dir).unwrap().uid();
            if uid != 0 {
                break;
            }
            assert!(Instant::now() < deadline, "icecast2 still runs as root");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // (b)
    let mount = event_mount(".mp3");
    let source = icecast::start_source(port, &mount, "dj", "dj-token").await;
    assert_eq!(source.status(), 200, "source: {}", source.status_line());
    assert!(
        source.got_continue,
        "Expect: 100-continue is answered with 100 first"
    );
    eprintln!("source PUT {mount}: {}", source.status_line());
    let (auth_at, auth) = responder
        .wait_for("stream_auth", WAIT, |c| c.is("stream_auth", &mount))
        .await;
    assert_eq!(auth.get("user"), Some("dj"));
    assert_eq!(auth.get("pass"), Some("dj-token"));
    assert_eq!(auth.get("admin"), None);
    let (add_at, _) = responder
        .wait_for("mount_add", WAIT, |c| c.is("mount_add", &mount))
        .await;
    assert!(auth_at < add_at, "stream_auth comes before mount_add");

    // (c)
    let listener_uri = format!("{mount}?token=abc.def&x=1");
    let referer = "http://player.example/p?a=1";
    let heard = icecast::listen_with_headers(
        port,
        &listener_uri,
        None,
        &[("Referer", referer)],
        1000,
        WAIT,
    )
    .await;
    assert_eq!(heard.status, 200);
    assert_eq!(heard.head.header("content-type"), Some("audio/mpeg"));
    assert!(heard.bytes >= 1000, "listener got {} bytes", heard.bytes);
    let (_, added) = responder
        .wait_for("listener_add", WAIT, |c| {
            c.is("listener_add", &listener_uri)
        })
        .await;
    assert_eq!(added.get("ClientHeader.referer"), Some(referer));
    assert_eq!(added.get("user"), Some(""));
    assert_eq!(added.get("ip"), Some("127.0.0.1"));
    let client = added.get("client").expect("client id").to_string();
    let (_, removed) = responder
        .wait_for("listener_remove", WAIT, |c| {
            c.action() == "listener_remove" && c.get("client") == Some(client.as_str())
        })
        .await;
    assert_eq!(removed.get("mount"), Some(listener_uri.as_str()));
    let duration: u64 = removed.get("duration").expect("duration").parse().unwrap();
    assert!(duration < 10, "duration {duration}");

    // (h)
    source.stop().await;
    responder
        .wait_for("mount_remove", WAIT, |c| c.is("mount_remove", &mount))
        .await;

    // (g)
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{CALLBACK_USER}:{CALLBACK_PASSWORD}"))
    );
    let calls = responder.calls();
    assert!(calls.len() >= 5, "{calls:#?}");
    for call in &calls {
        assert_eq!(
            call.authorization.as_deref(),
            Some(expected.as_str()),
            "{call:?}"
        );
        assert_eq!(
            call.get("port"),
            Some(port.to_string().as_str()),
            "{call:?}"
        );
    }
    assert!(
        icecast.access_log().contains(&mount),
        "access log names the mount"
    );
}

/// (d) a listener the responder denies gets 401; the denial reason reaches the error log.
#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_listener_gets_401() {
    let (responder, icecast) = setup().await;
    let mount = event_mount("");
    let source = icecast::start_source(icecast.port, &mount, "dj", "dj-token").await;
    assert_eq!(source.status(), 200);

    let denied =
        icecast::listen(icecast.port, &mount, Some(("listener", "deny")), 1000, WAIT).await;
    assert_eq!(denied.status, 401, "{:?}", denied.head);
    let (_, asked) = responder
        .wait_for("listener_add", WAIT, |c| c.is("listener_add", &mount))
        .await;
    assert_eq!(asked.get("user"), Some("listener"));
    assert_eq!(asked.get("pass"), Some("deny"));

    let allowed =
        icecast::listen(icecast.port, &mount, Some(("listener", "fine")), 1000, WAIT).await;
    assert_eq!(allowed.status, 200);
    assert!(allowed.bytes >= 1000);

    let deadline = Instant::now() + WAIT;
    while !icecast.error_log().contains("denied-by-test-responder") {
        assert!(
            Instant::now() < deadline,
            "denial reason not in error log:\n{}",
            icecast.error_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A source the responder denies gets 401, and the mount never starts.
#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_source_gets_401() {
    let (responder, icecast) = setup().await;
    let mount = event_mount(".ogg");
    let source = icecast::start_source(icecast.port, &mount, "dj", "deny").await;
    assert_eq!(source.status(), 401, "{}", source.status_line());
    assert!(!source.got_continue);
    responder
        .wait_for("stream_auth", WAIT, |c| c.is("stream_auth", &mount))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !responder.calls().iter().any(|c| c.action() == "mount_add"),
        "{:#?}",
        responder.calls()
    );
}

/// (e) `icecast-auth-timelimit: 3` makes Icecast cut the listener off after ~3 s.
#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelimit_disconnects_listener() {
    let (responder, icecast) = setup().await;
    let mount = event_mount(".mp3");
    let source = icecast::start_source(icecast.port, &mount, "dj", "dj-token").await;
    assert_eq!(source.status(), 200);

    let listener =
        icecast::open_listener(icecast.port, &mount, Some(("listener", "timelimit"))).await;
    assert_eq!(listener.status(), 200);
    let closed_after = listener
        .wait_closed(Duration::from_secs(15))
        .await
        .expect("Icecast did not disconnect the listener");
    eprintln!("timelimit 3 s: Icecast closed the listener after {closed_after:?}");
    assert!(
        closed_after >= Duration::from_secs(2) && closed_after <= Duration::from_secs(8),
        "disconnected after {closed_after:?}"
    );
    assert!(listener.bytes() >= 1000, "got {} bytes", listener.bytes());
    responder
        .wait_for("listener_remove", WAIT, |c| {
            c.is("listener_remove", &mount) && c.get("pass") == Some("timelimit")
        })
        .await;
    assert!(source.is_streaming());
}

/// (f) the event-mount pattern does not catch Icecast's web pages, files, admin pages, or
/// mounts that are not event mounts; a listener of an event mount with no source still
/// asks (positive control), then gets 404.
#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_admin_and_other_mounts_trigger_no_callback() {
    let (responder, icecast) = setup().await;
    let port = icecast.port;
    for page in [
        "/",
        "/status.xsl",
        "/status-json.xsl",
        "/server_version.xsl",
        "/style.css",
        "/icecast.png",
    ] {
        let (status, _) = icecast::get_page(port, page, None).await;
        assert_eq!(status, 200, "{page}");
    }
    let admin = Some((icecast::ADMIN_USER, icecast::ADMIN_PASSWORD));
    let (status, stats) = icecast::get_page(port, "/admin/stats", admin).await;
    assert_eq!(status, 200);
    assert!(stats.contains("<icestats>"), "{stats}");
    let (status, _) = icecast::get_page(port, "/admin/listmounts", admin).await;
    assert_eq!(status, 200);
    let (status, _) = icecast::get_page(port, "/admin/stats", None).await;
    assert_eq!(status, 401);

    // A mount that is not an event mount: Icecast's own source password, no jars.
    let other = icecast::start_source(port, "/live", "source", icecast::SOURCE_PASSWORD).await;
    assert_eq!(other.status(), 200, "{}", other.status_line());
    let heard = icecast::listen(port, "/live", None, 1000, WAIT).await;
    assert_eq!(heard.status, 200);
    assert!(heard.bytes >= 1000);
    other.stop().await;

    // Positive control: an event mount is asked about even when nobody streams to it.
    let control = event_mount(".mp3");
    let missing = icecast::listen(port, &control, None, 1000, WAIT).await;
    assert_eq!(missing.status, 404);
    responder
        .wait_for("listener_add", WAIT, |c| c.is("listener_add", &control))
        .await;
    responder
        .wait_for("listener_remove", WAIT, |c| {
            c.is("listener_remove", &control)
        })
        .await;
    // Callbacks go out one at a time in order; by now any for the pages would have come.
    let unexpected: Vec<Callback> = responder
        .calls()
        .into_iter()
        .filter(|c| c.get("mount") != Some(control.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected callbacks: {unexpected:#?}"
    );
}
