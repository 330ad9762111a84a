//! [`SessionWriter`]: session rows written off the callback path. A callback only queues an op
//! on a bounded channel ([`QUEUE_CAPACITY`]) and returns; one task takes whatever has queued
//! (up to [`BATCH_OPS`]) and applies it in one transaction, so under load one transaction
//! carries many rows. A full queue or a failed batch drops rows, counted in
//! `jars_sessions_dropped_total`; a decision never waits for, nor depends on, the session table.
//!
//! [`SessionWriter::maintain`] (run by the daemon every [`MAINTENANCE_INTERVAL`] of its clock,
//! and once at start) deletes rows past `[sessions] retention` and closes as `lost` the open
//! rows whose end can no longer come: those this node does not see live and that are older
//! than their timelimit (plus a minute) or than `[sessions] lost_after`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot};

use super::ip::kept_ip;
use crate::clock::SharedClock;
use crate::config::{IpMode, SessionSettings};
use crate::domain::{Ending, Role, Session, SessionEnd, SessionKey, SessionOp};
use crate::live::{Ended, LiveState};
use crate::log_input::Throttle;
use crate::metrics::Metrics;
use crate::rules::{self, TIMELIMIT_GRACE};
use crate::store::sessions::SessionStore;
use crate::store::StoreError;

/// Ops waiting to be written at most; beyond, rows are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 16_384;
/// Ops applied in one transaction at most.
pub const BATCH_OPS: usize = 4_096;
/// How often the daemon purges old rows and closes lost ones.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);

/// Open rows the lost-session sweep reads at a time.
pub const LOST_PAGE: u32 = 10_000;

/// What callbacks hand the writer task.
enum Msg {
    Op(SessionOp),
    /// Answered once everything queued before it has been applied (or dropped).
    Flush(oneshot::Sender<()>),
}

/// Writes session rows; a no-op (but for `jars_listening_seconds_total`) when
/// `[sessions] enabled = false`.
pub struct SessionWriter {
    queue: Option<mpsc::Sender<Msg>>,
    store: Option<Arc<dyn SessionStore>>,
    settings: SessionSettings,
    dropped_full: IntCounter,
    listening: IntCounter,
}

impl SessionWriter {
    /// A writer that stores nothing.
    pub fn disabled(settings: SessionSettings, metrics: &Metrics) -> SessionWriter {
        SessionWriter {
            queue: None,
            store: None,
            settings,
            dropped_full: metrics.sessions_dropped.with_label_values(&["queue_full"]),
            listening: metrics.listening_seconds.clone(),
        }
    }

    /// A writer into `store`, with its task spawned on the current runtime.
    pub fn start(
        store: Arc<dyn SessionStore>,
        settings: SessionSettings,
        metrics: &Metrics,
        clock: SharedClock,
    ) -> SessionWriter {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let failed = metrics.sessions_dropped.with_label_values(&["store_error"]);
        tokio::spawn(write_batches(store.clone(), rx, failed, clock));
        SessionWriter {
            queue: Some(tx),
            store: Some(store),
            ..SessionWriter::disabled(settings, metrics)
        }
    }

    /// Whether session rows are stored (`[sessions] enabled`).
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// The session table, when sessions are stored.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.store.as_ref()
    }

    /// How much of an address rows and other outputs keep (`[sessions] ip`).
    pub fn ip_mode(&self) -> IpMode {
        self.settings.ip
    }

    fn send(&self, op: SessionOp) {
        if let Some(queue) = &self.queue {
            if queue.try_send(Msg::Op(op)).is_err() {
                self.dropped_full.inc();
            }
        }
    }

    /// A session opened: its row, with the address as `[sessions] ip` keeps it.
    pub fn opened(&self, session: &Arc<Session>) {
        if !self.enabled() {
            return;
        }
        let ip = kept_ip(&session.ip, self.settings.ip).unwrap_or_default();
        let row = if ip == session.ip {
            session.clone()
        } else {
            Arc::new(Session {
                ip,
                ..Session::clone(session)
            })
        };
        self.send(SessionOp::Open(row));
    }

    /// Icecast reported the end of `key` at `at` (`listener_remove`, `mount_remove`), after
    /// `duration` seconds when it said; `ended` is what live state knew of it (nothing when it
    /// began before a restart and no resync found it).
    pub fn closed(
        &self,
        key: SessionKey,
        ended: Option<&Ended>,
        at: DateTime<Utc>,
        duration: Option<u64>,
    ) {
        if key.role == Role::Listener {
            let listened = duration
                .or_else(|| ended.map(|e| (at - e.session.started).num_seconds().max(0) as u64));
            if let Some(secs) = listened {
                self.listening.inc_by(secs);
            }
        }
        let ending = ended.map_or(Ending::Reported, Ended::reported);
        self.send(SessionOp::Close(SessionEnd {
            key,
            at,
            duration,
            ending,
        }));
    }

    /// Sessions whose end was never reported (a resync no longer found them).
    pub fn vanished(&self, ended: &[Ended], at: DateTime<Utc>) {
        for e in ended {
            self.send(SessionOp::Close(SessionEnd {
                key: e.session.key.clone(),
                at,
                duration: None,
                ending: Ending::Vanished,
            }));
        }
    }

    /// Waits until everything queued so far has been applied or dropped (tests, shutdown).
    pub async fn flush(&self) {
        if let Some(queue) = &self.queue {
            let (tx, rx) = oneshot::channel();
            if queue.send(Msg::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }

    /// Deletes rows past retention and closes lost ones, at `now` (see the module docs);
    /// returns (deleted, closed as lost).
    pub async fn maintain(
        &self,
        live: &LiveState,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let Some(store) = &self.store else {
            return Ok((0, 0));
        };
        let retention =
            chrono::Duration::from_std(self.settings.retention).unwrap_or(chrono::Duration::MAX);
        let purged = store
            .purge(
                now.checked_sub_signed(retention)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            )
            .await?;
        let lost_after =
            chrono::Duration::from_std(self.settings.lost_after).unwrap_or(chrono::Duration::MAX);
        let (before, timelimit_before) = (
            now.checked_sub_signed(lost_after)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            now - TIMELIMIT_GRACE,
        );
        // A page at a time: after a crash every open row may be stale.
        let (mut after, mut closed) = (0, 0);
        loop {
            let page = store
                .open_before(before, timelimit_before, after, LOST_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let full = page.len() == LOST_PAGE as usize;
            let lost: Vec<i64> = page
                .into_iter()
                .filter(|row| live.session(&row.key).is_none())
                .filter(|row| rules::session_is_lost(row.started, row.timelimit, lost_after, now))
                .map(|row| row.id)
                .collect();
            if !lost.is_empty() {
                closed += store.close_lost(&lost, now).await?;
            }
            if !full {
                break;
            }
        }
        Ok((purged, closed))
    }
}

/// The writer task: takes whatever has queued (at most [`BATCH_OPS`]), applies it in one
/// transaction, answers flushes, repeats; ends when the writer is dropped (after writing what
/// was queued).
async fn write_batches(
    store: Arc<dyn SessionStore>,
    mut rx: mpsc::Receiver<Msg>,
    failed: IntCounter,
    clock: SharedClock,
) {
    let throttle = Throttle::new(Duration::from_secs(60));
    let mut msgs = Vec::with_capacity(BATCH_OPS);
    while rx.recv_many(&mut msgs, BATCH_OPS).await > 0 {
        let mut ops = Vec::with_capacity(msgs.len());
        let mut flushes = Vec::new();
        for msg in msgs.drain(..) {
            match msg {
                Msg::Op(op) => ops.push(op),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        if !ops.is_empty() {
            if let Err(e) = store.apply(&ops).await {
                failed.inc_by(ops.len() as u64);
                if let Some(suppressed) = throttle.admit(clock.now()) {
                    tracing::error!(error = %e, rows = ops.len(), suppressed,
                        "could not store sessions; dropped them");
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Runs [`SessionWriter::maintain`] now and every [`MAINTENANCE_INTERVAL`] of `clock` while
/// `writer` lives.
pub fn spawn_maintenance(writer: Weak<SessionWriter>, live: Weak<LiveState>, clock: SharedClock) {
    tokio::spawn(async move {
        loop {
            let (Some(w), Some(l)) = (writer.upgrade(), live.upgrade()) else {
                return;
            };
            match w.maintain(&l, clock.now()).await {
                Ok((purged, lost)) if purged + lost > 0 => {
                    tracing::info!(purged, lost, "sessions: old rows deleted, lost ones closed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session maintenance failed"),
            }
            drop((w, l));
            clock.sleep(MAINTENANCE_INTERVAL).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ServerId, Target};
    use crate::store::sessions::{
        EventFigures, Figures, GroupBy, OpenRow, SessionFilter, SessionRecord,
    };
    use std::sync::Mutex;
    use uuid::Uuid;

    /// Records each batch it is asked to apply; fails every batch while `failing`.
    #[derive(Default)]
    struct Batches {
        applied: Mutex<Vec<Vec<SessionOp>>>,
        failing: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl SessionStore for Batches {
        async fn apply(&self, ops: &[SessionOp]) -> Result<(), StoreError> {
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.applied.lock().unwrap().push(ops.to_vec());
            Ok(())
        }
        async fn sessions(
            &self,
            _: SessionFilter,
            _: u32,
        ) -> Result<Vec<SessionRecord>, StoreError> {
            unreachable!()
        }
        async fn open_sessions(&self, _: &ServerId) -> Result<Vec<Session>, StoreError> {
            unreachable!()
        }
        async fn event_figures(
            &self,
            _: Uuid,
            _: DateTime<Utc>,
            _: usize,
        ) -> Result<EventFigures, StoreError> {
            unreachable!()
        }
        async fn report(
            &self,
            _: SessionFilter,
            _: GroupBy,
            _: DateTime<Utc>,
        ) -> Result<Vec<(String, Figures)>, StoreError> {
            unreachable!()
        }
        async fn open_before(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: i64,
            _: u32,
        ) -> Result<Vec<OpenRow>, StoreError> {
            unreachable!()
        }
        async fn close_lost(&self, _: &[i64], _: DateTime<Utc>) -> Result<u64, StoreError> {
            unreachable!()
        }
        async fn purge(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            unreachable!()
        }
    }

    fn session(client: u32, ip: &str) -> Arc<Session> {
        Arc::new(Session {
            key: SessionKey::listener(ServerId::new("ice", "8000"), client.to_string()),
            mount: "/m".into(),
            target: Target::Static("/m".into()),
            ip: ip.into(),
            agent: None,
            referer: None,
            ticket: None,
            member: None,
            relay: None,
            started: DateTime::UNIX_EPOCH,
            timelimit: None,
        })
    }

    #[tokio::test]
    async fn rows_go_in_order_with_the_kept_address_and_failures_are_counted() {
        let metrics = Metrics::new();
        let store = Arc::new(Batches::default());
        let writer = SessionWriter::start(
            store.clone(),
            SessionSettings::default(),
            &metrics,
            crate::clock::system(),
        );
        for i in 0..5 {
            writer.opened(&session(i, "203.0.113.77"));
        }
        writer.closed(
            session(0, "").key.clone(),
            None,
            DateTime::UNIX_EPOCH,
            Some(3),
        );
        writer.flush().await;
        let ops: Vec<SessionOp> = store.applied.lock().unwrap().concat();
        assert_eq!(ops.len(), 6);
        for (i, op) in ops[..5].iter().enumerate() {
            let SessionOp::Open(s) = op else {
                panic!("{op:?}")
            };
            assert_eq!(s.key.id, i.to_string(), "in order");
            assert_eq!(s.ip, "203.0.113.0", "the address as [sessions] ip keeps it");
        }
        assert!(matches!(&ops[5], SessionOp::Close(e) if e.ending == Ending::Reported));
        assert_eq!(metrics.listening_seconds.get(), 3);

        store
            .failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        writer.opened(&session(9, "192.0.2.1"));
        writer.flush().await;
        let failed = metrics
            .sessions_dropped
            .with_label_values(&["store_error"])
            .get();
        assert_eq!(failed, 1, "a failed batch is dropped and counted");
    }
}
