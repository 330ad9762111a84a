//! End to end against a real Icecast 2.4.4 started from `icecast-examples/icecast.xml`, with
//! jars answering its URL-auth callbacks: sources by JWT, trusted relays, public and private
//! listeners, tickets (wrong event, wrong address, expired, time-limited), listener counts,
//! mount_remove, wrong callback credentials and metadata updates without credentials.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::icecast::{self, Icecast};
use support::{client, post_form, TestServer};

pub(crate) const CB_USER: &str = "icecast";
pub(crate) const CB_PASS: &str = "e2e-callback-secret";
pub(crate) const RELAY_USER: &str = "relay";
pub(crate) const RELAY_PASS: &str = "relay-e2e-password";
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Rig {
    pub(crate) jars: TestServer,
    pub(crate) icecast: Icecast,
    pub(crate) owner: String,
    pub(crate) other: String,
    pub(crate) owner_id: i64,
}

/// The rig's jars config: the callback credentials, a trusted relay, then `extra`.
pub(crate) fn rig_config(extra: &str) -> String {
    format!(
        "[icecast]\nusername = \"{CB_USER}\"\npassword = \"{CB_PASS}\"\n\
         [[icecast.trusted_sources]]\nuser = \"{RELAY_USER}\"\npassword = \"{RELAY_PASS}\"\n{extra}"
    )
}

/// Starts jars (with `extra` config) and an Icecast calling it. `icecast_password` is what
/// Icecast sends as the callback password (normally the one jars expects).
async fn rig_with(extra: &str, icecast_password: &str) -> Rig {
    icecast::require_icecast();
    let jars = TestServer::start(&rig_config(extra)).await;
    let owner_id = jars.add_user("owner", "pw", false);
    jars.add_user("other", "pw", false);
    let owner = jars.login("owner", "pw").await;
    let other = jars.login("other", "pw").await;
    let url = jars.url("/icecast/auth");
    let icecast = tokio::task::spawn_blocking({
        let password = icecast_password.to_string();
        move || Icecast::start(&url, CB_USER, &password)
    })
    .await
    .unwrap();
    Rig {
        jars,
        icecast,
        owner,
        other,
        owner_id,
    }
}

pub(crate) async fn rig(extra: &str) -> Rig {
    rig_with(extra, CB_PASS).await
}

impl Rig {
    async fn event(&self, id: &str) -> Value {
        client()
            .get(self.jars.url(&format!("/jars/events/{id}")))
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the event until `pred` holds (Icecast's notifications are asynchronous).
    pub(crate) async fn wait_event(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let e = self.event(id).await;
            if pred(&e) {
                return e;
            }
            assert!(
                started.elapsed() < WAIT,
                "event never reached: {what}; last seen {e}\nicecast error log:\n{}",
                self.icecast.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ticket(&self, event: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("auth", self.owner.as_str()), ("mount", event)];
        form.extend_from_slice(extra);
        let (status, body) = post_form(&self.jars.url("/jars/ticket"), &form).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["ticket"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn source(
        &self,
        mount: &str,
        user: &str,
        pass: &str,
    ) -> icecast::SourceHandle {
        icecast::start_source(self.icecast.port, mount, user, pass).await
    }

    async fn listen(&self, path: &str) -> icecast::ListenResult {
        icecast::listen(self.icecast.port, path, None, 4096, WAIT).await
    }
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn owner_broadcasts_others_are_refused_and_mount_remove_keeps_connected_by() {
    let rig = rig("").await;
    let event = rig.jars.create_event(&rig.owner, "Live", false).await;
    let mount = format!("/{event}.mp3");

    let refused = rig.source(&mount, "source", &rig.other).await;
    assert_eq!(refused.status(), 401, "another user's JWT");
    drop(refused);

    let source = rig.source(&mount, "source", &rig.owner).await;
    assert_eq!(source.status(), 200, "the owner's JWT");
    let e = rig.wait_event(&event, "live", |e| e["live"] == true).await;
    assert_eq!(e["connected"], true);
    assert_eq!(e["connected_by"], rig.owner_id);

    // A public listener gets audio without any token.
    let heard = rig.listen(&mount).await;
    assert_eq!(heard.status, 200);
    assert!(heard.bytes >= 4096, "got {} bytes", heard.bytes);

    source.stop().await;
    let e = rig
        .wait_event(&event, "not live after mount_remove", |e| {
            e["live"] == false
        })
        .await;
    assert_eq!(e["connected"], false);
    assert_eq!(e["connected_by"], rig.owner_id, "last connected user kept");
    assert!(e["last_disconnected_at"].is_i64());
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn trusted_relay_needs_a_recent_connect() {
    let rig = rig("").await;
    let event = rig.jars.create_event(&rig.owner, "Relayed", false).await;
    let mount = format!("/{event}");

    let refused = rig.source(&mount, RELAY_USER, RELAY_PASS).await;
    assert_eq!(refused.status(), 401, "relay without /jars/connect");
    drop(refused);

    let (status, _) = post_form(
        &rig.jars.url("/jars/connect"),
        &[("auth", rig.owner.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 202);
    let relay = rig.source(&mount, RELAY_USER, RELAY_PASS).await;
    assert_eq!(relay.status(), 200, "relay right after /jars/connect");
    let e = rig.wait_event(&event, "live", |e| e["live"] == true).await;
    assert_eq!(e["connected_by"], rig.owner_id);
    relay.stop().await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn private_listeners_need_a_valid_ticket() {
    let rig = rig("[tokens]\nleeway = \"0s\"").await;
    let event = rig.jars.create_event(&rig.owner, "Private", true).await;
    let other_event = rig.jars.create_event(&rig.owner, "Other", true).await;
    let mount = format!("/{event}.mp3");
    let source = rig.source(&mount, "source", &rig.owner).await;
    assert_eq!(source.status(), 200);
    rig.wait_event(&event, "live", |e| e["live"] == true).await;

    assert_eq!(rig.listen(&mount).await.status, 401, "no ticket");

    let ticket = rig.ticket(&event, &[]).await;
    let heard = rig.listen(&format!("{mount}?token={ticket}")).await;
    assert_eq!(heard.status, 200, "valid ticket");
    assert!(heard.bytes >= 4096);
    // The Basic password carries a ticket too.
    let heard = icecast::listen(
        rig.icecast.port,
        &mount,
        Some(("listener", ticket.as_str())),
        1024,
        WAIT,
    )
    .await;
    assert_eq!(heard.status, 200, "ticket as Basic password");

    let wrong_event = rig.ticket(&other_event, &[]).await;
    assert_eq!(
        rig.listen(&format!("{mount}?token={wrong_event}"))
            .await
            .status,
        401,
        "ticket for another event"
    );
    let wrong_ip = rig.ticket(&event, &[("ip", "192.0.2.99")]).await;
    assert_eq!(
        rig.listen(&format!("{mount}?token={wrong_ip}"))
            .await
            .status,
        401,
        "ticket bound to another address"
    );
    let right_ip = rig.ticket(&event, &[("ip", "127.0.0.1")]).await;
    assert_eq!(
        rig.listen(&format!("{mount}?token={right_ip}"))
            .await
            .status,
        200,
        "ticket bound to this address"
    );
    let short = rig.ticket(&event, &[("lifetime", "1")]).await;
    rig.jars.clock.advance(Duration::from_secs(2));
    assert_eq!(
        rig.listen(&format!("{mount}?token={short}")).await.status,
        401,
        "expired ticket"
    );
    source.stop().await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_three_second_ticket_is_cut_off_by_icecast() {
    let rig = rig("").await;
    let event = rig.jars.create_event(&rig.owner, "Private", true).await;
    let mount = format!("/{event}");
    let source = rig.source(&mount, "source", &rig.owner).await;
    assert_eq!(source.status(), 200);
    rig.wait_event(&event, "live", |e| e["live"] == true).await;

    let ticket = rig.ticket(&event, &[("lifetime", "3")]).await;
    let listener =
        icecast::open_listener(rig.icecast.port, &format!("{mount}?token={ticket}"), None).await;
    assert_eq!(listener.status(), 200);
    let closed = listener
        .wait_closed(Duration::from_secs(20))
        .await
        .expect("Icecast must end the session when the ticket expires");
    // Icecast checks time limits on its own schedule: a generous window, no tight timing.
    assert!(
        closed >= Duration::from_secs(2) && closed <= Duration::from_secs(10),
        "closed after {closed:?}"
    );
    source.stop().await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn listener_counts_follow_icecast() {
    let rig = rig("").await;
    let event = rig.jars.create_event(&rig.owner, "Counted", false).await;
    let mount = format!("/{event}.mp3");
    let source = rig.source(&mount, "source", &rig.owner).await;
    assert_eq!(source.status(), 200);
    rig.wait_event(&event, "live", |e| e["live"] == true).await;

    let a = icecast::open_listener(rig.icecast.port, &mount, None).await;
    let b = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_eq!((a.status(), b.status()), (200, 200));
    let e = rig
        .wait_event(&event, "2 listeners", |e| e["listeners"] == 2)
        .await;
    assert_eq!(e["peak_listeners"], 2);
    a.close();
    b.close();
    let e = rig
        .wait_event(&event, "0 listeners", |e| e["listeners"] == 0)
        .await;
    assert_eq!(e["peak_listeners"], 2);
    source.stop().await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn wrong_callback_credentials_are_denied() {
    let rig = rig_with("", "not-the-callback-secret").await;
    let event = rig.jars.create_event(&rig.owner, "Guarded", false).await;
    let source = rig.source(&format!("/{event}"), "source", &rig.owner).await;
    assert_eq!(
        source.status(),
        401,
        "jars must not trust a caller it cannot authenticate"
    );
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn metadata_updates_without_credentials_are_denied() {
    let rig = rig("").await;
    let event = rig.jars.create_event(&rig.owner, "Meta", false).await;
    let mount = format!("/{event}.mp3");
    let source = rig.source(&mount, "source", &rig.owner).await;
    assert_eq!(source.status(), 200);
    rig.wait_event(&event, "live", |e| e["live"] == true).await;

    let update = format!("/admin/metadata?mount={mount}&mode=updinfo&song=Hello");
    let anonymous = icecast::listen(rig.icecast.port, &update, None, 0, WAIT).await;
    assert_ne!(anonymous.status, 200, "metadata update without credentials");
    let by_other = icecast::listen(
        rig.icecast.port,
        &update,
        Some(("source", rig.other.as_str())),
        0,
        WAIT,
    )
    .await;
    assert_ne!(by_other.status, 200, "metadata update by another user");
    let by_owner = icecast::listen(
        rig.icecast.port,
        &update,
        Some(("source", rig.owner.as_str())),
        0,
        WAIT,
    )
    .await;
    assert_eq!(by_owner.status, 200, "metadata update by the owner");
    source.stop().await;
}
