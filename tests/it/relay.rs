//! webcaster-relay as it really behaves, against a real Icecast 2.4.4: it approves a DJ with
//! `POST /jars/connect` (`mount=<event id>.mp3`, the WebSocket path without its `/`), PUTs the
//! stream to Icecast at that path with its fixed relay credentials, and reconnects by itself
//! whenever Icecast drops it. jars' clock is moved instead of waiting out the windows.

use std::time::Duration;

use crate::icecast_e2e::{rig, RELAY_PASS, RELAY_USER, WAIT};
use crate::support::icecast::{self, ADMIN_PASSWORD, ADMIN_USER};
use crate::support::post_form;

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_relayed_show_survives_a_blip_within_relay_reconnect() {
    let rig = rig("").await;
    let event = rig.jars.create_event(&rig.owner, "Relayed", false).await;
    let mount = format!("/{event}.mp3");

    // The relay's exact approval request.
    let (status, body) = post_form(
        &rig.jars.url("/jars/connect"),
        &[("auth", rig.owner.as_str()), ("mount", &mount[1..])],
    )
    .await;
    assert_eq!(status, 202, "connect with <id>.mp3: {body}");
    for spelling in [
        format!("/{event}.ogg"),
        format!("{event}.OPUS"),
        format!("{event}.aac"),
    ] {
        let (status, body) = post_form(
            &rig.jars.url("/jars/ticket"),
            &[("auth", rig.owner.as_str()), ("mount", spelling.as_str())],
        )
        .await;
        assert_eq!(status, 200, "a ticket for {spelling}: {body}");
    }
    let (status, _) = post_form(
        &rig.jars.url("/jars/connect"),
        &[
            ("auth", rig.owner.as_str()),
            ("mount", &format!("{event}.exe")),
        ],
    )
    .await;
    assert_eq!(status, 400, "not an audio extension");
    let relay = rig.source(&mount, RELAY_USER, RELAY_PASS).await;
    assert_eq!(relay.status(), 200, "the relay's PUT right after approval");
    rig.wait_event(&event, "live", |e| e["live"] == true).await;

    // The show runs past relay_window; then Icecast drops the source (an admin's killsource,
    // as a restart or a network blip would).
    rig.jars.clock.advance(Duration::from_secs(120));
    kill_source(&rig.icecast, &mount).await;
    rig.wait_event(&event, "dropped", |e| e["live"] == false)
        .await;
    drop(relay);
    rig.jars.clock.advance(Duration::from_secs(5));

    // The relay's automatic reconnect is let back in, and the show keeps its DJ.
    let again = rig.source(&mount, RELAY_USER, RELAY_PASS).await;
    assert_eq!(again.status(), 200, "reconnect within relay_reconnect");
    let e = rig
        .wait_event(&event, "live again", |e| e["live"] == true)
        .await;
    assert_eq!(e["connected_by"], rig.owner_id, "still the approved DJ");

    // Dropped again, and back only after relay_reconnect (10 minutes) has passed: refused.
    kill_source(&rig.icecast, &mount).await;
    rig.wait_event(&event, "dropped again", |e| e["live"] == false)
        .await;
    drop(again);
    rig.jars.clock.advance(Duration::from_secs(601));
    let late = rig.source(&mount, RELAY_USER, RELAY_PASS).await;
    assert_eq!(late.status(), 401, "reconnect after relay_reconnect");
}

/// Drops the source of `mount` through Icecast's admin API.
async fn kill_source(ice: &icecast::Icecast, mount: &str) {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = icecast::get_page(
            ice.port,
            &format!("/admin/killsource?mount={mount}"),
            Some((ADMIN_USER, ADMIN_PASSWORD)),
        )
        .await;
        if status == 200 {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "killsource {mount}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example relay config holds exactly the keys webcaster-relay reads, and its Icecast
/// credentials are a trusted source of the example jars.toml.
#[test]
fn the_example_relay_config_is_what_the_relay_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("icecast-examples");
    let relay: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("webcaster-relay.config.json")).unwrap(),
    )
    .unwrap();
    let mut keys: Vec<&str> = relay
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cert",
            "icyHost",
            "icyPass",
            "icyPort",
            "icyUser",
            "jarsJwtValidationUrl",
            "key"
        ]
    );
    assert!(relay["jarsJwtValidationUrl"]
        .as_str()
        .unwrap()
        .ends_with("/jars/connect"));
    let jars: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("jars.toml")).unwrap()).unwrap();
    let trusted = jars["icecast"]["trusted_sources"].as_array().unwrap();
    assert!(trusted.iter().any(|t| {
        t["user"].as_str() == relay["icyUser"].as_str()
            && t["password"].as_str() == relay["icyPass"].as_str()
    }));
}
