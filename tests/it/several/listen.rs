//! `/listen` and the listener caps on one node, through a real jars server: callbacks shaped as
//! Icecast 2.4.4 sends them, health checks recorded as the checker records them (the real
//! checker against real Icecast servers is `several::icecast`).

use std::time::{Duration, Instant};

use jars::clock::Clock;
use jars::domain::Target;
use jars::placement::CheckedMount;
use serde_json::Value;

use crate::support::{self, client, error_name, post_form, TestServer};

/// Two edges with room for 2 and 1 (their admin APIs never answer: the test records checks),
/// an edge pull address, a station licence of 5.
const CONFIG: &str = r#"
[limits]
max_listeners = 5

[icecast]
health_interval = "1h"

[[icecast.trusted_relays]]
ip = "10.9.0.0/24"

[[icecast.servers]]
server = "edge1"
port = 8001
admin_url = "http://127.0.0.1:9"
admin_user = "admin"
admin_password = "admin-password"
max_listeners = 2
public_url = "http://edge1.radio.example:8001"

[[icecast.servers]]
server = "edge2"
port = 8002
admin_url = "http://127.0.0.1:9"
admin_user = "admin"
admin_password = "admin-password"
max_listeners = 1
public_url = "http://edge2.radio.example:8002/"
"#;

struct Station {
    server: TestServer,
    admin: String,
    dj: String,
}

async fn station() -> Station {
    let server = TestServer::start(CONFIG).await;
    server.add_user("dj", "dj-password", false);
    server.add_user("boss", "boss-password", true);
    let dj = server.login("dj", "dj-password").await;
    let admin = server.login("boss", "boss-password").await;
    // The first (failing) check of each server ran: what the test records replaces it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .state
        .placement
        .statuses()
        .iter()
        .any(|s| s.error.is_none())
    {
        assert!(Instant::now() < deadline, "the first checks never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Station { server, admin, dj }
}

impl Station {
    /// Records a check of `server` listing `event`'s `.mp3` mount (or nothing).
    fn checked(&self, server: &str, event: Option<&str>) {
        let mounts = event
            .map(|id| {
                vec![CheckedMount {
                    mount: format!("/{id}.mp3"),
                    target: Some(Target::Event(id.parse().unwrap())),
                    listeners: 0,
                }]
            })
            .unwrap_or_default();
        let now = self.server.clock.now();
        self.server.state.placement.checked(server, Ok(mounts), now);
    }

    async fn listen(&self, path: &str) -> (u16, Option<String>, Option<String>, String) {
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.server.url(path))
            .send()
            .await
            .unwrap();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (location, retry) = (header("location"), header("retry-after"));
        (
            resp.status().as_u16(),
            location,
            retry,
            resp.text().await.unwrap(),
        )
    }

    async fn callback(&self, fields: &[(&str, &str)]) -> (bool, Option<String>) {
        let resp = client()
            .post(self.server.url("/icecast/auth"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(support::callback_body(fields))
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        (
            h.get("icecast-auth-user").is_some(),
            h.get("icecast-auth-message")
                .map(|v| v.to_str().unwrap().to_string()),
        )
    }

    async fn source_live(&self, event: &str, server: &str, port: &str) {
        let mount = format!("/{event}.mp3");
        self.callback(&[
            ("action", "mount_add"),
            ("mount", &mount),
            ("server", server),
            ("port", port),
        ])
        .await;
    }

    async fn join(
        &self,
        event: &str,
        server: &str,
        port: &str,
        client: &str,
        ip: &str,
    ) -> (bool, Option<String>) {
        let mount = format!("/{event}.mp3");
        self.callback(&[
            ("action", "listener_add"),
            ("server", server),
            ("port", port),
            ("client", client),
            ("mount", &mount),
            ("user", ""),
            ("pass", ""),
            ("ip", ip),
            ("agent", "VLC/3.0.18"),
        ])
        .await
    }

    /// A listener ticket for `event`, minted with `token`.
    async fn ticket(&self, token: &str, event: &str) -> String {
        let (status, body) = post_form(
            &self.server.url("/jars/ticket"),
            &[("auth", token), ("mount", event)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["ticket"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn listeners(&self) -> usize {
        self.server.state.hooks.live.totals().listeners
    }

    fn denied(&self, reason: &str) -> u64 {
        self.server
            .state
            .metrics
            .auth_decisions
            .with_label_values(&["listener_add", "deny", reason])
            .get()
    }
}

#[tokio::test]
async fn listen_redirects_to_the_roomiest_healthy_server_with_the_ticket_untouched() {
    let s = station().await;
    let event = s.server.create_event(&s.dj, "Breakfast", false).await;
    let (status, _, _, body) = s
        .listen(&format!("/listen/{}.mp3", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (404, "NonExistentOrExpiredEventException")
    );
    let (status, _, _, body) = s.listen("/listen/not-an-event").await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (400, "InvalidIdentifierException")
    );
    s.checked("edge1:8001", None);
    s.checked("edge2:8002", None);
    let (status, _, _, body) = s.listen(&format!("/listen/{event}.mp3")).await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (404, "NotOnAirException")
    );

    s.checked("edge1:8001", Some(&event));
    s.checked("edge2:8002", Some(&event));
    let (status, location, _, _) = s
        .listen(&format!("/listen/{event}.mp3?x=1&token=abc%2Fd"))
        .await;
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some(format!("http://edge1.radio.example:8001/{event}.mp3?x=1&token=abc%2Fd").as_str())
    );
    // Edge1 had room for 2 and one is on the way: 1 and 1, the first listed wins the tie.
    let (_, location, _, _) = s.listen(&format!("/listen/{event}")).await;
    assert!(location
        .unwrap()
        .starts_with("http://edge1.radio.example:8001/"));
    // Playlists name the stream for players that do not follow redirects.
    let (status, _, _, m3u) = s.listen(&format!("/listen/{event}.m3u")).await;
    assert_eq!(status, 200);
    assert_eq!(
        m3u,
        format!("#EXTM3U\n#EXTINF:-1,Breakfast\nhttp://edge2.radio.example:8002/{event}.mp3\n")
    );
    let (status, _, retry, body) = s.listen(&format!("/listen/{event}.pls")).await;
    assert_eq!((status, retry.as_deref()), (503, Some("10")));
    assert_eq!(error_name(&body), "ServersFullException");
    let listen = |r: &str| {
        s.server
            .state
            .metrics
            .listen_requests
            .with_label_values(&[r])
            .get()
    };
    assert_eq!(
        (
            listen("placed"),
            listen("servers_full"),
            listen("not_on_air")
        ),
        (3, 1, 1)
    );
    // /readyz shows each server's load and health.
    let ready: Value = client()
        .get(s.server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let servers = ready["icecast"]["servers"].as_array().unwrap();
    assert_eq!(servers[0]["pending"], 2);
    assert_eq!(servers[0]["capacity"], 2);
    assert_eq!(servers[1]["health"], "healthy");
    assert_eq!(servers[1]["public_url"], "http://edge2.radio.example:8002");
    assert_eq!(ready["icecast"]["max_listeners"], 5);
    let metrics = client()
        .get(s.server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("jars_server_pending{server=\"edge1:8001\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jars_server_healthy{server=\"edge2:8002\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jars_placements_total{server=\"edge1:8001\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_private_event_is_placed_only_for_a_credential_of_it() {
    let s = station().await;
    let private = s.server.create_event(&s.dj, "Closed", true).await;
    let other = s.server.create_event(&s.dj, "Other", true).await;
    s.checked("edge1:8001", Some(&private));
    let mine = s.ticket(&s.dj, &private).await;
    let theirs = s.ticket(&s.dj, &other).await;
    for query in ["", "?token=nonsense", &format!("?token={theirs}")] {
        let (status, _, _, body) = s.listen(&format!("/listen/{private}.mp3{query}")).await;
        assert_eq!(
            (status, error_name(&body).as_str()),
            (404, "NonExistentOrExpiredEventException"),
            "{query}"
        );
    }
    let (status, location, _, _) = s
        .listen(&format!("/listen/{private}.mp3?token={mine}"))
        .await;
    assert_eq!(status, 302);
    assert!(location
        .unwrap()
        .ends_with(&format!("/{private}.mp3?token={mine}")));
    // A member's token too (whether it admits is decided at listener_add).
    let (status, _, _, _) = s
        .listen(&format!("/listen/{private}.mp3?jwt={}", s.dj))
        .await;
    assert_eq!(status, 302);
}

#[tokio::test]
async fn caps_refuse_at_listener_add_and_at_listen_and_edge_pulls_never_count() {
    let s = station().await;
    // Only an admin sets an event's cap, at creation or later.
    let (status, body) = post_form(
        &s.server.url("/jars/create"),
        &[
            ("auth", s.dj.as_str()),
            ("title", "t"),
            ("description", "d"),
            ("private", "false"),
            ("max_listeners", "2"),
        ],
    )
    .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (403, "NoUserPermissionException")
    );
    let (status, body) = post_form(
        &s.server.url("/jars/create"),
        &[
            ("auth", s.admin.as_str()),
            ("title", "Capped"),
            ("description", "d"),
            ("private", "true"),
            ("max_listeners", "2"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let capped = serde_json::from_str::<Value>(&body).unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let open = s.server.create_event(&s.dj, "Open", false).await;
    for event in [&capped, &open] {
        s.source_live(event, "edge1", "8001").await;
    }
    // An edge pulling the private, capped event: allowed without a ticket, never a listener.
    for client in ["90", "91", "92"] {
        assert_eq!(
            s.join(&capped, "edge1", "8001", client, "10.9.0.7").await,
            (true, None)
        );
    }
    assert_eq!(s.listeners(), 0);
    // Listeners of the capped event need a ticket: the admin mints it.
    let ticket = s.ticket(&s.admin, &capped).await;
    let join_capped = |client: &'static str| {
        let mount = format!("/{capped}.mp3?token={ticket}");
        let s = &s;
        async move {
            s.callback(&[
                ("action", "listener_add"),
                ("server", "edge1"),
                ("port", "8001"),
                ("client", client),
                ("mount", &mount),
                ("user", ""),
                ("pass", ""),
                ("ip", "192.0.2.1"),
                ("agent", "VLC"),
            ])
            .await
        }
    };
    assert_eq!(join_capped("1").await, (true, None));
    assert_eq!(join_capped("2").await, (true, None));
    assert_eq!(
        join_capped("3").await,
        (false, Some("the event has its maximum listeners".into()))
    );
    s.checked("edge1:8001", Some(&capped));
    let (status, _, retry, body) = s
        .listen(&format!("/listen/{capped}.mp3?token={ticket}"))
        .await;
    assert_eq!((status, retry.as_deref()), (503, Some("30")));
    assert_eq!(error_name(&body), "EventFullException");
    // The admin raises the cap: the next one gets in.
    let (status, body) = post_form(
        &s.server
            .url(&format!("/jars/events/{capped}/max_listeners")),
        &[("auth", s.dj.as_str()), ("max_listeners", "3")],
    )
    .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (403, "NoUserPermissionException")
    );
    let (status, body) = post_form(
        &s.server
            .url(&format!("/jars/events/{capped}/max_listeners")),
        &[("auth", s.admin.as_str()), ("max_listeners", "3")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["max_listeners"],
        3
    );
    assert_eq!(join_capped("3").await, (true, None));
    // The station's licence (5) over both events; edge pulls still pass when it is full.
    assert_eq!(
        s.join(&open, "edge2", "8002", "1", "192.0.2.2").await,
        (true, None)
    );
    assert_eq!(
        s.join(&open, "edge1", "8001", "4", "192.0.2.3").await,
        (true, None)
    );
    assert_eq!(
        s.join(&open, "edge2", "8002", "2", "192.0.2.4").await,
        (false, Some("the station has its maximum listeners".into()))
    );
    assert_eq!(
        s.join(&capped, "edge2", "8002", "93", "10.9.0.8").await,
        (true, None)
    );
    assert_eq!(s.listeners(), 5);
    assert_eq!((s.denied("event_full"), s.denied("station_full")), (1, 1));
    // One leaves: room for one more.
    let mount = format!("/{open}.mp3");
    s.callback(&[
        ("action", "listener_remove"),
        ("server", "edge1"),
        ("port", "8001"),
        ("client", "4"),
        ("mount", &mount),
        ("user", ""),
        ("pass", ""),
        ("duration", "3"),
        ("ip", "192.0.2.3"),
        ("agent", "VLC"),
    ])
    .await;
    assert_eq!(
        s.join(&open, "edge2", "8002", "2", "192.0.2.4").await,
        (true, None)
    );
    // Removing the cap: it is back to the station's licence only.
    let (status, body) = post_form(
        &s.server
            .url(&format!("/jars/events/{capped}/max_listeners")),
        &[("auth", s.admin.as_str()), ("max_listeners", "none")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["max_listeners"],
        Value::Null
    );
}

#[tokio::test]
async fn an_edge_dropping_its_relay_does_not_end_the_show() {
    let s = station().await;
    let event = s.server.create_event(&s.dj, "Relayed", false).await;
    s.source_live(&event, "master", "8000").await;
    s.source_live(&event, "edge1", "8001").await;
    let connected = || async {
        let v: Value = client()
            .get(s.server.url(&format!("/jars/events/{event}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            v["connected"].as_bool().unwrap(),
            v["live"].as_bool().unwrap(),
        )
    };
    assert_eq!(connected().await, (true, true));
    let mount = format!("/{event}.mp3");
    let removed = |server: &'static str, port: &'static str| {
        let mount = mount.clone();
        let s = &s;
        async move {
            s.callback(&[
                ("action", "mount_remove"),
                ("mount", &mount),
                ("server", server),
                ("port", port),
            ])
            .await
        }
    };
    removed("edge1", "8001").await;
    assert_eq!(connected().await, (true, true));
    removed("master", "8000").await;
    assert_eq!(connected().await, (false, false));
}
