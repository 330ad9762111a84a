//! Sessions reported by a real Icecast 2.4.4: listeners join and leave at known (real) times
//! and the stats match (durations ± 1 s); a jars restart between a join and its leave loses
//! no session; the ip modes store what they say. jars' clock is set to the real time at each
//! step (its decisions read the manual clock).

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use jars::domain::{EndReason, Role, Target};
use jars::store::sessions::{SessionFilter, SessionRecord};
use support::icecast::{self, Icecast, ListenerHandle};
use support::{client, TestServer};
use tokio::net::{TcpListener, TcpStream};

use crate::icecast_e2e::{CB_PASS, CB_USER, WAIT};

fn config(extra: &str) -> String {
    format!("[icecast]\nusername = \"{CB_USER}\"\npassword = \"{CB_PASS}\"\n{extra}")
}

/// A TCP proxy whose target can be switched: Icecast keeps one callback URL while the jars
/// behind it restarts. Switching closes the open connections, as a restart does (Icecast's
/// libcurl keeps them alive).
struct SwitchProxy {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    pipes: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl SwitchProxy {
    async fn start(target: SocketAddr) -> SwitchProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let (to, open) = (target.clone(), pipes.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = *to.lock().unwrap();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(pipe);
            }
        });
        SwitchProxy {
            addr,
            target,
            pipes,
            accept,
        }
    }

    fn switch(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = to;
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }
}

impl Drop for SwitchProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn start_icecast(auth_url: String) -> Icecast {
    tokio::task::spawn_blocking(move || Icecast::start(&auth_url, CB_USER, CB_PASS))
        .await
        .unwrap()
}

/// Waits until `jars` counts `n` listeners on `event` (Icecast's callbacks are asynchronous).
async fn wait_listeners(jars: &TestServer, event: &str, n: u32, icecast: &Icecast) {
    let target = Target::Event(event.parse().unwrap());
    let started = Instant::now();
    while jars.state.hooks.live.mount(&target).listeners != n {
        assert!(
            started.elapsed() < WAIT,
            "never {n} listeners; icecast error log:\n{}",
            icecast.error_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real time on jars' clock, for what Icecast is about to report.
fn tick(jars: &TestServer) {
    jars.clock.set(Utc::now());
}

async fn join(jars: &TestServer, icecast: &Icecast, mount: &str) -> (ListenerHandle, Instant) {
    tick(jars);
    let handle = icecast::open_listener_with_headers(
        icecast.port,
        mount,
        None,
        &[("Referer", "https://radio.example/player")],
    )
    .await;
    assert_eq!(handle.status(), 200, "{}", icecast.error_log());
    (handle, Instant::now())
}

/// The stored listener sessions, oldest first.
async fn stored(jars: &TestServer) -> Vec<SessionRecord> {
    jars.state.hooks.sessions.flush().await;
    let store = jars.state.hooks.sessions.store().unwrap();
    let mut rows = store
        .sessions(SessionFilter::default(), 1_000)
        .await
        .unwrap();
    rows.retain(|r| r.session.role() == Role::Listener);
    rows
}

fn near(got: u64, want: Duration, what: &str) {
    let want = want.as_secs_f64();
    assert!(
        (got as f64 - want).abs() <= 1.0,
        "{what}: Icecast said {got} s, the test measured {want:.2} s"
    );
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn listeners_at_known_times_make_the_stats() {
    icecast::require_icecast();
    let jars = TestServer::start(&config("[sessions]\nip = \"full\"\n")).await;
    jars.add_user("owner", "pw-owner", false);
    let owner = jars.login("owner", "pw-owner").await;
    let icecast = start_icecast(jars.url("/icecast/auth")).await;
    let event = jars.create_event(&owner, "Known times", false).await;
    let mount = format!("/{event}.mp3");
    tick(&jars);
    let source = icecast::start_source(icecast.port, &mount, "source", &owner).await;
    assert_eq!(source.status(), 200);

    // A: 0..3 s, B: 1..5 s, C: 3.5..5 s. Never more than two at once.
    let (a, a_at) = join(&jars, &icecast, &mount).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (b, b_at) = join(&jars, &icecast, &mount).await;
    wait_listeners(&jars, &event, 2, &icecast).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    tick(&jars);
    a.close();
    let a_len = a_at.elapsed();
    wait_listeners(&jars, &event, 1, &icecast).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c, c_at) = join(&jars, &icecast, &mount).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tick(&jars);
    b.close();
    c.close();
    let (b_len, c_len) = (b_at.elapsed(), c_at.elapsed());
    wait_listeners(&jars, &event, 0, &icecast).await;

    let rows = stored(&jars).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (row, len, name) in [
        (&rows[0], a_len, "A"),
        (&rows[1], b_len, "B"),
        (&rows[2], c_len, "C"),
    ] {
        assert_eq!(row.end_reason, Some(EndReason::Left), "{name}");
        near(row.duration.expect("Icecast sends a duration"), len, name);
        assert_eq!(row.session.ip, "127.0.0.1", "ip = \"full\"");
        assert_eq!(
            row.session.referer.as_deref(),
            Some("https://radio.example/player")
        );
        assert!(
            row.session.agent.is_some(),
            "Icecast's agent field is stored"
        );
    }

    let stats: serde_json::Value = client()
        .get(jars.url(&format!("/jars/events/{event}/stats")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["sessions"], 3, "{stats}");
    assert_eq!(stats["peak_listeners"], 2, "{stats}");
    assert_eq!(stats["unique_listeners"], 1, "one address, ip = full");
    let hours = stats["listening_hours"].as_f64().unwrap();
    let measured = (a_len + b_len + c_len).as_secs_f64();
    assert!(
        (hours * 3600.0 - measured).abs() <= 3.0,
        "{hours} h against {measured} s measured"
    );
    let most = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["listeners"].as_u64().unwrap())
        .max();
    assert_eq!(most, Some(2));
    assert!(jars
        .state
        .metrics
        .render()
        .lines()
        .any(|l| l.starts_with("jars_listening_seconds_total ") && !l.ends_with(" 0")));
    source.stop().await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_jars_restart_in_the_middle_loses_no_session() {
    icecast::require_icecast();
    let first = TestServer::start(&config("")).await;
    first.add_user("owner", "pw-owner", false);
    let owner = first.login("owner", "pw-owner").await;
    let proxy = SwitchProxy::start(first.addr).await;
    let icecast = start_icecast(format!("http://{}/icecast/auth", proxy.addr)).await;
    let event = first.create_event(&owner, "Restarted", false).await;
    let mount = format!("/{event}.mp3");
    tick(&first);
    let source = icecast::start_source(icecast.port, &mount, "source", &owner).await;
    assert_eq!(source.status(), 200);
    let (before, before_at) = join(&first, &icecast, &mount).await;
    wait_listeners(&first, &event, 1, &icecast).await;
    first.state.hooks.sessions.flush().await;

    // jars restarts: a new process on the same store, knowing nothing live, behind the same
    // callback URL.
    let path = first.data_path("jars.sqlite3");
    let second = TestServer::start(&config(&format!(
        "[store]\nurl = \"sqlite:{}\"\n",
        path.display()
    )))
    .await;
    proxy.switch(second.addr);
    let (after, after_at) = join(&second, &icecast, &mount).await;
    wait_listeners(&second, &event, 1, &icecast).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    tick(&second);
    before.close();
    let before_len = before_at.elapsed();
    after.close();
    let after_len = after_at.elapsed();
    wait_listeners(&second, &event, 0, &icecast).await;
    // The first session's remove reached the second jars, which never saw it open: poll
    // until its row is closed (Icecast's remove is asynchronous).
    let started = Instant::now();
    let rows = loop {
        let rows = stored(&second).await;
        if rows.iter().all(|r| r.ended.is_some()) || started.elapsed() > WAIT {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, len, name) in [
        (&rows[0], before_len, "opened before"),
        (&rows[1], after_len, "after"),
    ] {
        assert_eq!(row.end_reason, Some(EndReason::Left), "{name}: {row:?}");
        near(row.duration.unwrap(), len, name);
        assert_eq!(row.session.ip, "127.0.0.0", "truncated by default");
    }
    source.stop().await;
}
