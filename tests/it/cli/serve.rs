//! `jars serve` as an operator runs it: owner-only files, SIGTERM, one serve per data
//! directory, a taken port found before anything is created, log colour only on a terminal.

use super::*;

#[test]
fn data_dir_and_its_files_are_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // umask 000: everything SQLite or a plain create makes would be world-writable.
    let mut shell = Command::new("sh");
    shell.args(["-c", "umask 000 && exec \"$0\" \"$@\"", JARS]);
    let mut child = serve_until_healthy(shell, dir.path(), port);
    let data = dir.path().join("jars-data");
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "data_dir");
    for file in [
        "jars.sqlite3",
        "jars.sqlite3-wal",
        "jars.sqlite3-shm",
        "jwt-private.pem",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    assert_eq!(mode("jwt-public.pem"), 0o644);
    let _ = child.kill();
    child.wait().unwrap();
}

#[test]
fn serve_starts_on_embedded_defaults_and_stops_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = serve_until_healthy(Command::new(JARS), dir.path(), port);
    let data = dir.path().join("jars-data");
    let mode = std::fs::metadata(data.join("jwt-private.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(data.join("jars.sqlite3").exists());
    assert_eq!(get_status(port, "/jars/events"), Some(200));

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert_eq!(
        log.matches("generated a new RS256 key pair").count(),
        1,
        "{log}"
    );
    // A pipe is not a terminal: no colour codes for the collector to store.
    assert!(!log.contains("\x1b["), "ANSI codes in a piped log: {log:?}");
    assert!(
        log.contains(&format!("data_dir={}", data.display())),
        "{log}"
    );
    let key = std::fs::read_to_string(data.join("jwt-private.pem")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(
        !log.contains(key_body),
        "the log must never contain key material"
    );
}

#[test]
fn a_second_serve_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = serve_until_healthy(Command::new(JARS), dir.path(), free_port());
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let second = jars(dir.path(), &["serve", "--listen", &listen]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let err = stderr(&second);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    let data = dir.path().join("jars-data");
    assert!(
        err.contains(&format!("data directory {} is in use", data.display())),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    let _ = first.kill();
    first.wait().unwrap();
    // The lock went with the process.
    let mut again = serve_until_healthy(Command::new(JARS), dir.path(), free_port());
    let _ = again.kill();
    again.wait().unwrap();
}

#[test]
fn a_port_in_use_is_found_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = jars(dir.path(), &["serve", "--listen", &listen]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {listen}")),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("jars-data").exists(),
        "keys or a store were created"
    );
}

/// The log `jars serve` writes to a terminal (script(1)) with `env` set, from start to SIGTERM.
fn log_on_a_terminal(dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let port = free_port();
    let run = format!(
        "{JARS} serve --listen 127.0.0.1:{port} & pid=$!; \
         until curl -fs -o /dev/null http://127.0.0.1:{port}/healthz; do sleep 0.05; done; \
         kill -TERM $pid; wait $pid"
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("bash -c '{run}'"), "/dev/null"])
        .current_dir(dir)
        .env_remove("JARS_CONFIG")
        .env_remove("JARS_DATA_DIR")
        .env_remove("NO_COLOR")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script(1) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg_attr(
    not(jars_has = "script"),
    ignore = "needs script(1) for a terminal, not found when the tests were built (bsdutils)"
)]
#[test]
fn log_colour_only_on_a_terminal_without_no_color_or_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let coloured = log_on_a_terminal(dir.path(), &[]);
    assert!(coloured.contains("jars serving"), "{coloured:?}");
    assert!(
        coloured.contains("\x1b["),
        "no colour on a terminal: {coloured:?}"
    );
    for env in [("NO_COLOR", "1"), ("JOURNAL_STREAM", "8:12345")] {
        let log = log_on_a_terminal(dir.path(), &[env]);
        assert!(log.contains("jars serving"), "{env:?}: {log:?}");
        assert!(!log.contains("\x1b["), "{env:?}: colour codes in {log:?}");
    }
}
