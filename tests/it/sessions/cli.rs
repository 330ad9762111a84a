//! `jars report` on a store a real jars wrote: CSV and JSON parse and agree with the sessions,
//! `--by day`, `--event`, `--from/--to` filter, bad flags are usage errors.

use crate::cli::{assert_usage_error, jars, stdout};
use crate::support::TestServer;

use super::api::{join, leave, CONFIG};
use jars::clock::Clock;
use serde_json::Value;

#[tokio::test]
async fn report_as_csv_json_and_table() {
    let server = TestServer::start(CONFIG).await;
    server.add_user("alice", "alice-password", false);
    let alice = server.login("alice", "alice-password").await;
    let event = server.create_event(&alice, "Drive, time", false).await;
    let mount = format!("/{event}.mp3");
    assert!(join(&server, "1", &mount, "192.0.2.10").await);
    assert!(join(&server, "2", &mount, "198.51.100.10").await);
    server.clock.advance(std::time::Duration::from_secs(600));
    leave(&server, "1", &mount, 600).await;
    leave(&server, "2", &mount, 1200).await;
    assert!(join(&server, "3", "/studio", "192.0.2.99").await);
    server.clock.advance(std::time::Duration::from_secs(60));
    leave(&server, "3", "/studio", 60).await;
    server.state.hooks.sessions.flush().await;
    let dir = server.dir.path().to_path_buf();
    let data = dir.to_str().unwrap();

    let json = jars(&dir, &["--data-dir", data, "report", "--format", "json"]);
    assert!(json.status.success(), "{json:?}");
    let lines: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let lines = lines.as_array().unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let of_event = lines.iter().find(|l| l["group"] == event.as_str()).unwrap();
    assert_eq!(of_event["title"], "Drive, time");
    assert_eq!(of_event["sessions"], 2);
    assert_eq!(of_event["unique_listeners"], 2);
    assert_eq!(of_event["peak_listeners"], 2);
    assert_eq!(of_event["lost"], 0);
    assert_eq!(of_event["kicked"], 0);
    assert!((of_event["listening_hours"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!((of_event["mean_session_seconds"].as_f64().unwrap() - 900.0).abs() < 1e-9);
    let studio = lines.iter().find(|l| l["group"] == "/studio").unwrap();
    assert_eq!(studio["sessions"], 1);
    assert!(studio.get("title").is_none(), "a static mount has no title");

    let csv = jars(&dir, &["--data-dir", data, "report", "--format", "csv"]);
    assert!(csv.status.success(), "{csv:?}");
    let text = stdout(&csv);
    let mut rows = text.lines();
    assert_eq!(
        rows.next(),
        Some("event,title,sessions,unique_listeners,listening_hours,mean_session_seconds,peak_listeners,first_start,last_end,lost,kicked")
    );
    let event_row = rows
        .clone()
        .find(|r| r.starts_with(&event))
        .unwrap_or_else(|| panic!("{text}"));
    // The title's comma is quoted; the numbers follow.
    assert!(
        event_row.starts_with(&format!("{event},\"Drive, time\",2,2,0.500,900.0,2,")),
        "{event_row}"
    );
    assert_eq!(text.lines().count(), 3);

    // By day: one day, all three sessions; 192.0.2.10 and .99 are one /24: two listeners.
    let by_day = jars(
        &dir,
        &[
            "--data-dir",
            data,
            "report",
            "--by",
            "day",
            "--format",
            "csv",
        ],
    );
    let text = stdout(&by_day);
    let today = server.clock.now().format("%Y-%m-%d").to_string();
    assert!(text.starts_with("day,sessions,"), "{text}");
    assert!(text.contains(&format!("{today},3,2,")), "{text}");

    // Filters.
    let only = jars(
        &dir,
        &[
            "--data-dir",
            data,
            "report",
            "--event",
            &event,
            "--format",
            "json",
        ],
    );
    let only: Value = serde_json::from_str(&stdout(&only)).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    let yesterday = (server.clock.now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let none = jars(
        &dir,
        &[
            "--data-dir",
            data,
            "report",
            "--to",
            &yesterday,
            "--format",
            "json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&none)).unwrap(),
        serde_json::json!([])
    );
    let from = jars(
        &dir,
        &[
            "--data-dir",
            data,
            "report",
            "--from",
            &today,
            "--format",
            "json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&from))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let table = jars(&dir, &["--data-dir", data, "report"]);
    let text = stdout(&table);
    assert!(text.starts_with("EVENT"), "{text}");
    assert!(text.contains("Drive, time"), "{text}");

    assert_usage_error(
        &jars(&dir, &["--data-dir", data, "report", "--from", "soon"]),
        "--from",
    );
    assert_usage_error(
        &jars(&dir, &["--data-dir", data, "report", "--event", "x"]),
        "--event",
    );
}
