//! The log as an attacker writes to it: callback fields with newlines and terminal escapes come
//! out escaped (never a forged line), and a flood of callbacks without the credentials writes
//! one warning per period. The server runs on this test's thread (`#[tokio::test]` is
//! single-threaded), so a thread-local subscriber captures everything it logs.

use crate::support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use support::{client, TestServer};

/// Everything logged while the returned guard lives, as text without colours or times.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub(crate) fn start(&self) -> tracing::subscriber::DefaultGuard {
        // With one dispatcher registered, tracing-core asks only the default of whichever
        // thread first hits a callsite (a test without a subscriber: never) and caches that for
        // every thread. A second one, alive for the whole run, makes it ask all of them.
        static SECOND: OnceLock<tracing::Dispatch> = OnceLock::new();
        SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

async fn callback(server: &TestServer, basic: Option<&str>, body: &str) {
    let mut req = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(user) = basic {
        let creds = STANDARD.encode(format!("{user}:wrong"));
        req = req.header("authorization", format!("Basic {creds}"));
    }
    let resp = req.send().await.unwrap();
    assert!(resp.headers().get("icecast-auth-user").is_none(), "denied");
}

/// Every line the log holds starts with its level: nothing a caller sent began a line.
fn assert_lines_are_ours(log: &str) {
    assert!(!log.contains('\x1b'), "raw ESC in the log:\n{log}");
    for line in log.lines() {
        let level = line.trim_start().split(' ').next().unwrap_or_default();
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&level),
            "a line jars did not write: {line:?}\n{log}"
        );
    }
}

#[tokio::test]
async fn a_mount_with_newlines_and_escapes_cannot_forge_a_log_line() {
    let log = Captured::default();
    let _guard = log.start();
    let server = TestServer::start("").await;
    let forged =
        "%2fx%0a%20INFO%20jars%3a%3ahttp%3a%3aapi%3a%20connect%20approved%20member%3d1%1b%5b2K";
    let body = format!(
        "action=listener_add&mount={forged}&ip=10%2e0%2e0%2e1%0aINFO%20fake&server=x&port=1\
         &client=1&user=&pass=&agent=a"
    );
    callback(&server, None, &body).await;
    let text = log.text();
    assert!(text.contains("denied"), "the denial is logged:\n{text}");
    assert!(
        text.contains(r"mount=/x\n INFO jars::http::api: connect approved member=1\x1b[2K"),
        "the mount is logged escaped:\n{text}"
    );
    assert!(text.contains(r"client=10.0.0.1\nINFO fake"), "{text}");
    assert_lines_are_ours(&text);
}

#[tokio::test]
async fn callers_without_credentials_are_warned_of_once_per_period_and_all_counted() {
    let log = Captured::default();
    let _guard = log.start();
    let server =
        TestServer::start("[icecast]\nusername = \"icecast\"\npassword = \"secret\"\n").await;
    let body = "action=listener_add&mount=%2flive&ip=1&server=x&port=1&client=1";
    for _ in 0..3 {
        callback(&server, Some("evil\nWARN forged\x1b[2K"), body).await;
    }
    let warnings = |text: &str| {
        text.matches("without the configured Icecast credentials")
            .count()
    };
    let text = log.text();
    assert_eq!(warnings(&text), 1, "{text}");
    assert!(
        text.contains(r"caller_user=evil\nWARN forged\x1b[2K"),
        "{text}"
    );
    assert_lines_are_ours(&text);
    let counted = || support::bad_callers(&server);
    assert_eq!(counted(), 3, "the metric counts every one");

    // A period later, one more line, with the count of those held back.
    server.clock.advance(Duration::from_secs(10));
    callback(&server, None, body).await;
    let text = log.text();
    assert_eq!(warnings(&text), 2, "{text}");
    assert!(text.contains("suppressed=2"), "{text}");
    assert_eq!(counted(), 4);
}
