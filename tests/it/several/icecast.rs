//! Three real Icecast 2.4.4 on loopback, from `icecast-examples/master-and-edges/`: a master
//! and two edges relaying it with `<master-server>`, each edge asking jars about listeners
//! through one `type="default"` mount. A source goes live on the master; listeners come through
//! `/listen` and spread over the edges by free room; an edge stopped is left out within seconds
//! and `/readyz` says why; a station licence of 20 held by two jars nodes on one PostgreSQL
//! refuses the 21st listener on whichever edge it joins. Edge pulls reach the master's jars from
//! 127.0.0.1 (a trusted relay); listeners connect from 127.0.0.2 and up.
//!
//! These tests wait on real time (Icecast's relays, its health checks); jars' own clock stands
//! still, so only failed checks (not their age) make a server unhealthy here.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use jars::domain::ServerId;
use serde_json::Value;

use crate::support::icecast::{
    free_port, open_listener_from, require_icecast, start_source, Icecast, ListenerHandle,
    ADMIN_PASSWORD, ADMIN_USER,
};
use crate::support::pg::{admin_url, TempDb};
use crate::support::{client, error_name, TestServer};

const CB_USER: &str = "icecast";
const CB_PASS: &str = "several-callback-secret";

/// The ports of the master and the two edges.
#[derive(Clone, Copy)]
struct Ports {
    master: u16,
    edge1: u16,
    edge2: u16,
}

impl Ports {
    fn free() -> Ports {
        Ports {
            master: free_port(),
            edge1: free_port(),
            edge2: free_port(),
        }
    }
}

/// jars' config for the three servers (the example's host names), `extra` in front.
fn config(ports: Ports, caps: (u32, u32), extra: &str) -> String {
    let entry = |name: &str, port: u16, public: bool, max: u32| {
        let public = if public {
            format!("public_url = \"http://127.0.0.1:{port}\"\n")
        } else {
            String::new()
        };
        format!(
            "[[icecast.servers]]\nserver = \"{name}\"\nport = {port}\n\
             admin_url = \"http://127.0.0.1:{port}\"\nadmin_user = \"{ADMIN_USER}\"\n\
             admin_password = \"{ADMIN_PASSWORD}\"\nmax_listeners = {max}\n{public}"
        )
    };
    format!(
        "{extra}\n[icecast]\nusername = \"{CB_USER}\"\npassword = \"{CB_PASS}\"\n\
         health_interval = \"1s\"\n\n[[icecast.trusted_relays]]\nip = \"127.0.0.1\"\n\n{}\n{}\n{}",
        entry("master.radio.example", ports.master, false, 100),
        entry("edge1.radio.example", ports.edge1, true, caps.0),
        entry("edge2.radio.example", ports.edge2, true, caps.1),
    )
}

fn auth_url(jars: &TestServer) -> String {
    jars.url("/icecast/auth")
}

fn master(ports: Ports, jars: &TestServer) -> Icecast {
    Icecast::start_from(
        "master-and-edges/master.xml",
        ports.master,
        &auth_url(jars),
        CB_USER,
        CB_PASS,
        &[],
    )
}

fn edge(n: u8, port: u16, master: u16, jars: &TestServer) -> Icecast {
    Icecast::start_from(
        "master-and-edges/edge.xml",
        port,
        &auth_url(jars),
        CB_USER,
        CB_PASS,
        &[
            (
                "<hostname>edge1.radio.example</hostname>",
                format!("<hostname>edge{n}.radio.example</hostname>"),
            ),
            (
                "<master-server>master.radio.example</master-server>",
                "<master-server>127.0.0.1</master-server>".into(),
            ),
            (
                "<master-server-port>8000</master-server-port>",
                format!("<master-server-port>{master}</master-server-port>"),
            ),
            (
                "<master-update-interval>10</master-update-interval>",
                "<master-update-interval>1</master-update-interval>".into(),
            ),
        ],
    )
}

/// Waits until every edge in `edges` reported the relayed `mount` to `jars` (`mount_add`).
async fn relayed(jars: &[&TestServer], edges: &[(&str, u16)], mount: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for (jars, (name, port)) in jars.iter().zip(edges) {
        let id = ServerId::new(*name, port.to_string());
        loop {
            let carries = jars
                .state
                .hooks
                .live
                .servers()
                .into_iter()
                .any(|(s, t)| s == id && t.sources.contains_key(mount));
            if carries {
                break;
            }
            assert!(Instant::now() < deadline, "{name} never relayed {mount}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `GET /listen/…` on `jars`, not following the redirect: status, `Location`, body.
async fn listen(jars: &TestServer, path: &str) -> (u16, Option<String>, String) {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(jars.url(path))
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), location, resp.text().await.unwrap())
}

/// The port and path of a redirect to `http://127.0.0.1:PORT/PATH`.
fn split(location: &str) -> (u16, String) {
    let rest = location.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, path) = rest.split_once('/').unwrap();
    (port.parse().unwrap(), format!("/{path}"))
}

/// The `n`-th listener's own loopback address: 127.0.0.2 and up.
fn address(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (2 + n / 250) as u8, (2 + n % 250) as u8)
}

async fn readyz(jars: &TestServer) -> Value {
    client()
        .get(jars.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn start(jars: &TestServer) -> (String, String) {
    jars.add_user("dj", "dj-password", false);
    let token = jars.login("dj", "dj-password").await;
    let event = jars.create_event(&token, "Top of the hour", false).await;
    (token, event)
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn listeners_spread_over_the_edges_by_free_room_and_leave_a_stopped_edge() {
    require_icecast();
    let ports = Ports::free();
    let jars = TestServer::start(&config(ports, (25, 15), "")).await;
    let (token, event) = start(&jars).await;
    let _master = master(ports, &jars);
    let edge1 = edge(1, ports.edge1, ports.master, &jars);
    let _edge2 = edge(2, ports.edge2, ports.master, &jars);
    let mount = format!("/{event}.mp3");
    let _source = start_source(ports.master, &mount, "dj", &token).await;
    relayed(
        &[&jars, &jars],
        &[
            ("edge1.radio.example", ports.edge1),
            ("edge2.radio.example", ports.edge2),
        ],
        &mount,
    )
    .await;

    // 30 listeners through /listen: free room 25 and 15, so 20 and 10, both left with 5.
    let mut listeners: Vec<ListenerHandle> = Vec::new();
    let mut on = [0usize; 2];
    for n in 0..30 {
        let (status, location, body) = listen(&jars, &format!("/listen/{event}.mp3?n={n}")).await;
        assert_eq!(status, 302, "{body}");
        let (port, path) = split(&location.unwrap());
        assert_eq!(path, format!("{mount}?n={n}"));
        let l = open_listener_from(address(n), port, &path).await;
        assert_eq!(l.status(), 200, "listener {n} on {port}");
        on[usize::from(port == ports.edge2)] += 1;
        listeners.push(l);
    }
    assert_eq!(on, [20, 10]);
    // The edges' pulls of the master were allowed and are no listeners.
    assert_eq!(jars.state.hooks.live.totals().listeners, 30);
    let ready = readyz(&jars).await;
    let servers = ready["icecast"]["servers"].as_array().unwrap();
    assert_eq!(
        servers
            .iter()
            .map(|s| (s["listeners"].as_u64(), s["health"].as_str()))
            .collect::<Vec<_>>(),
        [
            // Icecast's own count of the master: the two edges' pulls.
            (Some(2), Some("healthy")),
            (Some(20), Some("healthy")),
            (Some(10), Some("healthy"))
        ],
        "{ready}"
    );
    // The edges relay the master's audio.
    let deadline = Instant::now() + Duration::from_secs(5);
    while listeners.iter().any(|l| l.bytes() == 0) {
        assert!(Instant::now() < deadline, "a listener got no audio");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Edge 1 goes away: within 10 s /listen sends nobody there, and /readyz says why.
    let stopped = Instant::now();
    drop(edge1);
    loop {
        let ready = readyz(&jars).await;
        let e1 = &ready["icecast"]["servers"][1];
        if e1["health"] != "healthy" {
            let why = e1["why"].as_str().unwrap_or_default();
            assert!(why.contains("admin API failed"), "{ready}");
            break;
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "{ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stopped.elapsed() < Duration::from_secs(10));
    for n in 30..35 {
        let (status, location, body) = listen(&jars, &format!("/listen/{event}.mp3")).await;
        assert_eq!(status, 302, "{body}");
        let (port, path) = split(&location.unwrap());
        assert_eq!(port, ports.edge2);
        let l = open_listener_from(address(n), port, &path).await;
        assert_eq!(l.status(), 200);
        listeners.push(l);
    }
    // Edge 2 is full now (15): every server that carries the event is full or gone.
    let (status, _, body) = listen(&jars, &format!("/listen/{event}.mp3")).await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (503, "ServersFullException")
    );
    let metrics = client()
        .get(jars.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let e1 = format!("{{server=\"edge1.radio.example:{}\"}}", ports.edge1);
    let e2 = format!("{{server=\"edge2.radio.example:{}\"}}", ports.edge2);
    assert!(
        metrics.contains(&format!("jars_server_healthy{e1} 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("jars_server_listeners{e2} 15")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("jars_server_capacity{e2} 15")),
        "{metrics}"
    );
}

#[cfg_attr(
    not(all(jars_has = "icecast2", jars_has = "postgres")),
    ignore = "needs icecast2 and PostgreSQL, not found when the tests were built (install icecast2, start PostgreSQL, then touch build.rs)"
)]
#[tokio::test]
async fn a_station_licence_of_20_holds_over_two_nodes_on_one_postgresql() {
    require_icecast();
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let ports = Ports::free();
    let node = |name: &str| {
        format!(
            "[store]\nurl = \"{}\"\n\n[limits]\nmax_listeners = 20\nnode_name = \"{name}\"\n",
            db.url
        )
    };
    // Node a hears the master and edge 1, node b edge 2.
    let a = TestServer::start(&config(ports, (100, 100), &node("a"))).await;
    let b = TestServer::start(&config(ports, (100, 100), &node("b"))).await;
    let (token, event) = start(&a).await;
    let _master = master(ports, &a);
    let _edge1 = edge(1, ports.edge1, ports.master, &a);
    let _edge2 = edge(2, ports.edge2, ports.master, &b);
    let mount = format!("/{event}.mp3");
    let _source = start_source(ports.master, &mount, "dj", &token).await;
    relayed(
        &[&a, &b],
        &[
            ("edge1.radio.example", ports.edge1),
            ("edge2.radio.example", ports.edge2),
        ],
        &mount,
    )
    .await;

    // 30 listeners at once, 15 on each edge: each node admits one at a time, and a node may
    // miss the other's last admission, so the cluster ends at 20, or 21 at most.
    let joins = (0..30).map(|n| {
        let port = if n % 2 == 0 { ports.edge1 } else { ports.edge2 };
        let mount = mount.clone();
        tokio::spawn(async move { open_listener_from(address(n), port, &mount).await })
    });
    let mut listeners = Vec::new();
    for j in joins {
        listeners.push(j.await.unwrap());
    }
    let admitted = listeners.iter().filter(|l| l.status() == 200).count();
    assert!((20..=21).contains(&admitted), "{admitted} admitted");
    assert!(listeners
        .iter()
        .all(|l| l.status() == 200 || l.status() == 401));
    let counted = |s: &TestServer| s.state.hooks.live.totals().listeners;
    assert_eq!(counted(&a) + counted(&b), admitted);
    // The 21st (or 22nd) is refused wherever it joins, through either node.
    for (n, port) in [(40, ports.edge1), (41, ports.edge2)] {
        let l = open_listener_from(address(n), port, &mount).await;
        assert_eq!(l.status(), 401, "a listener on {port}");
    }
    let full = |s: &TestServer| {
        s.state
            .metrics
            .auth_decisions
            .with_label_values(&["listener_add", "deny", "station_full"])
            .get()
    };
    assert!(full(&a) >= 1 && full(&b) >= 1, "{} {}", full(&a), full(&b));
    // /listen on either node says so at once, once the nodes' counts are shared (each second).
    let deadline = Instant::now() + Duration::from_secs(5);
    for node in [&a, &b] {
        loop {
            let (status, _, body) = listen(node, &format!("/listen/{event}.mp3")).await;
            if status == 503 && error_name(&body) == "StationFullException" {
                break;
            }
            assert!(Instant::now() < deadline, "{status} {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // One leaves: a listener on edge 1 (node a) gets the place, whichever node counted it.
    let leaving = listeners
        .iter()
        .position(|l| l.status() == 200)
        .map(|i| listeners.remove(i))
        .unwrap();
    leaving.close();
    if admitted == 21 {
        // The overshoot is paid back first.
        let next = listeners.iter().position(|l| l.status() == 200).unwrap();
        listeners.remove(next).close();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 50;
    loop {
        let l = open_listener_from(address(n), ports.edge1, &mount).await;
        if l.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "nobody got the freed place");
        n += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn the_examples_jars_toml_describes_the_master_and_two_edges() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("icecast-examples/master-and-edges/jars.toml"),
    )
    .unwrap();
    let c = jars::config::Config::from_toml_str(&text, &Default::default()).unwrap();
    let servers: Vec<(String, bool)> = c
        .icecast
        .servers
        .iter()
        .map(|s| (s.name(), s.public_url.is_some()))
        .collect();
    assert_eq!(
        servers,
        [
            ("master.radio.example:8000".to_string(), false),
            ("edge1.radio.example:8000".to_string(), true),
            ("edge2.radio.example:8000".to_string(), true),
        ]
    );
    assert_eq!(c.limits.max_listeners, Some(1500));
    assert!(c.icecast.trusted_relays[0].contains("10.0.0.21".parse().unwrap()));
}
