//! [`SessionWriter`]: session rows written off the callback path. A callback only puts an op
//! on a bounded queue ([`QUEUE_CAPACITY`]) and returns; one task takes whatever has queued up
//! within [`BATCH_WINDOW`] (at most [`MAX_BATCH`]) and applies it in one transaction (group
//! commit), consecutive opens as one multi-row insert. A full queue or a
//! failed batch drops rows, counted in `jars_sessions_dropped_total`; a decision never waits
//! for, nor depends on, the session table.
//!
//! [`SessionWriter::maintain`] (run by the daemon every [`MAINTENANCE_INTERVAL`], and once at
//! start) deletes rows past `[sessions] retention` and closes as `lost` the open rows whose end
//! can no longer come: those this node does not see live and that are older than their
//! timelimit (plus a minute) or than `[sessions] lost_after`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot};

use super::ip::kept_ip;
use super::{OpenedSession, SessionKey, SessionOp};
use crate::clock::SharedClock;
use crate::config::SessionSettings;
use crate::icecast::live::{ListenerSession, LiveState};
use crate::icecast::Target;
use crate::log_input::Throttle;
use crate::metrics::Metrics;
use crate::store::sessions::SessionStore;
use crate::store::StoreError;

/// Ops waiting to be written at most; beyond, rows are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 16_384;
/// Ops applied in one transaction at most.
pub const MAX_BATCH: usize = 1_024;
/// After the first op of a batch, the writer waits this long for more (unless the batch is
/// full already): one transaction then carries many rows, which costs far less CPU than a
/// transaction per row.
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// How often the daemon purges old rows and closes lost ones.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);
/// A session with a timelimit is over this long after it, whatever Icecast said.
const TIMELIMIT_GRACE: chrono::Duration = chrono::Duration::seconds(60);

// Ops are few and moved, never copied; boxing them would cost an allocation per join.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Op(SessionOp),
    /// Answered once everything queued before it has been applied (or dropped).
    Flush(oneshot::Sender<()>),
}

/// Writes listener sessions; a no-op (but for `jars_listening_seconds_total`) when
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

    /// The session table, when sessions are stored.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.store.as_ref()
    }

    fn send(&self, op: SessionOp) {
        if let Some(queue) = &self.queue {
            if queue.try_send(Msg::Op(op)).is_err() {
                self.dropped_full.inc();
            }
        }
    }

    /// The row of a session `listener_add` is opening, with the callback's user agent and
    /// referer and the timelimit jars answers; `None` when sessions are not stored.
    pub fn row(
        &self,
        s: &ListenerSession,
        agent: Option<&str>,
        referer: Option<&str>,
        timelimit: Option<u64>,
    ) -> Option<OpenedSession> {
        self.queue.as_ref()?;
        let nonempty = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_string);
        Some(OpenedSession {
            key: key_of(s),
            event: match &s.target {
                Target::Event(id) => Some(*id),
                Target::Static(_) => None,
            },
            mount: s.mount.clone(),
            started: s.started,
            ticket: s.ticket.clone(),
            member: s.member,
            ip: kept_ip(&s.ip, self.settings.ip),
            agent: nonempty(agent),
            referer: nonempty(referer),
            timelimit,
        })
    }

    /// A session opened (its [`SessionWriter::row`]).
    pub fn opened(&self, row: OpenedSession) {
        self.send(SessionOp::Open(row));
    }

    /// `listener_remove` for `key` at `ended`, with Icecast's `duration`; `session` is this
    /// node's memory of it, if it has one (not when it opened before a restart).
    pub fn closed(
        &self,
        key: SessionKey,
        session: Option<&ListenerSession>,
        ended: DateTime<Utc>,
        duration: Option<u64>,
    ) {
        let listened =
            duration.or_else(|| session.map(|s| (ended - s.started).num_seconds().max(0) as u64));
        if let Some(secs) = listened {
            self.listening.inc_by(secs);
        }
        self.send(SessionOp::Close {
            key,
            ended,
            duration,
        });
    }

    /// jars asked Icecast to drop `session` (a revocation or ban): its row ends as `kicked`
    /// when Icecast reports it gone.
    pub fn kicked(&self, session: &ListenerSession) {
        self.send(SessionOp::Kicked {
            key: key_of(session),
        });
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
        let live_keys: HashSet<SessionKey> =
            live.listeners_where(|_| true).iter().map(key_of).collect();
        let lost: Vec<i64> = store
            .open_before(now - TIMELIMIT_GRACE)
            .await?
            .into_iter()
            .filter(|row| !live_keys.contains(&row.key))
            .filter(|row| {
                let plausible = match row.timelimit {
                    Some(t) => (chrono::Duration::seconds(t.min(i64::MAX as u64 / 2_000) as i64)
                        + TIMELIMIT_GRACE)
                        .min(lost_after),
                    None => lost_after,
                };
                now - row.started > plausible
            })
            .map(|row| row.id)
            .collect();
        let closed = if lost.is_empty() {
            0
        } else {
            store.close_lost(&lost, now).await?
        };
        Ok((purged, closed))
    }
}

/// The key of `s`'s row.
pub fn key_of(s: &ListenerSession) -> SessionKey {
    SessionKey {
        server: s.server.clone(),
        port: s.port.clone(),
        client: s.client.clone(),
    }
}

/// The writer task: takes what has queued (at most [`MAX_BATCH`]), applies it in one
/// transaction, answers flushes, repeats; ends when the writer is dropped.
async fn write_batches(
    store: Arc<dyn SessionStore>,
    mut rx: mpsc::Receiver<Msg>,
    failed: IntCounter,
    clock: SharedClock,
) {
    let throttle = Throttle::new(Duration::from_secs(60));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    fn take(msg: Msg, batch: &mut Vec<SessionOp>, flushes: &mut Vec<oneshot::Sender<()>>) {
        match msg {
            Msg::Op(op) => batch.push(op),
            Msg::Flush(done) => flushes.push(done),
        }
    }
    while let Some(first) = rx.recv().await {
        let flushing = matches!(first, Msg::Flush(_));
        take(first, &mut batch, &mut flushes);
        if !flushing && rx.len() < MAX_BATCH {
            tokio::time::sleep(BATCH_WINDOW).await;
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut batch, &mut flushes),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.apply(&batch).await {
                failed.inc_by(batch.len() as u64);
                if let Some(suppressed) = throttle.admit(clock.now()) {
                    tracing::error!(error = %e, rows = batch.len(), suppressed,
                        "could not store listener sessions; dropped them");
                }
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Runs [`SessionWriter::maintain`] now and every [`MAINTENANCE_INTERVAL`] while `writer`
/// lives, reading `now` from `clock`.
pub fn spawn_maintenance(
    writer: std::sync::Weak<SessionWriter>,
    live: std::sync::Weak<LiveState>,
    clock: SharedClock,
) {
    tokio::spawn(async move {
        loop {
            let (Some(w), Some(l)) = (writer.upgrade(), live.upgrade()) else {
                return;
            };
            match w.maintain(&l, clock.now()).await {
                Ok((purged, lost)) if purged + lost > 0 => {
                    tracing::info!(
                        purged,
                        lost,
                        "listener sessions: old rows deleted, lost ones closed"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "listener session maintenance failed"),
            }
            drop((w, l));
            tokio::time::sleep(MAINTENANCE_INTERVAL).await;
        }
    });
}
