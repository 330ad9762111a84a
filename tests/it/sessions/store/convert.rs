//! A SQLite file of an earlier release: its session tables, in the first layout (text times,
//! a text column per key part) or the narrow one (integer times, mounts and Icecasts as keys
//! into lookup tables, user agents and referers as keys into a table of texts, spans of ids in
//! place of an index), are converted into the one table when the store opens it, all rows kept,
//! the old tables dropped; opening it again changes nothing.

use std::path::Path;

use chrono::Duration;
use jars::config::StoreSettings;
use jars::domain::{EndReason, ServerId, SessionKey, Target};
use jars::store::sessions::{SessionFilter, SessionRecord};
use sqlx::{Connection, Executor, SqliteConnection};
use uuid::Uuid;

use super::{ice, rows, t0};

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
CREATE INDEX listener_sessions_open ON listener_sessions (server, port, client) WHERE ended IS NULL;
CREATE INDEX listener_sessions_started ON listener_sessions (started);
CREATE INDEX listener_sessions_event ON listener_sessions (event_uuid, started);
";

const NARROW_LAYOUT: &str = "
CREATE TABLE listener_session_mounts (
    id         INTEGER PRIMARY KEY,
    event_uuid TEXT NOT NULL,
    mount      TEXT NOT NULL,
    UNIQUE (mount, event_uuid)
);
CREATE TABLE listener_session_origins (
    id     INTEGER PRIMARY KEY,
    server TEXT NOT NULL,
    port   TEXT NOT NULL,
    UNIQUE (server, port)
);
CREATE TABLE listener_sessions (
    id         INTEGER PRIMARY KEY,
    mount      INTEGER NOT NULL,
    origin     INTEGER NOT NULL,
    client     NOT NULL,
    started    INTEGER NOT NULL,
    ended      INTEGER,
    duration   INTEGER,
    ticket     TEXT,
    member     INTEGER,
    ip         TEXT,
    agent      TEXT,
    referer    TEXT,
    timelimit  INTEGER,
    end_reason TEXT,
    agent_key   INTEGER,
    referer_key INTEGER
);
CREATE INDEX listener_sessions_lost ON listener_sessions (origin, client)
    WHERE end_reason = 'lost';
CREATE TABLE listener_session_spans (
    mount    INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id  INTEGER NOT NULL,
    PRIMARY KEY (mount, first_id)
) WITHOUT ROWID;
CREATE TABLE listener_session_texts (
    id      INTEGER PRIMARY KEY,
    text    TEXT NOT NULL UNIQUE,
    last_id INTEGER NOT NULL
);
";

async fn old_file(path: &Path, sql: &str) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.unwrap();
}

async fn tables(path: &Path) -> Vec<String> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// Opens the converted file, checks the old tables went and that opening again (the store,
/// `jars migrate`) finds nothing to do; the rows.
async fn converted(path: &Path, rows_before: usize) -> Vec<SessionRecord> {
    let settings = StoreSettings::Sqlite {
        path: path.to_path_buf(),
    };
    let said = jars::store::sessions::migrate(&settings).await.unwrap();
    assert!(
        said.contains(&format!(
            "{rows_before} rows of the previous layout converted"
        )),
        "{said}"
    );
    let names = tables(path).await;
    assert!(
        !names.iter().any(|t| t.starts_with("listener_session")),
        "{names:?}"
    );
    let store = jars::store::sessions::open(&settings).await.unwrap();
    let rows = rows(&*store).await;
    assert_eq!(rows.len(), rows_before);
    let again = jars::store::sessions::migrate(&settings).await.unwrap();
    assert!(again.contains("up to date"), "{again}");
    assert_eq!(super::rows(&*store).await, rows, "nothing converted twice");
    rows
}

#[tokio::test]
async fn the_first_layout_is_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.sqlite3");
    let event = Uuid::new_v4();
    old_file(
        &path,
        &format!(
            "{FIRST_LAYOUT}
            INSERT INTO listener_sessions (event_uuid, mount, server, port, client, started, ended,
                duration, ticket, member, ip, agent, referer, timelimit, end_reason)
            VALUES ('{event}', '/{event}.mp3', 'ice.example', '8000', '17',
                '2026-03-01 12:00:00.250000', '2026-03-01 12:10:00.000000', 600, 'jti-a', NULL,
                '192.0.2.0', 'VLC/3.0', 'https://radio.example/', 3600, 'left'),
              ('{event}', '/{event}.ogg', 'ice.example', '8000', '19',
                '2026-03-01 12:01:00.000001', '2026-03-01 12:02:00', NULL, NULL, 3, '', NULL,
                NULL, NULL, 'kicked'),
              (NULL, '/studio', 'ice.example', '8000', '18', '2026-03-01 12:05:00', NULL, NULL,
                NULL, 5, NULL, NULL, NULL, NULL, NULL);"
        ),
    )
    .await;
    let rows = converted(&path, 3).await;
    let [a, b, c] = &rows[..] else { unreachable!() };
    assert_eq!(a.session.key, SessionKey::listener(ice(), "17"));
    assert_eq!(a.session.target, Target::Event(event));
    assert_eq!(a.session.mount, format!("/{event}.mp3"));
    assert_eq!(a.session.started, t0() + Duration::milliseconds(250));
    assert_eq!(a.ended, Some(t0() + Duration::minutes(10)));
    assert_eq!(
        (a.duration, a.end_reason, a.session.timelimit),
        (Some(600), Some(EndReason::Left), Some(3600))
    );
    assert_eq!(
        (
            a.session.ticket.as_deref(),
            a.session.ip.as_str(),
            a.session.agent.as_deref(),
            a.session.referer.as_deref()
        ),
        (
            Some("jti-a"),
            "192.0.2.0",
            Some("VLC/3.0"),
            Some("https://radio.example/")
        )
    );
    assert_eq!(
        b.session.started,
        t0() + Duration::minutes(1) + Duration::microseconds(1)
    );
    assert_eq!(
        b.ended,
        Some(t0() + Duration::minutes(2)),
        "a time without a fraction"
    );
    assert_eq!(
        (b.end_reason, b.session.member),
        (Some(EndReason::Kicked), Some(3))
    );
    assert_eq!(c.session.target, Target::Static("/studio".into()));
    assert_eq!((c.ended, c.end_reason), (None, None));

    let store = jars::store::sessions::open(&StoreSettings::Sqlite { path: path.clone() })
        .await
        .unwrap();
    let open = store.open_sessions(&ice()).await.unwrap();
    assert_eq!(open, vec![c.session.clone()], "the open row, for a restart");
    let figures = store
        .event_figures(event, t0() + Duration::hours(1), 10)
        .await
        .unwrap()
        .figures;
    // b lasted a microsecond short of a minute: 59 whole seconds.
    assert_eq!((figures.sessions, figures.listening_seconds), (2, 600 + 59));
}

#[tokio::test]
async fn the_narrow_layout_is_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.sqlite3");
    let event = Uuid::new_v4();
    let us = |seconds: i64| t0().timestamp_micros() + seconds * 1_000_000;
    old_file(
        &path,
        &format!(
            "{NARROW_LAYOUT}
            INSERT INTO listener_session_mounts VALUES (1, '{event}', '/{event}.mp3'),
                (2, '', '/studio');
            INSERT INTO listener_session_origins VALUES (1, 'ice.example', '8000'),
                (2, 'ice2.example', '8000');
            INSERT INTO listener_session_texts VALUES (1, 'VLC/3.0', 3),
                (2, 'https://radio.example/', 3);
            INSERT INTO listener_session_spans VALUES (1, 1, 2), (2, 3, 3);
            INSERT INTO listener_sessions (id, mount, origin, client, started, ended, duration,
                ticket, member, ip, agent, referer, timelimit, end_reason, agent_key, referer_key)
            VALUES (1, 1, 1, 17, {}, {}, 60, 'jti-a', NULL, '192.0.2.0', NULL, NULL, 60,
                    'timelimit', 1, 2),
                (2, 1, 2, 'abc', {}, NULL, NULL, NULL, 4, NULL, 'An older agent', NULL, NULL,
                    NULL, NULL, NULL),
                (3, 2, 1, 18, {}, {}, NULL, NULL, NULL, '', NULL, NULL, NULL, 'lost', NULL,
                    NULL);",
            us(0),
            us(61),
            us(10),
            us(20),
            us(3_600),
        ),
    )
    .await;
    let rows = converted(&path, 3).await;
    let [a, b, c] = &rows[..] else { unreachable!() };
    assert_eq!(
        a.session.key,
        SessionKey::listener(ice(), "17"),
        "an integer id, as text"
    );
    assert_eq!(
        (a.session.agent.as_deref(), a.session.referer.as_deref()),
        (Some("VLC/3.0"), Some("https://radio.example/")),
        "texts by their keys"
    );
    assert_eq!(
        (a.session.started, a.ended, a.duration, a.end_reason),
        (
            t0(),
            Some(t0() + Duration::seconds(61)),
            Some(60),
            Some(EndReason::Timelimit)
        )
    );
    assert_eq!(
        b.session.key,
        SessionKey::listener(ServerId::new("ice2.example", "8000"), "abc")
    );
    assert_eq!(
        (b.session.agent.as_deref(), b.session.member, b.ended),
        (Some("An older agent"), Some(4), None)
    );
    assert_eq!(c.session.target, Target::Static("/studio".into()));
    assert_eq!(
        (c.session.ip.as_str(), c.end_reason),
        ("", Some(EndReason::Lost))
    );

    let store = jars::store::sessions::open(&StoreSettings::Sqlite { path: path.clone() })
        .await
        .unwrap();
    let only_event = store
        .sessions(
            SessionFilter {
                event: Some(event),
                ..SessionFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(only_event.len(), 2);
    // New rows go in beside the converted ones.
    store
        .apply(&[super::open(super::listener("99", event, 4_000.0))])
        .await
        .unwrap();
    assert_eq!(super::rows(&*store).await.len(), 4);
}
