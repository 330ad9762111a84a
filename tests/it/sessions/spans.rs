//! SQLite finds one event's rows through spans of row ids rather than an index on the mount:
//! the spans hold every row of the event's mounts however they interleave with others', across
//! a reopen and a purge, and a table indexed by an older jars is converted to them.

use chrono::{DateTime, Duration, DurationRound, Utc};
use jars::config::StoreSettings;
use jars::sessions::{OpenedSession, SessionFilter, SessionOp, SessionText};
use jars::store::sessions::SessionStore;
use uuid::Uuid;

fn open(client: &str, event: Option<Uuid>, started: DateTime<Utc>) -> SessionOp {
    let mount = event.map_or("/studio".into(), |e| format!("/{e}.mp3"));
    SessionOp::Open(OpenedSession::new(
        SessionText {
            server: "ice.example",
            port: "8000",
            client,
            mount: &mount,
            ticket: None,
            ip: None,
            agent: Some(client),
            referer: None,
        },
        event,
        started,
        None,
        None,
    ))
}

fn of(event: Uuid) -> SessionFilter {
    SessionFilter {
        event: Some(event),
        ..SessionFilter::default()
    }
}

async fn agents(store: &dyn SessionStore, filter: SessionFilter) -> Vec<String> {
    let rows = store.sessions(filter).await.unwrap();
    rows.into_iter().map(|r| r.agent.unwrap()).collect()
}

fn spans_of(path: &std::path::Path, event: Uuid) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM listener_session_spans p JOIN listener_session_mounts m \
             ON m.id = p.mount WHERE m.event_uuid = ?1",
            [event.to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

/// A SQLite file of its own (gone with the directory), its path and settings.
pub(super) fn sqlite_file() -> (tempfile::TempDir, std::path::PathBuf, StoreSettings) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.sqlite3");
    let settings = StoreSettings::Sqlite { path: path.clone() };
    (dir, path, settings)
}

#[tokio::test]
async fn sqlite_one_events_rows_are_found_however_they_interleave() {
    let (_dir, path, settings) = sqlite_file();
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let store = jars::store::sessions::open(&settings).await.unwrap();
    // a1, then 1,500 of b's (more than a span grows over) and a static mount's, then a2, a3.
    let mut ops = vec![open("a1", Some(a), t0)];
    ops.extend((0..1500).map(|i| open(&format!("b{i}"), Some(b), t0)));
    ops.push(open("s1", None, t0));
    ops.push(open("a2", Some(a), t0 + Duration::seconds(1)));
    ops.push(open("a3", Some(a), t0 + Duration::seconds(2)));
    store.apply(ops).await.unwrap();
    assert_eq!(agents(&*store, of(a)).await, ["a1", "a2", "a3"]);
    assert_eq!(agents(&*store, of(b)).await.len(), 1500);
    assert_eq!(spans_of(&path, a), 2, "a1 apart; a2 and a3 in one span");
    assert_eq!(spans_of(&path, b), 1);

    // Reopened (a restart): the latest span grows on; a later batch's rows are found too.
    drop(store);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    store
        .apply(vec![open("a4", Some(a), t0 + Duration::seconds(3))])
        .await
        .unwrap();
    store
        .apply(vec![open("b-last", Some(b), t0 + Duration::seconds(4))])
        .await
        .unwrap();
    assert_eq!(agents(&*store, of(a)).await, ["a1", "a2", "a3", "a4"]);
    assert_eq!(spans_of(&path, a), 2);
    let b_rows = agents(&*store, of(b)).await;
    assert_eq!(
        (b_rows.len(), b_rows.last().unwrap().as_str()),
        (1501, "b-last")
    );
    assert_eq!(spans_of(&path, b), 1, "b's span grew on, across the reopen");
    // A date range within an event.
    let filter = SessionFilter {
        from: Some(t0 + Duration::seconds(1)),
        to: Some(t0 + Duration::seconds(3)),
        ..of(a)
    };
    assert_eq!(agents(&*store, filter).await, ["a2", "a3"]);

    // Everything purged: ids are given from 1 again, and the new rows' spans with them.
    assert_eq!(store.purge(t0 + Duration::hours(1)).await.unwrap(), 1506);
    assert_eq!(spans_of(&path, a) + spans_of(&path, b), 0);
    store
        .apply(vec![
            open("a5", Some(a), t0 + Duration::hours(2)),
            open("b5", Some(b), t0 + Duration::hours(2)),
        ])
        .await
        .unwrap();
    assert_eq!(agents(&*store, of(a)).await, ["a5"]);
    assert_eq!(agents(&*store, of(b)).await, ["b5"]);
}

/// A table as jars wrote it before spans (an index on the mount), or as an older jars wrote
/// to it again since: opening it builds the spans from the rows and drops the index.
#[tokio::test]
async fn sqlite_mount_index_is_converted_to_spans() {
    let (_dir, path, settings) = sqlite_file();
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let store = jars::store::sessions::open(&settings).await.unwrap();
    store
        .apply(vec![
            open("a1", Some(a), t0),
            open("b1", Some(b), t0),
            open("a2", Some(a), t0 + Duration::seconds(1)),
        ])
        .await
        .unwrap();
    drop(store);
    // An older jars: rows without spans, indexed by mount.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE INDEX listener_sessions_mount ON listener_sessions (mount, started);
         INSERT INTO listener_sessions (mount, origin, client, started, agent)
             SELECT s.mount, s.origin, 9000 + s.id, s.started + 5000000, 'old ' || t.text
             FROM listener_sessions s JOIN listener_session_texts t ON t.id = s.agent_key
             ORDER BY s.id;",
    )
    .unwrap();
    drop(conn);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    assert_eq!(
        agents(&*store, of(a)).await,
        ["a1", "a2", "old a1", "old a2"]
    );
    assert_eq!(agents(&*store, of(b)).await, ["b1", "old b1"]);
    let index: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'listener_sessions_mount'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 0, "the index is dropped");
    // The writer goes on from the rebuilt spans.
    store
        .apply(vec![open("a3", Some(a), t0 + Duration::seconds(9))])
        .await
        .unwrap();
    assert_eq!(
        agents(&*store, of(a)).await,
        ["a1", "a2", "old a1", "old a2", "a3"]
    );
}
