//! Issue 28, items 1 and 3: revocations.
//!
//! Squatting: revoked tickets were keyed by `jti` alone and inserted `ON CONFLICT DO NOTHING`,
//! so carol, holding bob's listener link, revoked its `jti` on her own event: bob's ticket kept
//! admitting (on every node, after a restart) and his own revocation answered `{"revoked":0}`.
//! Now a revocation is keyed by (`jti`, event) and recorded only against an event its caller
//! manages: carol's reaches nothing of bob's and blocks nothing.
//!
//! Floods: `/jars/tickets/revoke` had no rate limit, stored any `jti` up to 128 bytes, reloaded
//! the whole sanction set on every write and never purged. Now it is limited per member
//! (`revoke_per_minute`), takes a `jti` only of a ticket id's shape, bounds what one member
//! holds revoked, and each node loads only the rows written since the version it has, while
//! expired rows are purged. [`the_loader_reads_only_changes_and_purges`] runs on SQLite here
//! and on PostgreSQL in `tests/it/sanctions_pg.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jars::rules::sanctions::SanctionSet;
use jars::sanctions::refresh::Loader;
use jars::store::sanctions::{
    Ban, EventEnd, NewBan, Purged, RevokedTicket, SanctionRows, SanctionStore, TicketCutoff,
};
use jars::store::{NewEvent, StoreError};
use uuid::Uuid;

use super::*;

/// The `jti` claim of a token.
pub(crate) fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

async fn mint(server: &TestServer, auth: &str, event: &str) -> String {
    let (status, body) = post_form(
        &server.url("/jars/ticket"),
        &[("auth", auth), ("mount", event)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string()
}

/// How many tickets a revocation newly revoked, or its error status and name.
pub(crate) async fn revoke(
    server: &TestServer,
    form: &[(&str, &str)],
) -> Result<u64, (u16, String)> {
    let (status, body) = post_form(&server.url("/jars/tickets/revoke"), form).await;
    if status == 200 {
        Ok(serde_json::from_str::<Value>(&body).unwrap()["revoked"]
            .as_u64()
            .unwrap())
    } else {
        Err((status, error_name(&body)))
    }
}

/// Whether a listener holding `ticket` is let onto `event`.
pub(crate) async fn admitted(
    server: &TestServer,
    event: &str,
    ticket: &str,
    client_id: &str,
) -> bool {
    let body = crate::support::callback_body(&[
        ("action", "listener_add"),
        ("server", "x"),
        ("port", "1"),
        ("client", client_id),
        ("mount", &format!("/{event}?token={ticket}")),
        ("user", ""),
        ("pass", ""),
        ("ip", "192.0.2.1"),
    ]);
    callback_allows(server, body).await
}

#[tokio::test]
async fn carol_can_neither_revoke_bobs_ticket_nor_block_his_revocation() {
    let server = TestServer::start("").await;
    server.add_user("admin", "admin-password", true);
    server.add_user("bob", "bob-password", false);
    server.add_user("carol", "carol-password", false);
    let admin = server.login("admin", "admin-password").await;
    let bob = server.login("bob", "bob-password").await;
    let carol = server.login("carol", "carol-password").await;
    let bobs = server.create_event(&bob, "Bob's", true).await;
    let carols = server.create_event(&carol, "Carol's", true).await;
    let ticket = mint(&server, &bob, &bobs).await;
    let jti = jti_of(&ticket);
    assert!(admitted(&server, &bobs, &ticket, "1").await);

    // Carol names her own event: recorded against it, where no ticket has that id.
    let carols_try = revoke(
        &server,
        &[("auth", &carol), ("jti", &jti), ("mount", &carols)],
    )
    .await;
    assert_eq!(carols_try, Ok(1));
    // Bob's event, or no event while this node sees the ticket in use on bob's: refused.
    let refused = Err((403, "UnauthorizedConnectionException".to_string()));
    assert_eq!(
        revoke(
            &server,
            &[("auth", &carol), ("jti", &jti), ("mount", &bobs)]
        )
        .await,
        refused
    );
    assert_eq!(
        revoke(&server, &[("auth", &carol), ("jti", &jti)]).await,
        refused
    );
    assert_eq!(
        revoke(&server, &[("auth", &carol), ("ticket", &ticket)]).await,
        refused
    );
    assert!(
        admitted(&server, &bobs, &ticket, "2").await,
        "carol's revocation reached bob's ticket"
    );

    // Bob's own revocation is not blocked, and takes effect.
    assert_eq!(
        revoke(&server, &[("auth", &bob), ("ticket", &ticket)]).await,
        Ok(1)
    );
    assert_eq!(
        revoke(&server, &[("auth", &bob), ("jti", &jti), ("mount", &bobs)]).await,
        Ok(0),
        "already revoked on bob's event"
    );
    assert!(!admitted(&server, &bobs, &ticket, "3").await);
    // An admin's revocation by id alone is recorded too (for whichever event).
    let other = mint(&server, &bob, &bobs).await;
    let other_jti = jti_of(&other);
    assert_eq!(
        revoke(
            &server,
            &[("auth", &carol), ("jti", &other_jti), ("mount", &carols)]
        )
        .await,
        Ok(1)
    );
    assert_eq!(
        revoke(&server, &[("auth", &admin), ("jti", &other_jti)]).await,
        Ok(1)
    );
    assert!(!admitted(&server, &bobs, &other, "4").await);

    // After a restart, the same.
    let server = server.restart("").await;
    assert!(!admitted(&server, &bobs, &ticket, "5").await);
    assert!(!admitted(&server, &bobs, &other, "6").await);
    let third = mint(&server, &bob, &bobs).await;
    let third_jti = jti_of(&third);
    assert_eq!(
        revoke(
            &server,
            &[("auth", &carol), ("jti", &third_jti), ("mount", &carols)]
        )
        .await,
        Ok(1)
    );
    assert!(admitted(&server, &bobs, &third, "7").await);
}

#[tokio::test]
async fn revocations_are_limited_per_member_and_bounded() {
    let server = TestServer::start("[limits]\nrevoke_per_minute = 5\n").await;
    server.add_user("carol", "carol-password", false);
    server.add_user("dave", "dave-password", false);
    let carol = server.login("carol", "carol-password").await;
    let dave = server.login("dave", "dave-password").await;
    let carols = server.create_event(&carol, "Carol's", true).await;
    let daves = server.create_event(&dave, "Dave's", true).await;

    // Only a ticket id's shape is stored: short, plain.
    let invalid = Err((400, "InvalidArgumentError".to_string()));
    for jti in ["x".repeat(65), "a b".into(), "x\n2026 INFO forged".into()] {
        assert_eq!(
            revoke(
                &server,
                &[("auth", &carol), ("jti", &jti), ("mount", &carols)]
            )
            .await,
            invalid,
            "{jti:?}"
        );
    }
    // Five a minute each, counted per member: the limit holds, the others are not touched.
    for i in 0..2 {
        let jti = format!("t{i}");
        assert_eq!(
            revoke(
                &server,
                &[("auth", &carol), ("jti", &jti), ("mount", &carols)]
            )
            .await,
            Ok(1)
        );
    }
    let retry = refused_as_too_many(
        &server.url("/jars/tickets/revoke"),
        &[("auth", &carol), ("mount", &carols)],
    )
    .await;
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        revoke(
            &server,
            &[("auth", &dave), ("jti", "d0"), ("mount", &daves)]
        )
        .await,
        Ok(1)
    );

    // What one member holds revoked one by one is bounded (1,000), whatever the rate.
    let dave_id = server
        .users()
        .users()
        .unwrap()
        .iter()
        .find(|u| u.name == "dave")
        .unwrap()
        .id;
    let event: Uuid = daves.parse().unwrap();
    let now = jars::clock::Clock::now(&*server.clock);
    for i in 1..jars::rules::sanctions::MAX_REVOKED_PER_MEMBER {
        let new = server
            .state
            .sanctions
            .store
            .revoke_ticket(RevokedTicket {
                jti: format!("d{i}"),
                event,
                expires: now + chrono::Duration::hours(1),
                created_by: dave_id,
                created: now,
            })
            .await
            .unwrap();
        assert!(new);
    }
    server.state.sanctions.changed().await;
    let (status, body) = post_form(
        &server.url("/jars/tickets/revoke"),
        &[("auth", &dave), ("jti", "one-more"), ("mount", &daves)],
    )
    .await;
    assert_eq!((status, error_name(&body)), (429, "TooManyRequests".into()));
    // Revoking every ticket of the event still works.
    assert!(revoke(&server, &[("auth", &dave), ("mount", &daves)])
        .await
        .is_ok());
}

/// A [`SanctionStore`] that counts whole loads and loads of changes.
pub(crate) struct Counting {
    pub inner: Arc<dyn SanctionStore>,
    pub whole: AtomicUsize,
    pub changes: AtomicUsize,
}

#[async_trait::async_trait]
impl SanctionStore for Counting {
    async fn version(&self) -> Result<i64, StoreError> {
        self.inner.version().await
    }
    async fn load(
        &self,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<SanctionRows, StoreError> {
        let rows = self.inner.load(since, now).await?;
        let count = if rows.complete {
            &self.whole
        } else {
            &self.changes
        };
        count.fetch_add(1, Ordering::Relaxed);
        Ok(rows)
    }
    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError> {
        self.inner.add_ban(ban).await
    }
    async fn bans(&self, now: DateTime<Utc>) -> Result<Vec<Ban>, StoreError> {
        self.inner.bans(now).await
    }
    async fn remove_ban(&self, id: i64) -> Result<bool, StoreError> {
        self.inner.remove_ban(id).await
    }
    async fn revoke_ticket(&self, t: RevokedTicket) -> Result<bool, StoreError> {
        self.inner.revoke_ticket(t).await
    }
    async fn revoke_event_tickets(&self, c: TicketCutoff, by: i64) -> Result<(), StoreError> {
        self.inner.revoke_event_tickets(c, by).await
    }
    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError> {
        self.inner.end_event(end).await
    }
    async fn purge(&self, now: DateTime<Utc>) -> Result<Purged, StoreError> {
        self.inner.purge(now).await
    }
}

/// Writes a revoked ticket as a jars older than issue 28 did: no version on the row, then the
/// version moved.
pub(crate) type OldWriter = Box<dyn Fn(String, Uuid) -> futures_like::BoxFuture>;

/// Boxed futures without the `futures` crate.
pub(crate) mod futures_like {
    pub type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
}

/// The loader on one backend: one whole load at start, then only changes, whatever they are
/// (revocations, bans added and lifted, cut-offs, ends), each time matching what a whole load
/// builds; a purge deletes what expired, after which every node loads whole once; and rows
/// written without a version (an older jars) are noticed and loaded whole.
pub(crate) async fn loader_suite(settings: &jars::config::StoreSettings, old_writer: OldWriter) {
    let opened = jars::store::open_with_sanctions(settings).await.unwrap();
    let store = Counting {
        inner: opened.sanctions.clone(),
        whole: AtomicUsize::new(0),
        changes: AtomicUsize::new(0),
    };
    let now = Utc::now();
    let event = opened
        .events
        .create(NewEvent {
            created_by: 1,
            title: "t".into(),
            description: "d".into(),
            private: true,
            lifetime: std::time::Duration::from_secs(3600),
            now,
            max_listeners: None,
        })
        .await
        .unwrap()
        .id;
    let set = ArcSwap::from_pointee(SanctionSet::unloaded());
    let loader = Loader::default();
    let refresh = async |at: DateTime<Utc>| loader.refresh(&store, &set, at).await.unwrap();
    let whole_set = async |at: DateTime<Utc>| {
        SanctionSet::from_rows(&opened.sanctions.load(None, at).await.unwrap())
    };
    assert!(refresh(now).await);
    assert_eq!(store.whole.load(Ordering::Relaxed), 1);

    let revoked = |jti: String, on: Uuid| RevokedTicket {
        jti,
        event: on,
        expires: now + chrono::Duration::hours(1),
        created_by: 2,
        created: now,
    };
    for i in 0..50 {
        assert!(opened
            .sanctions
            .revoke_ticket(revoked(format!("t{i}"), event))
            .await
            .unwrap());
        assert!(refresh(now).await);
    }
    // The same ticket id on the same event: nothing new, the version does not move.
    let version = opened.sanctions.version().await.unwrap();
    assert!(!opened
        .sanctions
        .revoke_ticket(revoked("t0".into(), event))
        .await
        .unwrap());
    assert_eq!(opened.sanctions.version().await.unwrap(), version);
    assert!(!refresh(now).await);
    // On another event: a revocation of its own.
    assert!(opened
        .sanctions
        .revoke_ticket(revoked("t0".into(), Uuid::nil()))
        .await
        .unwrap());
    let ban = opened
        .sanctions
        .add_ban(NewBan {
            ip: Some("192.0.2.7".into()),
            member: None,
            member_name: None,
            event: None,
            reason: None,
            created_by: 1,
            created: now,
            expires: None,
        })
        .await
        .unwrap();
    opened
        .sanctions
        .revoke_event_tickets(TicketCutoff { event, before: now }, 1)
        .await
        .unwrap();
    assert!(refresh(now).await);
    assert!(set
        .load()
        .ip_banned("192.0.2.7".parse().unwrap(), None, now));
    assert!(opened.sanctions.remove_ban(ban.id).await.unwrap());
    assert!(
        !opened.sanctions.remove_ban(ban.id).await.unwrap(),
        "lifted once"
    );
    assert!(opened
        .sanctions
        .end_event(EventEnd {
            event,
            at: now + chrono::Duration::minutes(30)
        })
        .await
        .unwrap());
    assert!(refresh(now).await);
    assert!(
        !set.load()
            .ip_banned("192.0.2.7".parse().unwrap(), None, now),
        "lifted"
    );
    assert!(set.load().same_as(&whole_set(now).await));
    assert_eq!(
        store.whole.load(Ordering::Relaxed),
        1,
        "changes only after the first"
    );
    assert_eq!(store.changes.load(Ordering::Relaxed), 52);
    assert!(opened.sanctions.bans(now).await.unwrap().is_empty());

    // An older writer: its row carries no version; noticed, and loaded whole.
    old_writer("old".into(), event).await;
    assert!(refresh(now).await);
    assert_eq!(store.whole.load(Ordering::Relaxed), 2);
    assert!(set.load().ticket_revoked("old", event, 0));

    // An hour on: the purge is due. The ended event's cut-off, every revoked ticket, the
    // lifted ban go; every node loads whole once, then changes again.
    let later = now + chrono::Duration::hours(2);
    assert!(!refresh(later).await, "nothing changed before the purge");
    let purged = opened.sanctions.purge(later).await.unwrap();
    assert_eq!(purged.total(), 0, "the loader purged already");
    assert!(refresh(later).await, "the purge moved the version");
    assert_eq!(store.whole.load(Ordering::Relaxed), 3);
    let after = set.load();
    assert_eq!(
        after.revoked_tickets(),
        1,
        "only the old writer's, which expires in 2999"
    );
    assert!(after.same_as(&whole_set(later).await));
    assert!(!after.ticket_revoked("t1", event, 0));
    assert!(opened
        .sanctions
        .revoke_ticket(revoked("t1".into(), event))
        .await
        .unwrap());
    assert!(refresh(later).await);
    assert_eq!(store.whole.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn the_loader_reads_only_changes_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.sqlite3");
    let settings = jars::config::StoreSettings::Sqlite { path: path.clone() };
    let url = format!("sqlite:{}", path.display());
    let old_writer: OldWriter = Box::new(move |jti, event| {
        let url = url.clone();
        Box::pin(async move {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(
                "INSERT INTO revoked_tickets (jti, event_uuid, expires, created_by, created) \
                 VALUES (?, ?, '2999-01-01 00:00:00', 1, '2026-01-01 00:00:00')",
            )
            .bind(jti)
            .bind(event.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query("UPDATE sanctions_version SET version = version + 1")
                .execute(&mut conn)
                .await
                .unwrap();
        })
    });
    loader_suite(&settings, old_writer).await;
}
