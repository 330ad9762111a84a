//! jars on a real PostgreSQL (`DATABASE_URL`; mandatory in CI): the original JARS schema loaded
//! verbatim with rows written by the original service's own INSERT, two jars servers sharing
//! one database, and PostgreSQL going away (a closed port, and a TCP proxy cut and restored)
//! while jars keeps answering Icecast and recovers by itself.
//!
//! Every test works in a database of its own, dropped afterwards.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Row;
use support::icecast_escape as esc;
use support::pg::{admin_url, server_addr, via, Link, TcpProxy, TempDb};
use support::{client, error_name, post_form, TestServer};
use uuid::Uuid;

/// The original service's columns, in its table's order.
const ORIGINAL_COLUMNS: [&str; 10] = [
    "event_uuid",
    "created_time",
    "created_by",
    "connected",
    "connected_by",
    "expires_time",
    "title",
    "description",
    "private",
    "relation_id",
];

/// The original service's INSERT (psycopg2's `%s` placeholders as `$n`), run with
/// `search_path` jars as the original did.
const ORIGINAL_INSERT: &str = "INSERT INTO events (event_uuid, created_by, expires_time, title, \
     description, private) VALUES ($1, $2, $3, $4, $5, $6)";

/// Posts an Icecast callback; whether it was allowed (`icecast-auth-user: 1`) and the message.
pub(crate) async fn callback(
    server: &TestServer,
    fields: &[(&str, &str)],
) -> (bool, Option<String>) {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", esc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let resp = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", "Icecast 2.4.4")
        .body(body)
        .send()
        .await
        .unwrap();
    let h = resp.headers();
    let allowed = h.get("icecast-auth-user").and_then(|v| v.to_str().ok()) == Some("1");
    let message = h
        .get("icecast-auth-message")
        .map(|v| v.to_str().unwrap().to_string());
    (allowed, message)
}

async fn listener_add(server: &TestServer, event: &str) -> (bool, Option<String>) {
    let mount = format!("/{event}");
    callback(
        server,
        &[
            ("action", "listener_add"),
            ("server", "localhost"),
            ("port", "8000"),
            ("client", "7"),
            ("mount", &mount),
            ("user", ""),
            ("pass", ""),
            ("ip", "127.0.0.1"),
            ("agent", "curl/7.88.1"),
        ],
    )
    .await
}

async fn stream_auth(server: &TestServer, event: &str, token: &str) -> (bool, Option<String>) {
    let mount = format!("/{event}");
    callback(
        server,
        &[
            ("action", "stream_auth"),
            ("mount", &mount),
            ("ip", "127.0.0.1"),
            ("server", "localhost"),
            ("port", "8000"),
            ("user", "source"),
            ("pass", token),
        ],
    )
    .await
}

async fn create(server: &TestServer, token: &str, title: &str) -> (u16, String) {
    post_form(
        &server.url("/jars/create"),
        &[
            ("auth", token),
            ("title", title),
            ("description", "d"),
            ("private", "false"),
        ],
    )
    .await
}

async fn connect(server: &TestServer, token: &str, event: &str) -> (u16, String) {
    post_form(
        &server.url("/jars/connect"),
        &[("auth", token), ("mount", event)],
    )
    .await
}

async fn get_json(server: &TestServer, path: &str, token: Option<&str>) -> Value {
    let mut req = client().get(server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

fn listed<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == id)
}

pub(crate) fn store_toml(url: &str, extra: &str) -> String {
    format!("[store]\nurl = \"{url}\"\n{extra}\n")
}

/// Runs the `jars` binary with `args`; (exit code, stdout, stderr).
pub(crate) fn jars_cli(args: &[&str], database_url: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jars"))
        .args(args)
        .env("JARS_DATA_DIR", dir.path())
        .env("JARS_DATABASE_URL", database_url)
        .env_remove("JARS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The original schema file, verbatim, then rows inserted the way the original service inserts
/// them; jars (as the original's own `jars` role when this server lets us create it) lists,
/// connects and creates on that table, and the original's `SELECT *` reads jars' rows.
#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn original_schema_and_original_rows() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let mut conn = db.connect().await;

    let have_role = support::pg::load_original_schema(&mut conn).await;

    // Rows as the original service writes them: no jars columns, created_time from DEFAULT.
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).naive_utc();
    let original_public = Uuid::new_v4();
    let original_private = Uuid::new_v4();
    let original_untitled = Uuid::new_v4();
    for (id, title, description, private) in [
        (
            original_public,
            Some("Original breakfast"),
            Some("from the original"),
            false,
        ),
        (
            original_private,
            Some("Outside broadcast"),
            Some("back to studio"),
            true,
        ),
        (original_untitled, None, None, false),
    ] {
        sqlx::query(ORIGINAL_INSERT)
            .bind(id)
            .bind(1_i32)
            .bind(expires)
            .bind(title)
            .bind(description)
            .bind(private)
            .execute(&mut conn)
            .await
            .unwrap();
    }

    // jars runs as the original's role when there is one: that role may use the table but
    // does not own it, so it cannot add jars' columns...
    let jars_role_url = support::pg::as_original_role(&db.url);
    let server_url = if have_role {
        let (code, _, stderr) = jars_cli(&["migrate"], &jars_role_url);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("owner"), "{stderr}");
        assert!(
            !stderr.contains("YOUR_PASSWORD"),
            "password leaked: {stderr}"
        );
        jars_role_url.clone()
    } else {
        db.url.clone()
    };
    // ...and with migrate = false jars refuses an unmigrated table, saying what to do.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[store]\nmigrate = false\n").unwrap();
    let config_path = config.path().to_str().unwrap();
    let (code, _, stderr) = jars_cli(&["event", "list", "--config", config_path], &db.url);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("jars migrate"), "{stderr}");

    // `jars migrate` as the owner adds the columns; a second run changes nothing.
    let (code, stdout, stderr) = jars_cli(&["migrate"], &db.url);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("added to jars.events: last_connected_at, last_disconnected_at"),
        "{stdout}"
    );
    assert!(stdout.contains("created jars.bans"), "{stdout}");
    let (code, stdout, stderr) = jars_cli(&["migrate"], &server_url);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert!(!stdout.contains("created"), "{stdout}");

    let server = TestServer::start(&store_toml(&server_url, "")).await;
    let dj = server.add_user("dj", "pw", false);
    let admin_id = server.add_user("boss", "pw", true);
    assert_eq!(dj, 1, "the original rows are owned by member 1");
    let dj_token = server.login("dj", "pw").await;
    let admin_token = server.login("boss", "pw").await;

    // The original's rows, listed.
    let anon = get_json(&server, "/jars/events", None).await;
    let row = listed(&anon, &original_public.to_string()).expect("original row listed");
    assert_eq!(row["title"], "Original breakfast");
    assert_eq!(row["created_by"], 1);
    assert_eq!(row["connected"], false);
    assert_eq!(row["last_connected_at"], Value::Null);
    let created = row["created_time"].as_i64().unwrap();
    assert!(
        (created - chrono::Utc::now().timestamp()).abs() < 60,
        "DEFAULT now() read as UTC: {created}"
    );
    assert_eq!(row["expires_time"], expires.and_utc().timestamp());
    let untitled = listed(&anon, &original_untitled.to_string()).expect("untitled row");
    assert_eq!(untitled["title"], Value::Null);
    assert_eq!(untitled["description"], Value::Null);
    assert!(listed(&anon, &original_private.to_string()).is_none());
    let mine = get_json(&server, "/jars/events", Some(&dj_token)).await;
    assert!(listed(&mine, &original_private.to_string()).is_some());

    // Connect to an original row; Icecast lets listeners in.
    let (status, body) = connect(&server, &dj_token, &original_public.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let (allowed, message) = listener_add(&server, &original_public.to_string()).await;
    assert!(allowed, "{message:?}");

    // Create with jars; connect as an admin.
    let (status, body) = create(&server, &dj_token, "Made by jars").await;
    assert_eq!(status, 201, "{body}");
    let made: Uuid = serde_json::from_str::<Value>(&body).unwrap()["event_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = connect(&server, &admin_token, &made.to_string()).await;
    assert_eq!(status, 202, "{body}");

    // The original's SELECT *: its columns first and in order, its types, jars' values.
    sqlx::raw_sql("SET search_path TO jars, public")
        .execute(&mut conn)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT * FROM events ORDER BY created_time")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    use sqlx::Column;
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        &names[..10],
        ORIGINAL_COLUMNS,
        "original columns first, in order"
    );
    let by_id = |id: Uuid| {
        rows.iter()
            .find(|r| r.get::<Uuid, _>("event_uuid") == id)
            .unwrap()
    };
    let ours = by_id(made);
    assert_eq!(ours.get::<i32, _>("created_by"), dj as i32);
    assert!(ours.get::<bool, _>("connected"));
    assert_eq!(
        ours.get::<Option<i32>, _>("connected_by"),
        Some(admin_id as i32)
    );
    assert_eq!(
        ours.get::<Option<String>, _>("title").as_deref(),
        Some("Made by jars")
    );
    assert_eq!(
        ours.get::<Option<String>, _>("description").as_deref(),
        Some("d")
    );
    assert!(!ours.get::<bool, _>("private"));
    assert_eq!(ours.get::<Option<i32>, _>("relation_id"), None);
    let created = ours.get::<chrono::NaiveDateTime, _>("created_time");
    let expires_ours = ours.get::<chrono::NaiveDateTime, _>("expires_time");
    assert_eq!(
        (expires_ours - created).num_seconds(),
        server.config.events.lifetime.as_secs() as i64
    );
    assert!((created.and_utc() - chrono::Utc::now()).num_seconds().abs() < 60);
    let theirs = by_id(original_public);
    assert!(theirs.get::<bool, _>("connected"));
    assert_eq!(
        theirs.get::<Option<i32>, _>("connected_by"),
        Some(dj as i32)
    );

    // The original service's UPDATE on connect still works on the shared table.
    sqlx::query("UPDATE events SET connected = TRUE, connected_by = $1 WHERE event_uuid = $2")
        .bind(2_i32)
        .bind(original_untitled)
        .execute(&mut conn)
        .await
        .unwrap();
    let list = get_json(&server, "/jars/events", None).await;
    let untitled = listed(&list, &original_untitled.to_string()).unwrap();
    assert_eq!(untitled["connected_by"], 2);
    assert_eq!(untitled["last_connected_at"], Value::Null);

    drop(conn);
    server.stop().await;
}

/// Two jars servers, one database: created on A is usable on B at once, B's connect shows in
/// A's list, and A's cached row catches up within the cache ttl (2 s by default).
#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn two_nodes_share_one_database() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    // The second server runs the (idempotent) migration again.
    let a = TestServer::start(&store_toml(&db.url, "")).await;
    let b = TestServer::start(&store_toml(&db.url, "")).await;
    // Each node has its own users file and keys; member ids are what the table shares.
    assert_eq!(a.add_user("dj", "pw", false), 1);
    assert_eq!(b.add_user("dj", "pw", false), 1);
    assert_eq!(b.add_user("boss", "pw", true), 2);
    let a_dj = a.login("dj", "pw").await;
    let b_boss = b.login("boss", "pw").await;

    let id = a.create_event(&a_dj, "Shared show", false).await;
    // A reads it (and caches it: not connected).
    let seen = get_json(&a, &format!("/jars/events/{id}"), Some(&a_dj)).await;
    assert_eq!(seen["connected"], false);

    // B has never seen it: its cache misses and reads the database.
    let (allowed, message) = listener_add(&b, &id).await;
    assert!(allowed, "{message:?}");
    let (status, body) = connect(&b, &b_boss, &id).await;
    assert_eq!(status, 202, "{body}");

    // A's list reads the database: B's connect at once.
    let list = get_json(&a, "/jars/events", Some(&a_dj)).await;
    let row = listed(&list, &id).expect("listed on A");
    assert_eq!(row["connected"], true);
    assert_eq!(row["connected_by"], 2);
    assert!(row["last_connected_at"].as_i64().is_some());

    // A's cached row is trusted for at most cache_ttl (2 s): poll, with slack for slow CI.
    let started = Instant::now();
    loop {
        let row = get_json(&a, &format!("/jars/events/{id}"), Some(&a_dj)).await;
        if row["connected_by"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "A still shows a stale row after {:?}: {row}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And the other way round.
    let b_dj = b.login("dj", "pw").await;
    let other = b.create_event(&b_dj, "From B", true).await;
    let (status, body) = connect(&a, &a_dj, &other).await;
    assert_eq!(status, 202, "{body}");
    a.stop().await;
    b.stop().await;
}

/// A free loopback port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// Writes are 503 quickly; the 503 body names nothing internal.
async fn assert_writes_unavailable(server: &TestServer, token: &str, event: &str) {
    let started = Instant::now();
    let (status, body) = create(server, token, "during the outage").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_name(&body), "ServiceUnavailable");
    let (status, body) = connect(server, token, event).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_name(&body), "ServiceUnavailable");
    eprintln!("create + connect answered 503 in {:?}", started.elapsed());
    // Functional bound only: "a second or two", not a hang.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "writes took {:?}",
        started.elapsed()
    );
}

/// Polls `/jars/create` until it succeeds again.
async fn assert_recovers(server: &TestServer, token: &str) {
    let started = Instant::now();
    loop {
        let (status, body) = create(server, token, "after the outage").await;
        if status == 201 {
            eprintln!("recovered after {:?}", started.elapsed());
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no recovery after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `[store] url` names a port nothing listens on: jars still starts, its writes are 503
/// quickly, Icecast gets a denial rather than a hang.
#[tokio::test]
async fn closed_port_gives_503_quickly() {
    let port = closed_port().await;
    let url = format!("postgres://postgres:secret@127.0.0.1:{port}/jars");
    let server = TestServer::start(&store_toml(&url, "")).await;
    server.add_user("dj", "pw", false);
    let token = server.login("dj", "pw").await;
    assert_writes_unavailable(&server, &token, &Uuid::new_v4().to_string()).await;
    let started = Instant::now();
    let (allowed, message) = listener_add(&server, &Uuid::new_v4().to_string()).await;
    assert!(!allowed);
    assert_eq!(message.as_deref(), Some("event store unavailable"));
    let (status, _) = post_form(&server.url("/jars/events"), &[]).await;
    assert!(status == 405 || status == 503, "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let resp = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The one-shot commands fail (exit 1) naming the store, without the password.
    let (code, _, stderr) = jars_cli(&["migrate"], &url);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");
    server.stop().await;
}

/// PostgreSQL behind a proxy that goes down (connections closed) and comes back, then turns
/// into a black hole (nothing answers) and comes back: writes 503 quickly, Icecast decisions
/// for events already seen keep being answered ("cached"), or denied ("deny"), unknown events
/// are denied, and everything recovers by itself.
#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn outage_and_recovery_through_a_proxy() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let proxy = TcpProxy::start(server_addr(&db.url).await).await;
    let url = via(&db.url, proxy.addr);
    // A short ttl so the test need not wait 2 s for cached rows to go stale.
    let cached = TestServer::start(&store_toml(&url, "cache_ttl = \"300ms\"")).await;
    let strict = TestServer::start(&format!(
        "{}[icecast]\non_store_error = \"deny\"\n",
        store_toml(&url, "cache_ttl = \"300ms\"")
    ))
    .await;
    assert_eq!(cached.add_user("dj", "pw", false), 1);
    assert_eq!(strict.add_user("dj", "pw", false), 1);
    let token = cached.login("dj", "pw").await;
    let strict_token = strict.login("dj", "pw").await;
    let event = cached.create_event(&token, "Live", false).await;
    // Both nodes see the event once, so they know it.
    for server in [&cached, &strict] {
        let (allowed, message) = listener_add(server, &event).await;
        assert!(allowed, "{message:?}");
    }

    for link in [Link::Down, Link::Blackhole] {
        proxy.set(link);
        // Past the ttl: every decision now asks the store, which fails.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_writes_unavailable(&cached, &token, &event).await;
        assert_writes_unavailable(&strict, &strict_token, &event).await;

        let started = Instant::now();
        let (allowed, message) = listener_add(&cached, &event).await;
        assert!(
            allowed,
            "{link:?}: cached decision not answered: {message:?}"
        );
        let (allowed, message) = stream_auth(&cached, &event, &token).await;
        assert!(allowed, "{link:?}: cached source decision: {message:?}");
        let (allowed, message) = listener_add(&cached, &Uuid::new_v4().to_string()).await;
        assert!(!allowed, "{link:?}: unknown event allowed");
        assert_eq!(message.as_deref(), Some("event store unavailable"));
        let (allowed, message) = listener_add(&strict, &event).await;
        assert!(!allowed, "{link:?}: on_store_error = deny allowed");
        assert_eq!(message.as_deref(), Some("event store unavailable"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{link:?}: decisions took {:?}",
            started.elapsed()
        );

        proxy.set(Link::Up);
        assert_recovers(&cached, &token).await;
        assert_recovers(&strict, &strict_token).await;
        let (allowed, message) = listener_add(&strict, &event).await;
        assert!(allowed, "{link:?}: after recovery: {message:?}");
        let (status, body) = connect(&cached, &token, &event).await;
        assert_eq!(status, 202, "{body}");
    }
    cached.stop().await;
    strict.stop().await;
}

/// PostgreSQL is down when jars starts: jars starts anyway, and migrates a fresh database on
/// first contact once it is back.
#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn starts_while_the_database_is_down() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let proxy = TcpProxy::start(server_addr(&db.url).await).await;
    proxy.set(Link::Down);
    let server = TestServer::start(&store_toml(&via(&db.url, proxy.addr), "")).await;
    server.add_user("dj", "pw", false);
    let token = server.login("dj", "pw").await;
    assert_writes_unavailable(&server, &token, &Uuid::new_v4().to_string()).await;
    proxy.set(Link::Up);
    assert_recovers(&server, &token).await;
    let list = get_json(&server, "/jars/events", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    server.stop().await;
}
