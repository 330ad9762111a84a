//! What an event's figures cost the session store: fills a store with `ROWS` listener
//! sessions of one event (spread over about three hours, as many joins a second as that
//! takes; a third by members, a third by tickets, a third by address only; 1% still open; a
//! quarter on a second Icecast server) and
//! `OTHER` rows of another event, then measures `event_figures` for the event: wall and CPU time
//! of one call (this process's, and on PostgreSQL its server's, when it runs on this machine),
//! the RSS 16 concurrent calls add, and how soon a call answers after calls dropped mid-query.
//!
//! `session_figures [ROWS] [OTHER] [POSTGRES_URL]` (defaults 1,000,000 and 0; without a URL, a
//! SQLite file in a temporary directory). A PostgreSQL database is emptied of sessions first:
//! give it a scratch one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use jars::config::PostgresSettings;
use jars::store::sessions::postgres::PgSessions;
use jars::store::sessions::sqlite::SqliteSessions;
use jars::store::sessions::SessionStore;
use sqlx::{Connection, Executor};
use uuid::Uuid;

/// The rows' first start (2023-11-14 22:13:20 UTC).
const BASE: i64 = 1_700_000_000;

/// The fill, for SQLite: `?1` rows of event `?2`, the first numbered `?3`.
const FILL_SQLITE: &str = "WITH RECURSIVE n(i) AS (SELECT ?3 UNION ALL SELECT i + 1 FROM n \
    WHERE i < ?3 + ?1 - 1) \
    INSERT INTO sessions (role, server, port, client, mount, event_uuid, ip, agent, referer, \
    ticket, member, started, timelimit, ended, duration, end_reason) \
    SELECT 'listener', CASE WHEN i % 4 = 0 THEN 'edge.example' ELSE 'ice.example' END, '8000', \
    i, '/' || ?2 || '.mp3', ?2, \
    '192.0.' || (i % 200) || '.' || (i % 250), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', \
    'https://radio.example/player', CASE WHEN i % 3 = 0 THEN 'jti-' || i END, \
    CASE WHEN i % 3 = 1 THEN i % 5000 END, s, 3600, \
    CASE WHEN i % 100 <> 0 THEN s + d * 1000000 END, CASE WHEN i % 100 <> 0 THEN d END, \
    CASE WHEN i % 100 = 0 THEN NULL WHEN i % 50 = 1 THEN 'kicked' ELSE 'left' END \
    FROM (SELECT i, (1700000000 + (i % 1000000) / 100) * 1000000 + (i * 7919) % 1000000 AS s, \
    60 + (i * 104729) % 3540 AS d FROM n)";

/// The fill, for PostgreSQL: `$1` rows of event `$2`, the first numbered `$3`.
const FILL_POSTGRES: &str = "INSERT INTO jars.listener_sessions (role, server, port, client, \
    mount, event_uuid, ip, agent, referer, ticket, member, started, timelimit, ended, duration, \
    end_reason) \
    SELECT 'listener', CASE WHEN i % 4 = 0 THEN 'edge.example' ELSE 'ice.example' END, '8000', \
    i::text, '/' || $2 || '.mp3', $2::uuid, \
    '192.0.' || (i % 200) || '.' || (i % 250), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', \
    'https://radio.example/player', CASE WHEN i % 3 = 0 THEN 'jti-' || i END, \
    CASE WHEN i % 3 = 1 THEN i % 5000 END, s, 3600, \
    CASE WHEN i % 100 <> 0 THEN s + d * interval '1 second' END, \
    CASE WHEN i % 100 <> 0 THEN d END, \
    CASE WHEN i % 100 = 0 THEN NULL WHEN i % 50 = 1 THEN 'kicked' ELSE 'left' END \
    FROM (SELECT i, to_timestamp(1700000000 + (i % 1000000) / 100 \
    + ((i * 7919) % 1000000) / 1e6)::timestamp AS s, 60 + (i * 104729) % 3540 AS d \
    FROM generate_series($3::bigint, $3::bigint + $1 - 1) i) g";

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// This process's user + system CPU time.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The CPU time of every `postgres` process on this machine, and of those that ended (the
/// postmaster's children: parallel workers).
fn postgres_cpu() -> Duration {
    let ticks = |stat: &str, from: usize, n: usize| -> u64 {
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        (from..from + n)
            .filter_map(|i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum()
    };
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if !stat.contains("(postgres)") {
            continue;
        }
        // utime, stime; for the postmaster (its parent is not postgres) its children's too.
        total += ticks(&stat, 11, 2);
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1));
        let parent_stat = parent
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
            .unwrap_or_default();
        if !parent_stat.contains("(postgres)") {
            total += ticks(&stat, 13, 2);
        }
    }
    Duration::from_millis(total * 10)
}

async fn fill(url: Option<&str>, path: &std::path::Path, rows: i64, event: Uuid, first: i64) {
    match url {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query(FILL_POSTGRES)
                .bind(rows)
                .bind(event.to_string())
                .bind(first)
                .execute(&mut conn)
                .await
                .expect("fill");
            conn.execute("VACUUM ANALYZE jars.listener_sessions")
                .await
                .expect("vacuum");
        }
        None => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("open");
            sqlx::query(FILL_SQLITE)
                .bind(rows)
                .bind(event.to_string())
                .bind(first)
                .execute(&mut conn)
                .await
                .expect("fill");
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: i64 = args.first().map_or(1_000_000, |a| a.parse().expect("ROWS"));
    let other: i64 = args.get(1).map_or(0, |a| a.parse().expect("OTHER"));
    let url = args.get(2).map(String::as_str);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("jars.sqlite3");
    let store: Arc<dyn SessionStore> = match url {
        Some(url) => {
            let mut settings = PostgresSettings::new(url);
            settings.query_timeout = Duration::from_secs(30);
            let store = PgSessions::open(&settings).await.expect("the store");
            PgSessions::migrate(&settings).await.expect("migrated");
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            conn.execute("TRUNCATE jars.listener_sessions")
                .await
                .expect("emptied");
            Arc::new(store)
        }
        None => Arc::new(SqliteSessions::open(&path).await.expect("the store")),
    };
    let event = Uuid::new_v4();
    let started = Instant::now();
    fill(url, &path, rows, event, 0).await;
    if other > 0 {
        fill(url, &path, other, Uuid::new_v4(), rows).await;
    }
    println!(
        "filled {rows} rows of the event and {other} of another in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let now = DateTime::from_timestamp(BASE + 4 * 3600, 0).unwrap();
    let call = || {
        let store = store.clone();
        async move {
            store
                .event_figures(event, now, 45_000)
                .await
                .expect("figures")
        }
    };
    let f = call().await;
    println!(
        "{:?}, {} points, servers {:?}",
        f.figures,
        f.series.len(),
        f.servers
    );
    for _ in 0..3 {
        let (wall, cpu_before, pg_before) = (Instant::now(), cpu(), postgres_cpu());
        call().await;
        println!(
            "one call: {:.0} ms wall, {:.0} ms CPU of this process, {:.0} ms of PostgreSQL's \
             (all of its processes on this machine)",
            wall.elapsed().as_secs_f64() * 1e3,
            (cpu() - cpu_before).as_secs_f64() * 1e3,
            (postgres_cpu().saturating_sub(pg_before)).as_secs_f64() * 1e3
        );
    }
    let before = rss_kib();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let wall = Instant::now();
    let calls: Vec<_> = (0..16).map(|_| tokio::spawn(call())).collect();
    for c in calls {
        c.await.expect("a call");
    }
    sampler.abort();
    println!(
        "16 concurrent calls: {:.1} s wall, RSS {} MiB before, +{} MiB at most",
        wall.elapsed().as_secs_f64(),
        before / 1024,
        (peak.load(std::sync::atomic::Ordering::Relaxed) - before) / 1024
    );
    // Dropped calls: every read connection busy with one, each dropped after 50 ms.
    let dropped: Vec<_> = (0..4)
        .map(|_| tokio::spawn(tokio::time::timeout(Duration::from_millis(50), call())))
        .collect();
    for d in dropped {
        let timed_out = d.await.expect("a call").is_err();
        assert!(timed_out, "a call took under 50 ms: nothing to drop");
    }
    let wall = Instant::now();
    store
        .event_figures(Uuid::new_v4(), now, 10)
        .await
        .expect("figures of an empty event");
    println!(
        "after 4 calls dropped at 50 ms, the next call answered in {:.0} ms",
        wall.elapsed().as_secs_f64() * 1e3
    );
}
