//! Members and the users file as an attacker sees them: a removed member's token never speaks
//! for whoever is added next, tokens older than a member's record are refused, and a users
//! file that disappears from an issuing node fails closed (while a verify-only node, which has
//! nobody to ask, trusts tokens until they expire).

use crate::support;

use std::time::Duration;

use jars::identity::users_file::RECHECK;
use serde_json::Value;
use support::icecast_escape as esc;
use support::{client, error_name, post_form, TestServer};

/// What Icecast would be told for a source presenting `token` as its password on `event`:
/// `Ok(())` to allow, else the `icecast-auth-message`.
async fn stream_auth(server: &TestServer, event: &str, token: &str) -> Result<(), String> {
    let resp = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "action=stream_auth&mount={}&ip=127%2e0%2e0%2e1&server=x&port=1&user=source&pass={}",
            esc(&format!("/{event}")),
            esc(token)
        ))
        .send()
        .await
        .unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    match header("icecast-auth-user") {
        Some(_) => Ok(()),
        None => Err(header("icecast-auth-message").unwrap_or_default()),
    }
}

/// The status, and the error's name when it is one.
fn outcome(status: u16, body: &str) -> (u16, String) {
    match status {
        400.. => (status, error_name(body)),
        _ => (status, String::new()),
    }
}

/// `POST path` with `auth` and `mount`, as `/jars/connect` and `/jars/ticket` take them.
async fn post(server: &TestServer, path: &str, token: &str, event: &str) -> (u16, String) {
    let (status, body) = post_form(&server.url(path), &[("auth", token), ("mount", event)]).await;
    outcome(status, &body)
}

async fn connect(server: &TestServer, token: &str, event: &str) -> (u16, String) {
    post(server, "/jars/connect", token, event).await
}

async fn ticket(server: &TestServer, token: &str, event: &str) -> (u16, String) {
    post(server, "/jars/ticket", token, event).await
}

/// `GET /jars/events` as the holder of `token`: the status and the body.
async fn events(server: &TestServer, token: &str) -> (u16, String) {
    let resp = client()
        .get(server.url("/jars/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn list(server: &TestServer, token: &str) -> (u16, String) {
    let (status, body) = events(server, token).await;
    outcome(status, &body)
}

pub(crate) async fn readyz(server: &TestServer) -> (u16, Value) {
    let resp = client().get(server.url("/readyz")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn no_user() -> (u16, String) {
    (401, "NoUserException".into())
}

#[tokio::test]
async fn a_new_member_never_inherits_a_removed_members_id_or_tokens() {
    let server = TestServer::start("").await;
    server.add_user("keeper", "pw", false);
    let alice = server.add_user("alice", "pw-a", false);
    let alice_token = server.login("alice", "pw-a").await;
    server
        .create_event(&alice_token, "Alice's show", true)
        .await;
    // Alice had the highest id; once she is gone, max(id)+1 would hand it to Bob.
    server.users().remove("alice").unwrap();
    // The token check looks at the file again within one recheck interval.
    server.clock.advance(RECHECK);
    let bob = server.add_user("bob", "pw-b", false);
    assert_ne!(bob, alice, "ids are never reused");
    let bob_token = server.login("bob", "pw-b").await;
    let bob_event = server.create_event(&bob_token, "Bob's show", true).await;

    assert_eq!(connect(&server, &alice_token, &bob_event).await, no_user());
    assert_eq!(ticket(&server, &alice_token, &bob_event).await, no_user());
    assert_eq!(list(&server, &alice_token).await, no_user());
    assert_eq!(
        stream_auth(&server, &bob_event, &alice_token).await,
        Err("user no longer exists".into())
    );
    // Bob's own token is unaffected, and Bob sees none of Alice's events.
    assert_eq!(connect(&server, &bob_token, &bob_event).await.0, 202);
    assert_eq!(stream_auth(&server, &bob_event, &bob_token).await, Ok(()));
    let (status, body) = events(&server, &bob_token).await;
    assert_eq!(status, 200);
    let mine: Value = serde_json::from_str(&body).unwrap();
    let titles: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["title"].as_str())
        .collect();
    assert_eq!(titles, ["Bob's show"]);
}

#[tokio::test]
async fn a_deleted_users_file_fails_closed_and_old_tokens_stay_refused_after() {
    let server = TestServer::start("").await;
    let users = server.data_path("users.toml");
    assert!(
        users.exists(),
        "an issuing node creates its users file at start"
    );
    assert_eq!(readyz(&server).await.0, 200);
    let alice = server.add_user("alice", "pw-a", true);
    let alice_token = server.login("alice", "pw-a").await;
    let event = server.create_event(&alice_token, "Show", true).await;
    assert_eq!(connect(&server, &alice_token, &event).await.0, 202);

    // Deleted: nobody can say who still has rights, so nobody has.
    std::fs::remove_file(&users).unwrap();
    server.clock.advance(RECHECK);
    assert_eq!(
        connect(&server, &alice_token, &event).await,
        (503, "ServiceUnavailable".into())
    );
    assert_eq!(
        ticket(&server, &alice_token, &event).await,
        (503, "ServiceUnavailable".into())
    );
    assert_eq!(
        stream_auth(&server, &event, &alice_token).await,
        Err("users unavailable".into())
    );
    let (status, body) = post_form(
        &server.url("/jars/token"),
        &[("user", "alice"), ("password", "pw-a")],
    )
    .await;
    assert_eq!(outcome(status, &body), (503, "ServiceUnavailable".into()));
    let (status, body) = readyz(&server).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some("users file unavailable"))
    );

    // Rebuilt from scratch a while later: the counter starts again, so Bob gets Alice's old
    // id, but Alice's token is older than Bob's record and is worth nothing.
    server.clock.advance(Duration::from_secs(60));
    let bob = server.add_user("bob", "pw-b", false);
    assert_eq!(bob, alice, "the rebuilt file hands out the old id");
    assert_eq!(readyz(&server).await.0, 200);
    assert_eq!(connect(&server, &alice_token, &event).await, no_user());
    assert_eq!(list(&server, &alice_token).await, no_user());
    assert_eq!(
        stream_auth(&server, &event, &alice_token).await,
        Err("user no longer exists".into())
    );
    let bob_token = server.login("bob", "pw-b").await;
    let bobs = server.create_event(&bob_token, "Bob's", false).await;
    assert_eq!(connect(&server, &bob_token, &bobs).await.0, 202);
}

#[tokio::test]
async fn a_verify_only_node_without_users_file_trusts_tokens_until_they_expire() {
    let issuer = TestServer::start("").await;
    issuer.add_user("alice", "pw", false);
    let token = issuer.login("alice", "pw").await;
    let public = issuer.data_path("jwt-public.pem");
    let relay = TestServer::start(&format!(
        "[tokens]\npublic_key = \"{}\"\n",
        public.display()
    ))
    .await;
    assert!(
        !relay.data_path("users.toml").exists(),
        "a verify-only node has no users file to keep"
    );
    assert_eq!(readyz(&relay).await.0, 200);
    assert_eq!(list(&relay, &token).await.0, 200, "nobody to ask: trusted");
}

#[tokio::test]
async fn a_users_file_that_does_not_parse_makes_the_node_unready() {
    let server = TestServer::start("").await;
    server.add_user("alice", "pw-a", false);
    assert_eq!(readyz(&server).await.0, 200);

    std::fs::write(server.data_path("users.toml"), "[[user]]\nid = = 1\n").unwrap();
    let (status, body) = readyz(&server).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some("users file does not parse"))
    );
    let (status, body) = post_form(
        &server.url("/jars/token"),
        &[("user", "alice"), ("password", "pw-a")],
    )
    .await;
    assert_eq!(outcome(status, &body), (503, "ServiceUnavailable".into()));
    assert!(
        !body.contains("users.toml"),
        "no path to the client: {body}"
    );
}
