//! jars acting on a real Icecast 2.4.4 through its admin API (`[[icecast.servers]]`): live state
//! rebuilt after a jars restart (listmounts/listclients), listeners and sources dropped by the
//! `Kicker` (killclient/killsource), and what a refused or missing admin entry does.

use std::time::{Duration, Instant};

use jars::config::IcecastServer;
use jars::domain::{DenyReason, Role};
use jars::icecast::admin::{resync, AdminApi, AdminError};
use serde_json::Value;

use crate::icecast_e2e::{rig, rig_config, Rig, WAIT};
use crate::logs::Captured;
use crate::ops::{metrics, sample};
use crate::support::icecast::{self, ADMIN_PASSWORD, ADMIN_USER};
use crate::support::TestServer;

/// The entry for the rig's Icecast, as it reports itself (`<hostname>localhost</hostname>`).
fn entry(rig_icecast: &icecast::Icecast, password: &str) -> IcecastServer {
    IcecastServer {
        server: "localhost".into(),
        port: rig_icecast.port,
        admin_url: format!("http://127.0.0.1:{}", rig_icecast.port),
        admin_user: ADMIN_USER.into(),
        admin_password: password.into(),
        max_listeners: 100,
        public_url: None,
        weight: 1,
        region: None,
    }
}

fn entry_toml(port: u16, password: &str) -> String {
    format!(
        "[[icecast.servers]]\nserver = \"localhost\"\nport = {port}\n\
         admin_url = \"http://127.0.0.1:{port}/\"\nadmin_user = \"{ADMIN_USER}\"\n\
         admin_password = \"{password}\"\n"
    )
}

async fn readyz(jars: &TestServer) -> Value {
    crate::members::readyz(jars).await.1
}

/// `jars_kicks_total{reason, result}` now.
async fn kicks(jars: &TestServer, reason: DenyReason, result: &str) -> f64 {
    let prefix = format!(
        "jars_kicks_total{{reason=\"{}\",result=\"{result}\"}}",
        reason.label()
    );
    sample(&metrics(jars).await, &prefix).unwrap_or_else(|| panic!("no sample {prefix}"))
}

async fn wait_kicks(jars: &TestServer, reason: DenyReason, result: &str, n: f64, within: Duration) {
    let started = Instant::now();
    while kicks(jars, reason, result).await < n {
        assert!(
            started.elapsed() < within,
            "jars_kicks_total{{{result}}} never reached {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A live event with one listener on the rig's Icecast: its mount, the source and listener.
async fn live_event(
    rig: &Rig,
) -> (
    String,
    String,
    icecast::SourceHandle,
    icecast::ListenerHandle,
) {
    let event = rig.jars.create_event(&rig.owner, "Live", false).await;
    let mount = format!("/{event}.mp3");
    let source = rig.source(&mount, "source", &rig.owner).await;
    assert_eq!(source.status(), 200);
    rig.wait_event(&event, "live", |e| e["live"] == true).await;
    let listener = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_eq!(listener.status(), 200);
    rig.wait_event(&event, "one listener", |e| e["listeners"] == 1)
        .await;
    (event, mount, source, listener)
}

impl Rig {
    /// The rig with its jars restarted on `extra` config, Icecast still running.
    async fn restarted(self, extra: &str) -> Rig {
        Rig {
            jars: self.jars.restart(&rig_config(extra)).await,
            ..self
        }
    }
}

/// The client ids Icecast lists for `mount`, through jars' own admin client.
async fn listed_clients(server: &IcecastServer, mount: &str) -> Option<Vec<String>> {
    let http = reqwest::Client::new();
    let api = AdminApi {
        http: &http,
        server,
    };
    let clients = api.list_clients(mount, 100).await.expect("listclients");
    clients.map(|c| c.into_iter().map(|c| c.id).collect())
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_restarted_jars_rebuilds_live_state_from_icecast() {
    let rig = rig("").await;
    let (event, _mount, _source, listener) = live_event(&rig).await;

    // Without an entry, a restart forgets: readyz says so.
    let rig = rig.restarted("").await;
    let ready = readyz(&rig.jars).await;
    assert!(
        ready["icecast"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("live state starts empty")),
        "{ready}"
    );
    let e = rig
        .wait_event(&event, "forgotten", |e| e["live"] == false)
        .await;
    assert_eq!(
        (e["connected"].clone(), e["listeners"].clone()),
        (true.into(), 0.into())
    );

    // With one, the restart rebuilds what Icecast has.
    let port = rig.icecast.port;
    let rig = rig.restarted(&entry_toml(port, ADMIN_PASSWORD)).await;
    let e = rig
        .wait_event(&event, "live again", |e| {
            e["live"] == true && e["listeners"] == 1
        })
        .await;
    assert_eq!(e["connected"], true);
    let text = metrics(&rig.jars).await;
    assert_eq!(sample(&text, "jars_live_mounts "), Some(1.0), "{text}");
    assert_eq!(sample(&text, "jars_listeners "), Some(1.0));
    let ready = readyz(&rig.jars).await;
    let server = &ready["icecast"]["servers"][0];
    assert_eq!(server["resync"], "ok", "{ready}");
    assert_eq!(server["port"], rig.icecast.port);
    assert!(ready["icecast"].get("note").is_none(), "{ready}");

    // The rebuilt session is the real one: its listener_remove ends it.
    listener.close();
    rig.wait_event(&event, "listener gone", |e| e["listeners"] == 0)
        .await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn the_kicker_drops_a_real_listener_and_a_real_source() {
    let rig = rig("").await;
    let (event, mount, source, listener) = live_event(&rig).await;
    let state = &rig.jars.state;
    let server = entry(&rig.icecast, ADMIN_PASSWORD);
    state.icecast_admin.set_servers(vec![server.clone()]);
    let session = state
        .hooks
        .live
        .sessions_where(|s| s.role() == Role::Listener)
        .remove(0);
    assert_eq!(session.key.server.host, "localhost");
    assert_eq!(
        listed_clients(&server, &mount).await,
        Some(vec![session.key.id.clone()])
    );

    let started = Instant::now();
    state.kicker.kick(&session, DenyReason::UserRemoved);
    assert!(
        listener.wait_closed(Duration::from_secs(3)).await.is_some(),
        "the listener was not dropped within 3 s"
    );
    wait_kicks(&rig.jars, DenyReason::UserRemoved, "dropped", 1.0, WAIT).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    rig.wait_event(&event, "listener dropped", |e| e["listeners"] == 0)
        .await;
    assert_eq!(listed_clients(&server, &mount).await, Some(vec![]));

    // Kicking it again: Icecast has no such client.
    state.kicker.kick(&session, DenyReason::UserRemoved);
    wait_kicks(&rig.jars, DenyReason::UserRemoved, "gone", 1.0, WAIT).await;

    let on = state
        .hooks
        .live
        .sessions_where(|s| s.role() == Role::Source)
        .remove(0);
    state.kicker.kick(&on, DenyReason::EventExpired);
    rig.wait_event(&event, "source dropped", |e| e["live"] == false)
        .await;
    wait_kicks(&rig.jars, DenyReason::EventExpired, "dropped", 1.0, WAIT).await;
    // The source's connection notices the close at its next write.
    let started = Instant::now();
    while source.is_streaming() {
        assert!(
            started.elapsed() < WAIT,
            "the source connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        listed_clients(&server, &mount).await,
        None,
        "no source any more"
    );
    let http = reqwest::Client::new();
    let api = AdminApi {
        http: &http,
        server: &server,
    };
    assert!(api.list_mounts().await.unwrap().is_empty());
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_refused_or_missing_admin_entry_is_counted_and_never_logs_the_password() {
    let rig = rig("").await;
    let (_event, _mount, _source, listener) = live_event(&rig).await;
    let state = &rig.jars.state;
    let wrong = "wrong-admin-password-x9";
    let log = Captured::default();
    let _guard = log.start();

    // No entry for this Icecast: counted, said once in the log and in readyz.
    let session = state
        .hooks
        .live
        .sessions_where(|s| s.role() == Role::Listener)
        .remove(0);
    state.kicker.kick(&session, DenyReason::UserRemoved);
    state.kicker.kick(&session, DenyReason::UserRemoved);
    assert_eq!(
        kicks(&rig.jars, DenyReason::UserRemoved, "no_admin").await,
        2.0
    );
    assert_eq!(
        log.text().matches("no [[icecast.servers]] entry").count(),
        1
    );
    let ready = readyz(&rig.jars).await;
    let named = format!("localhost:{}", rig.icecast.port);
    assert_eq!(
        ready["icecast"]["without_entry"][0],
        named.as_str(),
        "{ready}"
    );

    // A wrong admin password: retried, then counted as failed; the listener stays.
    let server = entry(&rig.icecast, wrong);
    state.icecast_admin.set_servers(vec![server.clone()]);
    state.kicker.kick(&session, DenyReason::UserRemoved);
    wait_kicks(
        &rig.jars,
        DenyReason::UserRemoved,
        "failed",
        1.0,
        Duration::from_secs(20),
    )
    .await;
    assert!(
        listener.closed_after().is_none(),
        "the listener was not dropped"
    );
    assert_eq!(
        kicks(&rig.jars, DenyReason::UserRemoved, "dropped").await,
        0.0
    );

    // A resync is refused too, and readyz says so.
    let refused = resync::resync_server(&state.icecast_admin, &state.hooks, &server).await;
    assert!(
        matches!(refused, Err(AdminError::Refused(401))),
        "{refused:?}"
    );
    let ready = readyz(&rig.jars).await;
    assert_eq!(
        ready["icecast"]["servers"][0]["resync"], "failed",
        "{ready}"
    );
    assert_eq!(rig.jars.state.hooks.live.totals().listeners, 1, "kept");

    let text = log.text();
    assert!(text.contains("could not drop the listener"), "{text}");
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{ADMIN_USER}:{wrong}"),
    );
    for secret in [wrong, encoded.as_str()] {
        assert!(!text.contains(secret), "a secret in the log:\n{text}");
        assert!(!ready.to_string().contains(secret));
    }
}

#[tokio::test]
async fn servers_are_reloaded_on_sighup_and_resynced_at_once() {
    let jars = TestServer::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.toml");
    // Nothing listens there: the resync the reload triggers fails, and says so.
    let port = crate::cli::free_port();
    std::fs::write(&path, entry_toml(port, "reload-admin-secret")).unwrap();
    let overrides = jars::config::Overrides {
        config: Some(path.clone()),
        data_dir: Some(jars.dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let no_log_level = |_: &str| Ok(());
    jars::setup::reload(&jars.state, &jars.config, &overrides, &no_log_level).unwrap();
    assert_eq!(jars.state.icecast_admin.servers()[0].port, port);
    let started = Instant::now();
    let ready = loop {
        let ready = readyz(&jars).await;
        if ready["icecast"]["servers"][0]["resync"] == "failed" {
            break ready;
        }
        assert!(
            started.elapsed() < WAIT,
            "no resync after the reload: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = ready["icecast"]["servers"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("unreachable"), "{ready}");
    assert!(!ready.to_string().contains("reload-admin-secret"));

    // A broken entry is refused as a whole; the running one stays.
    std::fs::write(
        &path,
        entry_toml(port, "x").replace("http://", "http://admin:pw@"),
    )
    .unwrap();
    let err =
        jars::setup::reload(&jars.state, &jars.config, &overrides, &no_log_level).unwrap_err();
    assert!(err.contains("icecast.servers"), "{err}");
    assert_eq!(
        jars.state.icecast_admin.servers()[0].admin_password,
        "reload-admin-secret"
    );
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn jars_started_before_its_icecast_knows_it_within_seconds() {
    icecast::require_icecast();
    // The documented order: jars first, with the entry of an Icecast that is not up yet.
    let port = icecast::free_port();
    let jars = TestServer::start(&rig_config(&entry_toml(port, ADMIN_PASSWORD))).await;
    let started = Instant::now();
    loop {
        let ready = readyz(&jars).await;
        if ready["icecast"]["servers"][0]["resync"] == "failed" {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "no failed resync reported: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = jars.url("/icecast/auth");
    let _icecast = tokio::task::spawn_blocking(move || {
        icecast::Icecast::start_on(
            port,
            &url,
            crate::icecast_e2e::CB_USER,
            crate::icecast_e2e::CB_PASS,
        )
    })
    .await
    .unwrap();
    // Retried within seconds (1 s, doubling), not at the next 5-minute resync.
    let up = Instant::now();
    let ready = loop {
        let ready = readyz(&jars).await;
        if ready["icecast"]["servers"][0]["resync"] == "ok" {
            break ready;
        }
        assert!(
            up.elapsed() < WAIT,
            "the resync still fails with Icecast up: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(ready["icecast"]["servers"][0]["error"].is_null(), "{ready}");
}
