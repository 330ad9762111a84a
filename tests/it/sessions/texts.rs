//! SQLite stores each user agent and referer once, rows holding its key: rows read back with
//! their own texts across batches and a reopen, a purge deletes the texts only purged rows
//! used, and rows an older jars wrote with the text itself read back as they were.

use chrono::{DateTime, Duration, DurationRound, Utc};
use jars::sessions::{OpenedSession, SessionFilter, SessionOp, SessionText};
use jars::store::sessions::SessionStore;

use super::spans::sqlite_file;

const PAGE: &str = "https://radio.example/player";

fn open(client: &str, agent: &str, referer: Option<&str>, started: DateTime<Utc>) -> SessionOp {
    SessionOp::Open(OpenedSession::new(
        SessionText {
            server: "ice.example",
            port: "8000",
            client,
            mount: "/studio",
            ticket: None,
            ip: None,
            agent: Some(agent),
            referer,
        },
        None,
        started,
        None,
        None,
    ))
}

/// Each row's agent and referer, oldest first.
async fn texts(store: &dyn SessionStore) -> Vec<(String, Option<String>)> {
    let rows = store.sessions(SessionFilter::default()).await.unwrap();
    rows.into_iter()
        .map(|r| (r.agent.unwrap(), r.referer))
        .collect()
}

fn stored(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT text FROM listener_session_texts ORDER BY text")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

fn pair(agent: &str, referer: Option<&str>) -> (String, Option<String>) {
    (agent.to_string(), referer.map(str::to_string))
}

#[tokio::test]
async fn sqlite_texts_are_stored_once_and_purged_with_the_last_row_using_them() {
    let (_dir, path, settings) = sqlite_file();
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let at = |s: i64| t0 + Duration::seconds(s);
    let page = Some(PAGE);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    store
        .apply(vec![
            open("1", "Winamp/5.9", page, at(0)),
            open("2", "VLC/3.0.18", None, at(1)),
        ])
        .await
        .unwrap();
    // A later batch, after a reopen: the texts are found again, not stored twice.
    drop(store);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    store
        .apply(vec![
            open("3", "VLC/3.0.18", page, at(2)),
            open("4", "mpv 0.35", None, at(3)),
        ])
        .await
        .unwrap();
    assert_eq!(
        texts(&*store).await,
        [
            pair("Winamp/5.9", page),
            pair("VLC/3.0.18", None),
            pair("VLC/3.0.18", page),
            pair("mpv 0.35", None),
        ]
    );
    assert_eq!(
        stored(&path),
        ["VLC/3.0.18", "Winamp/5.9", PAGE, "mpv 0.35"],
        "each text once"
    );

    // The rows before 2 s go: Winamp was used only there; the page and VLC are used later.
    assert_eq!(store.purge(at(2)).await.unwrap(), 2);
    assert_eq!(stored(&path), ["VLC/3.0.18", PAGE, "mpv 0.35"]);
    // Winamp again: stored anew, not given the deleted text's key.
    store
        .apply(vec![open("5", "Winamp/5.9", None, at(4))])
        .await
        .unwrap();
    assert_eq!(
        texts(&*store).await,
        [
            pair("VLC/3.0.18", page),
            pair("mpv 0.35", None),
            pair("Winamp/5.9", None),
        ]
    );
    // Everything purged: no text is left.
    assert_eq!(store.purge(at(3600)).await.unwrap(), 3);
    assert!(stored(&path).is_empty());
}

/// A table an older jars wrote (agent and referer as text in each row, no keys): opening it
/// adds the keys' columns; its rows read back as they were, beside new ones.
#[tokio::test]
async fn sqlite_rows_holding_their_own_text_read_back_beside_keyed_ones() {
    let (_dir, path, settings) = sqlite_file();
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let page = Some(PAGE);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    store
        .apply(vec![open("1", "VLC/3.0.18", page, t0)])
        .await
        .unwrap();
    drop(store);
    // As an older jars left it: the texts in the rows, no key columns, no texts table.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE listener_sessions SET
             agent = (SELECT text FROM listener_session_texts WHERE id = agent_key),
             referer = (SELECT text FROM listener_session_texts WHERE id = referer_key);
         ALTER TABLE listener_sessions DROP COLUMN agent_key;
         ALTER TABLE listener_sessions DROP COLUMN referer_key;
         DROP TABLE listener_session_texts;",
    )
    .unwrap();
    drop(conn);

    let store = jars::store::sessions::open(&settings).await.unwrap();
    store
        .apply(vec![open(
            "2",
            "VLC/3.0.18",
            None,
            t0 + Duration::seconds(1),
        )])
        .await
        .unwrap();
    assert_eq!(
        texts(&*store).await,
        [pair("VLC/3.0.18", page), pair("VLC/3.0.18", None)]
    );
    assert_eq!(stored(&path), ["VLC/3.0.18"], "only the new row's");
    // Opened again: the columns are there already.
    drop(store);
    let store = jars::store::sessions::open(&settings).await.unwrap();
    assert_eq!(texts(&*store).await.len(), 2);
}
