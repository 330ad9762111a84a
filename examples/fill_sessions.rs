//! Fills the session table for `bench/run` (scenario 9): ROWS closed listener sessions of one
//! event through the store's own API, as the writer would have stored them — a show with a
//! steady audience on two Icecast servers, each session minutes long, started over a few hours.
//!
//! `fill_sessions DATA_DIR EVENT_ID ROWS` (the data dir's SQLite store, or
//! `JARS_DATABASE_URL`'s PostgreSQL)

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Duration, Utc};
use jars::config::{Config, Overrides};
use jars::domain::{Ending, ServerId, Session, SessionEnd, SessionKey, SessionOp, Target};

fn usage(problem: &str) -> ! {
    eprintln!("fill_sessions: {problem}\nusage: fill_sessions DATA_DIR EVENT_ID ROWS");
    std::process::exit(64);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        usage("three arguments expected");
    }
    let event: uuid::Uuid = args[2]
        .parse()
        .unwrap_or_else(|_| usage("EVENT_ID: a uuid"));
    let rows: u64 = args[3].parse().unwrap_or_else(|_| usage("ROWS: a number"));
    let config = Config::load(&Overrides {
        data_dir: Some(PathBuf::from(&args[1])),
        database_url: std::env::var("JARS_DATABASE_URL").ok(),
        ..Overrides::default()
    })
    .unwrap_or_else(|e| usage(&e.to_string()));
    let store = jars::store::sessions::open(&config.store)
        .await
        .unwrap_or_else(|e| usage(&e.to_string()));
    // A master and an edge (a quarter of the listeners), as `/stats` shares them out.
    let (master, edge) = (
        ServerId::new("bench-ice", "8000"),
        ServerId::new("bench-edge", "8000"),
    );
    // Six hours of starts; each session 1–30 minutes.
    let start = Utc::now() - Duration::hours(7);
    let step = Duration::microseconds(6 * 3_600_000_000 / rows.max(1) as i64);
    let mut ops = Vec::with_capacity(20_000);
    for i in 0..rows {
        let started = start + step * i as i32;
        let seconds = 60 + (i * 7_919) % 1_740;
        let server = if i % 4 == 0 { &edge } else { &master };
        let key = SessionKey::listener(server.clone(), format!("{i}"));
        ops.push(SessionOp::Open(Arc::new(Session {
            key: key.clone(),
            mount: format!("/{event}.mp3"),
            target: Target::Event(event),
            ip: format!("198.51.{}.0", i % 200),
            agent: Some("VLC/3.0.18 LibVLC/3.0.18".into()),
            referer: None,
            ticket: Some(format!("jti-{}", i % 50_000)),
            member: None,
            relay: None,
            started,
            timelimit: Some(7_200),
        })));
        ops.push(SessionOp::Close(SessionEnd {
            key,
            at: started + Duration::seconds(seconds as i64),
            duration: Some(seconds),
            ending: Ending::Reported,
        }));
        if ops.len() >= 20_000 {
            store
                .apply(&ops)
                .await
                .unwrap_or_else(|e| usage(&e.to_string()));
            ops.clear();
        }
    }
    store
        .apply(&ops)
        .await
        .unwrap_or_else(|e| usage(&e.to_string()));
    eprintln!("fill_sessions: {rows} sessions of {event} stored");
}
