//! The `jars` binary: config loading (TOML, environment, the original config.json), exit code
//! 64 for bad config or arguments, keygen, users, tokens, events, and `serve` end to end.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const JARS: &str = env!("CARGO_BIN_EXE_jars");

pub(crate) fn jars(dir: &Path, args: &[&str]) -> Output {
    jars_env(dir, args, &[])
}

pub(crate) fn jars_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(JARS);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("JARS_CONFIG")
        .env_remove("JARS_DATA_DIR")
        .env_remove("JARS_LISTEN")
        .env_remove("JARS_DATABASE_URL")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub(crate) fn jars_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut cmd = Command::new(JARS);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("JARS_CONFIG")
        .env_remove("JARS_DATA_DIR")
        .env_remove("JARS_DATABASE_URL");
    output_with_stdin(cmd, input)
}

/// Runs `cmd` with `input` on its standard input and collects its output.
pub(crate) fn output_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 64 with exactly one line on stderr that contains `needle`.
pub(crate) fn assert_usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(64), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

/// Exit 64 with clap's whole message: `needle` and the usage line, nothing on stdout.
fn assert_argument_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(64), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(err.contains("Usage: jars"), "no usage line in {err:?}");
    assert!(o.stdout.is_empty(), "stdout: {}", stdout(o));
}

#[test]
fn argument_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert_argument_error(&jars(p, &["user", "add"]), "<NAME>");
    assert_argument_error(&jars(p, &["ticket"]), "<EVENT_ID>");
    assert_argument_error(&jars(p, &["event", "create", "--title", "x"]), "--owner");
    assert_argument_error(&jars(p, &["serv"]), "'serve'");
    assert_argument_error(&jars(p, &[]), "a command is missing");
    // Asking for help or the version is not an error.
    for flag in ["--help", "--version"] {
        let out = jars(p, &[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(stdout(&out).contains("jars"), "{flag}: {}", stdout(&out));
        assert!(out.stderr.is_empty(), "{flag}: {}", stderr(&out));
    }
}

#[test]
fn check_config_defaults_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let out = jars(dir.path(), &["check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("127.0.0.1:8888"), "{text}");
    assert!(text.contains("./jars-data"), "{text}");
    assert!(text.contains("configuration OK"));
    let out = jars_env(
        dir.path(),
        &["check-config"],
        &[("JARS_DATA_DIR", "/srv/jars"), ("JARS_LISTEN", "0.0.0.0:1")],
    );
    let text = stdout(&out);
    assert!(text.contains("/srv/jars"), "{text}");
    // JARS_LISTEN belongs to `serve`; check-config shows the file/default value.
    assert!(out.status.success());
}

#[test]
fn toml_file_and_flag_precedence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jars.toml"),
        "listen = \"127.0.0.1:9999\"\ndata_dir = \"from-file\"\n[tokens]\nlifetime = \"2h\"\n",
    )
    .unwrap();
    let out = jars(dir.path(), &["--config", "jars.toml", "check-config"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("127.0.0.1:9999") && text.contains("from-file") && text.contains("2h"));
    // Environment beats the file, the flag beats the environment.
    let out = jars_env(
        dir.path(),
        &["--config", "jars.toml", "check-config"],
        &[("JARS_DATA_DIR", "from-env")],
    );
    assert!(stdout(&out).contains("from-env"));
    let out = jars_env(
        dir.path(),
        &[
            "--config",
            "jars.toml",
            "--data-dir",
            "from-flag",
            "check-config",
        ],
        &[("JARS_DATA_DIR", "from-env")],
    );
    assert!(stdout(&out).contains("from-flag"));
    let out = jars_env(
        dir.path(),
        &["check-config"],
        &[("JARS_CONFIG", "jars.toml")],
    );
    assert!(stdout(&out).contains("127.0.0.1:9999"));
}

#[test]
fn bad_config_and_arguments_exit_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("bad.toml"), "[tokens]\nlifetime = \"forever\"\n").unwrap();
    assert_usage_error(
        &jars(p, &["--config", "bad.toml", "check-config"]),
        "line 2",
    );
    std::fs::write(p.join("typo.toml"), "[tokens]\nlifetme = \"1h\"\n").unwrap();
    assert_usage_error(&jars(p, &["--config", "typo.toml", "serve"]), "lifetme");
    assert_usage_error(
        &jars(p, &["--config", "missing.toml", "check-config"]),
        "missing.toml",
    );
    assert_usage_error(&jars(p, &["serve", "--listen", "nowhere"]), "listen");
    assert_usage_error(
        &jars_env(p, &["serve"], &[("JARS_LISTEN", "999.1.1.1:80")]),
        "listen",
    );
    assert_argument_error(&jars(p, &["serve", "--bogus"]), "--bogus");
    assert_argument_error(&jars(p, &["frobnicate"]), "frobnicate");
    assert_usage_error(
        &jars(p, &["token", "x", "--lifetime", "soon"]),
        "--lifetime",
    );
    // Nothing was created for a config that never validated.
    assert!(!p.join("jars-data").exists());
}

/// `service.key` and `service.pem` in `p`, as the original kept them: PKCS#1 files made by
/// openssl.
fn openssl_keys(p: &Path) {
    let gen = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out", "service.key", "2048"])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let pubout = Command::new("openssl")
        .args([
            "rsa",
            "-in",
            "service.key",
            "-pubout",
            "-out",
            "service.pem",
        ])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(pubout.status.success());
}

#[test]
fn original_config_json_is_accepted_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    openssl_keys(p);
    std::fs::write(
        p.join("config.json"),
        format!(
            r#"{{
  "jwt": {{"public_key": "{0}/service.pem", "private_key": "{0}/service.key", "token_lifetime": 3600}},
  "myradio": {{"api_url": "https://myradio.example/api/v2", "api_key": "sekrit-key"}},
  "events": {{"lifetime": 864000}}
}}"#,
            p.display()
        ),
    )
    .unwrap();
    let out = jars(p, &["--config", "config.json", "check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("myradio"), "{text}");
    assert!(text.contains("1h"), "{text}");
    assert!(text.contains("keys") && text.contains("loaded"), "{text}");
    assert!(!text.contains("sekrit-key"), "api key printed: {text}");

    std::fs::write(
        p.join("db.json"),
        r#"{"db": {"host": "localhost", "user": "jars", "password": "dbsekrit", "database": "jars"}}"#,
    )
    .unwrap();
    let out = jars(p, &["--config", "db.json", "check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("postgres://jars:***@localhost/jars"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("dbsekrit"));
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = jars(p, &["keygen"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = std::fs::read(p.join("jars-data/jwt-private.pem")).unwrap();
    let out = jars(p, &["keygen"]);
    assert_usage_error(&out, "--force");
    assert_eq!(
        std::fs::read(p.join("jars-data/jwt-private.pem")).unwrap(),
        key
    );
    let out = jars(p, &["keygen", "--force"]);
    assert!(out.status.success());
    assert_ne!(
        std::fs::read(p.join("jars-data/jwt-private.pem")).unwrap(),
        key
    );
}

#[test]
fn users_tokens_and_events_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = jars_stdin(
        p,
        &["user", "add", "alice", "--password-stdin"],
        "s3cret-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("id 1"));
    let out = jars_stdin(
        p,
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password\n",
    );
    assert!(stdout(&out).contains("id 2, admin"));
    let out = jars_stdin(
        p,
        &["user", "add", "alice", "--password-stdin"],
        "again-pw\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"));
    // Without a terminal and without --password-stdin there is nobody to prompt.
    assert_usage_error(&jars(p, &["user", "add", "carol"]), "--password-stdin");

    let list = stdout(&jars(p, &["user", "list"]));
    assert!(list.contains("alice") && list.contains("root") && list.contains("admin"));
    let users = std::fs::read_to_string(p.join("jars-data/users.toml")).unwrap();
    assert!(!users.contains("s3cret") && users.contains("$argon2id$"));

    // `token` reads the key pair; it does not make one.
    let out = jars(p, &["token", "alice"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("jwt-private.pem does not exist"));
    assert!(jars(p, &["keygen"]).status.success());
    let out = jars(p, &["token", "alice", "--lifetime", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert_eq!(token.split('.').count(), 3);
    let out = jars(p, &["token", "nobody"]);
    assert_eq!(out.status.code(), Some(1));

    let out = jars(
        p,
        &[
            "event",
            "create",
            "--owner",
            "alice",
            "--title",
            "Drive time",
            "--private",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    let list = stdout(&jars(p, &["event", "list"]));
    assert!(list.contains(&id) && list.contains("Drive time"), "{list}");

    let out = jars_stdin(
        p,
        &["user", "passwd", "alice", "--password-stdin"],
        "new-password\n",
    );
    assert!(out.status.success());
    let out = jars(p, &["user", "remove", "alice"]);
    assert!(out.status.success());
    assert!(!stdout(&jars(p, &["user", "list"])).contains("alice"));
}

#[test]
fn read_only_commands_create_nothing_and_name_the_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = p.join("jars-data");
    for args in [
        &["user", "list"][..],
        &["event", "list"],
        &["token", "alice"],
        &["ticket", "5e0b9230-086c-406f-a26c-13ff3a8d3880"],
    ] {
        let out = jars(p, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("data directory {} does not exist", data.display())),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }
    let out = jars(p, &["check-config"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains(&format!("{} (does not exist yet", data.display())));
    assert!(!data.exists(), "a read-only command created the data dir");

    // A command that writes says where, on stderr; stdout stays its output.
    let out = jars_stdin(
        p,
        &["user", "add", "alice", "--password-stdin"],
        "s3cret-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!("jars: data directory {}", data.display())
    );
    assert!(stdout(&out).starts_with("added alice"));
    // The data dir exists now, but not the store.
    let out = jars(p, &["event", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let store = data.join("jars.sqlite3");
    assert!(stderr(&out).contains(&format!("event store {} does not exist", store.display())));
    assert!(!store.exists());
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split(' ').nth(1)?.parse().ok()
}

/// Starts `jars serve` on `port` in `dir` through `cmd` (the binary, or a shell that runs it)
/// and waits until it answers `/healthz`.
pub(crate) fn serve_until_healthy(mut cmd: Command, dir: &Path, port: u16) -> std::process::Child {
    let child = cmd
        .current_dir(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("JARS_CONFIG")
        .env_remove("JARS_DATA_DIR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while get_status(port, "/healthz") != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never became healthy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

mod configs;
mod first_week;
mod help;
mod node;
mod pipes;
mod readme;
mod sanctions;
mod serve;

#[test]
fn user_list_on_a_broken_users_file_prints_where_and_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir(p.join("jars-data")).unwrap();
    std::fs::write(
        p.join("jars-data/users.toml"),
        "[[user]]\nid = 1\nname = \n",
    )
    .unwrap();
    let out = jars(p, &["user", "list"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("users.toml:3:8:"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "no header: {}", stdout(&out));
}

#[test]
fn completions_cover_every_command_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for shell in ["bash", "zsh", "fish"] {
        let out = jars(p, &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("serve") && script.contains("check-config"),
            "{shell}"
        );
    }
    assert!(
        !p.join("jars-data").exists(),
        "completions touch no data dir"
    );
    let out = jars(p, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("possible values: bash"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_command_documents_its_arguments_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let help = stdout(&jars(p, &["event", "create", "--help"]));
    assert!(
        help.contains("Example: jars event create --owner alice --title"),
        "{help}"
    );
    assert!(
        help.contains("--owner <NAME>") && help.contains("e.g. alice"),
        "{help}"
    );
    for args in [
        &["serve"][..],
        &["keygen"],
        &["token"],
        &["ticket"],
        &["check-config"],
        &["migrate"],
        &["completions"],
        &["user", "add"],
        &["user", "passwd"],
        &["user", "remove"],
        &["user", "promote"],
        &["user", "demote"],
        &["user", "list"],
        &["event", "list"],
    ] {
        // The short help: one line per argument, its name then its help.
        let out = jars(p, &[args, &["-h"]].concat());
        let help = stdout(&out);
        assert!(help.contains("Example: jars"), "{args:?}: {help}");
        for line in help.lines().filter(|l| l.trim_start().starts_with('<')) {
            assert!(line.trim().contains("  "), "{args:?}: {line:?} has no help");
        }
    }
}
