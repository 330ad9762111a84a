//! One test suite for every [`EventStore`]: written once as [`suite`], run on SQLite always, on
//! SQLite behind the cache, and on the real PostgreSQL server when `DATABASE_URL` is set (in a
//! database of its own, dropped afterwards). In CI (`CI` set) the PostgreSQL run is mandatory.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jars::config::{PostgresSettings, StoreSettings};
use jars::rules::ConnectTerms;
use jars::store::cache::CachedStore;
use jars::store::{Connect, ConnectRequest, Event, EventCursor, EventStore, ListFilter, NewEvent};
use support::pg::{admin_url, TempDb};
use uuid::Uuid;

fn new_event(by: i64, title: &str, private: bool, lifetime: Duration) -> NewEvent {
    NewEvent {
        created_by: by,
        title: title.into(),
        // As long as the title, so a 255-character title tests both columns' limit.
        description: title.chars().rev().collect(),
        private,
        lifetime,
        now: Utc::now(),
        max_listeners: None,
    }
}

/// Equal to the microsecond (PostgreSQL's and the SQLite store's precision).
fn same_time(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_microseconds().unwrap().abs() <= 1
}

fn ids(events: &[Event]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

/// What anybody sees, now.
fn anon() -> ListFilter {
    ListFilter {
        private_of: None,
        all_private: false,
        include_expired: false,
        now: Utc::now(),
        limit: None,
        after: None,
    }
}

/// Every event `filter` lists, read `size` at a time, each page after the last one's cursor.
async fn paged(store: &dyn EventStore, filter: ListFilter, size: u32) -> Vec<Uuid> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(ListFilter {
                limit: Some(size),
                after,
                ..filter
            })
            .await
            .unwrap();
        assert!(
            page.len() <= size as usize,
            "a page holds at most its limit"
        );
        all.extend(ids(&page));
        match page.last() {
            Some(last) if page.len() == size as usize => after = Some(EventCursor::after(last)),
            _ => return all,
        }
    }
}

/// What every store must do. `store` is empty.
async fn suite(store: Arc<dyn EventStore>) {
    store.ping().await.expect("ping");

    // Create, and read back exactly what was created.
    let before = Utc::now();
    let long_title: String = "é".repeat(255);
    let public = store
        .create(new_event(1, &long_title, false, Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(public.id.get_version_num(), 4);
    assert_eq!(public.title.as_deref(), Some(long_title.as_str()));
    assert_eq!(public.description.as_deref(), Some(long_title.as_str()));
    assert_eq!(public.created_by, 1);
    assert!(!public.private && !public.connected);
    assert_eq!(public.connected_by, None);
    assert_eq!(public.last_connected_at, None);
    assert_eq!(public.last_disconnected_at, None);
    assert_eq!(public.relation_id, None);
    assert!(public.created_time >= before - chrono::Duration::milliseconds(1));
    assert!(same_time(
        public.expires_time,
        public.created_time + chrono::Duration::seconds(3600)
    ));
    let got = store.get(public.id).await.unwrap().expect("created event");
    assert_eq!(got.id, public.id);
    assert_eq!(got.title, public.title);
    assert_eq!(got.description, public.description);
    assert_eq!(got.created_by, 1);
    assert!(same_time(got.created_time, public.created_time));
    assert!(same_time(got.expires_time, public.expires_time));
    assert!(!got.connected && !got.private);

    // Unknown ids.
    let unknown = Uuid::new_v4();
    assert!(store.get(unknown).await.unwrap().is_none());
    assert!(store.get_fresh(unknown).await.unwrap().is_none());
    assert!(!store
        .mark_connected(unknown, Some(1), Utc::now())
        .await
        .unwrap());
    assert!(!store
        .mark_connected(unknown, None, Utc::now())
        .await
        .unwrap());
    assert!(!store.mark_disconnected(unknown, Utc::now()).await.unwrap());

    // Connected by 9, then again by nobody in particular (a relay): connected_by is kept.
    let at = Utc::now();
    assert!(store.mark_connected(public.id, Some(9), at).await.unwrap());
    let got = store.get(public.id).await.unwrap().unwrap();
    assert!(got.connected);
    assert_eq!(got.connected_by, Some(9));
    assert!(same_time(got.last_connected_at.unwrap(), at));
    let later = at + chrono::Duration::seconds(5);
    assert!(store.mark_connected(public.id, None, later).await.unwrap());
    let got = store.get_fresh(public.id).await.unwrap().unwrap();
    assert!(got.connected);
    assert_eq!(got.connected_by, Some(9), "None keeps connected_by");
    assert!(same_time(got.last_connected_at.unwrap(), later));

    // Disconnected: connected_by stays as the last one who connected.
    let gone = later + chrono::Duration::seconds(5);
    assert!(store.mark_disconnected(public.id, gone).await.unwrap());
    let got = store.get(public.id).await.unwrap().unwrap();
    assert!(!got.connected);
    assert_eq!(got.connected_by, Some(9));
    assert!(same_time(got.last_disconnected_at.unwrap(), gone));
    assert!(same_time(got.last_connected_at.unwrap(), later));

    // Listing: newest first; private events for their owner or with all_private; expired ones
    // only with include_expired.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let private = store
        .create(new_event(
            2,
            "private of 2",
            true,
            Duration::from_secs(3600),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let expired = store
        .create(new_event(1, "short", false, Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let newest = store
        .create(new_event(3, "newest", false, Duration::from_secs(60)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store
        .get(expired.id)
        .await
        .unwrap()
        .unwrap()
        .is_expired(Utc::now()));

    assert_eq!(
        ids(&store.list(anon()).await.unwrap()),
        vec![newest.id, public.id]
    );
    let owner = ListFilter {
        private_of: Some(2),
        ..anon()
    };
    assert_eq!(
        ids(&store.list(owner).await.unwrap()),
        vec![newest.id, private.id, public.id]
    );
    let stranger = ListFilter {
        private_of: Some(3),
        ..anon()
    };
    assert_eq!(
        ids(&store.list(stranger).await.unwrap()),
        vec![newest.id, public.id]
    );
    let admin = ListFilter {
        all_private: true,
        ..anon()
    };
    assert_eq!(
        ids(&store.list(admin).await.unwrap()),
        vec![newest.id, private.id, public.id]
    );
    let everything = ListFilter {
        all_private: true,
        include_expired: true,
        ..anon()
    };
    assert_eq!(
        ids(&store.list(everything).await.unwrap()),
        vec![newest.id, expired.id, private.id, public.id]
    );
    let expired_public = ListFilter {
        include_expired: true,
        ..anon()
    };
    assert_eq!(
        ids(&store.list(expired_public).await.unwrap()),
        vec![newest.id, expired.id, public.id]
    );
    // A listed row is the stored row.
    let listed = store.list(anon()).await.unwrap();
    let row = listed.iter().find(|e| e.id == public.id).unwrap();
    assert_eq!(row.connected_by, Some(9));
    assert!(row.last_disconnected_at.is_some());

    // Empty strings are kept as such (the original stored what it was given).
    let blank = store
        .create(NewEvent {
            created_by: 4,
            title: "t".into(),
            description: String::new(),
            private: false,
            lifetime: Duration::from_secs(60),
            now: Utc::now(),
            max_listeners: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.get(blank.id).await.unwrap().unwrap().description,
        Some(String::new())
    );

    // Pages: five events created in the same microsecond are ordered by id, so a page
    // boundary among them neither skips nor repeats one.
    let same_time = Utc::now() + chrono::Duration::seconds(10);
    let mut twins = Vec::new();
    for i in 0..5 {
        let mut new = new_event(6, &format!("twin {i}"), false, Duration::from_secs(3600));
        new.now = same_time;
        twins.push(store.create(new).await.unwrap().id);
    }
    twins.sort_unstable_by(|a, b| b.cmp(a));
    let whole = ids(&store.list(anon()).await.unwrap());
    assert_eq!(whole[..5], twins[..], "newest first, then by id descending");
    assert_eq!(whole.len(), 8);
    for size in [1, 2, 3, 7, 8, 100] {
        assert_eq!(paged(&*store, anon(), size).await, whole, "pages of {size}");
    }
    let everything = ListFilter {
        all_private: true,
        include_expired: true,
        ..anon()
    };
    let listed = store.list(everything).await.unwrap();
    assert_eq!(paged(&*store, everything, 3).await, ids(&listed));
    // A cursor survives its text form, and a page after the last event is empty.
    let last = listed.last().unwrap();
    let cursor = EventCursor::decode(&EventCursor::after(last).encode()).unwrap();
    assert_eq!(cursor, EventCursor::after(last));
    let beyond = ListFilter {
        after: Some(cursor),
        ..everything
    };
    assert!(store.list(beyond).await.unwrap().is_empty());
}

/// One connect through [`EventStore::connect`].
async fn connect(
    store: &dyn EventStore,
    id: Uuid,
    by: i64,
    terms: ConnectTerms,
    at: DateTime<Utc>,
) -> Connect {
    let request = ConnectRequest { id, by, terms, at };
    store.connect(request).await.unwrap()
}

/// `/jars/connect`'s checked write ([`EventStore::connect`]): the terms decide, a refusal
/// writes nothing and hands back the row, and concurrent connects (committed together by the
/// backends) each get their own answer.
async fn connects(store: Arc<dyn EventStore>) {
    let event = store
        .create(new_event(21, "connects", true, Duration::from_secs(3600)))
        .await
        .unwrap();
    let now = Utc::now();
    let owner = ConnectTerms {
        unexpired_at: now,
        owner: Some(21),
    };
    let stranger = ConnectTerms {
        owner: Some(22),
        ..owner
    };
    let admin = ConnectTerms {
        owner: None,
        ..owner
    };
    let after_the_end = ConnectTerms {
        unexpired_at: event.expires_time,
        ..owner
    };

    let refused = connect(&*store, event.id, 22, stranger, now).await;
    let Connect::Refused(Some(row)) = refused else {
        panic!("a stranger's connect: {refused:?}");
    };
    assert_eq!(row.id, event.id);
    assert!(
        !row.connected && row.connected_by.is_none(),
        "nothing written"
    );
    let refused = connect(&*store, event.id, 21, after_the_end, now).await;
    assert!(
        matches!(refused, Connect::Refused(Some(_))),
        "expired: {refused:?}"
    );
    let unknown = connect(&*store, Uuid::new_v4(), 21, owner, now).await;
    assert_eq!(unknown, Connect::Refused(None));
    assert!(!store.get(event.id).await.unwrap().unwrap().connected);

    assert_eq!(
        connect(&*store, event.id, 21, owner, now).await,
        Connect::Done
    );
    let got = store.get(event.id).await.unwrap().unwrap();
    assert!(got.connected);
    assert_eq!(got.connected_by, Some(21));
    assert!(same_time(got.last_connected_at.unwrap(), now));
    let later = now + chrono::Duration::seconds(1);
    assert_eq!(
        connect(&*store, event.id, 99, admin, later).await,
        Connect::Done
    );
    let got = store.get(event.id).await.unwrap().unwrap();
    assert_eq!(got.connected_by, Some(99), "an admin's connect");
    assert!(same_time(got.last_connected_at.unwrap(), later));

    // Many at once, allowed and refused mixed: each answered by its own terms.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60i64 {
        let store = store.clone();
        let (by, terms) = if i % 3 == 0 {
            (22, stranger)
        } else {
            (21, owner)
        };
        let at = later + chrono::Duration::milliseconds(i);
        tasks.spawn(async move { (i, connect(&*store, event.id, by, terms, at).await) });
    }
    let mut done = 0;
    while let Some(answer) = tasks.join_next().await {
        let (i, answer) = answer.unwrap();
        if i % 3 == 0 {
            assert!(
                matches!(answer, Connect::Refused(Some(_))),
                "{i}: {answer:?}"
            );
        } else {
            assert_eq!(answer, Connect::Done, "{i}");
            done += 1;
        }
    }
    assert_eq!(done, 40);
    let got = store.get(event.id).await.unwrap().unwrap();
    assert_eq!(
        got.connected_by,
        Some(21),
        "only the owner's connects wrote"
    );
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::Sqlite {
        path: dir.path().join("events.sqlite3"),
    };
    let store = jars::store::open(&settings).await.unwrap();
    suite(store.clone()).await;
    connects(store).await;
}

#[tokio::test]
async fn sqlite_store_behind_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::Sqlite {
        path: dir.path().join("events.sqlite3"),
    };
    let inner = jars::store::open(&settings).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(CachedStore::new(
        inner,
        Duration::from_secs(2),
        Duration::from_secs(1),
    ));
    suite(store.clone()).await;
    connects(store).await;
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn postgres_store() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let settings = StoreSettings::Postgres(PostgresSettings::new(&db.url));
    let store = jars::store::open(&settings).await.unwrap();
    suite(store.clone()).await;
    connects(store).await;
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn postgres_store_behind_the_cache() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let settings = StoreSettings::Postgres(PostgresSettings::new(&db.url));
    let inner = jars::store::open_for_serve(&settings).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(CachedStore::new(
        inner,
        Duration::from_secs(2),
        Duration::from_secs(1),
    ));
    suite(store.clone()).await;
    connects(store).await;
}
