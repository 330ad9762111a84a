//! A figures call dropped before it answers (its HTTP request ended) stops its query at once:
//! on SQLite the statement is interrupted and its connection serves the next call; on
//! PostgreSQL the statement is cancelled on the server.

use std::time::{Duration, Instant};

use jars::config::StoreSettings;
use sqlx::Connection;
use uuid::Uuid;

use super::{on_both, Store};

on_both!(a_dropped_figures_call_stops_its_query);

/// Enough rows that one call takes a while even on a quick machine.
const ROWS: i64 = 300_000;

/// `ROWS` listeners of `event`, a minute to an hour each, a few a second.
async fn fill(s: &Store, event: Uuid) {
    match &s.settings {
        StoreSettings::Sqlite { path } => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
                 INSERT INTO sessions (role, server, port, client, mount, event_uuid, ticket, \
                 started, ended) SELECT 'listener', 'ice', '8000', i, '/e.mp3', $2, 'jti-' || i, \
                 s, s + 60000000 + (i * 104729) % 3540000000 \
                 FROM (SELECT i, 1700000000000000 + i * 30000 + (i * 7919) % 1000000 AS s FROM n)",
            )
            .bind(ROWS)
            .bind(event.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        StoreSettings::Postgres(pg) => {
            // The store prepares its table when first used.
            jars::store::sessions::migrate(&s.settings).await.unwrap();
            let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
            sqlx::query(
                "INSERT INTO jars.listener_sessions (role, server, port, client, mount, \
                 event_uuid, ticket, started, ended) SELECT 'listener', 'ice', '8000', i::text, \
                 '/e.mp3', $2, 'jti-' || i, s, s + (60 + (i * 104729) % 3540) * interval '1 second' \
                 FROM (SELECT i, to_timestamp(1700000000 + i * 0.03)::timestamp AS s \
                 FROM generate_series(1, $1) i) g",
            )
            .bind(ROWS)
            .bind(event)
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query("VACUUM ANALYZE jars.listener_sessions")
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// The figures statements of this store still running on the server.
async fn running_on_postgres(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'jars-sessions' AND state = 'active' \
         AND query LIKE '%listener%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

async fn a_dropped_figures_call_stops_its_query(s: Store) {
    let event = Uuid::new_v4();
    fill(&s, event).await;
    let now = chrono::DateTime::from_timestamp(1_700_020_000, 0).unwrap();
    let call = {
        let store = s.store.clone();
        move || {
            let store = store.clone();
            async move { store.event_figures(event, now, 1_000).await }
        }
    };
    let figures = call().await.unwrap().figures;
    assert_eq!(figures.sessions, ROWS as u64);
    let started = Instant::now();
    call().await.unwrap();
    let whole = started.elapsed();
    assert!(
        whole >= Duration::from_millis(60),
        "a call took {whole:?}: too quick to tell a stopped one from a finished one"
    );

    // More calls than the store has connections for figures, each dropped halfway, in the
    // middle of one of its statements.
    let early = whole / 2;
    let dropped: Vec<_> = (0..4)
        .map(|_| tokio::spawn(tokio::time::timeout(early, call())))
        .collect();
    for d in dropped {
        assert!(d.await.unwrap().is_err(), "dropped before it answered");
    }
    let dropped_at = Instant::now();
    match &s.settings {
        StoreSettings::Sqlite { .. } => {
            // Had the dropped statements gone on, this call would wait for their connections.
            s.store
                .event_figures(Uuid::new_v4(), now, 10)
                .await
                .unwrap();
            let waited = dropped_at.elapsed();
            assert!(
                waited < whole / 2,
                "the next call answered after {waited:?}; a whole call takes {whole:?}"
            );
        }
        StoreSettings::Postgres(pg) => {
            // A connection dropped without a cancel would stop at the end of its statement.
            let mut still = running_on_postgres(&pg.url).await;
            while still > 0 && dropped_at.elapsed() < whole / 6 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                still = running_on_postgres(&pg.url).await;
            }
            assert_eq!(
                still,
                0,
                "statements still running {:?} after the drop; a whole call takes {whole:?}",
                dropped_at.elapsed()
            );
            // And the store answers the next call.
            s.store
                .event_figures(Uuid::new_v4(), now, 10)
                .await
                .unwrap();
        }
    }
}
