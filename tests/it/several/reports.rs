//! Reports by server: `GET /jars/events/{id}/stats` gives each Icecast server's sessions,
//! listening hours and peak, and `jars report --by server` a row per server, from the sessions
//! a real jars stored.

use std::time::Duration;

use serde_json::Value;

use crate::cli::{jars, stdout};
use crate::support::{self, client, TestServer};

async fn send(server: &TestServer, fields: &[(&str, &str)]) -> bool {
    client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(support::callback_body(fields))
        .send()
        .await
        .unwrap()
        .headers()
        .contains_key("icecast-auth-user")
}

async fn on(
    server: &TestServer,
    action: &str,
    host: &str,
    client_id: &str,
    mount: &str,
    duration: u64,
) -> bool {
    let duration = duration.to_string();
    let mut fields = vec![
        ("action", action),
        ("server", host),
        ("port", "8000"),
        ("client", client_id),
        ("mount", mount),
        ("user", ""),
        ("pass", ""),
        ("ip", "192.0.2.1"),
        ("agent", "VLC"),
    ];
    if action == "listener_remove" {
        fields.push(("duration", &duration));
    }
    send(server, &fields).await
}

#[tokio::test]
async fn stats_and_the_report_go_by_server() {
    let server = TestServer::start("").await;
    server.add_user("dj", "dj-password", false);
    let dj = server.login("dj", "dj-password").await;
    let event = server.create_event(&dj, "Spread", false).await;
    let mount = format!("/{event}.mp3");
    for host in ["edge1.radio.example", "edge2.radio.example"] {
        send(
            &server,
            &[
                ("action", "mount_add"),
                ("mount", &mount),
                ("server", host),
                ("port", "8000"),
            ],
        )
        .await;
    }
    // Two listeners on edge 1 for ten minutes, one on edge 2 for half an hour.
    assert!(
        on(
            &server,
            "listener_add",
            "edge1.radio.example",
            "1",
            &mount,
            0
        )
        .await
    );
    assert!(
        on(
            &server,
            "listener_add",
            "edge1.radio.example",
            "2",
            &mount,
            0
        )
        .await
    );
    assert!(
        on(
            &server,
            "listener_add",
            "edge2.radio.example",
            "1",
            &mount,
            0
        )
        .await
    );
    server.clock.advance(Duration::from_secs(600));
    on(
        &server,
        "listener_remove",
        "edge1.radio.example",
        "1",
        &mount,
        600,
    )
    .await;
    on(
        &server,
        "listener_remove",
        "edge1.radio.example",
        "2",
        &mount,
        600,
    )
    .await;
    server.clock.advance(Duration::from_secs(1200));
    on(
        &server,
        "listener_remove",
        "edge2.radio.example",
        "1",
        &mount,
        1800,
    )
    .await;
    server.state.hooks.sessions.flush().await;

    let stats: Value = client()
        .get(server.url(&format!("/jars/events/{event}/stats")))
        .bearer_auth(&dj)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["sessions"], 3, "{stats}");
    let servers = stats["servers"].as_array().unwrap();
    let share = |name: &str| {
        servers
            .iter()
            .find(|s| s["server"] == name)
            .unwrap_or_else(|| panic!("{name} in {stats}"))
    };
    let e1 = share("edge1.radio.example:8000");
    let e2 = share("edge2.radio.example:8000");
    assert_eq!(
        (e1["sessions"].as_u64(), e1["peak_listeners"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (e2["sessions"].as_u64(), e2["peak_listeners"].as_u64()),
        (Some(1), Some(1))
    );
    assert!((e1["listening_hours"].as_f64().unwrap() - 1200.0 / 3600.0).abs() < 1e-9);
    assert!((e2["listening_hours"].as_f64().unwrap() - 0.5).abs() < 1e-9);

    let dir = server.dir.path().to_path_buf();
    let data = dir.to_str().unwrap();
    let csv = jars(
        &dir,
        &[
            "--data-dir",
            data,
            "report",
            "--by",
            "server",
            "--format",
            "csv",
        ],
    );
    assert!(csv.status.success(), "{csv:?}");
    let text = stdout(&csv);
    let mut rows = text.lines();
    assert!(
        rows.next().unwrap().starts_with("server,sessions,"),
        "{text}"
    );
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with("edge1.radio.example:8000,2,1,0.333,600.0,2,"),
        "{text}"
    );
    assert!(
        rows[1].starts_with("edge2.radio.example:8000,1,1,0.500,1800.0,1,"),
        "{text}"
    );
}
