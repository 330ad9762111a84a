//! The JARS API through a real server on 127.0.0.1:0: every row of the error table, the full
//! create/connect flow, event visibility, and token compatibility checked by an independent
//! RS256 implementation (openssl).

use crate::support;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jars::store::{Event, EventStore, ListFilter, NewEvent, StoreError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::{client, error_name, post_form, TestServer};
use uuid::Uuid;

/// Signs arbitrary claims with the server's own private key.
fn sign_with_server_key(server: &TestServer, claims: &Value) -> String {
    let pem = std::fs::read(server.data_path("jwt-private.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn now() -> i64 {
    Utc::now().timestamp()
}

fn claims(sub: i64) -> Value {
    json!({"iss": "jars", "sub": sub, "iat": now(), "exp": now() + 3600, "access_level": "STANDARD_USER"})
}

async fn connect(server: &TestServer, token: &str, mount: &str) -> (u16, String) {
    post_form(
        &server.url("/jars/connect"),
        &[("auth", token), ("mount", mount)],
    )
    .await
}

#[tokio::test]
async fn full_flow_owner_other_admin() {
    let server = TestServer::start("").await;
    let alice = server.add_user("alice", "alice-pw", false);
    let _bob = server.add_user("bob", "bob-pw", false);
    let admin = server.add_user("root", "root-pw", true);
    let t_alice = server.login("alice", "alice-pw").await;
    let t_bob = server.login("bob", "bob-pw").await;
    let t_admin = server.login("root", "root-pw").await;

    let event = server.create_event(&t_alice, "Breakfast", false).await;
    assert_eq!(Uuid::parse_str(&event).unwrap().get_version_num(), 4);

    let (status, body) = connect(&server, &t_alice, &event).await;
    assert_eq!((status, body.as_str()), (202, ""), "owner connects");
    let (status, body) = connect(&server, &t_bob, &event).await;
    assert_eq!(status, 403);
    assert_eq!(error_name(&body), "UnauthorizedConnectionException");
    // webcaster-relay sends the mount without a slash; a leading slash is accepted too.
    let (status, _) = connect(&server, &t_admin, &format!("/{event}")).await;
    assert_eq!(status, 202, "admin connects");

    let list: Value = client()
        .get(server.url("/jars/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == event.as_str())
        .expect("event listed");
    assert_eq!(row["connected"], true);
    assert_eq!(row["connected_by"], admin);
    assert_eq!(row["created_by"], alice);
    assert_eq!(row["title"], "Breakfast");
    assert_eq!(row["private"], false);
    for field in ["description", "created_time", "expires_time"] {
        assert!(!row[field].is_null(), "{field} present");
    }
    let expires = row["expires_time"].as_i64().unwrap() - row["created_time"].as_i64().unwrap();
    assert_eq!(expires, 10 * 24 * 3600, "default event lifetime");
}

#[tokio::test]
async fn error_table_rows() {
    let server = TestServer::start("[limits]\ntoken_per_minute = 600\ntoken_burst = 100").await;
    let owner = server.add_user("owner", "pw", false);
    server.add_user("other", "pw2", false);
    let t_owner = server.login("owner", "pw").await;
    let t_other = server.login("other", "pw2").await;
    let event = server.create_event(&t_owner, "Show", false).await;
    let url = |p: &str| server.url(p);

    let check = |(status, body): (u16, String), want_status: u16, want_name: &str| {
        assert_eq!(status, want_status, "{want_name}: {body}");
        assert_eq!(error_name(&body), want_name);
    };

    // 400s
    check(
        post_form(&url("/jars/token"), &[("user", "owner")]).await,
        400,
        "MissingArgumentError",
    );
    check(
        post_form(&url("/jars/connect"), &[("mount", event.as_str())]).await,
        400,
        "MissingArgumentError",
    );
    check(
        post_form(
            &url("/jars/create"),
            &[
                ("auth", t_owner.as_str()),
                ("title", "t"),
                ("description", "d"),
                ("private", "perhaps"),
            ],
        )
        .await,
        400,
        "InvalidTextRepresentation",
    );
    check(
        connect(&server, &t_owner, "i-love-lamp").await,
        400,
        "InvalidIdentifierException",
    );
    // A valid UUID that is not version 4.
    check(
        connect(&server, &t_owner, "5e0b9230-086c-106f-a26c-13ff3a8d3880").await,
        400,
        "InvalidIdentifierException",
    );

    // 401s: token rejections, named as PyJWT names them.
    check(
        connect(&server, "not-a-jwt", &event).await,
        401,
        "DecodeError",
    );
    let foreign = TestServer::start("").await;
    foreign.add_user("owner", "pw", false);
    let t_foreign = foreign.login("owner", "pw").await;
    check(
        connect(&server, &t_foreign, &event).await,
        401,
        "InvalidSignatureError",
    );
    let mut expired = claims(owner);
    expired["exp"] = json!(now() - 3600);
    check(
        connect(&server, &sign_with_server_key(&server, &expired), &event).await,
        401,
        "ExpiredSignatureError",
    );
    let mut immature = claims(owner);
    immature["nbf"] = json!(now() + 3600);
    check(
        connect(&server, &sign_with_server_key(&server, &immature), &event).await,
        401,
        "ImmatureSignatureError",
    );
    let mut issuer = claims(owner);
    issuer["iss"] = json!("someone-else");
    check(
        connect(&server, &sign_with_server_key(&server, &issuer), &event).await,
        401,
        "InvalidIssuerError",
    );
    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(owner).to_string())
    );
    check(
        connect(&server, &none_token, &event).await,
        401,
        "InvalidAlgorithmError",
    );
    check(
        post_form(
            &url("/jars/token"),
            &[("user", "owner"), ("password", "wrong")],
        )
        .await,
        401,
        "NoUserException",
    );
    check(
        post_form(
            &url("/jars/token"),
            &[("user", "nobody"), ("password", "pw")],
        )
        .await,
        401,
        "NoUserException",
    );

    // 403 and 404
    check(
        connect(&server, &t_other, &event).await,
        403,
        "UnauthorizedConnectionException",
    );
    check(
        connect(&server, &t_owner, &Uuid::new_v4().to_string()).await,
        404,
        "NonExistentOrExpiredEventException",
    );

    // 413: bodies over 16 KiB.
    let big = "x".repeat(20 * 1024);
    let (status, _) = post_form(
        &url("/jars/create"),
        &[("auth", t_owner.as_str()), ("title", big.as_str())],
    )
    .await;
    assert_eq!(status, 413);
    // Non-UTF-8 form values are a 400, not mangled text.
    let resp = client()
        .post(url("/jars/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=%ff%fe&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn audience_is_enforced_when_configured() {
    let server = TestServer::start("[tokens]\naudience = \"station\"").await;
    let id = server.add_user("a", "pw", false);
    // Tokens minted here carry the audience and are accepted.
    let token = server.login("a", "pw").await;
    let event = server.create_event(&token, "t", false).await;
    let mut other = claims(id);
    other["aud"] = json!("elsewhere");
    let (status, body) = connect(&server, &sign_with_server_key(&server, &other), &event).await;
    assert_eq!(status, 401);
    assert_eq!(error_name(&body), "InvalidAudienceError");
}

#[tokio::test]
async fn token_endpoint_is_rate_limited() {
    let server = TestServer::start("[limits]\ntoken_per_minute = 10\ntoken_burst = 3").await;
    server.add_user("dj", "pw", false);
    for _ in 0..3 {
        let (status, _) = post_form(
            &server.url("/jars/token"),
            &[("user", "dj"), ("password", "bad")],
        )
        .await;
        assert_eq!(status, 401);
    }
    let retry = support::refused_as_too_many(
        &server.url("/jars/token"),
        &[("user", "dj"), ("password", "pw")],
    )
    .await;
    assert!((1..=60).contains(&retry), "retry-after {retry}");
}

/// A store that is down: every call fails.
pub(crate) struct DownStore;

#[async_trait::async_trait]
impl EventStore for DownStore {
    async fn create(&self, _: NewEvent) -> Result<Event, StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
    async fn get(&self, _: Uuid) -> Result<Option<Event>, StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
    async fn list(&self, _: ListFilter) -> Result<Vec<Event>, StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
    async fn mark_connected(
        &self,
        _: Uuid,
        _: Option<i64>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
    async fn mark_disconnected(&self, _: Uuid, _: DateTime<Utc>) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
    async fn set_max_listeners(&self, _: Uuid, _: Option<u32>) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            "connection refused (secret internals)".into(),
        ))
    }
}

#[tokio::test]
async fn store_failure_is_503_without_internals() {
    let healthy = TestServer::start("").await;
    healthy.add_user("dj", "pw", false);
    let token = healthy.login("dj", "pw").await;
    let mut state = healthy.state.clone();
    state.store = Arc::new(DownStore);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(jars::http::run(listener, state, std::future::pending()));
    let base = format!("http://{addr}");

    let (status, body) = post_form(
        &format!("{base}/jars/create"),
        &[
            ("auth", token.as_str()),
            ("title", "t"),
            ("description", "d"),
            ("private", "0"),
        ],
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body, r#"{"error":"ServiceUnavailable"}"#);
    let (status, body) = post_form(
        &format!("{base}/jars/connect"),
        &[
            ("auth", token.as_str()),
            ("mount", &Uuid::new_v4().to_string()),
        ],
    )
    .await;
    assert_eq!(status, 503);
    assert!(!body.contains("secret"));
    let resp = client()
        .get(format!("{base}/jars/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    // Token minting does not need the store.
    let (status, _) = post_form(
        &format!("{base}/jars/token"),
        &[("user", "dj"), ("password", "pw")],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn event_visibility() {
    let server = TestServer::start("").await;
    server.add_user("owner", "pw", false);
    server.add_user("other", "pw", false);
    server.add_user("admin", "pw", true);
    let t_owner = server.login("owner", "pw").await;
    let t_other = server.login("other", "pw").await;
    let t_admin = server.login("admin", "pw").await;
    let public = server.create_event(&t_owner, "public", false).await;
    let private = server.create_event(&t_owner, "private", true).await;

    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |path: String, token: Option<String>| {
        let mut req = client().get(server.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };

    let anon = ids(get("/jars/events".into(), None).await.json().await.unwrap());
    assert!(anon.contains(&public) && !anon.contains(&private));
    let other = ids(get("/jars/events".into(), Some(t_other.clone()))
        .await
        .json()
        .await
        .unwrap());
    assert!(other.contains(&public) && !other.contains(&private));
    let owner = ids(get("/jars/events".into(), Some(t_owner.clone()))
        .await
        .json()
        .await
        .unwrap());
    assert!(owner.contains(&public) && owner.contains(&private));
    // `?auth=` works as well as a bearer token.
    let admin = ids(get(format!("/jars/events?auth={t_admin}"), None)
        .await
        .json()
        .await
        .unwrap());
    assert!(admin.contains(&private));

    // One event: same rules; hidden is indistinguishable from absent.
    assert_eq!(
        get(format!("/jars/events/{public}"), None).await.status(),
        200
    );
    assert_eq!(
        get(format!("/jars/events/{private}"), None).await.status(),
        404
    );
    assert_eq!(
        get(format!("/jars/events/{private}"), Some(t_other))
            .await
            .status(),
        404
    );
    let one: Value = get(format!("/jars/events/{private}"), Some(t_owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["event_id"], private.as_str());
    assert_eq!(one["private"], true);
    assert_eq!(get("/jars/events/nope".into(), None).await.status(), 400);
    // A bad token is an error, not silently anonymous.
    assert_eq!(
        get("/jars/events".into(), Some("garbage".into()))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn expired_events_only_for_admins_asking_for_all() {
    let server = TestServer::start("[events]\nlifetime = \"1s\"").await;
    server.add_user("owner", "pw", false);
    server.add_user("admin", "pw", true);
    let t_owner = server.login("owner", "pw").await;
    let t_admin = server.login("admin", "pw").await;
    let event = server.create_event(&t_owner, "short", false).await;
    server.clock.advance(std::time::Duration::from_secs(1));
    let (status, body) = connect(&server, &t_owner, &event).await;
    assert_eq!(status, 404);
    assert_eq!(error_name(&body), "NonExistentOrExpiredEventException");
    let list = |q: &'static str, t: String| {
        let req = client()
            .get(server.url(&format!("/jars/events{q}")))
            .bearer_auth(t);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert!(!list("", t_admin.clone()).await.contains(&event));
    assert!(!list("?all=1", t_owner).await.contains(&event));
    assert!(list("?all=1", t_admin).await.contains(&event));
}

#[tokio::test]
async fn pubkey_jwks_and_an_independent_rs256_check() {
    let server = TestServer::start("").await;
    server.add_user("dj", "pw", false);
    let token = server.login("dj", "pw").await;

    let resp = client()
        .get(server.url("/jars/pubkey"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pem = resp.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));

    let jwks: Value = client()
        .get(server.url("/jars/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);

    // openssl, not our JWT library, checks the signature against the served PEM.
    let dir = tempfile::tempdir().unwrap();
    let (signed, sig) = token.rsplit_once('.').unwrap();
    std::fs::write(dir.path().join("pub.pem"), &pem).unwrap();
    std::fs::write(dir.path().join("data"), signed).unwrap();
    std::fs::write(dir.path().join("sig"), URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "data",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl is installed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "openssl: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And a tampered payload fails the same check.
    std::fs::write(dir.path().join("data"), format!("{signed}x")).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "data",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The claims are the original's.
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["iss"], "jars");
    assert!(payload["sub"].is_i64());
    assert_eq!(payload["access_level"], "STANDARD_USER");
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        86400
    );
}

#[tokio::test]
async fn original_service_tokens_verify_given_its_key() {
    // A token shaped exactly like the original's (no kid, typ first), signed with our key,
    // as the original would sign it if it were given the same key file.
    let server = TestServer::start("").await;
    let id = server.add_user("dj", "pw", true);
    let t = server.login("dj", "pw").await;
    let event = server.create_event(&t, "t", false).await;
    let pem = std::fs::read(server.data_path("jwt-private.pem")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({"exp": now() + 600, "sub": id, "access_level": "ADMIN_USER", "iat": now(), "iss": "jars"}),
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    let (status, _) = connect(&server, &token, &event).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn healthz_and_unknown_paths() {
    let server = TestServer::start("").await;
    let resp = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client().get(server.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(error_name(&resp.text().await.unwrap()), "NotFound");
    server.stop().await;
}
