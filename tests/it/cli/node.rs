//! The commands that ask a running node: `jars status` (ready, not ready, unreachable; the
//! address from `--url` or the config) and `jars event list` (owner names, live state and
//! listeners from the node, or unknown when it does not answer).

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{free_port, jars, serve_until_healthy, stderr, stdout, JARS};
use crate::support::{post_form, TestServer};

/// Runs the jars binary on `data_dir` off the async runtime (the server under test runs on it).
async fn jars_on(data_dir: &Path, args: &[&str]) -> Output {
    let dir = data_dir.to_path_buf();
    let args: Vec<String> = [&["--data-dir", dir.to_str().unwrap()][..], args]
        .concat()
        .into_iter()
        .map(String::from)
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        jars(&dir, &args)
    })
    .await
    .unwrap()
}

/// The value of `name`'s row in `jars status` output.
fn row(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no {name:?} row in {out}"))[name.len()..]
        .trim()
        .to_string()
}

/// An Icecast callback from loopback (no callback credentials configured): `fields` plus the
/// server Icecast reports itself as.
async fn callback(server: &TestServer, fields: &[(&str, &str)]) {
    let mut all = vec![("server", "localhost"), ("port", "8000")];
    all.extend_from_slice(fields);
    let (status, _) = post_form(&server.url("/icecast/auth"), &all).await;
    assert_eq!(status, 200, "{fields:?}");
}

/// Makes `event` live with `listeners` listeners on `server`, as Icecast would.
async fn go_live(server: &TestServer, owner_token: &str, event: &str, listeners: u32) {
    let mount = format!("/{event}");
    callback(
        server,
        &[
            ("action", "stream_auth"),
            ("mount", &mount),
            ("ip", "127.0.0.1"),
            ("user", "source"),
            ("pass", owner_token),
        ],
    )
    .await;
    callback(server, &[("action", "mount_add"), ("mount", &mount)]).await;
    for i in 0..listeners {
        let client = format!("{event}-{i}");
        callback(
            server,
            &[
                ("action", "listener_add"),
                ("client", &client),
                ("mount", &mount),
                ("ip", "192.0.2.1"),
                ("user", ""),
                ("pass", owner_token),
            ],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_ready_live_mounts_listeners_and_key_set() {
    let server = TestServer::start("").await;
    server.add_user("alice", "alice-password", false);
    let token = server.login("alice", "alice-password").await;
    let event = server.create_event(&token, "Breakfast", false).await;
    go_live(&server, &token, &event, 2).await;
    let url = server.url("");
    let out = jars_on(server.dir.path(), &["status", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(row(&text, "node"), url.trim_end_matches('/'));
    assert_eq!(row(&text, "ready"), "yes");
    assert_eq!(row(&text, "live mounts"), "1");
    assert_eq!(row(&text, "listeners"), "2");
    assert_eq!(row(&text, "key set"), "local key files");
    assert!(
        row(&text, "callbacks").starts_with("0 in progress of "),
        "{text}"
    );
    // The rest of /readyz as rows of text, not a JSON blob (issue 29 #13).
    assert!(
        row(&text, "icecast.note").starts_with("no [[icecast.servers]]"),
        "{text}"
    );
    assert!(!text.contains(['{', '"']), "{text}");

    // A users file that no longer parses: not ready, exit 1, the reason on one line.
    std::fs::write(server.data_path("users.toml"), "[[user]\n").unwrap();
    let out = jars_on(server.dir.path(), &["status", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(row(&stdout(&out), "ready"), "no: users file does not parse");
    assert_eq!(
        stderr(&out).trim(),
        "jars: not ready: users file does not parse"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_verify_only_node_gives_its_key_set_age() {
    let issuer = TestServer::start("").await;
    let relay = TestServer::start(&format!(
        "[tokens]\njwks_url = \"{}\"\n",
        issuer.url("/jars/jwks.json")
    ))
    .await;
    let url = relay.url("");
    let out = jars_on(relay.dir.path(), &["status", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let keys = row(&stdout(&out), "key set");
    assert!(
        keys.starts_with("fetched ") && keys.contains(" ago (0 of "),
        "{keys}"
    );
    relay.stop().await;
    issuer.stop().await;
}

#[test]
fn status_of_a_node_that_does_not_answer_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = jars(dir.path(), &["status", "--url", &url]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with(&format!("jars: {url} does not answer: ")) && err.contains("refused"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let out = jars(dir.path(), &["status", "--url", "127.0.0.1:8888"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        !dir.path().join("jars-data").exists(),
        "status created a data dir"
    );
}

/// A config whose `listen` and `metrics_listen` are free ports, in `dir`.
fn config_with_ports(dir: &Path) -> (PathBuf, u16) {
    let (port, metrics) = (free_port(), free_port());
    let path = dir.join("jars.toml");
    std::fs::write(
        &path,
        format!("listen = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics}\"\n"),
    )
    .unwrap();
    (path, port)
}

#[test]
fn status_finds_the_node_and_its_metrics_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (config, port) = config_with_ports(p);
    let config = config.to_str().unwrap();
    let mut cmd = std::process::Command::new(JARS);
    cmd.args(["--config", config]);
    let mut child = serve_until_healthy(cmd, p, port);
    let out = jars(p, &["--config", config, "status"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(row(&text, "node"), format!("http://127.0.0.1:{port}"));
    // /metrics is only on metrics_listen: found there.
    assert_eq!(row(&text, "live mounts"), "0", "{text}");
    assert_eq!(row(&text, "listeners"), "0", "{text}");
}

/// The row of `event` in `jars event list` output, split on runs of two or more spaces.
fn event_row(out: &str, event: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with(event))
        .unwrap_or_else(|| panic!("no row for {event} in {out}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn event_list_names_owners_and_shows_live_state_and_listeners() {
    let server = TestServer::start("").await;
    server.add_user("alice", "alice-password", false);
    server.add_user("root", "root-password", true);
    let alice = server.login("alice", "alice-password").await;
    let public = server.create_event(&alice, "Breakfast", false).await;
    let private = server.create_event(&alice, "Rehearsal", true).await;
    let quiet = server.create_event(&alice, "Later", false).await;
    go_live(&server, &alice, &public, 3).await;
    go_live(&server, &alice, &private, 1).await;
    let url = server.url("");

    let out = jars_on(server.dir.path(), &["event", "list", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..7],
        [
            "EVENT",
            "OWNER",
            "PRIVATE",
            "CONNECTED",
            "LIVE",
            "LISTENERS",
            "EXPIRES"
        ]
    );
    // EVENT, OWNER, PRIVATE, CONNECTED, LIVE, LISTENERS, EXPIRES, TITLE
    let r = event_row(&text, &public);
    assert_eq!(
        &r[1..6],
        ["alice", "no", "yes (alice)", "yes", "3"],
        "{text}"
    );
    assert_eq!(r[7], "Breakfast");
    // A private event: the CLI asks as the users file's admin, so the node shows it too.
    let r = event_row(&text, &private);
    assert_eq!(
        &r[1..6],
        ["alice", "yes", "yes (alice)", "yes", "1"],
        "{text}"
    );
    let r = event_row(&text, &quiet);
    assert_eq!(&r[1..6], ["alice", "no", "no", "no", "0"], "{text}");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));

    // A removed owner is shown by member id.
    server.users().remove("alice").unwrap();
    let out = jars_on(server.dir.path(), &["event", "list", "--url", &url]).await;
    assert_eq!(event_row(&stdout(&out), &public)[1], "1");

    // No node answers there: the store's connected state, live state and listeners unknown.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let out = jars_on(server.dir.path(), &["event", "list", "--url", &nowhere]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = event_row(&stdout(&out), &public);
    assert_eq!(&r[3..6], ["yes (1)", "?", "?"], "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("live state and listeners unknown") && err.contains("does not answer"),
        "{err}"
    );
    server.stop().await;
}

/// `JARS_LISTEN` is where the node listens for every command, not only `serve` (issue 29 #8):
/// `status` and `event list` ask there, and `check-config` shows it.
#[test]
fn jars_listen_is_honoured_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [("JARS_LISTEN", listen.as_str())];
    let out = super::jars_stdin(
        p,
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jars(
        p,
        &["event", "create", "--owner", "root", "--title", "Breakfast"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let event = stdout(&out).trim().to_string();
    let mut serve = std::process::Command::new(JARS);
    serve.env("JARS_LISTEN", &listen);
    let mut child = serve_until_healthy(serve, p, port);

    let status = super::jars_env(p, &["status"], &env);
    let list = super::jars_env(p, &["event", "list"], &env);
    let check = super::jars_env(p, &["check-config"], &env);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert_eq!(row(&stdout(&status), "node"), format!("http://{listen}"));
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let r = event_row(&stdout(&list), &event);
    assert_eq!(
        &r[4..6],
        ["no", "0"],
        "live state from the node: {}",
        stdout(&list)
    );
    assert!(list.stderr.is_empty(), "{}", stderr(&list));
    assert_eq!(row(&stdout(&check), "listen"), listen, "{}", stdout(&check));
}
