//! Nothing acknowledged is lost: a burst of `/jars/create` and `/jars/connect` against the real
//! `jars serve` process, SIGKILL in the middle, restart; every request that got its 201/202 is
//! in the store. On SQLite and on the real PostgreSQL.

use crate::support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const JARS: &str = env!("CARGO_BIN_EXE_jars");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn command(dir: &Path, db: Option<&str>) -> Command {
    // The burst is one member creating thousands of events: far beyond the default
    // `create_per_hour`, which is not what this test is about.
    let config = dir.join("jars.toml");
    std::fs::write(&config, "[limits]\ncreate_per_hour = 100000\n").unwrap();
    let mut cmd = Command::new(JARS);
    cmd.current_dir(dir)
        .env("JARS_CONFIG", &config)
        .env_remove("JARS_DATA_DIR")
        .env_remove("JARS_DATABASE_URL")
        .env("RUST_LOG", "warn");
    if let Some(url) = db {
        cmd.args(["--database-url", url]);
    }
    cmd
}

async fn start(dir: &Path, db: Option<&str>) -> (Child, String) {
    let port = free_port();
    let child = command(dir, db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

async fn burst_kill_restart(db: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = db.as_deref();
    let mut add = command(dir.path(), db)
        .args(["user", "add", "owner", "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    add.stdin
        .take()
        .unwrap()
        .write_all(b"owner-password\n")
        .unwrap();
    assert!(add.wait().unwrap().success());

    let (mut child, base) = start(dir.path(), db).await;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/jars/token"))
        .form(&[("user", "owner"), ("password", "owner-password")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();

    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let connected = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let (created, connected) = (created.clone(), connected.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..200 {
                let resp = http
                    .post(format!("{base}/jars/create"))
                    .form(&[
                        ("auth", token.as_str()),
                        ("title", &format!("burst {w}-{i}")),
                        ("description", "d"),
                        ("private", "no"),
                    ])
                    .send()
                    .await;
                let Ok(resp) = resp else { return };
                if resp.status() != 201 {
                    return;
                }
                let Ok(body) = resp.json::<Value>().await else {
                    return;
                };
                let id = body["event_id"].as_str().unwrap().to_string();
                created.lock().unwrap().push(id.clone());
                let resp = http
                    .post(format!("{base}/jars/connect"))
                    .form(&[("auth", token.as_str()), ("mount", id.as_str())])
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 202 => connected.lock().unwrap().push(id),
                    _ => return,
                }
            }
        }));
    }
    // Kill in the middle of the burst.
    let started = Instant::now();
    while connected.lock().unwrap().len() < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "burst too slow"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let created = created.lock().unwrap().clone();
    let connected = connected.lock().unwrap().clone();
    assert!(
        created.len() < 16 * 200,
        "the kill came after the burst ended"
    );

    let (mut child, base) = start(dir.path(), db).await;
    // Every page of the listing, following its cursor.
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let resp = http
            .get(format!("{base}/jars/events?all=1&limit=1000{after}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let next = resp.headers().get("x-next-cursor").cloned();
        let page: Value = resp.json().await.unwrap();
        events.extend(page.as_array().unwrap().iter().cloned());
        match next {
            Some(cursor) => after = format!("&after={}", cursor.to_str().unwrap()),
            None => break,
        }
    }
    let rows: std::collections::HashMap<&str, &Value> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    for id in &created {
        assert!(
            rows.contains_key(id.as_str()),
            "acknowledged create {id} lost"
        );
    }
    for id in &connected {
        let row = rows[id.as_str()];
        assert_eq!(row["connected"], true, "acknowledged connect of {id} lost");
        assert!(row["connected_by"].is_i64());
    }
    eprintln!(
        "durability: {} creates and {} connects acknowledged before SIGKILL, all present",
        created.len(),
        connected.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_write_on_sqlite() {
    burst_kill_restart(None).await;
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn sigkill_loses_no_acknowledged_write_on_postgres() {
    let admin = support::pg::admin_url();
    let db = support::pg::TempDb::create(&admin).await;
    burst_kill_restart(Some(db.url.clone())).await;
}
