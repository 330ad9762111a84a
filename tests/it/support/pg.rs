//! PostgreSQL for tests: the server named by `DATABASE_URL` (CI: postgres://postgres@127.0.0.1:5432/test),
//! a fresh database per test that is dropped afterwards, and a TCP proxy that can cut the line.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;
use sqlx::{Connection, Executor, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Where the tests find PostgreSQL when `DATABASE_URL` is unset: the documented local address.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The admin URL: `DATABASE_URL`, else [`DEFAULT_URL`]. A test that calls this is compiled
/// `#[ignore]`d when no PostgreSQL answered there as the tests were built (`build.rs`), so
/// it runs only with one (or under `CI`, where it must be there).
pub fn admin_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let parsed = Url::parse(&url).expect("DATABASE_URL is not a URL");
    let host = parsed.host_str().unwrap_or("");
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1"),
        "DATABASE_URL must point at a loopback PostgreSQL, not {host}"
    );
    url
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let mut u = Url::parse(url).unwrap();
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// `url` pointing at `addr` instead of its own host and port.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let mut u = Url::parse(url).unwrap();
    u.set_host(Some(&addr.ip().to_string())).unwrap();
    u.set_port(Some(addr.port())).unwrap();
    u.to_string()
}

/// The address the server of `url` listens on.
pub async fn server_addr(url: &str) -> SocketAddr {
    let u = Url::parse(url).unwrap();
    let host = u.host_str().unwrap().trim_matches(['[', ']']).to_string();
    tokio::net::lookup_host((host, u.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// A database of its own for one test, `jars_test_<uuid>`, dropped (`WITH (FORCE)`) when this
/// value is.
pub struct TempDb {
    pub name: String,
    /// Connects to the new database.
    pub url: String,
    admin: String,
}

impl TempDb {
    pub async fn create(admin: &str) -> TempDb {
        let name = format!("jars_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin).await.unwrap_or_else(|e| {
            panic!(
                "cannot connect to PostgreSQL at {admin} ({e}). This test was built to run because \
                 PostgreSQL answered then (or CI is set); start it, or set DATABASE_URL, or run \
                 `touch build.rs` so that the next build marks these tests ignored"
            )
        });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create a test database");
        conn.close().await.ok();
        TempDb {
            url: with_database(admin, &name),
            name,
            admin: admin.to_string(),
        }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a runtime; a thread of its own can block on one of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                let forced = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if conn.execute(forced.as_str()).await.is_err() {
                    // Before PostgreSQL 13.
                    conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// The original JARS service's schema file, verbatim (it creates the role `jars` and grants
/// it the table; `postgres` owns the table).
pub const ORIGINAL_SCHEMA: &str = include_str!("../../fixtures/jars-original-schema.sql");

/// The password the original's schema file gives its role `jars`.
pub const ORIGINAL_ROLE_PASSWORD: &str = "YOUR_PASSWORD";

/// The statements of an SQL file: comment lines dropped, split on `;`.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Loads [`ORIGINAL_SCHEMA`] statement by statement on `conn` (it sets `search_path`), as the
/// connection's role (the test server's `postgres`). The role `jars` is cluster-wide: a
/// parallel or earlier run may have created it already. Whether the role exists (when this
/// server does not let us create it, the role statements are left out).
pub async fn load_original_schema(conn: &mut PgConnection) -> bool {
    let mut have_role = true;
    for stmt in statements(ORIGINAL_SCHEMA) {
        let is_role = stmt.starts_with("CREATE USER");
        let stmt = if have_role {
            stmt
        } else if stmt.starts_with("GRANT") {
            continue;
        } else {
            stmt.replace(" AUTHORIZATION jars", "")
        };
        match sqlx::raw_sql(&stmt).execute(&mut *conn).await {
            Ok(_) => {}
            Err(e) if is_role => {
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jars')",
                )
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                if !exists {
                    eprintln!("note: cannot create role jars ({e}); loading the schema without the role statements");
                    have_role = false;
                }
            }
            Err(e) => panic!("loading the original schema: {stmt}: {e}"),
        }
    }
    have_role
}

/// `url` connecting as the original's role `jars` instead.
pub fn as_original_role(url: &str) -> String {
    let mut u = Url::parse(url).unwrap();
    u.set_username("jars").unwrap();
    u.set_password(Some(ORIGINAL_ROLE_PASSWORD)).unwrap();
    u.to_string()
}

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Forwards both ways.
    Up,
    /// Closes every connection, and each new one as soon as it is accepted: a server that went
    /// away.
    Down,
    /// Keeps connections open and passes nothing: a network partition, where only timeouts help.
    Blackhole,
}

/// A TCP proxy on 127.0.0.1 in front of `target`, whose link can be cut and restored while the
/// port stays the same.
pub struct TcpProxy {
    pub addr: SocketAddr,
    link: watch::Sender<Link>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (link, watcher) = watch::channel(Link::Up);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let watcher = watcher.clone();
                let now = *watcher.borrow();
                match now {
                    Link::Up => {
                        tokio::spawn(pipe(client, target, watcher));
                    }
                    Link::Down => drop(client),
                    Link::Blackhole => {
                        tokio::spawn(hold(client, watcher));
                    }
                }
            }
        });
        TcpProxy { addr, link, accept }
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.link.send_replace(Link::Down);
    }
}

async fn pipe(mut client: TcpStream, target: SocketAddr, mut link: watch::Receiver<Link>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = link.wait_for(|l| *l != Link::Up) => {}
    }
    let now = *link.borrow();
    if now == Link::Blackhole {
        // Both sockets stay open; nothing passes until the link changes again.
        let _ = link.wait_for(|l| *l != Link::Blackhole).await;
    }
    // Dropping both ends closes the connection for jars and for PostgreSQL.
}

async fn hold(client: TcpStream, mut link: watch::Receiver<Link>) {
    let _ = link.wait_for(|l| *l != Link::Blackhole).await;
    drop(client);
}
