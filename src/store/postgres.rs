//! The shared event store: PostgreSQL, in the original JARS schema (`jars.events`), so several
//! jars nodes, and the original service during a move, use one table.
//!
//! - Every query names `jars.events`, so the connection's `search_path` does not matter.
//! - Timestamps are `TIMESTAMP WITHOUT TIME ZONE` holding UTC (the original's `DEFAULT now()`
//!   is the server's `timezone`: keep that UTC).
//! - The schema is prepared by the embedded, idempotent `migrations/postgres/jars.sql`.
//! - Every operation is bounded: a pooled connection is waited for at most `acquire_timeout`
//!   (connecting included) and the whole operation at most `query_timeout`. When the database
//!   turns out unreachable, operations fail at once, without waiting, while a background probe
//!   pings it every [`PROBE_INTERVAL`]; the first successful ping lets them through again.
//!   Idle connections are tested before use, so those that died with the server are replaced.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use tokio::sync::OnceCell;
use uuid::Uuid;

mod connect;
mod grants;
mod listener_counts;
mod migrate;
mod sanctions;

use super::group_commit::GroupCommit;
use super::{Connect, ConnectRequest, Event, EventStore, ListFilter, NewEvent, StoreError};
use crate::config::{redact_url, PostgresSettings};

/// The embedded migration: creates the original table when missing, adds jars' nullable columns.
pub const MIGRATION: &str = include_str!("../../migrations/postgres/jars.sql");

/// How often an unreachable database is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// How long start-up and `jars migrate` wait for the migration (it may queue behind another's).
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(15);

const COLUMNS: &str = "event_uuid, created_time, created_by, connected, connected_by, \
    expires_time, title, description, private, relation_id, last_connected_at, \
    last_disconnected_at, max_listeners";

pub struct PostgresStore {
    inner: Arc<Inner>,
    /// `/jars/connect`'s writes, committed in batches.
    connects: GroupCommit<connect::ConnectJob, bool>,
}

struct Inner {
    pool: PgPool,
    /// For one direct connection when the pool only says it timed out.
    options: PgConnectOptions,
    acquire_timeout: Duration,
    /// The URL without its password, for messages.
    label: String,
    migrate: bool,
    query_timeout: Duration,
    /// Set once the schema is migrated (or, with `migrate = false`, checked).
    schema: OnceCell<()>,
    /// The database was found unreachable; a probe is running.
    down: AtomicBool,
}

/// Why an operation failed, before it becomes a [`StoreError`].
enum Failure {
    /// The database could not be reached (or did not answer in time): fail fast until it is back.
    Unreachable(String),
    /// Anything else: this operation failed, the next may not.
    Other(String),
    /// The database refused a value of this operation ([`super::refuses_value`]).
    Invalid(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        if unreachable(&e) {
            Failure::Unreachable(e.to_string())
        } else if super::refuses_value(&e) {
            Failure::Invalid(e.to_string())
        } else {
            Failure::Other(e.to_string())
        }
    }
}

/// Whether `e` means "the database is not there" rather than "this statement failed".
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // 08: connection exception; 57P01-03: shutting down / starting up; 53300: too many
            // connections.
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn member(id: i64) -> Result<i32, Failure> {
    i32::try_from(id).map_err(|_| {
        Failure::Other(format!(
            "member id {id} does not fit jars.events' INTEGER columns"
        ))
    })
}

/// A listener cap as the `INTEGER` column holds it.
fn capped(max: u32) -> Result<i32, Failure> {
    i32::try_from(max).map_err(|_| Failure::Invalid(format!("max_listeners {max} is too large")))
}

fn row_to_event(row: &PgRow) -> Result<Event, sqlx::Error> {
    let time = |col: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row
            .try_get::<Option<NaiveDateTime>, _>(col)?
            .map(|t| t.and_utc()))
    };
    Ok(Event {
        id: row.try_get("event_uuid")?,
        created_time: row.try_get::<NaiveDateTime, _>("created_time")?.and_utc(),
        created_by: i64::from(row.try_get::<i32, _>("created_by")?),
        connected: row.try_get("connected")?,
        connected_by: row
            .try_get::<Option<i32>, _>("connected_by")?
            .map(i64::from),
        expires_time: row.try_get::<NaiveDateTime, _>("expires_time")?.and_utc(),
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        private: row.try_get("private")?,
        relation_id: row.try_get("relation_id")?,
        last_connected_at: time("last_connected_at")?,
        last_disconnected_at: time("last_disconnected_at")?,
        max_listeners: row
            .try_get::<Option<i32>, _>("max_listeners")?
            .and_then(|n| u32::try_from(n).ok()),
    })
}

/// The columns of `jars.events`, in table order (empty when there is no such table).
async fn table_columns(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute \
         WHERE attrelid = to_regclass('jars.events') AND attnum > 0 AND NOT attisdropped \
         ORDER BY attnum",
    )
    .fetch_all(pool)
    .await
}

impl Inner {
    /// Migrates (or checks) the schema once per process; retried by the next operation if it
    /// fails.
    async fn ensure_schema(&self) -> Result<(), Failure> {
        self.schema
            .get_or_try_init(|| async {
                if self.migrate {
                    run_migration(&self.pool).await?;
                }
                check_schema(&self.pool).await
            })
            .await
            .map(|_| ())
    }

    /// Marks the database unreachable and starts the probe that clears the mark.
    fn mark_down(self: &Arc<Self>, why: &str) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(
            store = %self.label,
            error = why,
            "PostgreSQL unreachable: store operations fail at once until it answers again"
        );
        let weak: Weak<Inner> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let Some(inner) = weak.upgrade() else { return };
                let ping = sqlx::query("SELECT 1").execute(&inner.pool);
                if let Ok(Ok(_)) = tokio::time::timeout(inner.query_timeout, ping).await {
                    inner.down.store(false, Ordering::Release);
                    tracing::info!(store = %inner.label, "PostgreSQL reachable again");
                    return;
                }
            }
        });
    }
}

/// What the operator should do about `e`, by SQLSTATE; `None` when there is nothing useful to
/// add. A wrong database or role is not a schema problem, so it never gets the migrate hint.
fn remedy(e: &sqlx::Error, migrating: bool) -> Option<&'static str> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    Some(match db.code()?.as_ref() {
        "3D000" => "no such database: check the database name in the store URL",
        "28000" | "28P01" => {
            "the server refused the role: check the user name and password in the store URL"
        }
        // insufficient_privilege: only the table's owner may create or alter it.
        "42501" if migrating => {
            "run `jars migrate` as the table's owner, e.g. postgres, or set [store] migrate = \
             false once it has run"
        }
        "42501" => "the role may not read jars.events: grant it SELECT, INSERT and UPDATE",
        // undefined table, column or schema: an unmigrated database.
        "42P01" | "42703" | "3F000" => "run `jars migrate`",
        _ => return None,
    })
}

/// `e` as a [`Failure`], with its remedy (if any) after the database's own text. The server
/// refusing the connection is said to be that, whatever statement was about to run.
fn explained(e: sqlx::Error, what: &str, migrating: bool) -> Failure {
    let hint = remedy(&e, migrating);
    let refused = matches!(&e, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c == "3D000" || c.starts_with("28")));
    let what = if refused { "cannot connect" } else { what };
    match (Failure::from(e), hint) {
        (Failure::Other(msg), Some(hint)) => Failure::Other(format!("{what}: {msg} ({hint})")),
        (Failure::Other(msg), None) => Failure::Other(format!("{what}: {msg}")),
        (other, _) => other,
    }
}

async fn run_migration(pool: &PgPool) -> Result<(), Failure> {
    sqlx::raw_sql(MIGRATION)
        .execute(pool)
        .await
        .map_err(|e| explained(e, "migrating jars.events", true))
        .map(|_| ())
}

async fn check_schema(pool: &PgPool) -> Result<(), Failure> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM jars.events LIMIT 0"))
        .execute(pool)
        .await
        .map_err(|e| explained(e, "jars.events is not usable", false))?;
    grants::check_own_tables(pool).await
}

impl PostgresStore {
    fn new(settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        let label = redact_url(&settings.url);
        let options: PgConnectOptions = settings
            .url
            .parse::<PgConnectOptions>()
            .map_err(|e| StoreError::Unavailable(format!("{label}: {e}")))?
            .application_name("jars");
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            // A connection that died with the server is found out here, not by a request.
            .test_before_acquire(true)
            .idle_timeout(Some(Duration::from_secs(300)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            .connect_lazy_with(options.clone());
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                options,
                acquire_timeout: settings.acquire_timeout,
                label,
                migrate: settings.migrate,
                query_timeout: settings.query_timeout,
                schema: OnceCell::new(),
                down: AtomicBool::new(false),
            }),
            connects: GroupCommit::new(),
        })
    }

    /// Connects, and migrates (unless `migrate = false`, then checks) the schema; fails if the
    /// database cannot be reached.
    pub async fn open(settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        let store = Self::new(settings)?;
        match tokio::time::timeout(MIGRATE_TIMEOUT, store.inner.ensure_schema()).await {
            Ok(Ok(())) => Ok(store),
            Ok(Err(Failure::Other(m) | Failure::Invalid(m))) => Err(store.inner.error(m)),
            Ok(Err(Failure::Unreachable(m))) => Err(store.inner.error(store.diagnose(m).await)),
            Err(_) => Err(store.inner.error(format!(
                "no answer within {}",
                humantime::format_duration(MIGRATE_TIMEOUT)
            ))),
        }
    }

    /// The pool reports only that it timed out; one direct connection tells why (refused,
    /// unknown host, …).
    async fn diagnose(&self, pool_error: String) -> String {
        use sqlx::ConnectOptions;
        let attempt =
            tokio::time::timeout(self.inner.acquire_timeout, self.inner.options.connect());
        match attempt.await {
            Ok(Err(e)) => format!("cannot connect: {e}"),
            Err(_) => format!(
                "cannot connect: no answer within {}",
                humantime::format_duration(self.inner.acquire_timeout)
            ),
            Ok(Ok(_)) => pool_error,
        }
    }

    /// As [`PostgresStore::open`], but an unreachable database is not an error: the store
    /// starts marked down, and migrates on first contact.
    pub async fn open_tolerant(settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        let store = Self::new(settings)?;
        match tokio::time::timeout(MIGRATE_TIMEOUT, store.inner.ensure_schema()).await {
            Ok(Ok(())) => {}
            Ok(Err(Failure::Other(m) | Failure::Invalid(m))) => return Err(store.inner.error(m)),
            Ok(Err(Failure::Unreachable(m))) => {
                let m = store.diagnose(m).await;
                tracing::warn!(store = %store.inner.label, error = %m,
                    "PostgreSQL unreachable at start-up; starting anyway");
                store.inner.mark_down(&m);
            }
            Err(_) => store.inner.mark_down("no answer at start-up"),
        }
        Ok(store)
    }

    /// Runs one operation ([`Inner::run`]).
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.inner.run(op).await
    }
}

impl Inner {
    fn error(&self, msg: String) -> StoreError {
        StoreError::Unavailable(format!("PostgreSQL {}: {msg}", self.label))
    }

    /// Runs one operation: at once `Unavailable` while the database is known to be down, else
    /// with the schema prepared and within `query_timeout`.
    async fn run<T, F, Fut>(self: &Arc<Self>, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let inner = self;
        if inner.down.load(Ordering::Acquire) {
            return Err(self.error("unreachable (retrying in the background)".into()));
        }
        let work = async {
            inner.ensure_schema().await?;
            op(inner.pool.clone()).await
        };
        match tokio::time::timeout(inner.query_timeout, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(Failure::Other(m))) => Err(self.error(m)),
            Ok(Err(Failure::Invalid(m))) => Err(StoreError::InvalidInput(m)),
            Ok(Err(Failure::Unreachable(m))) => {
                inner.mark_down(&m);
                Err(self.error(m))
            }
            Err(_) => {
                let m = format!(
                    "no answer within {}",
                    humantime::format_duration(inner.query_timeout)
                );
                inner.mark_down(&m);
                Err(self.error(m))
            }
        }
    }
}

#[async_trait::async_trait]
impl EventStore for PostgresStore {
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError> {
        let lifetime = chrono::Duration::from_std(new.lifetime)
            .map_err(|e| StoreError::Unavailable(format!("event lifetime: {e}")))?;
        let now = new.now;
        let id = Uuid::new_v4();
        self.run(|pool| async move {
            let created_by = member(new.created_by)?;
            let max_listeners = new.max_listeners.map(capped).transpose()?;
            let row = sqlx::query(&format!(
                "INSERT INTO jars.events (event_uuid, created_time, created_by, expires_time, \
                 title, description, private, max_listeners) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(to_db(now))
            .bind(created_by)
            .bind(to_db(now + lifetime))
            .bind(&new.title)
            .bind(&new.description)
            .bind(new.private)
            .bind(max_listeners)
            .fetch_one(&pool)
            .await?;
            Ok(row_to_event(&row)?)
        })
        .await
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.run(|pool| async move {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM jars.events WHERE event_uuid = $1"
            ))
            .bind(id)
            .fetch_optional(&pool)
            .await?;
            Ok(row.as_ref().map(row_to_event).transpose()?)
        })
        .await
    }

    async fn list(&self, f: ListFilter) -> Result<Vec<Event>, StoreError> {
        // A member id beyond INTEGER owns no row.
        let private_of = f.private_of.and_then(|m| i32::try_from(m).ok());
        self.run(|pool| async move {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM jars.events \
                 WHERE ($1 OR expires_time > $2) AND (NOT private OR $3 OR created_by = $4) \
                 AND ($5::timestamp IS NULL OR (created_time, event_uuid) < ($5, $6)) \
                 ORDER BY created_time DESC, event_uuid DESC LIMIT $7"
            ))
            .bind(f.include_expired)
            .bind(to_db(f.now))
            .bind(f.all_private)
            .bind(private_of)
            .bind(f.after.map(|c| to_db(c.created_time)))
            .bind(f.after.map(|c| c.id))
            // NULL: no limit.
            .bind(f.limit.map(i64::from))
            .fetch_all(&pool)
            .await?;
            Ok(rows
                .iter()
                .map(row_to_event)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let by = by.map(member).transpose()?;
            let done = sqlx::query(
                "UPDATE jars.events SET connected = TRUE, \
                 connected_by = COALESCE($1, connected_by), last_connected_at = $2 \
                 WHERE event_uuid = $3",
            )
            .bind(by)
            .bind(to_db(at))
            .bind(id)
            .execute(&pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn connect(&self, request: ConnectRequest) -> Result<Connect, StoreError> {
        let id = request.id;
        let job = match connect::ConnectJob::new(request) {
            Ok(Some(job)) => job,
            Ok(None) => return Ok(Connect::Refused(self.get(id).await?)),
            Err(m) => return Err(self.inner.error(m)),
        };
        let writer = || connect::ConnectWriter {
            inner: self.inner.clone(),
        };
        if self.connects.submit(job, writer).await? {
            Ok(Connect::Done)
        } else {
            Ok(Connect::Refused(self.get(id).await?))
        }
    }

    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE jars.events SET connected = FALSE, last_disconnected_at = $1 \
                 WHERE event_uuid = $2",
            )
            .bind(to_db(at))
            .bind(id)
            .execute(&pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn set_max_listeners(&self, id: Uuid, max: Option<u32>) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let max = max.map(capped).transpose()?;
            let done =
                sqlx::query("UPDATE jars.events SET max_listeners = $1 WHERE event_uuid = $2")
                    .bind(max)
                    .bind(id)
                    .execute(&pool)
                    .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|pool| async move {
            sqlx::query("SELECT 1").execute(&pool).await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
