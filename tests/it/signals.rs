//! The `jars serve` process and its signals: SIGHUP reloads (a rotated key; a broken config is
//! rejected and the old one stays), SIGTERM lets in-flight requests finish and exits 0, a
//! second signal exits at once.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JARS: &str = env!("CARGO_BIN_EXE_jars");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(dir: &Path, config: Option<&Path>) -> Daemon {
        let port = free_port();
        let mut cmd = Command::new(JARS);
        cmd.current_dir(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("JARS_CONFIG")
            .env_remove("JARS_DATA_DIR")
            .env_remove("JARS_DATABASE_URL")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd.spawn().unwrap();
        let d = Daemon { child, port };
        let started = Instant::now();
        while !d.healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "jars never became healthy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn healthy(&self) -> bool {
        reqwest::blocking_get_status(&self.url("/healthz")) == Some(200)
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the exit and returns (exit code, everything logged).
    fn wait(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        (status.code(), log)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A tiny blocking GET, so the health poll needs no runtime.
mod reqwest {
    use std::io::{Read, Write};

    pub fn blocking_get_status(url: &str) -> Option<u16> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/')?;
        let mut s = std::net::TcpStream::connect(host).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.split(' ').nth(1)?.parse().ok()
    }
}

fn jars(dir: &Path, args: &[&str], stdin: &str) {
    let out = crate::cli::jars_stdin(dir, args, stdin);
    assert!(
        out.status.success(),
        "jars {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn token(d: &Daemon) -> String {
    let resp = ::reqwest::Client::new()
        .post(d.url("/jars/token"))
        .form(&[("user", "dj"), ("password", "dj-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn jwks_len(d: &Daemon) -> usize {
    let v: serde_json::Value = ::reqwest::get(d.url("/jars/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["keys"].as_array().unwrap().len()
}

#[tokio::test]
async fn sighup_rotates_keys_without_refusing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), None);
    jars(
        dir.path(),
        &["user", "add", "dj", "--password-stdin"],
        "dj-password\n",
    );
    let old = token(&d).await;
    assert_eq!(jwks_len(&d).await, 1);

    // Requests in flight the whole time.
    let url = d.url("/jars/events");
    let load = tokio::spawn({
        let old = old.clone();
        async move {
            let client = ::reqwest::Client::new();
            let mut statuses = Vec::new();
            for _ in 0..200 {
                let s = client.get(&url).bearer_auth(&old).send().await;
                statuses.push(s.map(|r| r.status().as_u16()).unwrap_or(0));
            }
            statuses
        }
    });
    jars(dir.path(), &["keygen", "--rotate"], "");
    d.signal("HUP");
    let statuses = load.await.unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "refused or failed during reload: {statuses:?}"
    );
    // Reload is asynchronous to the signal: wait until the new key signs.
    let started = Instant::now();
    while jwks_len(&d).await != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "reload never happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new = token(&d).await;
    let kid = |t: &str| t.split('.').next().unwrap().to_string();
    assert_ne!(kid(&old), kid(&new), "new tokens carry the new kid");
    for t in [&old, &new] {
        let resp = ::reqwest::Client::new()
            .get(d.url("/jars/events"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    d.signal("TERM");
    let (code, log) = d.wait();
    assert_eq!(code, Some(0));
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[tokio::test]
async fn sighup_with_a_broken_config_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jars.toml");
    std::fs::write(&config, "[tokens]\nlifetime = \"2h\"\n").unwrap();
    let d = Daemon::start(dir.path(), Some(&config));
    jars(
        dir.path(),
        &["user", "add", "dj", "--password-stdin"],
        "dj-password\n",
    );
    std::fs::write(&config, "[tokens]\nlifetime = \"two hours\"\n").unwrap();
    d.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(d.healthy(), "still serving");
    let t = token(&d).await;
    let payload = t.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        7200,
        "the old lifetime stays in force"
    );
    d.signal("TERM");
    let (code, log) = d.wait();
    assert_eq!(code, Some(0));
    assert!(log.contains("reload rejected"), "{log}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let api = crate::support::slow_myradio(Duration::from_millis(1500)).await;
    let config = dir.path().join("jars.toml");
    std::fs::write(
        &config,
        format!("[identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"{api}\"\napi_key = \"k\"\n"),
    )
    .unwrap();
    let d = Daemon::start(dir.path(), Some(&config));
    let url = d.url("/jars/token");
    let in_flight = tokio::spawn(async move {
        ::reqwest::Client::new()
            .post(url)
            .form(&[("user", "dj"), ("password", "dj-password")])
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.signal("TERM");
    assert_eq!(
        in_flight
            .await
            .unwrap()
            .expect("the in-flight request completes"),
        200
    );
    let (code, log) = d.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = crate::support::slow_myradio(Duration::from_secs(8)).await;
    let config = dir.path().join("jars.toml");
    std::fs::write(
        &config,
        format!(
            "shutdown_grace = \"30s\"\n[identity]\nbackend = \"myradio\"\n[identity.myradio]\n\
             api_url = \"{api}\"\napi_key = \"k\"\ntimeout = \"20s\"\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(dir.path(), Some(&config));
    let url = d.url("/jars/token");
    let _in_flight = tokio::spawn(async move {
        let _ = ::reqwest::Client::new()
            .post(url)
            .form(&[("user", "dj"), ("password", "dj-password")])
            .send()
            .await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    d.signal("INT");
    let (code, log) = d.wait();
    assert_eq!(code, Some(130), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exited promptly"
    );
    assert!(log.contains("second signal"), "{log}");
}

#[cfg_attr(
    not(jars_has = "systemd-socket-activate"),
    ignore = "needs systemd-socket-activate, not found when the tests were built (systemd)"
)]
#[tokio::test]
async fn serves_on_the_socket_systemd_passes() {
    let activate = which("systemd-socket-activate")
        .expect("systemd-socket-activate on PATH (Debian package systemd)");
    let dir = tempfile::tempdir().unwrap();
    let (socket_port, config_port) = (free_port(), free_port());
    let mut child = Command::new(activate)
        .current_dir(dir.path())
        .args(["-l", &format!("127.0.0.1:{socket_port}"), JARS, "serve"])
        .args(["--listen", &format!("127.0.0.1:{config_port}")])
        .env_remove("JARS_CONFIG")
        .env_remove("JARS_DATA_DIR")
        .env_remove("JARS_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{socket_port}/healthz");
    let started = Instant::now();
    while reqwest::blocking_get_status(&url) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no answer on the passed socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // It did not bind its configured address.
    assert!(std::net::TcpStream::connect(("127.0.0.1", config_port)).is_err());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("passed by systemd"), "{log}");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}
