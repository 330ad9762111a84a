//! The shared listener counts and the event cap column on a real PostgreSQL (and the embedded
//! store): two nodes' rows, the largest count per server, a node's rewrite replacing its rows,
//! and the migration run again over an original JARS table.

use std::time::Duration;

use chrono::Utc;
use jars::config::{PostgresSettings, StoreSettings};
use jars::store::listener_counts::{Count, Scope, ServerCounts};
use jars::store::NewEvent;
use sqlx::Executor;
use uuid::Uuid;

use crate::support::pg::{admin_url, TempDb};

fn sorted(mut counts: Vec<Count>) -> Vec<(Scope, String, u32)> {
    counts.sort_by(|a, b| (a.scope, &a.server).cmp(&(b.scope, &b.server)));
    counts
        .into_iter()
        .map(|c| (c.scope, c.server, c.listeners))
        .collect()
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn nodes_share_their_counts_through_postgres() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let settings = StoreSettings::Postgres(PostgresSettings::new(&db.url));
    let a = jars::store::open_with_sanctions(&settings)
        .await
        .unwrap()
        .counts;
    let b = jars::store::open_with_sanctions(&settings)
        .await
        .unwrap()
        .counts;
    assert!(a.shared());
    let event = Uuid::new_v4();
    let now = Utc::now();
    // Node a admits on edge1: nobody else has counted anything yet.
    let mine = [(Scope::Station, 3), (Scope::Event(event), 2)];
    assert!(a
        .claim("a", "edge1:8001", now, &mine)
        .await
        .unwrap()
        .is_empty());
    // Node b admits on edge2 and sees a's count of edge1, for the scopes it asks about.
    let seen = b
        .claim("b", "edge2:8002", now, &[(Scope::Station, 5)])
        .await
        .unwrap();
    assert_eq!(sorted(seen), [(Scope::Station, "edge1:8001".into(), 3)]);
    // Node b rewrites all its counts: edge2, and edge1 as a resync showed it.
    let others = b
        .publish(
            "b",
            &[
                ServerCounts {
                    server: "edge2:8002".into(),
                    heard: Some(now),
                    station: 4,
                    events: vec![(event, 4)],
                },
                ServerCounts {
                    server: "edge1:8001".into(),
                    heard: None,
                    station: 1,
                    events: vec![],
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        sorted(others.counts),
        [
            (Scope::Station, "edge1:8001".into(), 3),
            (Scope::Event(event), "edge1:8001".into(), 2),
        ]
    );
    assert_eq!(others.heard.len(), 1);
    assert_eq!(others.heard[0].0, "edge1:8001");
    // Node a sees b's rows: the largest count per server, and b's last callback from edge2.
    let others = a.publish("a", &[]).await.unwrap();
    assert_eq!(
        sorted(others.counts),
        [
            (Scope::Station, "edge1:8001".into(), 1),
            (Scope::Station, "edge2:8002".into(), 4),
            (Scope::Event(event), "edge2:8002".into(), 4),
        ]
    );
    assert_eq!(
        others
            .heard
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["edge2:8002"]
    );
    // a's publish of nothing removed its own rows.
    let seen = b
        .claim("b", "edge2:8002", now, &[(Scope::Station, 4)])
        .await
        .unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn the_event_cap_column_is_added_to_an_original_table_and_kept() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    // The original service's table, as its schema.sql creates it (its role is left out: it is
    // cluster-wide, and `postgres::original_schema_and_original_rows` covers it).
    let mut conn = db.connect().await;
    conn.execute("CREATE SCHEMA jars; SET search_path TO jars, public")
        .await
        .unwrap();
    let original = include_str!("../../fixtures/jars-original-schema.sql");
    let table = &original[original.find("CREATE TABLE").unwrap()..];
    conn.execute(&table[..=table.find(");").unwrap() + 1])
        .await
        .unwrap();
    let settings = StoreSettings::Postgres(PostgresSettings::new(&db.url));
    let report = jars::store::migrate(&settings).await.unwrap();
    assert!(report.contains("max_listeners"), "{report}");
    // Again: nothing to do.
    let again = jars::store::migrate(&settings).await.unwrap();
    assert!(again.contains("up to date"), "{again}");
    // The original's own INSERT (its columns only) still works, and leaves no cap.
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jars.events (event_uuid, created_by, expires_time, title, description, private) \
         VALUES ($1, 7, now() + interval '1 hour', 't', 'd', false)",
    )
    .bind(id)
    .execute(&mut conn)
    .await
    .unwrap();
    let store = jars::store::open(&settings).await.unwrap();
    assert_eq!(store.get(id).await.unwrap().unwrap().max_listeners, None);
    assert!(store.set_max_listeners(id, Some(50)).await.unwrap());
    assert_eq!(
        store.get(id).await.unwrap().unwrap().max_listeners,
        Some(50)
    );
    assert!(!store
        .set_max_listeners(Uuid::new_v4(), Some(1))
        .await
        .unwrap());
    let created = store.create(new_event(Some(20))).await.unwrap();
    assert_eq!(created.max_listeners, Some(20));
    assert_eq!(
        store.get(created.id).await.unwrap().unwrap().max_listeners,
        Some(20)
    );
    assert!(store.set_max_listeners(created.id, None).await.unwrap());
    assert_eq!(
        store.get(created.id).await.unwrap().unwrap().max_listeners,
        None
    );
}

fn new_event(max_listeners: Option<u32>) -> NewEvent {
    NewEvent {
        created_by: 1,
        title: "Capped".into(),
        description: "d".into(),
        private: false,
        lifetime: Duration::from_secs(3600),
        now: Utc::now(),
        max_listeners,
    }
}

#[tokio::test]
async fn the_embedded_store_keeps_the_cap_and_counts_alone() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::Sqlite {
        path: dir.path().join("jars.sqlite3"),
    };
    let opened = jars::store::open_with_sanctions(&settings).await.unwrap();
    assert!(!opened.counts.shared());
    let store = opened.events;
    let e = store.create(new_event(Some(5))).await.unwrap();
    assert_eq!(
        store.get(e.id).await.unwrap().unwrap().max_listeners,
        Some(5)
    );
    assert!(store.set_max_listeners(e.id, Some(6)).await.unwrap());
    assert_eq!(
        store.get(e.id).await.unwrap().unwrap().max_listeners,
        Some(6)
    );
    drop(store);
    drop(opened.sanctions);
    // Opened again (the migration ran once): the value is still there.
    let store = jars::store::open(&settings).await.unwrap();
    assert_eq!(
        store.get(e.id).await.unwrap().unwrap().max_listeners,
        Some(6)
    );
}
