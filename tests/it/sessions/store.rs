//! The session table on both backends, through [`SessionStore`]: SQLite in a temp dir always,
//! the real PostgreSQL (ignored, with the reason, where none answers), each test in a store of
//! its own. Rows opened, closed, kicked, lost and reused; the sessions a restart joins; the
//! figures and series against hand-computed ones; reports by event and by day; the purge and
//! the lost-row sweep's reads and writes; conversion of the earlier SQLite layouts
//! ([`convert`]) and migration of the earlier PostgreSQL table ([`upgrade`]); a dropped call
//! stopping its query ([`cancel`]).

mod cancel;
mod convert;
mod upgrade;

use crate::support;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use jars::config::{PostgresSettings, StoreSettings};
use jars::domain::{
    DenyReason, EndReason, Ending, ServerId, Session, SessionEnd, SessionKey, SessionOp, Target,
};
use jars::store::sessions::{
    EventFigures, Figures, GroupBy, ServerFigures, SessionFilter, SessionRecord, SessionStore,
};
use support::pg::{admin_url, TempDb};
use uuid::Uuid;

/// A store of one test, and what keeps it (a temp dir, a database).
pub struct Store {
    pub store: Arc<dyn SessionStore>,
    pub settings: StoreSettings,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TempDb>,
}

pub async fn sqlite() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::Sqlite {
        path: dir.path().join("jars.sqlite3"),
    };
    Store {
        store: jars::store::sessions::open(&settings).await.unwrap(),
        settings,
        _dir: Some(dir),
        _db: None,
    }
}

/// A store in a database of its own on the test PostgreSQL.
pub async fn postgres() -> Store {
    let db = TempDb::create(&admin_url()).await;
    let settings = StoreSettings::Postgres(PostgresSettings::new(db.url.clone()));
    Store {
        store: jars::store::sessions::open(&settings).await.unwrap(),
        settings,
        _dir: None,
        _db: Some(db),
    }
}

/// Runs the test `$name(Store)` on each backend.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::sessions::store::sqlite().await).await;
            }
            #[cfg_attr(
                not(jars_has = "postgres"),
                ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
            )]
            #[tokio::test]
            async fn postgres() {
                super::$name(crate::sessions::store::postgres().await).await;
            }
        }
    )*};
}
pub(crate) use on_both;

on_both!(
    rows_open_close_and_end_by_the_rule,
    a_restart_reads_the_open_sessions_of_its_server,
    figures_and_series_as_counted_by_hand,
    an_event_without_rows_has_no_figures,
    an_events_figures_share_it_out_by_server,
    reports_group_by_event_and_by_day,
    purge_and_the_lost_sweep,
);

/// 2026-03-01 12:00:00 UTC: a minute's start.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub fn at(seconds: f64) -> DateTime<Utc> {
    t0() + Duration::microseconds((seconds * 1e6) as i64)
}

pub fn ice() -> ServerId {
    ServerId::new("ice.example", "8000")
}

/// Listener `client` of `event` on `ice()`, started `at` seconds after [`t0`], let in by
/// nothing (the caller adds what did).
pub fn listener(client: &str, event: Uuid, started: f64) -> Session {
    Session {
        key: SessionKey::listener(ice(), client),
        mount: format!("/{event}.mp3"),
        target: Target::Event(event),
        ip: String::new(),
        agent: Some(format!("player {client}")),
        referer: Some("https://radio.example/".into()),
        ticket: None,
        member: None,
        relay: None,
        started: at(started),
        timelimit: None,
    }
}

pub fn open(s: Session) -> SessionOp {
    SessionOp::Open(Arc::new(s))
}

pub fn close(key: SessionKey, at_s: f64, duration: Option<u64>, ending: Ending) -> SessionOp {
    SessionOp::Close(SessionEnd {
        key,
        at: at(at_s),
        duration,
        ending,
    })
}

fn left(client: &str, at_s: f64, duration: Option<u64>) -> SessionOp {
    close(
        SessionKey::listener(ice(), client),
        at_s,
        duration,
        Ending::Reported,
    )
}

pub async fn rows(store: &dyn SessionStore) -> Vec<SessionRecord> {
    store
        .sessions(SessionFilter::default(), 1_000)
        .await
        .unwrap()
}

fn row<'a>(rows: &'a [SessionRecord], key: &SessionKey) -> Vec<&'a SessionRecord> {
    rows.iter().filter(|r| r.session.key == *key).collect()
}

async fn rows_open_close_and_end_by_the_rule(s: Store) {
    let store = &*s.store;
    let event = Uuid::new_v4();
    let key = |c: &str| SessionKey::listener(ice(), c);
    let with_ticket = Session {
        ticket: Some("jti-1".into()),
        ip: "192.0.2.1".into(),
        timelimit: Some(60),
        ..listener("1", event, 0.0)
    };
    let source = Session {
        key: SessionKey::source(ice(), format!("/{event}.mp3")),
        ip: "198.51.100.7".into(),
        member: Some(9),
        relay: Some("webcaster".into()),
        agent: None,
        referer: None,
        ..listener("-", event, 0.0)
    };
    let ops = vec![
        open(with_ticket.clone()),
        open(Session {
            member: Some(7),
            ..listener("2", event, 1.0)
        }),
        open(Session {
            timelimit: Some(600),
            ..listener("3", event, 2.0)
        }),
        open(source.clone()),
        open(listener("4", event, 10.0)),
        // Icecast's duration says it lasted its timelimit (within a second).
        left("1", 61.0, Some(59)),
        // No duration: the times say; no timelimit: left.
        left("2", 30.0, None),
        close(key("3"), 5.0, None, Ending::Kicked(DenyReason::Banned)),
        // Client id 4 again (Icecast restarted): the first row's end never came.
        open(listener("4", event, 20.0)),
        // Nothing open under this key: nothing happens.
        left("5", 40.0, Some(3)),
        close(source.key.clone(), 100.0, None, Ending::Reported),
    ];
    store.apply(&ops).await.unwrap();
    let rows = rows(store).await;
    assert_eq!(rows.len(), 6, "{rows:#?}");

    let one = row(&rows, &key("1"));
    assert_eq!(
        one[0].session, with_ticket,
        "the row holds the session as given"
    );
    assert_eq!(
        (one[0].ended, one[0].duration, one[0].end_reason),
        (Some(at(61.0)), Some(59), Some(EndReason::Timelimit))
    );
    let two = row(&rows, &key("2"));
    assert_eq!(two[0].session.member, Some(7));
    assert_eq!(two[0].session.ip, "", "no address kept: none stored");
    assert_eq!(
        (two[0].ended, two[0].duration, two[0].end_reason),
        (Some(at(30.0)), None, Some(EndReason::Left))
    );
    let three = row(&rows, &key("3"));
    assert_eq!(
        (three[0].end_reason, three[0].end_cause.as_deref()),
        (Some(EndReason::Kicked), Some("banned"))
    );
    let four = row(&rows, &key("4"));
    assert_eq!(four.len(), 2);
    assert_eq!(
        (four[0].session.started, four[0].ended, four[0].end_reason),
        (at(10.0), Some(at(20.0)), Some(EndReason::Lost)),
        "a reused key closes the open row as lost when the new one starts"
    );
    assert_eq!(
        (four[1].session.started, four[1].ended, four[1].end_reason),
        (at(20.0), None, None)
    );
    assert!(row(&rows, &key("5")).is_empty());
    let src = row(&rows, &source.key);
    assert_eq!(src[0].session, source, "sources are rows too");
    assert_eq!(src[0].end_reason, Some(EndReason::Left));

    // A batch is applied in order: a close after its open in the same batch closes it.
    store
        .apply(&[
            open(listener("6", event, 50.0)),
            close(key("6"), 51.0, Some(1), Ending::Vanished),
        ])
        .await
        .unwrap();
    let rows = self::rows(store).await;
    let six = row(&rows, &key("6"));
    assert_eq!(
        (six[0].ended, six[0].end_reason),
        (Some(at(51.0)), Some(EndReason::Lost))
    );
}

async fn a_restart_reads_the_open_sessions_of_its_server(s: Store) {
    let store = &*s.store;
    let event = Uuid::new_v4();
    let other = ServerId::new("ice2.example", "8000");
    let mine = Session {
        ticket: Some("jti-9".into()),
        member: Some(4),
        ip: "203.0.113.9".into(),
        timelimit: Some(3_600),
        ..listener("1", event, 0.0)
    };
    let studio = Session {
        key: SessionKey::listener(ice(), "2"),
        mount: "/studio".into(),
        target: Target::Static("/studio".into()),
        ..listener("2", event, 1.0)
    };
    let source = Session {
        key: SessionKey::source(ice(), format!("/{event}.mp3")),
        relay: Some("webcaster".into()),
        member: Some(4),
        ..listener("-", event, 0.0)
    };
    let elsewhere = Session {
        key: SessionKey::listener(other.clone(), "1"),
        ..listener("1", event, 0.0)
    };
    store
        .apply(&[
            open(mine.clone()),
            open(studio.clone()),
            open(source.clone()),
            open(elsewhere.clone()),
            open(listener("3", event, 2.0)),
            left("3", 10.0, Some(8)),
        ])
        .await
        .unwrap();
    let mut open_rows = store.open_sessions(&ice()).await.unwrap();
    open_rows.sort_by(|a, b| a.key.cmp(&b.key));
    let mut want = vec![mine, studio, source];
    want.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        open_rows, want,
        "what let each in, as stored; a static mount's target"
    );
    assert_eq!(store.open_sessions(&other).await.unwrap(), vec![elsewhere]);
    assert!(store
        .open_sessions(&ServerId::new("ice.example", "8001"))
        .await
        .unwrap()
        .is_empty());
}

/// Listeners of one event, with the figures and series worked out by hand (seconds after
/// [`t0`]; `now` is 600):
///
/// | who                   | start | end                  | counts    |
/// |-----------------------|-------|----------------------|-----------|
/// | a: member 1           | 0     | 120, duration 100    | [0, 100)  |
/// | b: member 1           | 30.5  | 90.2                 | [30, 89)  |
/// | c: ticket t           | 100   | 160                  | [100, 160)|
/// | d: address x          | 150   | open                 | [150, 600)|
/// | e: nobody known       | 200   | 230, kicked          | [200, 230)|
/// | f: address x          | 300   | 400, lost            | [300, 400)|
/// | g: member 2           | 500   | 500.4                | nothing   |
///
/// c starts in the second a ends: never two at once then. Seconds: 100 + 59 + 60 + 450 + 30 +
/// 100 + 0 = 799. Unique: members 1, 2; ticket t; address x; e = 5. Two at once at most; per
/// minute: 2 2 2 2 1 2 2 1 1 1, then 0 in minute 10 (d's counting ends as it starts).
async fn seven_listeners(store: &dyn SessionStore) -> Uuid {
    let event = Uuid::new_v4();
    let l = |c: &str, start: f64| listener(c, event, start);
    let key = |c: &str| SessionKey::listener(ice(), c);
    let x = "192.0.2.77".to_string();
    store
        .apply(&[
            open(Session {
                member: Some(1),
                ..l("a", 0.0)
            }),
            open(Session {
                member: Some(1),
                ..l("b", 30.5)
            }),
            open(Session {
                ticket: Some("t".into()),
                ..l("c", 100.0)
            }),
            open(Session {
                ip: x.clone(),
                ..l("d", 150.0)
            }),
            open(l("e", 200.0)),
            open(Session {
                ip: x,
                ..l("f", 300.0)
            }),
            open(Session {
                member: Some(2),
                ..l("g", 500.0)
            }),
            left("a", 120.0, Some(100)),
            left("b", 90.2, None),
            left("c", 160.0, None),
            close(key("e"), 230.0, None, Ending::Kicked(DenyReason::Revoked)),
            close(key("f"), 400.0, None, Ending::Vanished),
            left("g", 500.4, None),
            // Not the event's listeners: a source, another event's listener.
            open(Session {
                key: SessionKey::source(ice(), format!("/{event}.mp3")),
                ..l("-", 0.0)
            }),
            open(listener("z", Uuid::new_v4(), 10.0)),
        ])
        .await
        .unwrap();
    event
}

async fn figures_and_series_as_counted_by_hand(s: Store) {
    let store = &*s.store;
    let event = seven_listeners(store).await;
    let EventFigures {
        figures,
        series,
        servers,
    } = store.event_figures(event, at(600.0), 100).await.unwrap();
    assert_eq!(
        figures,
        Figures {
            sessions: 7,
            unique_listeners: 5,
            listening_seconds: 799,
            peak_listeners: 2,
            first_start: Some(at(0.0)),
            last_end: Some(at(600.0)),
            lost: 1,
            kicked: 1,
        }
    );
    let got: Vec<(DateTime<Utc>, u32)> = series.iter().map(|p| (p.t, p.listeners)).collect();
    let want: Vec<(DateTime<Utc>, u32)> = [2, 2, 2, 2, 1, 2, 2, 1, 1, 1, 0]
        .into_iter()
        .enumerate()
        .map(|(m, n)| (t0() + Duration::minutes(m as i64), n))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        servers,
        [ServerFigures {
            server: ice().to_string(),
            sessions: 7,
            listening_seconds: 799,
            peak_listeners: 2,
        }],
        "all on one server"
    );
    // At most three points; the peak still over all of them.
    let few = store.event_figures(event, at(600.0), 3).await.unwrap();
    assert_eq!((few.figures.peak_listeners, few.series.len()), (2, 3));
    // Earlier, the open row counts up to then.
    let earlier = store
        .event_figures(event, at(500.0), 100)
        .await
        .unwrap()
        .figures;
    assert_eq!(earlier.listening_seconds, 799 - 100);
    assert_eq!(earlier.last_end, Some(at(500.0)));
}

async fn an_event_without_rows_has_no_figures(s: Store) {
    let store = &*s.store;
    seven_listeners(store).await;
    let none = store
        .event_figures(Uuid::new_v4(), at(600.0), 100)
        .await
        .unwrap();
    assert_eq!(none, EventFigures::default());
}

/// Issue 30's servers in an event's figures: each server's sessions, hours and peak, as a
/// report by server of the event counts them, and the event's peak over all of them at once.
async fn an_events_figures_share_it_out_by_server(s: Store) {
    let store = &*s.store;
    let event = Uuid::new_v4();
    let edge = ServerId::new("edge.example", "8001");
    let on_edge = |client: &str, started: f64| Session {
        key: SessionKey::listener(edge.clone(), client),
        ..listener(client, event, started)
    };
    // ice: a for 0–120 s, b for 60–90 s; edge: c for 30–150 s, d for 100–130 s, e open
    // since 200 s. At second 100: a, c and d (b left at 90); never more.
    store
        .apply(&[
            open(listener("a", event, 0.0)),
            open(listener("b", event, 60.0)),
            open(on_edge("c", 30.0)),
            open(on_edge("d", 100.0)),
            open(on_edge("e", 200.0)),
            left("a", 120.0, None),
            left("b", 90.0, None),
            close(
                SessionKey::listener(edge.clone(), "c"),
                150.0,
                None,
                Ending::Reported,
            ),
            close(
                SessionKey::listener(edge.clone(), "d"),
                130.0,
                None,
                Ending::Reported,
            ),
        ])
        .await
        .unwrap();
    let now = at(300.0);
    let f = store.event_figures(event, now, 100).await.unwrap();
    let shares: Vec<(String, u64, u64, u32)> = f
        .servers
        .iter()
        .map(|s| {
            (
                s.server.clone(),
                s.sessions,
                s.listening_seconds,
                s.peak_listeners,
            )
        })
        .collect();
    assert_eq!(
        shares,
        [
            (edge.to_string(), 3, 120 + 30 + 100, 2),
            (ice().to_string(), 2, 120 + 30, 2),
        ]
    );
    assert_eq!((f.figures.sessions, f.figures.listening_seconds), (5, 400));
    assert_eq!(f.figures.peak_listeners, 3, "a, c and d at second 100");
    assert_eq!(f.figures.first_start, Some(at(0.0)));
    assert_eq!(f.figures.last_end, Some(now), "e is still open");
    // The same as a report of the event by server says.
    let of_event = SessionFilter {
        event: Some(event),
        ..SessionFilter::default()
    };
    let report = store.report(of_event, GroupBy::Server, now).await.unwrap();
    let reported: Vec<(String, u64, u64, u32)> = report
        .iter()
        .map(|(g, f)| (g.clone(), f.sessions, f.listening_seconds, f.peak_listeners))
        .collect();
    assert_eq!(reported, shares);
}

async fn reports_group_by_event_and_by_day(s: Store) {
    let store = &*s.store;
    let event = seven_listeners(store).await;
    let other = Uuid::new_v4();
    let day = 86_400.0;
    store
        .apply(&[
            // The next day: two on another event at once, one on a static mount.
            open(Session {
                member: Some(1),
                ..listener("p", other, day)
            }),
            open(Session {
                member: Some(2),
                ..listener("q", other, day + 10.0)
            }),
            open(Session {
                key: SessionKey::listener(ice(), "r"),
                mount: "/studio".into(),
                target: Target::Static("/studio".into()),
                ..listener("r", other, day + 10.0)
            }),
            left("p", day + 60.0, Some(60)),
            left("q", day + 30.0, Some(20)),
            left("r", day + 15.0, Some(5)),
        ])
        .await
        .unwrap();
    let now = at(2.0 * day);
    let summary = |f: &Figures| {
        (
            f.sessions,
            f.unique_listeners,
            f.listening_seconds,
            f.peak_listeners,
        )
    };
    let by_event = store
        .report(SessionFilter::default(), GroupBy::Event, now)
        .await
        .unwrap();
    let mut want = vec![
        (
            event.to_string(),
            (7, 5, 799 + (2.0 * day - 600.0) as u64, 2),
        ),
        (other.to_string(), (2, 2, 80, 2)),
        ("/studio".to_string(), (1, 1, 5, 1)),
    ];
    // The other event's listener z: one more group.
    let got: Vec<(String, (u64, u64, u64, u32))> = by_event
        .iter()
        .filter(|(g, _)| want.iter().any(|(w, _)| w == g))
        .map(|(g, f)| (g.clone(), summary(f)))
        .collect();
    want.sort();
    assert_eq!(got, want, "{by_event:#?}");
    assert_eq!(by_event.len(), 4);

    let by_day = store
        .report(SessionFilter::default(), GroupBy::Day, now)
        .await
        .unwrap();
    let days: Vec<(&str, u64)> = by_day
        .iter()
        .map(|(g, f)| (g.as_str(), f.sessions))
        .collect();
    assert_eq!(days, vec![("2026-03-01", 8), ("2026-03-02", 3)]);
    assert_eq!(by_day[1].1.peak_listeners, 3, "p, q and r at once");

    // Every one of them on the one Icecast (issue 30: reports by server); its peak counts
    // every mount's listeners at once: the next day p, q and r with the event's listener
    // still open and z (another event's, open since second 10).
    let by_server = store
        .report(SessionFilter::default(), GroupBy::Server, now)
        .await
        .unwrap();
    let servers: Vec<(String, u64, u32)> = by_server
        .iter()
        .map(|(g, f)| (g.clone(), f.sessions, f.peak_listeners))
        .collect();
    assert_eq!(servers, vec![(ice().to_string(), 11, 5)]);

    let one = store
        .report(
            SessionFilter {
                event: Some(event),
                from: Some(at(100.0)),
                to: Some(at(300.0)),
            },
            GroupBy::Day,
            at(600.0),
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        summary(&one[0].1),
        (3, 3, 60 + 450 + 30, 2),
        "c, d and e started in [100, 300)"
    );
}

async fn purge_and_the_lost_sweep(s: Store) {
    let store = &*s.store;
    let event = Uuid::new_v4();
    store
        .apply(&[
            open(listener("1", event, 0.0)),
            open(Session {
                timelimit: Some(60),
                ..listener("2", event, 100.0)
            }),
            open(listener("3", event, 1_000.0)),
            open(listener("4", event, 50.0)),
            left("4", 70.0, Some(20)),
        ])
        .await
        .unwrap();
    // Open rows started before 500, or whose timelimit ran out before 150.
    let found = store
        .open_before(at(500.0), at(150.0), 0, 100)
        .await
        .unwrap();
    let keys: Vec<&str> = found.iter().map(|r| r.key.id.as_str()).collect();
    assert_eq!(keys, ["1", "2"], "in id order");
    assert_eq!(found[1].timelimit, Some(60));
    let only_timelimit = store
        .open_before(at(-1.0), at(170.0), 0, 100)
        .await
        .unwrap();
    assert_eq!(only_timelimit.len(), 1, "2's timelimit ran out at 160");
    // A page at a time: after the first, the rest.
    let first = store.open_before(at(500.0), at(150.0), 0, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let rest = store
        .open_before(at(500.0), at(150.0), first[0].id, 100)
        .await
        .unwrap();
    assert_eq!(
        [first[0].id, rest[0].id],
        [found[0].id, found[1].id],
        "the page after the first starts after it"
    );
    assert_eq!(rest.len(), 1);

    let ids: Vec<i64> = found.iter().map(|r| r.id).collect();
    assert_eq!(store.close_lost(&ids, at(2_000.0)).await.unwrap(), 2);
    assert_eq!(
        store.close_lost(&ids, at(3_000.0)).await.unwrap(),
        0,
        "closed rows stay as they were"
    );
    let rows = rows(store).await;
    let lost: Vec<_> = rows
        .iter()
        .filter(|r| r.end_reason == Some(EndReason::Lost))
        .map(|r| (r.session.key.id.as_str(), r.ended))
        .collect();
    assert_eq!(lost, [("1", Some(at(2_000.0))), ("2", Some(at(2_000.0)))]);

    assert_eq!(store.purge(at(60.0)).await.unwrap(), 2, "rows 1 and 4");
    let left: Vec<String> = self::rows(store)
        .await
        .into_iter()
        .map(|r| r.session.key.id)
        .collect();
    assert_eq!(left, ["2", "3"]);
}
