//! The Icecast hooks through a real jars server: callbacks shaped exactly as Icecast 2.4.4 sends
//! them (every byte but [A-Za-z0-9] escaped), every decision, and `/jars/ticket`. The same
//! decisions are proven against a real Icecast in tests/icecast_e2e.rs.

use crate::support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jars::clock::Clock;
use serde_json::Value;
use support::{client, error_name, post_form, TestServer};

const CALLBACK_USER: &str = "icecast";
const CALLBACK_PASS: &str = "cb-secret";

const CONFIG: &str = r#"
[icecast]
username = "icecast"
password = "cb-secret"

[[icecast.mounts]]
name = "/studio"
access = "public"

[[icecast.mounts]]
name = "/members"
access = "members"

[[icecast.mounts]]
name = "/staff"
access = "admins"

[[icecast.trusted_sources]]
user = "relay"
password = "relay-password"
"#;

pub(crate) struct Answer {
    status: u16,
    pub allowed: bool,
    message: Option<String>,
    timelimit: Option<u64>,
}

async fn send_as(server: &TestServer, basic: Option<(&str, &str)>, body: String) -> Answer {
    let mut req = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", "Icecast 2.4.4")
        .body(body);
    if let Some((u, p)) = basic {
        req = req.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))),
        );
    }
    let resp = req.send().await.unwrap();
    let h = resp.headers();
    let text = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string());
    Answer {
        status: resp.status().as_u16(),
        allowed: text("icecast-auth-user").as_deref() == Some("1"),
        message: text("icecast-auth-message"),
        timelimit: text("icecast-auth-timelimit").map(|t| t.parse().unwrap()),
    }
}

async fn send(server: &TestServer, body: String) -> Answer {
    send_as(server, Some((CALLBACK_USER, CALLBACK_PASS)), body).await
}

async fn stream_auth(server: &TestServer, mount: &str, user: &str, pass: &str) -> Answer {
    send(
        server,
        support::callback_body(&[
            ("action", "stream_auth"),
            ("mount", mount),
            ("ip", "127.0.0.1"),
            ("server", "localhost"),
            ("port", "8000"),
            ("user", user),
            ("pass", pass),
        ]),
    )
    .await
}

async fn mount_change(server: &TestServer, action: &str, mount: &str) -> Answer {
    send(
        server,
        support::callback_body(&[
            ("action", action),
            ("mount", mount),
            ("server", "localhost"),
            ("port", "8000"),
        ]),
    )
    .await
}

pub(crate) async fn listener_add(
    server: &TestServer,
    client_id: &str,
    uri: &str,
    pass: &str,
    ip: &str,
    referer: Option<&str>,
) -> Answer {
    let mut fields = vec![
        ("action", "listener_add"),
        ("server", "localhost"),
        ("port", "8000"),
        ("client", client_id),
        ("mount", uri),
        ("user", if pass.is_empty() { "" } else { "listener" }),
        ("pass", pass),
        ("ip", ip),
        ("agent", "curl/7.88.1"),
    ];
    if let Some(r) = referer {
        fields.push(("ClientHeader.referer", r));
    }
    send(server, support::callback_body(&fields)).await
}

async fn listener_remove(server: &TestServer, client_id: &str, uri: &str) -> Answer {
    send(
        server,
        support::callback_body(&[
            ("action", "listener_remove"),
            ("server", "localhost"),
            ("port", "8000"),
            ("client", client_id),
            ("mount", uri),
            ("user", ""),
            ("pass", ""),
            ("duration", "3"),
            ("ip", "127.0.0.1"),
            ("agent", "curl/7.88.1"),
        ]),
    )
    .await
}

async fn event_json(server: &TestServer, token: &str, id: &str) -> Value {
    client()
        .get(server.url(&format!("/jars/events/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn ticket(server: &TestServer, token: &str, event: &str, extra: &[(&str, &str)]) -> String {
    let mut form = vec![("auth", token), ("mount", event)];
    form.extend_from_slice(extra);
    let (status, body) = post_form(&server.url("/jars/ticket"), &form).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["expires"].as_i64().unwrap() > server.clock.now().timestamp());
    v["ticket"].as_str().unwrap().to_string()
}

struct Station {
    server: TestServer,
    owner: String,
    other: String,
    admin: String,
    owner_id: i64,
    admin_id: i64,
}

async fn station(extra_toml: &str) -> Station {
    let server = TestServer::start(&format!("{CONFIG}\n{extra_toml}")).await;
    let owner_id = server.add_user("owner", "pw", false);
    server.add_user("other", "pw", false);
    let admin_id = server.add_user("admin", "pw", true);
    Station {
        owner: server.login("owner", "pw").await,
        other: server.login("other", "pw").await,
        admin: server.login("admin", "pw").await,
        server,
        owner_id,
        admin_id,
    }
}

mod bans;
mod ending;
mod listeners;
pub(crate) mod revoke;
mod sources;
