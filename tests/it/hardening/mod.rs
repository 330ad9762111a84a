//! Hardening: a corpus of forged and broken tokens sent to `/jars/connect`, `stream_auth` and
//! `listener_add` (every one refused), tickets that never act as user tokens, removed and
//! demoted users, rate limits behind trusted proxies, load shedding that keeps Icecast's share,
//! and hostile input. Everything through a real server on 127.0.0.1:0.

use crate::support;

use std::io::{Read, Write};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::icecast_escape as esc;
use support::{bad_callers, client, error_name, post_form, refused_as_too_many, TestServer};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `header.payload` with the server's own private key, whatever the header says.
fn sign_raw(server: &TestServer, header: &Value, claims: &Value) -> String {
    let pem = std::fs::read(server.data_path("jwt-private.pem")).unwrap();
    sign_raw_with(&pem, header, claims)
}

fn sign_raw_with(pem: &[u8], header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let key = EncodingKey::from_rsa_pem(pem).unwrap();
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::RS256).unwrap();
    format!("{message}.{sig}")
}

struct Target {
    server: TestServer,
    owner: i64,
    owner_token: String,
    event: String,
}

async fn target(extra: &str) -> Target {
    let server = TestServer::start(extra).await;
    let owner = server.add_user("owner", "pw", true);
    let owner_token = server.login("owner", "pw").await;
    let event = server.create_event(&owner_token, "Private", true).await;
    Target {
        server,
        owner,
        owner_token,
        event,
    }
}

/// Whether Icecast would let this through: `icecast-auth-user: 1`.
async fn callback_allows(server: &TestServer, body: String) -> bool {
    let resp = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    resp.headers().get("icecast-auth-user").is_some()
}

async fn stream_auth_allows(t: &Target, pass: &str) -> bool {
    callback_allows(
        &t.server,
        format!(
            "action=stream_auth&mount={}&ip=127%2e0%2e0%2e1&server=x&port=1&user=source&pass={}",
            esc(&format!("/{}", t.event)),
            esc(pass)
        ),
    )
    .await
}

async fn listener_allows(t: &Target, token: &str) -> bool {
    callback_allows(
        &t.server,
        format!(
            "action=listener_add&server=x&port=1&client=1&mount={}&user=&pass=&ip=127%2e0%2e0%2e1",
            esc(&format!("/{}?token={token}", t.event))
        ),
    )
    .await
}

async fn connect_status(t: &Target, token: &str) -> u16 {
    post_form(
        &t.server.url("/jars/connect"),
        &[("auth", token), ("mount", t.event.as_str())],
    )
    .await
    .0
}

#[tokio::test]
async fn forged_and_broken_tokens_are_refused_everywhere() {
    let t = target("[tokens]\naudience = \"station\"\nleeway = \"30s\"").await;
    let good = json!({"iss": "jars", "sub": t.owner, "iat": now(), "exp": now() + 600,
                      "access_level": "ADMIN_USER", "aud": "station"});
    let kid = t.server.state.tokens.keys().verifying[0].kid.clone();
    let rs = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    // The baseline must pass, or the corpus proves nothing.
    let valid = sign_raw(&t.server, &rs, &good);
    assert_eq!(connect_status(&t, &valid).await, 202);
    assert!(stream_auth_allows(&t, &valid).await);
    assert!(listener_allows(&t, &valid).await);

    let public_pem = t.server.state.tokens.keys().public_pem().to_string();
    let foreign = TestServer::start("").await;
    let foreign_pem = std::fs::read(foreign.data_path("jwt-private.pem")).unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let parts: Vec<String> = valid.split('.').map(String::from).collect();
    let mut corpus: Vec<(String, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        corpus.push((
            format!("alg {alg}"),
            format!(
                "{}.{}.",
                b64(&json!({"alg": alg, "typ": "JWT"})),
                b64(&good)
            ),
        ));
    }
    corpus.push((
        "HS256 keyed with the public key PEM".into(),
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(public_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));
    corpus.push((
        "RS256 by a foreign key".into(),
        sign_raw_with(&foreign_pem, &json!({"alg": "RS256"}), &good),
    ));
    corpus.push((
        "foreign key named by jku".into(),
        sign_raw_with(
            &foreign_pem,
            &json!({"alg": "RS256", "jku": "http://127.0.0.1:9/jwks.json"}),
            &good,
        ),
    ));
    corpus.push((
        "foreign key named by x5u".into(),
        sign_raw_with(
            &foreign_pem,
            &json!({"alg": "RS256", "x5u": "http://127.0.0.1:9/cert.pem"}),
            &good,
        ),
    ));
    corpus.push((
        "foreign key embedded as jwk".into(),
        sign_raw_with(
            &foreign_pem,
            &json!({"alg": "RS256", "jwk": foreign.state.tokens.keys().jwks()["keys"][0]}),
            &good,
        ),
    ));
    corpus.push((
        "kid with path traversal".into(),
        sign_raw(
            &t.server,
            &json!({"alg": "RS256", "kid": "../../../../etc/passwd"}),
            &good,
        ),
    ));
    corpus.push((
        "unknown kid".into(),
        sign_raw(&t.server, &json!({"alg": "RS256", "kid": "nope"}), &good),
    ));
    corpus.push((
        "expired beyond leeway".into(),
        sign_raw(&t.server, &rs, &with(&|c| c["exp"] = json!(now() - 60))),
    ));
    corpus.push((
        "nbf beyond leeway".into(),
        sign_raw(&t.server, &rs, &with(&|c| c["nbf"] = json!(now() + 120))),
    ));
    corpus.push((
        "wrong iss".into(),
        sign_raw(&t.server, &rs, &with(&|c| c["iss"] = json!("evil"))),
    ));
    corpus.push((
        "wrong aud".into(),
        sign_raw(&t.server, &rs, &with(&|c| c["aud"] = json!("elsewhere"))),
    ));
    corpus.push((
        "no exp".into(),
        sign_raw(
            &t.server,
            &rs,
            &with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
    ));
    corpus.push((
        "no iss".into(),
        sign_raw(
            &t.server,
            &rs,
            &with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
    ));
    corpus.push((
        "signature stripped".into(),
        format!("{}.{}.", parts[0], parts[1]),
    ));
    corpus.push(("two segments".into(), format!("{}.{}", parts[0], parts[1])));
    corpus.push((
        "tampered payload".into(),
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&with(&|c| c["sub"] = json!(999))),
            parts[2]
        ),
    ));
    corpus.push(("extra segments".into(), format!("{valid}.{}", parts[2])));
    corpus.push(("empty".into(), String::new()));
    corpus.push(("1 MB".into(), format!("{valid}{}", "A".repeat(1 << 20))));

    for (name, token) in &corpus {
        let status = connect_status(&t, token).await;
        assert!(
            (400..500).contains(&status),
            "{name}: /jars/connect answered {status}"
        );
        assert!(
            !stream_auth_allows(&t, token).await,
            "{name}: stream_auth allowed"
        );
        assert!(
            !listener_allows(&t, token).await,
            "{name}: listener_add allowed"
        );
    }
    // And the server is still fine.
    assert_eq!(connect_status(&t, &valid).await, 202);
}

#[tokio::test]
async fn tickets_never_act_as_user_tokens_nor_open_other_events() {
    let t = target("").await;
    let other = t.server.create_event(&t.owner_token, "Other", true).await;
    let (status, body) = post_form(
        &t.server.url("/jars/ticket"),
        &[
            ("auth", t.owner_token.as_str()),
            ("mount", t.event.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let ticket = serde_json::from_str::<Value>(&body).unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        listener_allows(&t, &ticket).await,
        "the ticket works where it belongs"
    );

    assert_eq!(connect_status(&t, &ticket).await, 401, "connect");
    assert!(!stream_auth_allows(&t, &ticket).await, "source");
    let (status, body) = post_form(
        &t.server.url("/jars/create"),
        &[
            ("auth", ticket.as_str()),
            ("title", "x"),
            ("description", "x"),
            ("private", "no"),
        ],
    )
    .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (401, "InvalidTokenError"),
        "create"
    );
    let (status, _) = post_form(
        &t.server.url("/jars/ticket"),
        &[("auth", ticket.as_str()), ("mount", t.event.as_str())],
    )
    .await;
    assert_eq!(status, 401, "minting tickets with a ticket");
    let resp = client()
        .get(t.server.url("/jars/events"))
        .bearer_auth(&ticket)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "listing with a ticket");
    // Another event's mount, with or without an extension.
    for mount in [format!("/{other}"), format!("/{other}.mp3")] {
        let allowed = callback_allows(
            &t.server,
            format!(
                "action=listener_add&server=x&port=1&client=9&mount={}&user=&pass=&ip=1%2e1%2e1%2e1",
                esc(&format!("{mount}?token={ticket}"))
            ),
        )
        .await;
        assert!(!allowed, "ticket opened {mount}");
    }
}

#[tokio::test]
async fn removed_and_demoted_users_lose_rights_at_once() {
    let t = target("").await;
    let dj = t.server.add_user("dj", "pw", false);
    let dj_token = t.server.login("dj", "pw").await;
    let dj_event = t.server.create_event(&dj_token, "DJ show", false).await;
    let admin_token = t.owner_token.clone();
    // Before: the admin may connect to the DJ's event.
    let (status, _) = post_form(
        &t.server.url("/jars/connect"),
        &[("auth", admin_token.as_str()), ("mount", dj_event.as_str())],
    )
    .await;
    assert_eq!(status, 202);

    // Demoted: the unexpired admin token is a standard user's now.
    t.server.users().set_admin("owner", false).unwrap();
    // Another process's edit: seen by the token check within one recheck interval.
    t.server.clock.advance(jars::identity::users_file::RECHECK);
    let (status, body) = post_form(
        &t.server.url("/jars/connect"),
        &[("auth", admin_token.as_str()), ("mount", dj_event.as_str())],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // Still the owner of their own event.
    assert_eq!(connect_status(&t, &admin_token).await, 202);

    // Removed: the DJ's unexpired token opens nothing.
    assert!(stream_auth_allows_for(&t, &dj_event, &dj_token).await);
    t.server.users().remove("dj").unwrap();
    t.server.clock.advance(jars::identity::users_file::RECHECK);
    let (status, body) = post_form(
        &t.server.url("/jars/connect"),
        &[("auth", dj_token.as_str()), ("mount", dj_event.as_str())],
    )
    .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (401, "NoUserException")
    );
    assert!(!stream_auth_allows_for(&t, &dj_event, &dj_token).await);
    let _ = dj;
}

async fn stream_auth_allows_for(t: &Target, event: &str, pass: &str) -> bool {
    callback_allows(
        &t.server,
        format!(
            "action=stream_auth&mount={}&ip=127%2e0%2e0%2e1&server=x&port=1&user=source&pass={}",
            esc(&format!("/{event}")),
            esc(pass)
        ),
    )
    .await
}

async fn token_attempt(server: &TestServer, user: &str, forwarded: Option<&str>) -> u16 {
    let mut req = client()
        .post(server.url("/jars/token"))
        .form(&[("user", user), ("password", "wrong")]);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_trusted_proxies() {
    let limits = "[limits]\ntoken_per_minute = 10\ntoken_burst = 2\n";
    // Loopback is trusted unless told otherwise: told.
    let direct = TestServer::start(&format!("{limits}trusted_proxies = []\n")).await;
    // Not trusted: the header is ignored, every attempt is 127.0.0.1's.
    assert_eq!(token_attempt(&direct, "a", Some("1.1.1.1")).await, 401);
    assert_eq!(token_attempt(&direct, "b", Some("2.2.2.2")).await, 401);
    assert_eq!(token_attempt(&direct, "c", Some("3.3.3.3")).await, 429);

    let proxied =
        TestServer::start(&format!("{limits}trusted_proxies = [\"127.0.0.0/8\"]\n")).await;
    assert_eq!(token_attempt(&proxied, "a", Some("1.1.1.1")).await, 401);
    assert_eq!(token_attempt(&proxied, "b", Some("1.1.1.1")).await, 401);
    assert_eq!(
        token_attempt(&proxied, "c", Some("1.1.1.1")).await,
        429,
        "per address"
    );
    assert_eq!(token_attempt(&proxied, "d", Some("2.2.2.2")).await, 401);
    // Per user name, from any address.
    assert_eq!(token_attempt(&proxied, "d", Some("4.4.4.4")).await, 401);
    assert_eq!(
        token_attempt(&proxied, "d", Some("5.5.5.5")).await,
        429,
        "per user"
    );
    // A client cannot pick its address through a trusted proxy by prepending entries.
    assert_eq!(
        token_attempt(&proxied, "e", Some("9.9.9.9, 1.1.1.1")).await,
        429
    );
}

#[tokio::test]
async fn an_ipv6_client_cannot_escape_its_limit_by_walking_its_slash_64() {
    let server = TestServer::start(
        "[limits]\ntoken_per_minute = 10\ntoken_burst = 2\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    )
    .await;
    assert_eq!(token_attempt(&server, "a", Some("2001:db8::1")).await, 401);
    assert_eq!(token_attempt(&server, "b", Some("2001:db8::2")).await, 401);
    assert_eq!(token_attempt(&server, "c", Some("2001:db8::3")).await, 429);
    assert_eq!(
        token_attempt(&server, "d", Some("2001:db8:0:1::1")).await,
        401
    );
}

mod banned_powers;
mod browser_callbacks;
mod log_sites;
mod login_limits;
mod mapped_ranges;
mod operator_output;
mod overload;
pub(crate) mod revocations;
mod upstreams;
