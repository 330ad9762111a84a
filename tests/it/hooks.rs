//! The Icecast hooks through a real jars server: callbacks shaped exactly as Icecast 2.4.4 sends
//! them (every byte but [A-Za-z0-9] escaped), every decision, and `/jars/ticket`. The same
//! decisions are proven against a real Icecast in tests/icecast_e2e.rs.

use crate::support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jars::clock::Clock;
use serde_json::Value;
use support::icecast_escape as esc;
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

fn body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", esc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

struct Answer {
    status: u16,
    allowed: bool,
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
        body(&[
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
        body(&[
            ("action", action),
            ("mount", mount),
            ("server", "localhost"),
            ("port", "8000"),
        ]),
    )
    .await
}

async fn listener_add(
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
    send(server, body(&fields)).await
}

async fn listener_remove(server: &TestServer, client_id: &str, uri: &str) -> Answer {
    send(
        server,
        body(&[
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

#[tokio::test]
async fn sources_by_owner_or_admin_only_and_live_state() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Live show", false).await;
    let mount = format!("/{event}.mp3");

    let a = stream_auth(&s.server, &mount, "source", &s.other).await;
    assert!(!a.allowed);
    assert_eq!(
        a.message.as_deref(),
        Some("not the event's owner or an admin")
    );
    let a = stream_auth(&s.server, &mount, "source", "hackme").await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("invalid token"));
    let a = stream_auth(&s.server, "/live", "source", &s.owner).await;
    assert_eq!(a.message.as_deref(), Some("not an event mount"));

    let a = stream_auth(&s.server, &mount, "source", &s.owner).await;
    assert!(a.allowed && a.status == 200);
    mount_change(&s.server, "mount_add", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], true);
    assert_eq!(e["connected"], true);
    assert_eq!(e["connected_by"], s.owner_id);
    assert!(e["last_connected_at"].is_i64());

    mount_change(&s.server, "mount_remove", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], false);
    assert_eq!(e["connected"], false);
    assert_eq!(e["connected_by"], s.owner_id, "last connected user kept");
    assert!(e["last_disconnected_at"].is_i64());

    // An admin may take over; connected_by follows the last allowed source.
    assert!(
        stream_auth(&s.server, &mount, "source", &s.admin)
            .await
            .allowed
    );
    mount_change(&s.server, "mount_add", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["connected_by"], s.admin_id);
}

#[tokio::test]
async fn metadata_updates_need_credentials_and_tickets_cannot_broadcast() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Show", true).await;
    let mount = format!("/{event}");
    let admin_update = body(&[
        ("action", "stream_auth"),
        ("mount", &mount),
        ("ip", "127.0.0.1"),
        ("server", "localhost"),
        ("port", "8000"),
        ("user", ""),
        ("pass", ""),
        ("admin", "1"),
    ]);
    let a = send(&s.server, admin_update).await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("no credentials"));
    let t = ticket(&s.server, &s.owner, &event, &[]).await;
    let a = stream_auth(&s.server, &mount, "source", &t).await;
    assert!(!a.allowed);
    assert_eq!(
        a.message.as_deref(),
        Some("a listener ticket cannot do this")
    );
    // Nor can a ticket be used as a user token on the API.
    let (status, body) = post_form(
        &s.server.url("/jars/connect"),
        &[("auth", t.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error_name(&body), "InvalidTokenError");
}

#[tokio::test]
async fn trusted_relay_only_right_after_connect() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Relayed", false).await;
    let mount = format!("/{event}");
    let a = stream_auth(&s.server, &mount, "relay", "relay-password").await;
    assert!(!a.allowed);
    assert_eq!(
        a.message.as_deref(),
        Some("relay not approved by /jars/connect")
    );
    let a = stream_auth(&s.server, &mount, "relay", "wrong-password").await;
    assert!(!a.allowed);

    let (status, _) = post_form(
        &s.server.url("/jars/connect"),
        &[("auth", s.owner.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        stream_auth(&s.server, &mount, "relay", "relay-password")
            .await
            .allowed
    );
    mount_change(&s.server, "mount_add", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], true);
    assert_eq!(
        e["connected_by"], s.owner_id,
        "the member /jars/connect approved"
    );
}

#[tokio::test]
async fn relay_window_expires() {
    let s = station_with_window("1s").await;
    let event = s.server.create_event(&s.owner, "Relayed", false).await;
    post_form(
        &s.server.url("/jars/connect"),
        &[("auth", s.owner.as_str()), ("mount", event.as_str())],
    )
    .await;
    s.server.clock.advance(std::time::Duration::from_secs(2));
    let a = stream_auth(&s.server, &format!("/{event}"), "relay", "relay-password").await;
    assert!(!a.allowed, "approval older than relay_window");
}

async fn station_with_window(window: &str) -> Station {
    let toml = CONFIG.replace(
        "password = \"cb-secret\"\n",
        &format!("password = \"cb-secret\"\nrelay_window = \"{window}\"\n"),
    );
    let server = TestServer::start(&toml).await;
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

#[tokio::test]
async fn public_and_private_listeners() {
    let s = station("").await;
    let public = s.server.create_event(&s.owner, "Public", false).await;
    let private = s.server.create_event(&s.owner, "Private", true).await;

    let a = listener_add(
        &s.server,
        "1",
        &format!("/{public}.mp3"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert!(a.allowed);
    let limit = a.timelimit.expect("event expiry bounds the session");
    assert!(limit > 9 * 86400 && limit <= 10 * 86400, "{limit}");

    let uri = format!("/{private}.ogg");
    let a = listener_add(&s.server, "2", &uri, "", "10.0.0.1", None).await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("private event: ticket required"));

    let t = ticket(&s.server, &s.owner, &private, &[("lifetime", "600")]).await;
    let a = listener_add(
        &s.server,
        "3",
        &format!("{uri}?token={t}&x=1"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert!(a.allowed, "{:?}", a.message);
    let limit = a.timelimit.unwrap();
    assert!((590..=600).contains(&limit), "{limit}");
    // The `jwt` parameter and the Basic password work too.
    assert!(
        listener_add(
            &s.server,
            "4",
            &format!("{uri}?jwt={t}"),
            "",
            "10.0.0.1",
            None
        )
        .await
        .allowed
    );
    assert!(
        listener_add(&s.server, "5", &uri, &t, "10.0.0.1", None)
            .await
            .allowed
    );
    // The owner's own user token opens a private event; another member's does not: a private
    // event is heard by its owner, admins and holders of a ticket for it.
    assert!(
        listener_add(
            &s.server,
            "6",
            &format!("{uri}?token={}", s.owner),
            "",
            "10.0.0.1",
            None
        )
        .await
        .allowed
    );
    let a = listener_add(
        &s.server,
        "6b",
        &format!("{uri}?token={}", s.other),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("private event: ticket required"));

    let other_event = s.server.create_event(&s.owner, "Other", true).await;
    let a = listener_add(
        &s.server,
        "7",
        &format!("/{other_event}?token={t}"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("ticket for another event"));

    let a = listener_add(
        &s.server,
        "8",
        &format!("{uri}?token=garbage"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("invalid token"));

    let e = event_json(&s.server, &s.owner, &private).await;
    assert_eq!(e["listeners"], 4);
    assert_eq!(e["peak_listeners"], 4);
}

#[tokio::test]
async fn ticket_bindings_ip_referer_and_cap() {
    let s = station("").await;
    let private = s.server.create_event(&s.owner, "Private", true).await;
    let uri = format!("/{private}");

    let t = ticket(&s.server, &s.owner, &private, &[("ip", "192.0.2.7")]).await;
    let a = listener_add(
        &s.server,
        "1",
        &format!("{uri}?token={t}"),
        "",
        "192.0.2.8",
        None,
    )
    .await;
    assert_eq!(
        a.message.as_deref(),
        Some("ticket bound to another address")
    );
    assert!(
        listener_add(
            &s.server,
            "2",
            &format!("{uri}?token={t}"),
            "",
            "192.0.2.7",
            None
        )
        .await
        .allowed
    );

    let t = ticket(
        &s.server,
        &s.owner,
        &private,
        &[("referer", "https://radio.example/player")],
    )
    .await;
    let a = listener_add(
        &s.server,
        "3",
        &format!("{uri}?token={t}"),
        "",
        "1.1.1.1",
        Some("https://evil.example/"),
    )
    .await;
    assert_eq!(
        a.message.as_deref(),
        Some("referer not allowed for this ticket")
    );
    let a = listener_add(
        &s.server,
        "4",
        &format!("{uri}?token={t}"),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert!(!a.allowed);
    assert!(
        listener_add(
            &s.server,
            "5",
            &format!("{uri}?token={t}"),
            "",
            "1.1.1.1",
            Some("https://radio.example/player?x")
        )
        .await
        .allowed
    );

    let t = ticket(&s.server, &s.admin, &private, &[("max_listeners", "2")]).await;
    let with = format!("{uri}?token={t}");
    assert!(
        listener_add(&s.server, "10", &with, "", "1.1.1.1", None)
            .await
            .allowed
    );
    assert!(
        listener_add(&s.server, "11", &with, "", "1.1.1.2", None)
            .await
            .allowed
    );
    let a = listener_add(&s.server, "12", &with, "", "1.1.1.3", None).await;
    assert_eq!(
        a.message.as_deref(),
        Some("ticket already has its maximum listeners")
    );
    listener_remove(&s.server, "10", &with).await;
    assert!(
        listener_add(&s.server, "12", &with, "", "1.1.1.3", None)
            .await
            .allowed
    );
}

#[tokio::test]
async fn expired_ticket_is_refused() {
    let s = station("[tokens]\nleeway = \"0s\"").await;
    let private = s.server.create_event(&s.owner, "Private", true).await;
    let t = ticket(&s.server, &s.owner, &private, &[("lifetime", "1")]).await;
    s.server.clock.advance(std::time::Duration::from_secs(1));
    let a = listener_add(
        &s.server,
        "1",
        &format!("/{private}?token={t}"),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("ticket or token expired"));
}

#[tokio::test]
async fn listener_counts_and_unknown_sessions() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Counted", false).await;
    let uri = format!("/{event}");
    assert!(
        listener_add(&s.server, "1", &uri, "", "1.1.1.1", None)
            .await
            .allowed
    );
    assert!(
        listener_add(&s.server, "2", &uri, "", "1.1.1.2", None)
            .await
            .allowed
    );
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(
        (e["listeners"].as_u64(), e["peak_listeners"].as_u64()),
        (Some(2), Some(2))
    );
    listener_remove(&s.server, "1", &uri).await;
    listener_remove(&s.server, "2", &uri).await;
    // Unknown (e.g. from before a restart) and repeated removes are ignored.
    listener_remove(&s.server, "2", &uri).await;
    listener_remove(&s.server, "99", &uri).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(
        (e["listeners"].as_u64(), e["peak_listeners"].as_u64()),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn static_mounts() {
    let s = station("").await;
    assert!(
        listener_add(&s.server, "1", "/studio", "", "1.1.1.1", None)
            .await
            .allowed
    );
    let a = listener_add(&s.server, "2", "/members", "", "1.1.1.1", None).await;
    assert_eq!(a.message.as_deref(), Some("members only"));
    let a = listener_add(
        &s.server,
        "3",
        &format!("/members?token={}", s.other),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert!(a.allowed);
    assert!(a.timelimit.unwrap() <= 86400);
    let a = listener_add(
        &s.server,
        "4",
        &format!("/staff?token={}", s.other),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("admins only"));
    assert!(
        listener_add(&s.server, "5", "/staff", &s.admin, "1.1.1.1", None)
            .await
            .allowed
    );
    let a = listener_add(&s.server, "6", "/elsewhere", "", "1.1.1.1", None).await;
    assert_eq!(a.message.as_deref(), Some("not an event mount"));
    // Sources on static mounts: admins and relays.
    assert!(
        !stream_auth(&s.server, "/studio", "source", &s.owner)
            .await
            .allowed
    );
    assert!(
        stream_auth(&s.server, "/studio", "source", &s.admin)
            .await
            .allowed
    );
    assert!(
        stream_auth(&s.server, "/studio", "relay", "relay-password")
            .await
            .allowed
    );
}

#[tokio::test]
async fn callbacks_must_carry_the_configured_credentials() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Show", false).await;
    let b = body(&[
        ("action", "stream_auth"),
        ("mount", &format!("/{event}")),
        ("ip", "127.0.0.1"),
        ("server", "localhost"),
        ("port", "8000"),
        ("user", "source"),
        ("pass", &s.owner),
    ]);
    let a = send_as(&s.server, Some(("icecast", "wrong")), b.clone()).await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("callback credentials wrong"));
    assert!(!send_as(&s.server, None, b.clone()).await.allowed);
    assert!(!send_as(&s.server, Some(("", "")), b.clone()).await.allowed);
    assert!(
        send_as(&s.server, Some((CALLBACK_USER, CALLBACK_PASS)), b)
            .await
            .allowed
    );
    // A forged mount_add changes nothing.
    let forged = body(&[
        ("action", "mount_add"),
        ("mount", &format!("/{event}")),
        ("server", "x"),
        ("port", "1"),
    ]);
    send_as(&s.server, Some(("icecast", "wrong")), forged).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], false);
}

#[tokio::test]
async fn malformed_callbacks_are_400_never_allow() {
    let s = station("").await;
    for b in [
        "",
        "mount=%2flive",
        "action=listener_fly&mount=%2flive",
        "action=listener_add&server=x&port=1&client=1",
        "action=stream_auth&mount=%ff%fe",
    ] {
        let a = send(&s.server, b.to_string()).await;
        assert_eq!(a.status, 400, "{b:?}");
        assert!(!a.allowed, "{b:?}");
    }
    // Icecast-KH escapes the action value: still understood.
    let event = s.server.create_event(&s.owner, "KH", false).await;
    let kh = format!("action=listener%5fadd&server=x&port=1&client=1&mount=%2f{event}&user=&pass=&ip=1%2e1%2e1%2e1");
    assert!(send(&s.server, kh).await.allowed);
}

#[tokio::test]
async fn ticket_api_rules() {
    let s = station("[events]\nlifetime = \"1h\"").await;
    let event = s.server.create_event(&s.owner, "Show", true).await;
    let (status, body) = post_form(
        &s.server.url("/jars/ticket"),
        &[("auth", s.other.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(error_name(&body), "UnauthorizedConnectionException");
    // Capped by the event's remaining life (1 h), whatever is asked for.
    let (status, body) = post_form(
        &s.server.url("/jars/ticket"),
        &[
            ("auth", s.owner.as_str()),
            ("mount", event.as_str()),
            ("lifetime", "86400"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let left = v["expires"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(left <= 3600 && left > 3500, "{left}");
    for (k, v) in [
        ("ip", "not-an-ip"),
        ("lifetime", "-5"),
        ("max_listeners", "0"),
    ] {
        let (status, body) = post_form(
            &s.server.url("/jars/ticket"),
            &[
                ("auth", s.owner.as_str()),
                ("mount", event.as_str()),
                (k, v),
            ],
        )
        .await;
        assert_eq!(status, 400, "{k}={v}");
        assert_eq!(error_name(&body), "InvalidArgumentError");
    }
    let (status, _) = post_form(
        &s.server.url("/jars/ticket"),
        &[
            ("auth", s.owner.as_str()),
            ("mount", &uuid::Uuid::new_v4().to_string()),
        ],
    )
    .await;
    assert_eq!(status, 404);
}
