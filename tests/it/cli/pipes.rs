//! Output into a pipe that is already closed (`jars status | head -3` after `head` exited):
//! every command that prints keeps its own exit code, `status` its 0/1/69, instead of
//! panicking with 101 on the broken pipe (issue 29 #7).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{free_port, jars, serve_until_healthy, JARS};

/// Runs `jars args` in `dir` with stdout a pipe whose reading end is closed before it writes;
/// its exit code and stderr.
fn into_closed_pipe(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(JARS)
        .args(args)
        .current_dir(dir)
        .env_remove("JARS_CONFIG")
        .env_remove("JARS_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed at once: jars has not written yet (it parses, loads, maybe asks the node first).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_printing_command_keeps_its_exit_code_when_the_reader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let port = free_port();
    let config = p.join("jars.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{port}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    for args in [
        vec!["user", "add", "root", "--admin", "--password-stdin"],
        vec!["event", "create", "--owner", "root", "--title", "Breakfast"],
        vec!["ban", "add", "--ip", "203.0.113.7"],
    ] {
        let mut cmd = Command::new(JARS);
        cmd.args(["--config", config]).args(&args).current_dir(p);
        let out = super::output_with_stdin(cmd, "root-password\n");
        assert!(out.status.success(), "{args:?}: {}", super::stderr(&out));
    }
    let mut serve = Command::new(JARS);
    serve.args(["--config", config]);
    let mut server = serve_until_healthy(serve, p, port);

    fn with<'a>(config: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        [&["--config", config][..], rest].concat()
    }
    let with_config = |rest: &[&'static str]| with(config, rest);
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (with_config(&["status"]), 0),
        (with_config(&["event", "list"]), 0),
        (with_config(&["event", "list", "--all"]), 0),
        (with_config(&["report"]), 0),
        (with_config(&["ban", "list"]), 0),
        (with_config(&["user", "list"]), 0),
        (with_config(&["check-config"]), 0),
        (vec!["check-config", "--print-default"], 0),
        (vec!["completions", "bash"], 0),
        (vec!["man"], 0),
        (vec!["status", "--url", &nobody], 69),
    ];
    let mut failures = Vec::new();
    for (args, want) in &cases {
        let (code, err) = into_closed_pipe(p, args);
        if code != Some(*want) || err.contains("panicked") {
            failures.push(format!(
                "{args:?}: exit {code:?}, want {want}; stderr: {err}"
            ));
        }
    }
    // The same command into a reader that reads: it does print.
    let out = jars(p, &with_config(&["status"]));
    let _ = server.kill();
    let _ = server.wait();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));
}
