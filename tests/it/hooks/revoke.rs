//! Taking access back through a real jars server (issue 16): revoked tickets, refused at the
//! next callback and their live listeners dropped through a recording [`Kicker`] (the helpers
//! here serve bans.rs and ending.rs too); the API's answers and errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jars::domain::{DenyReason, Role, Session};
use jars::live::Kicker;
use serde_json::Value;

use super::*;

/// Records every kick: (listener client id or source mount, reason label).
#[derive(Default)]
pub(crate) struct Recorder {
    pub listeners: Mutex<Vec<(String, &'static str)>>,
    pub sources: Mutex<Vec<(String, &'static str)>>,
    /// Whose kick came when.
    pub roles: Mutex<Vec<Role>>,
}

impl Kicker for Recorder {
    fn kick(&self, s: &Session, reason: DenyReason) {
        let kicks = match s.role() {
            Role::Listener => &self.listeners,
            Role::Source => &self.sources,
        };
        self.roles.lock().unwrap().push(s.role());
        // A listener by its client id, a source by its mount.
        kicks
            .lock()
            .unwrap()
            .push((s.key.id.clone(), reason.label()));
    }
}

impl Recorder {
    pub fn on(server: &TestServer) -> Arc<Recorder> {
        let r = Arc::new(Recorder::default());
        server.state.sanctions.set_kicker(r.clone());
        r
    }
    pub fn listeners(&self) -> Vec<(String, &'static str)> {
        self.listeners.lock().unwrap().clone()
    }
    pub fn sources(&self) -> Vec<(String, &'static str)> {
        self.sources.lock().unwrap().clone()
    }
    pub fn roles(&self) -> Vec<Role> {
        self.roles.lock().unwrap().clone()
    }
}

/// Waits until `done` holds, at most `limit` (the background sweep runs on real time).
pub(crate) async fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    done()
}

/// Whether a `listener_add` of `client` for `uri` from `ip` (no password, no referer) is
/// allowed.
pub(crate) async fn admitted(server: &TestServer, client: &str, uri: &str, ip: &str) -> bool {
    listener_add(server, client, uri, "", ip, None)
        .await
        .allowed
}

pub(crate) fn denied(server: &TestServer, action: &str, reason: &str) -> u64 {
    server
        .state
        .metrics
        .auth_decisions
        .with_label_values(&[action, "deny", reason])
        .get()
}

pub(crate) async fn post(server: &TestServer, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let (status, body) = post_form(&server.url(path), form).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub(crate) async fn revoke(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    post(server, "/jars/tickets/revoke", form).await
}

#[tokio::test]
async fn a_revoked_ticket_is_refused_and_its_listeners_dropped() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "private", true).await;
    let mount = format!("/{event}.mp3");
    let t1 = ticket(s, &st.owner, &event, &[]).await;
    let t2 = ticket(s, &st.owner, &event, &[]).await;
    assert!(admitted(s, "1", &format!("{mount}?token={t1}"), "192.0.2.1").await);
    assert!(admitted(s, "2", &format!("{mount}?token={t2}"), "192.0.2.2").await);
    // Nobody else may revoke the owner's ticket.
    let (status, body) = revoke(s, &[("auth", &st.other), ("ticket", &t1)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("UnauthorizedConnectionException"))
    );
    let (status, body) = revoke(s, &[("auth", &st.owner), ("ticket", &t1)]).await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)));
    assert!(
        within(Duration::from_secs(2), || kicks.listeners()
            == [("1".to_string(), "revoked")])
        .await,
        "{:?}",
        kicks.listeners()
    );
    let (_, body) = revoke(s, &[("auth", &st.admin), ("ticket", &t1)]).await;
    assert_eq!(body["revoked"].as_u64(), Some(0), "revoked already");
    let again = listener_add(
        s,
        "3",
        &format!("{mount}?token={t1}"),
        "",
        "192.0.2.1",
        None,
    )
    .await;
    assert!(!again.allowed);
    assert_eq!(again.message.as_deref(), Some("ticket revoked"));
    assert_eq!(denied(s, "listener_add", "revoked"), 1);
    assert!(admitted(s, "4", &format!("{mount}?token={t2}"), "192.0.2.2").await);
    // A user token is no ticket to revoke; nothing named is a missing argument.
    let (status, body) = revoke(s, &[("auth", &st.owner), ("ticket", &st.owner)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidArgumentError"))
    );
    let (status, body) = revoke(s, &[("auth", &st.owner)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("MissingArgumentError"))
    );
    let (status, _) = revoke(s, &[("ticket", &t2)]).await;
    assert_eq!(status, 400, "no auth");
}

#[tokio::test]
async fn revoking_every_ticket_of_an_event_and_by_id() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "private", true).await;
    let mount = format!("/{event}");
    let t1 = ticket(s, &st.owner, &event, &[]).await;
    let t2 = ticket(s, &st.owner, &event, &[]).await;
    assert!(admitted(s, "1", &format!("{mount}?token={t1}"), "192.0.2.1").await);
    assert!(admitted(s, "2", &format!("{mount}?token={t1}"), "192.0.2.3").await);
    assert!(admitted(s, "3", &format!("{mount}?token={t2}"), "192.0.2.2").await);
    // The owner's own token admits them without a ticket: not revoked.
    assert!(admitted(s, "4", &format!("{mount}?token={}", st.owner), "192.0.2.4").await);
    let (status, body) = revoke(s, &[("auth", &st.owner), ("mount", &event)]).await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(2)), "{body}");
    assert!(within(Duration::from_secs(2), || kicks.listeners().len() == 3).await);
    let mut kicked = kicks.listeners();
    kicked.sort();
    assert_eq!(
        kicked,
        [
            ("1".into(), "revoked"),
            ("2".into(), "revoked"),
            ("3".into(), "revoked")
        ]
    );
    assert!(!admitted(s, "5", &format!("{mount}?token={t2}"), "192.0.2.2").await);
    // A ticket minted after the cut-off (the next second) is good.
    s.clock.advance(Duration::from_secs(1));
    let t3 = ticket(s, &st.owner, &event, &[]).await;
    assert!(admitted(s, "6", &format!("{mount}?token={t3}"), "192.0.2.2").await);
    // By id: the owner names the event, or the node sees the ticket in use.
    let jti = |t: &str| -> String {
        use base64::Engine;
        let payload = t.split('.').nth(1).unwrap();
        let v: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        v["jti"].as_str().unwrap().to_string()
    };
    let (status, body) = revoke(s, &[("auth", &st.owner), ("jti", &jti(&t3))]).await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)), "{body}");
    assert!(
        within(Duration::from_secs(2), || kicks
            .listeners()
            .contains(&("6".into(), "revoked")))
        .await
    );
    // A jti this node does not see in use: the owner must name the event, an admin need not.
    let (status, body) = revoke(s, &[("auth", &st.owner), ("jti", "unknown-jti")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("MissingArgumentError"))
    );
    let (status, _) = revoke(
        s,
        &[
            ("auth", &st.owner),
            ("jti", "unknown-jti"),
            ("mount", &event),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = revoke(s, &[("auth", &st.admin), ("jti", "another-jti")]).await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)));
    let (status, body) = revoke(s, &[("auth", &st.other), ("mount", &event)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("UnauthorizedConnectionException"))
    );
    let (status, body) = revoke(s, &[("auth", &st.owner), ("mount", "not-an-id")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidIdentifierException"))
    );
    let missing = uuid::Uuid::new_v4().to_string();
    let (status, body) = revoke(s, &[("auth", &st.admin), ("mount", &missing)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("NonExistentOrExpiredEventException"))
    );
}
