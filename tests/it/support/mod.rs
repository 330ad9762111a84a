//! Shared test support: a real jars server on 127.0.0.1:0 with a temporary data directory.

pub mod browser;
pub mod icecast;
pub mod pg;
pub mod webcast;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jars::clock::{Clock, ManualClock};
use jars::config::{Config, Overrides};
use jars::http::AppState;
use jars::identity::UsersFile;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A jars server running in this test process on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The clock every decision of this server reads: it stands still until a test moves it.
    pub clock: Arc<ManualClock>,
    /// Where `/metrics` is served alone, when started with [`TestServer::start_with_metrics_listener`].
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub config: Config,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server on the embedded defaults plus `toml` (which may be empty).
    pub async fn start(toml: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, toml).await
    }

    /// Starts a server whose data directory is `dir`.
    pub async fn start_in(dir: TempDir, toml: &str) -> TestServer {
        Self::start_with(dir, toml, false).await
    }

    /// Starts a server that serves `/metrics` on a second address, as `metrics_listen` does.
    pub async fn start_with_metrics_listener(toml: &str) -> TestServer {
        Self::start_with(tempfile::tempdir().unwrap(), toml, true).await
    }

    /// Starts a server through `jars::http::run`, as `jars serve` does.
    async fn start_with(dir: TempDir, toml: &str, metrics_listener: bool) -> TestServer {
        let config = config_in(&dir, toml);
        let clock = ManualClock::starting_now();
        let state = jars::setup::app_state_on(&config, clock.clone())
            .await
            .expect("app state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = match metrics_listener {
            true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let metrics_addr = metrics.as_ref().map(|l| l.local_addr().unwrap());
        let listeners = jars::http::Listeners {
            main: listener,
            metrics,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(jars::http::run(listeners, state.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            clock,
            metrics_addr,
            state,
            config,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn users(&self) -> UsersFile {
        UsersFile::new(self.config.users_file().expect("users_file backend"))
    }

    /// Adds a user to the users file, created now on the server's clock, and returns their id.
    pub fn add_user(&self, name: &str, password: &str, admin: bool) -> i64 {
        let now = self.clock.now().timestamp();
        self.users().add(name, password, admin, now).unwrap().id
    }

    /// Logs in through `/jars/token` and returns the token.
    pub async fn login(&self, name: &str, password: &str) -> String {
        let resp = client()
            .post(self.url("/jars/token"))
            .form(&[("user", name), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login of {name}");
        let body: serde_json::Value = resp.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// Creates an event through `/jars/create` and returns its id.
    pub async fn create_event(&self, token: &str, title: &str, private: bool) -> String {
        let private = if private { "true" } else { "false" };
        let resp = client()
            .post(self.url("/jars/create"))
            .form(&[
                ("auth", token),
                ("title", title),
                ("description", "test event"),
                ("private", private),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "create {title}");
        let body: serde_json::Value = resp.json().await.unwrap();
        body["event_id"].as_str().unwrap().to_string()
    }

    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops this server and starts another as a restarted `jars serve` would be: same data
    /// directory, address and clock, `toml` as its config, nothing kept in memory.
    pub async fn restart(mut self, toml: &str) -> TestServer {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        let config = config_in(&self.dir, toml);
        let state = jars::setup::app_state_on(&config, self.clock.clone())
            .await
            .expect("app state");
        let listeners = jars::http::Listeners {
            main: tokio::net::TcpListener::bind(self.addr).await.unwrap(),
            metrics: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(jars::http::run(listeners, state.clone(), async {
            let _ = stopped.await;
        }));
        self.state = state;
        self.config = config;
        self.metrics_addr = None;
        self.stop = Some(stop);
        self.task = Some(task);
        self
    }

    /// Stops accepting and waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// The embedded defaults plus `toml` (which may be empty), with `dir` as the data directory.
pub fn config_in(dir: &TempDir, toml: &str) -> Config {
    let overrides = Overrides {
        data_dir: Some(dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        config: None,
        database_url: None,
    };
    Config::from_toml_str(toml, &overrides).expect("test config")
}

/// Escapes like Icecast 2.4.4 escapes callback fields: every byte but `[A-Za-z0-9]` as
/// lowercase `%xx`.
pub fn icecast_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// A callback body of `fields`, each value escaped as Icecast escapes it.
pub fn callback_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", icecast_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Callbacks refused as not from our Icecast (`unknown`/`deny`/`bad_caller`).
pub fn bad_callers(server: &TestServer) -> u64 {
    server
        .state
        .metrics
        .auth_decisions
        .with_label_values(&["unknown", "deny", "bad_caller"])
        .get()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Posts a form and returns (status, body text).
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = client().post(url).form(form).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The `error` name of a JSON error body.
pub fn error_name(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
        ["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error name in {body:?}"))
        .to_string()
}

/// Posts a form that must be refused as over a rate limit: 429 `TooManyRequests`. Returns its
/// `Retry-After` in seconds.
pub async fn refused_as_too_many(url: &str, form: &[(&str, &str)]) -> u64 {
    let resp = client().post(url).form(form).send().await.unwrap();
    assert_eq!(resp.status(), 429, "{url}");
    let retry = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(error_name(&resp.text().await.unwrap()), "TooManyRequests");
    retry
}

/// A MyRadio on 127.0.0.1 that answers correctly (member 42, a standard user), but only after
/// `delay` for each credential check. Returns its base URL.
pub async fn slow_myradio(delay: std::time::Duration) -> String {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/auth/testcredentials",
            post(move || async move {
                tokio::time::sleep(delay).await;
                r#"{"status":"OK","payload":{"memberid":42}}"#
            }),
        )
        .route(
            "/user/{id}/permissions",
            get(|| async { r#"{"status":"OK","payload":[-1]}"# }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
