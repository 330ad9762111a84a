//! One suite for every [`SessionStore`]: SQLite always, the real PostgreSQL when
//! `DATABASE_URL` is set (mandatory in CI), each in a store of its own.

use crate::support;

use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use jars::config::{PostgresSettings, StoreSettings};
use jars::sessions::{
    EndReason, OpenedSession, SessionFilter, SessionKey, SessionOp, SessionRecord, SessionText,
};
use jars::store::sessions::SessionStore;
use support::pg::{admin_url, TempDb};
use uuid::Uuid;

fn key(client: &str) -> SessionKey {
    SessionKey {
        server: "ice.example".into(),
        port: "8000".into(),
        client: client.into(),
    }
}

fn open(
    client: &str,
    event: Option<Uuid>,
    started: DateTime<Utc>,
    timelimit: Option<u64>,
) -> SessionOp {
    let key = key(client);
    let mount = event.map_or("/studio".into(), |e| format!("/{e}.mp3"));
    let (ticket, agent) = (format!("jti-{client}"), format!("agent {client}"));
    SessionOp::Open(OpenedSession::new(
        SessionText {
            server: &key.server,
            port: &key.port,
            client: &key.client,
            mount: &mount,
            ticket: Some(&ticket),
            ip: Some("192.0.2.0"),
            agent: Some(&agent),
            referer: Some("https://radio.example/player"),
        },
        event,
        started,
        Some(7),
        timelimit,
    ))
}

fn close(client: &str, ended: DateTime<Utc>, duration: Option<u64>) -> SessionOp {
    SessionOp::Close {
        key: key(client),
        ended,
        duration,
    }
}

fn by_agent<'a>(rows: &'a [SessionRecord], client: &str) -> &'a SessionRecord {
    let agent = format!("agent {client}");
    rows.iter()
        .find(|r| r.agent.as_deref() == Some(&agent))
        .unwrap_or_else(|| panic!("no row of {client} in {rows:?}"))
}

async fn suite(store: Arc<dyn SessionStore>) {
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let s = Duration::seconds;
    let event = Uuid::new_v4();
    let all = SessionFilter::default();
    store
        .apply(vec![
            open("a", Some(event), t0, Some(60)),
            open("b", Some(event), t0 + s(10), None),
            open("c", None, t0 + s(20), None),
            open("d", Some(event), t0 + s(30), None),
            open("f", Some(event), t0 + s(40), Some(30)),
        ])
        .await
        .unwrap();
    // The sweep's candidates by timelimit: a's (60 s) ran out at t0+60, f's (30 s) at t0+70.
    let by_limit = |rows: Vec<jars::sessions::OpenRow>| {
        let mut clients: Vec<String> = rows.into_iter().map(|r| r.key.client).collect();
        clients.sort();
        clients
    };
    assert_eq!(
        by_limit(store.open_before(t0, t0 + s(71)).await.unwrap()),
        ["a", "f"]
    );
    assert_eq!(
        by_limit(store.open_before(t0, t0 + s(65)).await.unwrap()),
        ["a"]
    );
    assert!(store.open_before(t0, t0 + s(60)).await.unwrap().is_empty());
    store
        .apply(vec![
            // Cut off at the timelimit jars sent.
            close("a", t0 + s(60), Some(60)),
            // No duration from Icecast: none stored, the reason still computed.
            close("b", t0 + s(100), None),
            SessionOp::Kicked { key: key("d") },
            close("d", t0 + s(45), Some(15)),
            close("f", t0 + s(70), None),
            // A close nobody opened changes nothing.
            close("zz", t0 + s(70), Some(3)),
        ])
        .await
        .unwrap();
    // The client id of c reused (Icecast restarted): c's end never came.
    store
        .apply(vec![open("c", Some(event), t0 + s(200), None)])
        .await
        .unwrap();

    let rows = store.sessions(all).await.unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    let a = by_agent(&rows, "a");
    assert_eq!(a.end_reason, Some(EndReason::Timelimit));
    assert_eq!((a.ended, a.duration), (Some(t0 + s(60)), Some(60)));
    assert_eq!(a.event, Some(event));
    assert_eq!(a.mount, format!("/{event}.mp3"));
    assert_eq!(a.ticket.as_deref(), Some("jti-a"));
    assert_eq!(a.member, Some(7));
    assert_eq!(a.ip.as_deref(), Some("192.0.2.0"));
    assert_eq!(a.referer.as_deref(), Some("https://radio.example/player"));
    let b = by_agent(&rows, "b");
    assert_eq!(b.end_reason, Some(EndReason::Left));
    assert_eq!((b.ended, b.duration), (Some(t0 + s(100)), None));
    let d = by_agent(&rows, "d");
    assert_eq!(d.end_reason, Some(EndReason::Kicked));
    assert_eq!(d.duration, Some(15));
    let f = by_agent(&rows, "f");
    assert_eq!(
        f.end_reason,
        Some(EndReason::Timelimit),
        "30 s of a 30 s timelimit"
    );
    let c: Vec<&SessionRecord> = rows
        .iter()
        .filter(|r| r.agent.as_deref() == Some("agent c"))
        .collect();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].event, None, "the static mount's");
    assert_eq!(c[0].mount, "/studio");
    assert_eq!(c[0].end_reason, Some(EndReason::Lost));
    assert_eq!(c[0].ended, Some(t0 + s(200)));
    assert_eq!(
        (c[1].ended, c[1].end_reason),
        (None, None),
        "the new one is open"
    );

    // Filters: by event, and by start in [from, to).
    let of_event = store
        .sessions(SessionFilter {
            event: Some(event),
            ..all
        })
        .await
        .unwrap();
    assert_eq!(of_event.len(), 5);
    let window = store
        .sessions(SessionFilter {
            event: None,
            from: Some(t0 + s(10)),
            to: Some(t0 + s(40)),
        })
        .await
        .unwrap();
    let agents: Vec<&str> = window.iter().filter_map(|r| r.agent.as_deref()).collect();
    assert_eq!(agents, ["agent b", "agent c", "agent d"], "oldest first");

    // Open rows, closing lost ones, purging.
    let open_rows = store.open_before(t0 + s(1000), t0).await.unwrap();
    assert_eq!(open_rows.len(), 1);
    assert_eq!(open_rows[0].key, key("c"));
    assert!(store.open_before(t0 + s(200), t0).await.unwrap().is_empty());
    let ids = [open_rows[0].id];
    assert_eq!(store.close_lost(&ids, t0 + s(900)).await.unwrap(), 1);
    assert_eq!(store.close_lost(&ids, t0 + s(901)).await.unwrap(), 0);
    assert!(store
        .open_before(t0 + s(1000), t0)
        .await
        .unwrap()
        .is_empty());
    // Its remove comes late after all (it listened 1,300 s): the lost row gets its real end.
    // One whose duration does not fit the lost row's start changes nothing.
    store
        .apply(vec![
            close("c", t0 + s(1500), Some(100)),
            close("c", t0 + s(1500), Some(1300)),
        ])
        .await
        .unwrap();
    let c_now = store.sessions(all).await.unwrap();
    let c_last = c_now
        .iter()
        .rfind(|r| r.agent.as_deref() == Some("agent c"))
        .unwrap();
    assert_eq!(c_last.end_reason, Some(EndReason::Left));
    assert_eq!(
        (c_last.ended, c_last.duration),
        (Some(t0 + s(1500)), Some(1300))
    );
    let c_first = by_agent(&c_now, "c");
    assert_eq!(
        c_first.end_reason,
        Some(EndReason::Lost),
        "the older lost row is untouched"
    );
    // Started before t0+25: a, b, c (the first).
    assert_eq!(store.purge(t0 + s(25)).await.unwrap(), 3);
    assert_eq!(store.sessions(all).await.unwrap().len(), 3);
}

#[tokio::test]
async fn sqlite_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::Sqlite {
        path: dir.path().join("jars.sqlite3"),
    };
    // Beside the event store, in the same file, and opened twice (idempotent schema).
    jars::store::open(&settings).await.unwrap();
    jars::store::sessions::open(&settings).await.unwrap();
    suite(jars::store::sessions::open(&settings).await.unwrap()).await;
}

/// SQLite's writer finds open rows by key in its memory, read from the table: after the store
/// is opened again (a restart), and after a batch failed (here: another writer inserted a row
/// behind its back, so its row ids were out of step; the batch is rolled back whole).
#[tokio::test]
async fn sqlite_writer_reads_its_open_rows_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.sqlite3");
    let settings = StoreSettings::Sqlite { path: path.clone() };
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let s = Duration::seconds;
    let first = jars::store::sessions::open(&settings).await.unwrap();
    first
        .apply(vec![open("x", None, t0, None), open("y", None, t0, None)])
        .await
        .unwrap();
    drop(first);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    // Opening read the open rows; then another writer inserts one.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO listener_sessions (mount, origin, client, started) \
             SELECT mount, origin, 'other', started FROM listener_sessions LIMIT 1",
            [],
        )
        .unwrap();
    let batch = || {
        vec![
            open("z", None, t0 + s(1), None),
            close("x", t0 + s(5), Some(5)),
            open("y", None, t0 + s(6), None),
            SessionOp::Kicked { key: key("z") },
            close("z", t0 + s(7), None),
        ]
    };
    assert!(store.apply(batch()).await.is_err(), "ids out of step");
    assert_eq!(
        store
            .sessions(SessionFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
    store.apply(batch()).await.unwrap();
    let rows = store.sessions(SessionFilter::default()).await.unwrap();
    let ended = |agent: &str| -> Vec<(Option<DateTime<Utc>>, Option<EndReason>)> {
        rows.iter()
            .filter(|r| r.agent.as_deref() == Some(agent))
            .map(|r| (r.ended, r.end_reason))
            .collect()
    };
    assert_eq!(ended("agent x"), [(Some(t0 + s(5)), Some(EndReason::Left))]);
    assert_eq!(
        ended("agent y"),
        [(Some(t0 + s(6)), Some(EndReason::Lost)), (None, None)],
        "the row opened before the restart is found by its key"
    );
    assert_eq!(
        ended("agent z"),
        [(Some(t0 + s(7)), Some(EndReason::Kicked))]
    );
    assert_eq!(rows.len(), 5, "and the other writer's row: {rows:?}");

    // Every row purged, open ones too: ids are given from 1 again, and a remove for a purged
    // session (y's, row 5) closes nothing, not the new row 5.
    assert_eq!(store.purge(t0 + s(3600)).await.unwrap(), 5);
    let mut again: Vec<SessionOp> = (1..=5)
        .map(|i| open(&format!("n{i}"), None, t0 + s(3600 + i), None))
        .collect();
    again.push(close("y", t0 + s(3700), Some(3000)));
    store.apply(again).await.unwrap();
    let rows = store.sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.ended.is_none()), "{rows:?}");
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn postgres_sessions() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let settings = StoreSettings::Postgres(PostgresSettings::new(&db.url));
    // The migration runs any number of times (jars migrate, then each node's start).
    for _ in 0..2 {
        jars::store::sessions::migrate(&settings).await.unwrap();
    }
    suite(jars::store::sessions::open(&settings).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_down_fails_fast_and_names_no_password() {
    let settings = StoreSettings::Postgres(PostgresSettings::new(
        "postgres://jars:secret@127.0.0.1:1/none",
    ));
    let store = jars::store::sessions::open(&settings).await.unwrap();
    let started = std::time::Instant::now();
    let e = store
        .apply(vec![open("x", None, Utc::now(), None)])
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(!e.to_string().contains("secret"), "{e}");
}

/// The first SQLite layout (text times and key columns), as jars wrote it before the
/// narrow one.
const FIRST_LAYOUT: &str = "
CREATE TABLE listener_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_uuid TEXT,
    mount      TEXT    NOT NULL,
    server     TEXT    NOT NULL,
    port       TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    started    TEXT    NOT NULL,
    ended      TEXT,
    duration   INTEGER,
    ticket     TEXT,
    member     INTEGER,
    ip         TEXT,
    agent      TEXT,
    referer    TEXT,
    timelimit  INTEGER,
    end_reason TEXT
);
CREATE INDEX listener_sessions_open
    ON listener_sessions (server, port, client) WHERE ended IS NULL;
CREATE INDEX listener_sessions_started ON listener_sessions (started);
CREATE INDEX listener_sessions_event ON listener_sessions (event_uuid, started);
";

#[tokio::test]
async fn sqlite_first_layout_is_converted_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.sqlite3");
    let settings = StoreSettings::Sqlite { path: path.clone() };
    jars::store::open(&settings).await.unwrap();
    let event = Uuid::new_v4();
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(FIRST_LAYOUT)
            .execute(&mut conn)
            .await
            .unwrap();
        let rows = [
            // event, mount, client, started, ended, duration, agent, timelimit, end_reason
            (
                Some(event),
                "a",
                "2026-11-30 10:00:00.250000",
                Some("2026-11-30 10:01:00.000000"),
                Some(60),
                "agent a",
                Some(60),
                Some("timelimit"),
            ),
            (
                None,
                "b",
                "2026-11-30 10:00:10.000000",
                Some("2026-11-30 10:00:50.000000"),
                None,
                "agent b",
                None,
                Some("lost"),
            ),
            (
                Some(event),
                "17",
                "2026-11-30 10:00:20.000000",
                None,
                None,
                "agent c",
                Some(3600),
                None,
            ),
            (
                Some(event),
                "not-a-number",
                "2026-11-30 10:00:30.000000",
                None,
                None,
                "agent d",
                None,
                None,
            ),
        ];
        for (ev, client, started, ended, duration, agent, timelimit, reason) in rows {
            sqlx::query(
                "INSERT INTO listener_sessions (event_uuid, mount, server, port, client, started, \
                 ended, duration, ticket, member, ip, agent, referer, timelimit, end_reason) \
                 VALUES (?, ?, 'ice.example', '8000', ?, ?, ?, ?, 'jti-1', 7, '192.0.2.0', ?, \
                 'https://radio.example/player', ?, ?)",
            )
            .bind(ev.map(|e| e.to_string()))
            .bind(ev.map_or("/studio".to_string(), |e| format!("/{e}.mp3")))
            .bind(client)
            .bind(started)
            .bind(ended)
            .bind(duration)
            .bind(agent)
            .bind(timelimit)
            .bind(reason)
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    let at = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap()
            .and_utc()
    };
    // Converted on the first open; the second finds it done.
    jars::store::sessions::open(&settings).await.unwrap();
    let store = jars::store::sessions::open(&settings).await.unwrap();
    let rows = store.sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let a = by_agent(&rows, "a");
    assert_eq!(a.started, at("2026-11-30 10:00:00.25"));
    assert_eq!(a.ended, Some(at("2026-11-30 10:01:00")));
    assert_eq!(
        (a.duration, a.end_reason),
        (Some(60), Some(EndReason::Timelimit))
    );
    assert_eq!(
        (a.event, a.mount.clone()),
        (Some(event), format!("/{event}.mp3"))
    );
    assert_eq!(
        (a.ticket.as_deref(), a.member, a.ip.as_deref()),
        (Some("jti-1"), Some(7), Some("192.0.2.0"))
    );
    assert_eq!(a.referer.as_deref(), Some("https://radio.example/player"));
    let b = by_agent(&rows, "b");
    assert_eq!((b.event, b.mount.as_str()), (None, "/studio"));
    assert_eq!(b.end_reason, Some(EndReason::Lost));
    let of_event = store
        .sessions(SessionFilter {
            event: Some(event),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(of_event.len(), 3);
    // The open rows keep their keys: a remove closes each, numeric client id or not.
    let later = at("2100-01-01 00:00:00");
    let mut open_rows = store.open_before(later, later).await.unwrap();
    open_rows.sort_by_key(|r| r.started);
    let keys: Vec<&str> = open_rows.iter().map(|r| r.key.client.as_str()).collect();
    assert_eq!(keys, ["17", "not-a-number"]);
    assert_eq!(open_rows[0].timelimit, Some(3600));
    store
        .apply(vec![
            close("17", at("2026-11-30 10:05:20"), Some(300)),
            close("not-a-number", at("2026-11-30 10:05:30"), None),
        ])
        .await
        .unwrap();
    let rows = store.sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(by_agent(&rows, "c").end_reason, Some(EndReason::Left));
    assert_eq!(by_agent(&rows, "c").duration, Some(300));
    let d = by_agent(&rows, "d");
    assert_eq!(
        (d.ended, d.end_reason),
        (Some(at("2026-11-30 10:05:30")), Some(EndReason::Left))
    );
}
