//! The whole error table through the router in process (`tower::ServiceExt::oneshot`, no
//! socket): every `ApiError` a route can produce, reached by a real request, answered with
//! its status and `{"error": "Name"}` body. Client addresses are absent here (no
//! `ConnectInfo`), so rate limits count per user name only.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jars::http::{App, AppState};
use jars::identity::UsersFile;
use jars::store::{Event, EventStore, ListFilter, NewEvent, StoreError};
use jars::tokens::{AccessLevel, TicketBinding};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

use crate::api::DownStore;
use crate::support;

/// An app state on the embedded defaults plus `toml`, in a data directory of its own, with
/// the users `owner` (id 1) and `other` (id 2) when the users file is the backend.
async fn state(toml: &str) -> (AppState, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = support::config_in(&dir, toml);
    if let Some(path) = config.users_file() {
        let users = UsersFile::new(path);
        assert_eq!(users.add("owner", "pw", false, 0).unwrap().id, 1);
        assert_eq!(users.add("other", "pw2", false, 0).unwrap().id, 2);
    }
    let state = jars::setup::app_state(&config).await.expect("app state");
    (state, dir)
}

fn post(path: &str, form: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn connect(token: &str, mount: &str) -> Request<Body> {
    post("/jars/connect", &format!("auth={token}&mount={mount}"))
}

/// A store that never answers: a request that reaches it stays in progress for as long as it
/// is polled. (A slow *body* no longer holds a slot: bodies are read before one is taken.)
struct StalledStore;

#[async_trait::async_trait]
impl EventStore for StalledStore {
    async fn create(&self, _: NewEvent) -> Result<Event, StoreError> {
        std::future::pending().await
    }
    async fn get(&self, _: Uuid) -> Result<Option<Event>, StoreError> {
        std::future::pending().await
    }
    async fn list(&self, _: ListFilter) -> Result<Vec<Event>, StoreError> {
        std::future::pending().await
    }
    async fn mark_connected(
        &self,
        _: Uuid,
        _: Option<i64>,
        _: chrono::DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        std::future::pending().await
    }
    async fn mark_disconnected(
        &self,
        _: Uuid,
        _: chrono::DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        std::future::pending().await
    }
    async fn set_max_listeners(&self, _: Uuid, _: Option<u32>) -> Result<bool, StoreError> {
        std::future::pending().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

/// Claims as this node mints them, for user `sub`, changed by `edit`, signed with the node's
/// own private key.
fn signed(dir: &TempDir, sub: i64, edit: impl FnOnce(&mut Value)) -> String {
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": "jars", "aud": "station", "sub": sub, "iat": now, "exp": now + 3600,
        "access_level": "STANDARD_USER",
    });
    edit(&mut claims);
    let pem = std::fs::read(dir.path().join("jwt-private.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

/// Which app a row is sent to.
#[derive(Clone, Copy, Debug)]
enum Node {
    /// Users file, `[tokens] audience`, a tight `/jars/token` limit.
    Main,
    /// Every store operation fails.
    StoreDown,
    /// The MyRadio backend on a port nothing listens on.
    MyRadioDown,
    /// One API request at a time, and one is in progress.
    Busy,
}

#[tokio::test]
async fn every_error_reaches_the_client_with_its_status_and_name() {
    let (main_state, main_dir) = state(
        "[tokens]\naudience = \"station\"\n\
         [limits]\ntoken_per_minute = 1\ntoken_burst = 2",
    )
    .await;
    let main = jars::http::app(main_state.clone(), true);
    let mut down_state = main_state.clone();
    down_state.store = Arc::new(DownStore);
    let store_down = jars::http::app(down_state, true);
    let (myradio_state, _myradio_dir) = state(
        "[identity]\nbackend = \"myradio\"\n\
         [identity.myradio]\napi_url = \"http://127.0.0.1:1\"\napi_key = \"k\"",
    )
    .await;
    let myradio_down = jars::http::app(myradio_state, true);
    let (mut busy_state, _busy_dir) = state("[limits]\nmax_concurrent_requests = 1").await;
    busy_state.store = Arc::new(StalledStore);
    let busy = jars::http::app(busy_state, true);
    let app = |node: Node| -> App {
        match node {
            Node::Main => main.clone(),
            Node::StoreDown => store_down.clone(),
            Node::MyRadioDown => myradio_down.clone(),
            Node::Busy => busy.clone(),
        }
    };

    let tokens = &main_state.tokens;
    let owner = tokens.issue(1, AccessLevel::Standard, None).unwrap().0;
    let other = tokens.issue(2, AccessLevel::Standard, None).unwrap().0;
    let removed = tokens.issue(99, AccessLevel::Standard, None).unwrap().0;
    let created = app(Node::Main)
        .oneshot(post(
            "/jars/create",
            &format!("auth={owner}&title=Show&description=d&private=0"),
        ))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = serde_json::from_slice(
        &axum::body::to_bytes(created.into_body(), 1 << 16)
            .await
            .unwrap(),
    )
    .unwrap();
    let event = created["event_id"].as_str().unwrap().to_string();
    let ticket = tokens
        .issue_ticket(
            event.parse().unwrap(),
            Duration::from_secs(60),
            TicketBinding::default(),
        )
        .unwrap()
        .0;
    // The signature of a valid token, altered in its middle.
    let mut forged = owner.clone().into_bytes();
    let at = forged.len() - 20;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let expired = signed(&main_dir, 1, |c| {
        c["exp"] = json!(Utc::now().timestamp() - 3600)
    });
    let immature = signed(&main_dir, 1, |c| {
        c["nbf"] = json!(Utc::now().timestamp() + 3600)
    });
    let issuer = signed(&main_dir, 1, |c| c["iss"] = json!("someone-else"));
    let audience = signed(&main_dir, 1, |c| c["aud"] = json!("elsewhere"));
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        signed(&main_dir, 1, |_| ()).split('.').nth(1).unwrap()
    );
    let unknown_event = Uuid::new_v4().to_string();
    // `flood` spends its burst of two; the table's next attempt is over the limit.
    for _ in 0..2 {
        let resp = app(Node::Main)
            .oneshot(post("/jars/token", "user=flood&password=x"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // The busy node's one slot is taken by a request waiting on a store that never answers.
    let mut in_progress = std::pin::pin!(app(Node::Busy).oneshot(get("/jars/events")));
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut in_progress)
            .await
            .is_err(),
        "the held request is still in progress"
    );

    let big = "x".repeat(20 * 1024);
    #[rustfmt::skip]
    let table: Vec<(Node, Request<Body>, u16, &str)> = vec![
        (Node::Main, post("/jars/token", "user=owner"), 400, "MissingArgumentError"),
        (Node::Main, post("/jars/connect", &format!("mount={event}")), 400, "MissingArgumentError"),
        (Node::Main, post("/jars/create", &format!("auth={owner}&title=t&description=d&private=perhaps")), 400, "InvalidTextRepresentation"),
        (Node::Main, post("/jars/token", "user=%ff%fe&password=x"), 400, "InvalidArgumentError"),
        (Node::Main, get("/jars/events?all=maybe"), 400, "InvalidArgumentError"),
        (Node::Main, post("/jars/ticket", &format!("auth={owner}&mount={event}&lifetime=0")), 400, "InvalidArgumentError"),
        (Node::Main, connect(&owner, "i-love-lamp"), 400, "InvalidIdentifierException"),
        (Node::Main, connect(&owner, "5e0b9230-086c-106f-a26c-13ff3a8d3880"), 400, "InvalidIdentifierException"),
        (Node::Main, get("/jars/events/not-an-id"), 400, "InvalidIdentifierException"),
        (Node::Main, connect("not-a-jwt", &event), 401, "DecodeError"),
        (Node::Main, connect(&forged, &event), 401, "InvalidSignatureError"),
        (Node::Main, connect(&expired, &event), 401, "ExpiredSignatureError"),
        (Node::Main, connect(&immature, &event), 401, "ImmatureSignatureError"),
        (Node::Main, connect(&issuer, &event), 401, "InvalidIssuerError"),
        (Node::Main, connect(&audience, &event), 401, "InvalidAudienceError"),
        (Node::Main, connect(&alg_none, &event), 401, "InvalidAlgorithmError"),
        (Node::Main, connect(&ticket, &event), 401, "InvalidTokenError"),
        (Node::Main, post("/jars/token", "user=owner&password=wrong"), 401, "NoUserException"),
        (Node::Main, connect(&removed, &event), 401, "NoUserException"),
        (Node::Main, connect(&other, &event), 403, "UnauthorizedConnectionException"),
        (Node::Main, post("/jars/ticket", &format!("auth={other}&mount={event}")), 403, "UnauthorizedConnectionException"),
        (Node::Main, connect(&owner, &unknown_event), 404, "NonExistentOrExpiredEventException"),
        (Node::Main, get(&format!("/jars/events/{unknown_event}")), 404, "NonExistentOrExpiredEventException"),
        (Node::Main, post("/jars/token", "user=flood&password=x"), 429, "TooManyRequests"),
        (Node::Main, post("/jars/create", &format!("auth={owner}&title={big}")), 413, "PayloadTooLarge"),
        (Node::Main, get("/nope"), 404, "NotFound"),
        (Node::StoreDown, connect(&owner, &event), 503, "ServiceUnavailable"),
        (Node::StoreDown, get("/jars/events"), 503, "ServiceUnavailable"),
        (Node::MyRadioDown, post("/jars/token", "user=dj&password=pw"), 502, "MyRadioServiceFailureException"),
        (Node::Busy, get("/jars/events"), 503, "ServiceUnavailable"),
    ];

    for (node, request, status, name) in table {
        let row = format!("{node:?} {} {}", request.method(), request.uri());
        let resp = app(node).oneshot(request).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{row}");
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        match (status, node) {
            (429, _) => assert!(
                matches!(retry_after, Some(1..=60)),
                "{row}: {retry_after:?}"
            ),
            (503, Node::Busy) => assert_eq!(retry_after, Some(1), "{row}"),
            _ => assert_eq!(retry_after, None, "{row}"),
        }
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value =
            serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{row}: not JSON: {body:?}"));
        assert_eq!(body, json!({ "error": name }), "{row}");
    }
}

/// A route asked with a method it does not take: 405 naming the methods it does, with an
/// empty body (axum's answer: no `ApiError` is involved).
#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let (state, _dir) = state("").await;
    let app = jars::http::app(state, true);
    for (request, allow) in [
        (get("/jars/token"), "POST"),
        (post("/jars/events", ""), "GET,HEAD"),
        (get("/icecast/auth"), "POST"),
    ] {
        let row = format!("{} {}", request.method(), request.uri());
        let resp = app.clone().oneshot(request).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{row}");
        assert_eq!(resp.headers()[header::ALLOW], allow, "{row}");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        assert!(body.is_empty(), "{row}: {body:?}");
    }
}
