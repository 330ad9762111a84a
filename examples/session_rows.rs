//! The session writer's cost per row, outside HTTP: `ROWS` new listener sessions (as
//! bench/run's scenario 2s opens them: an event's mount, a ticket, an agent, a referer, a
//! truncated address, client ids counting up) applied to a fresh SQLite file in batches of
//! `BATCH`, as the writer's thread applies them; prints CPU µs per row. Run it under
//! `valgrind --tool=callgrind` for instructions per row: unlike a callback load, the batches
//! are as large as under tens of thousands of joins a second.
//!
//! `session_rows [ROWS] [BATCH]` (defaults 20,000 and 1,000)

use std::time::Instant;

use chrono::Utc;
use jars::sessions::{OpenedSession, SessionOp, SessionText};
use jars::store::sessions::sqlite::SqliteSessions;
use jars::store::sessions::SessionStore;
use uuid::Uuid;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let rows = args.next().unwrap_or(20_000);
    let batch = args.next().unwrap_or(1_000).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteSessions::open(&dir.path().join("jars.sqlite3"))
        .await
        .expect("the session store");
    let event = Uuid::new_v4();
    let mount = format!("/{event}.mp3");
    let ticket = Uuid::new_v4().simple().to_string();
    let mut client = 1_000u64;
    let mut batches = Vec::new();
    for start in (0..rows).step_by(batch) {
        let ops: Vec<SessionOp> = (start..rows.min(start + batch))
            .map(|_| {
                client += 1;
                let id = client.to_string();
                SessionOp::Open(OpenedSession::new(
                    SessionText {
                        server: "localhost",
                        port: "8000",
                        client: &id,
                        mount: &mount,
                        ticket: Some(&ticket),
                        ip: Some("127.0.0.0"),
                        agent: Some("VLC/3.0.18 LibVLC/3.0.18"),
                        referer: Some("https://radio.example.org/player"),
                    },
                    Some(event),
                    Utc::now(),
                    None,
                    Some(3600),
                ))
            })
            .collect();
        batches.push(ops);
    }
    let started = Instant::now();
    for ops in batches {
        store.apply(ops).await.expect("applied");
    }
    let elapsed = started.elapsed();
    println!(
        "{rows} rows in batches of {batch}: {:.2} µs a row (wall time; the writer's thread does the work)",
        elapsed.as_secs_f64() * 1e6 / rows as f64
    );
}
