//! The `jars` binary as an operator meets it on day one: store connection errors that say
//! what is wrong, placeholder secrets and short passwords, and the printed default config.

use std::process::Command;

use crate::cli::{assert_usage_error, jars, serve_until_healthy, stderr, JARS};
use crate::support;

/// Exit 1, `needle` in the message, and no `jars migrate` advice for what is no schema problem.
fn assert_store_error(args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = jars(dir.path(), args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("jars migrate"), "misleading hint: {err}");
}

#[test]
fn store_connection_errors_say_what_is_wrong() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    assert_store_error(
        &["--database-url", &url, "event", "list"],
        "Connection refused",
    );
    // A URL the driver cannot read is a config error, and its password stays hidden.
    let dir = tempfile::tempdir().unwrap();
    let out = jars(
        dir.path(),
        &["--database-url", "postgres://u:pw-secret@[bad/x", "migrate"],
    );
    assert_usage_error(&out, "store.url");
    assert!(!stderr(&out).contains("pw-secret"));

    let Some(admin) = support::pg::admin_url("store_connection_errors_say_what_is_wrong") else {
        return;
    };
    let no_db = support::pg::with_database(&admin, "jars_no_such_database");
    for command in [&["event", "list"][..], &["migrate"]] {
        let args = [&["--database-url", no_db.as_str()][..], command].concat();
        assert_store_error(&args, "no such database");
    }
    let mut no_role = reqwest::Url::parse(&admin).unwrap();
    no_role.set_username("jars_no_such_role").unwrap();
    no_role.set_password(None).unwrap();
    for command in [&["event", "list"][..], &["migrate"]] {
        let args = [&["--database-url", no_role.as_str()][..], command].concat();
        assert_store_error(&args, "refused the role");
    }
}

#[test]
fn database_url_without_jars_database_url_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::cli::free_port();
    let mut cmd = Command::new(JARS);
    cmd.env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
        .env_remove("JARS_DATABASE_URL");
    let mut child = serve_until_healthy(cmd, dir.path(), port);
    let _ = child.kill();
    child.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert_eq!(
        log.matches("DATABASE_URL is set but jars reads JARS_DATABASE_URL")
            .count(),
        1,
        "{log}"
    );
}
