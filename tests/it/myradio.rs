//! The MyRadio backend against a real HTTP server on 127.0.0.1:0 that serves the recorded
//! MyRadio response bodies (tests/fixtures/myradio). MyRadio itself cannot run here.

use crate::support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Form, Router};
use jars::tokens::AccessLevel;
use support::{error_name, post_form, TestServer};

const API_KEY: &str = "test-api-key";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/myradio/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// How the fake MyRadio behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Member 123 with this permissions fixture.
    Permissions(&'static str),
    /// Answers with something that is not the MyRadio envelope.
    Garbage,
    /// Answers after this long.
    Slow(Duration),
    /// testcredentials answers this body (then permissions: a standard user).
    Answer(&'static str),
}

#[derive(Clone)]
struct Fake {
    mode: Mode,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn testcredentials(
    State(fake): State<Fake>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> String {
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    fake.seen.lock().unwrap().push(format!(
        "testcredentials key={} ua={ua} user={}",
        q.get("api_key").map(String::as_str).unwrap_or(""),
        form.get("user").map(String::as_str).unwrap_or("")
    ));
    match fake.mode {
        Mode::Garbage => return "<html>502 Bad Gateway</html>".into(),
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Answer(body) => return body.into(),
        Mode::Permissions(_) => {}
    }
    if q.get("api_key").map(String::as_str) != Some(API_KEY) {
        return r#"{"status":"FAIL","payload":"bad api key"}"#.into();
    }
    let good = form.get("user").map(String::as_str) == Some("tmctf501")
        && form.get("pass").map(String::as_str) == Some("right");
    fixture(if good {
        "testcredentials_exists.json"
    } else {
        "testcredentials_notexists.json"
    })
}

async fn permissions(
    State(fake): State<Fake>,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    fake.seen.lock().unwrap().push(format!(
        "permissions id={id} key={}",
        q.get("api_key").map(String::as_str).unwrap_or("")
    ));
    match fake.mode {
        Mode::Permissions(f) => fixture(f),
        Mode::Answer(_) => fixture("getpermissions_user.json"),
        _ => "{}".into(),
    }
}

/// Starts the fake MyRadio and a jars server using it; returns both.
async fn setup(mode: Mode) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/api/v2/auth/testcredentials", post(testcredentials))
        .route("/api/v2/user/{id}/permissions", get(permissions))
        .with_state(Fake {
            mode,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TestServer::start(&format!(
        "[identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"http://{addr}/api/v2/\"\n\
         api_key = \"{API_KEY}\"\ntimeout = \"1s\"\n"
    ))
    .await;
    (server, seen)
}

async fn login(server: &TestServer, user: &str, pass: &str) -> (u16, String) {
    post_form(
        &server.url("/jars/token"),
        &[("user", user), ("password", pass)],
    )
    .await
}

#[tokio::test]
async fn admin_member_gets_an_admin_token() {
    let (server, seen) = setup(Mode::Permissions("getpermissions_admin.json")).await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let claims = server
        .state
        .tokens
        .verify(token["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.sub, 123);
    assert_eq!(claims.access_level, AccessLevel::Admin);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            format!(
                "testcredentials key={API_KEY} ua=JARS/{} user=tmctf501",
                env!("CARGO_PKG_VERSION")
            ),
            format!("permissions id=123 key={API_KEY}"),
        ]
    );
}

#[tokio::test]
async fn standard_member_gets_a_standard_token() {
    let (server, _) = setup(Mode::Permissions("getpermissions_user.json")).await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let claims = server
        .state
        .tokens
        .verify(token["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.access_level, AccessLevel::Standard);
}

#[tokio::test]
async fn member_without_permission_is_403() {
    let (server, _) = setup(Mode::Permissions("getpermissions_none.json")).await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 403);
    assert_eq!(error_name(&body), "NoUserPermissionException");
}

#[tokio::test]
async fn bad_credentials_are_401() {
    let (server, seen) = setup(Mode::Permissions("getpermissions_admin.json")).await;
    let (status, body) = login(&server, "tmctf501", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(error_name(&body), "NoUserException");
    // No permissions lookup for a rejected login.
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_answer_is_502() {
    let (server, _) = setup(Mode::Garbage).await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 502);
    assert_eq!(error_name(&body), "MyRadioServiceFailureException");
}

#[tokio::test]
async fn slow_myradio_is_502_after_the_timeout() {
    // The fake answers after a minute; the test client gives up after 20 s. Only jars' own
    // 1 s timeout can produce this answer.
    let (server, _) = setup(Mode::Slow(Duration::from_secs(60))).await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 502);
    assert_eq!(error_name(&body), "MyRadioServiceFailureException");
}

#[tokio::test]
async fn unreachable_myradio_is_502() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start(&format!(
        "[identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"http://127.0.0.1:{port}/api/v2\"\napi_key = \"k\"\n"
    ))
    .await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 502);
    assert_eq!(error_name(&body), "MyRadioServiceFailureException");
}

/// MyRadio as it answers (issue 29 #6): a `memberid` sent as a string logs in as that member,
/// as the original (which used it as it came); every payload Python finds false is
/// `NoUserException`, as the original's `if not data["payload"]`.
#[tokio::test]
async fn memberid_as_a_string_and_false_payloads_read_as_the_original() {
    let (server, seen) = setup(Mode::Answer(
        r#"{"status":"OK","payload":{"memberid":"101"}}"#,
    ))
    .await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let claims = server
        .state
        .tokens
        .verify_at(
            token["token"].as_str().unwrap(),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    assert_eq!(claims.sub, 101);
    assert_eq!(claims.access_level, AccessLevel::Standard);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.starts_with("permissions id=101")));
    for payload in [
        r#"{"status":"OK","payload":null}"#,
        r#"{"status":"FAIL","payload":false}"#,
        r#"{"status":"OK","payload":{}}"#,
        r#"{"status":"OK","payload":""}"#,
    ] {
        let (server, _) = setup(Mode::Answer(payload)).await;
        let (status, body) = login(&server, "tmctf501", "right").await;
        assert_eq!(
            (status, error_name(&body).as_str()),
            (401, "NoUserException"),
            "{payload}"
        );
    }
    // Not a member and not false: MyRadio is broken, as before.
    let (server, _) = setup(Mode::Answer(
        r#"{"status":"OK","payload":{"memberid":"alice"}}"#,
    ))
    .await;
    let (status, body) = login(&server, "tmctf501", "right").await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (502, "MyRadioServiceFailureException")
    );
}

/// A MyRadio slower than the old 5 s default, and slower than the 10 s other API requests get,
/// still logs the member in with the default `timeout` (30 s): the original waited. Real time:
/// MyRadio is a remote peer, its slowness cannot be put on jars' clock.
#[tokio::test]
async fn a_slow_myradio_is_waited_for_with_the_default_timeout() {
    let api = support::slow_myradio(Duration::from_secs(11)).await;
    let server = TestServer::start(&format!(
        "[identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"{api}\"\napi_key = \"k\"\n"
    ))
    .await;
    let started = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .post(server.url("/jars/token"))
        .form(&[("user", "dj"), ("password", "pw")])
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= Duration::from_secs(11));
}
