//! The `jars` binary as an operator meets it on day one: store connection errors that say
//! what is wrong, placeholder secrets and short passwords, and the printed default config.

use std::process::Command;

use crate::cli::{
    assert_usage_error, jars, jars_env, jars_stdin, serve_until_healthy, stderr, stdout, JARS,
};
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

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
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

    let admin = support::pg::admin_url();
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

#[test]
fn placeholder_secrets_are_warned_about_and_refused_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/icecast-examples/jars.toml");
    // On loopback (the example's listen): OK, with a warning naming each placeholder.
    let out = jars(p, &["--config", example, "check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration OK"));
    let err = stderr(&out);
    assert!(err.contains("warning: icecast.password"), "{err}");
    assert!(
        err.contains("icecast.trusted_sources (relay) password"),
        "{err}"
    );
    assert!(
        err.contains("icecast.servers (localhost:8000) admin_password"),
        "{err}"
    );
    assert!(
        !err.contains("change-me-callback-secret"),
        "secret printed: {err}"
    );
    // Beyond loopback: refused, by check-config and by serve, before anything is created.
    std::fs::write(
        p.join("open.toml"),
        std::fs::read_to_string(example)
            .unwrap()
            .replace("listen = \"127.0.0.1:8888\"", "listen = \"0.0.0.0:8888\"")
            .replace("data_dir = \"/var/lib/jars\"", "data_dir = \"jars-data\""),
    )
    .unwrap();
    let out = jars(p, &["--config", "open.toml", "check-config"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("beyond loopback"), "{}", stderr(&out));
    let out = jars_env(
        p,
        &["--config", example, "serve"],
        &[("JARS_LISTEN", "0.0.0.0:0")],
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("icecast.password"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("jars-data").exists());
}

#[test]
fn short_passwords_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = jars_stdin(
        p,
        &["user", "add", "alice", "--password-stdin"],
        "1234567\n",
    );
    assert_usage_error(&out, "at least 8 characters");
    assert!(!p.join("jars-data/users.toml").exists());
    let out = jars_stdin(
        p,
        &["user", "add", "alice", "--password-stdin"],
        "12345678\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jars_stdin(p, &["user", "passwd", "alice", "--password-stdin"], "x\n");
    assert_usage_error(&out, "at least 8 characters");
}

#[test]
fn the_printed_default_config_is_the_shipped_one_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // Even with a broken config in the environment: it is what to start again from.
    let out = jars_env(
        p,
        &["check-config", "--print-default"],
        &[("JARS_CONFIG", "missing.toml")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/jars.toml")).unwrap();
    assert_eq!(stdout(&out), shipped);
    std::fs::write(p.join("printed.toml"), &out.stdout).unwrap();
    let out = jars(p, &["--config", "printed.toml", "check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration OK"));
}

#[cfg_attr(
    not(jars_has = "systemd-socket-activate"),
    ignore = "needs systemd-socket-activate, not found when the tests were built (systemd)"
)]
#[test]
fn placeholders_are_refused_on_a_wide_socket_from_systemd() {
    let activate = std::path::Path::new("/usr/bin/systemd-socket-activate");
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/icecast-examples/jars.toml");
    let port = crate::cli::free_port();
    // jars.toml says 127.0.0.1; the socket systemd hands over is 0.0.0.0.
    let child = Command::new(activate)
        .args(["-l", &format!("0.0.0.0:{port}")])
        .args(["-E", &format!("JARS_CONFIG={example}")])
        .args([
            "-E",
            &format!("JARS_DATA_DIR={}", dir.path().join("d").display()),
        ])
        .args([JARS, "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It starts jars on the first connection.
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        std::thread::yield_now();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("beyond loopback"), "{}", stderr(&out));
    assert!(!dir.path().join("d").exists(), "created before refusing");
}
