//! `jars.listener_sessions` on PostgreSQL as an earlier release left it (listeners only: no
//! `role`, `relay` or `end_cause`; its event index) gains what this one needs when its owner
//! migrates, rows kept; the role jars runs as, which may write the table but not alter it, then
//! finds nothing to do. On a database without the table, the owner's migration creates it for
//! whoever may write `jars.events`.

use chrono::Duration;
use jars::config::{PostgresSettings, StoreSettings};
use jars::domain::{EndReason, SessionKey, Target};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use super::{ice, listener, open, rows, t0};
use crate::support::pg::{admin_url, TempDb};

/// The table and indexes of the release before this one.
const EARLIER_TABLE: &str = "
CREATE TABLE jars.listener_sessions (
    id BIGSERIAL PRIMARY KEY,
    event_uuid UUID,
    mount TEXT NOT NULL,
    server TEXT NOT NULL,
    port TEXT NOT NULL,
    client TEXT NOT NULL,
    started TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    ended TIMESTAMP WITHOUT TIME ZONE,
    duration BIGINT,
    ticket TEXT,
    member BIGINT,
    ip TEXT,
    agent TEXT,
    referer TEXT,
    timelimit BIGINT,
    end_reason TEXT
);
CREATE INDEX listener_sessions_open ON jars.listener_sessions (server, port, client)
    WHERE ended IS NULL;
CREATE INDEX listener_sessions_started ON jars.listener_sessions (started);
CREATE INDEX listener_sessions_event ON jars.listener_sessions (event_uuid, started);
";

/// A login role of its own for one test, dropped (after its database) by [`Writer::drop_with`].
struct Writer {
    name: String,
}

impl Writer {
    async fn create(db: &TempDb) -> Writer {
        let name = format!("jars_writer_{}", Uuid::new_v4().simple());
        let mut conn = db.connect().await;
        conn.execute(
            format!(
                "CREATE ROLE {name} LOGIN; CREATE SCHEMA jars; GRANT USAGE ON SCHEMA jars TO {name};
                 CREATE TABLE jars.events (event_uuid UUID PRIMARY KEY);
                 GRANT ALL ON jars.events TO {name};"
            )
            .as_str(),
        )
        .await
        .unwrap();
        Writer { name }
    }

    fn settings(&self, db: &TempDb) -> StoreSettings {
        let mut url = reqwest::Url::parse(&db.url).unwrap();
        url.set_username(&self.name).unwrap();
        StoreSettings::Postgres(PostgresSettings::new(url.to_string()))
    }

    /// Drops the database, then the role.
    async fn drop_with(self, db: TempDb, admin: &str) {
        drop(db);
        let mut conn = PgConnection::connect(admin).await.unwrap();
        conn.execute(format!("DROP ROLE IF EXISTS {}", self.name).as_str())
            .await
            .unwrap();
    }
}

async fn names(db: &TempDb, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql)
        .fetch_all(&mut db.connect().await)
        .await
        .unwrap()
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn an_earlier_table_is_migrated_by_its_owner_and_written_by_its_writer() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let writer = Writer::create(&db).await;
    let event = Uuid::new_v4();
    db.connect()
        .await
        .execute(
            format!(
                "{EARLIER_TABLE}
                 GRANT SELECT, INSERT, UPDATE, DELETE ON jars.listener_sessions TO {w};
                 GRANT USAGE ON SEQUENCE jars.listener_sessions_id_seq TO {w};
                 INSERT INTO jars.listener_sessions (event_uuid, mount, server, port, client,
                     started, ended, duration, ticket, ip, timelimit, end_reason)
                 VALUES ('{event}', '/{event}.mp3', 'ice.example', '8000', '17',
                     '2026-03-01 12:00:00', '2026-03-01 12:01:00', 60, 'jti-a', '192.0.2.0',
                     60, 'timelimit');",
                w = writer.name
            )
            .as_str(),
        )
        .await
        .unwrap();

    // The writer may not alter the table: with something to do, migrating fails, and says why.
    let refused = jars::store::sessions::migrate(&writer.settings(&db))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("owner"), "{refused}");

    let owner = StoreSettings::Postgres(PostgresSettings::new(db.url.clone()));
    jars::store::sessions::migrate(&owner).await.unwrap();
    let columns = names(
        &db,
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = 'jars' AND table_name = 'listener_sessions' \
         AND column_name IN ('role', 'relay', 'end_cause') ORDER BY 1",
    )
    .await;
    assert_eq!(columns, ["end_cause", "relay", "role"]);
    let indexes = names(
        &db,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'jars' \
         AND tablename = 'listener_sessions' ORDER BY 1",
    )
    .await;
    assert_eq!(
        indexes,
        [
            "listener_sessions_of_event",
            "listener_sessions_open",
            "listener_sessions_pkey",
            "listener_sessions_started"
        ]
    );
    jars::store::sessions::migrate(&owner).await.unwrap();

    // Now the writer finds nothing to do (its store migrates when first used), and works.
    let store = jars::store::sessions::open(&writer.settings(&db))
        .await
        .unwrap();
    store
        .apply(&[open(listener("18", event, 120.0))])
        .await
        .unwrap();
    let rows = rows(&*store).await;
    assert_eq!(rows.len(), 2);
    let earlier = &rows[0];
    assert_eq!(earlier.session.key, SessionKey::listener(ice(), "17"));
    assert_eq!(earlier.session.target, Target::Event(event));
    assert_eq!(
        (earlier.session.started, earlier.ended, earlier.end_reason),
        (
            t0(),
            Some(t0() + Duration::minutes(1)),
            Some(EndReason::Timelimit)
        )
    );
    let figures = store
        .event_figures(event, t0() + Duration::minutes(3), 10)
        .await
        .unwrap()
        .figures;
    assert_eq!((figures.sessions, figures.listening_seconds), (2, 60 + 60));
    drop(store);
    writer.drop_with(db, &admin).await;
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn a_new_table_is_granted_to_whoever_writes_the_events() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let writer = Writer::create(&db).await;
    let owner = StoreSettings::Postgres(PostgresSettings::new(db.url.clone()));
    jars::store::sessions::migrate(&owner).await.unwrap();
    let store = jars::store::sessions::open(&writer.settings(&db))
        .await
        .unwrap();
    let event = Uuid::new_v4();
    store
        .apply(&[open(listener("1", event, 0.0))])
        .await
        .unwrap();
    assert_eq!(rows(&*store).await.len(), 1);
    drop(store);
    writer.drop_with(db, &admin).await;
}
