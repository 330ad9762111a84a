//! [`SessionWriter`]: session rows written off the callback path. A callback only pushes an op
//! onto a bounded queue ([`QUEUE_CAPACITY`]: chunks under a mutex held for the push) and
//! returns; one task takes whatever has queued up within [`BATCH_WINDOW`] of the first op (or
//! once [`BATCH_ROWS`] have) and applies it in one transaction (group commit). A full queue or a failed batch drops rows,
//! counted in `jars_sessions_dropped_total`; a decision never waits for, nor depends on, the
//! session table.
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
use tokio::sync::{oneshot, Notify};

use super::ip::kept_ip;
use super::{OpenedSession, SessionKey, SessionOp, SessionText};
use crate::clock::SharedClock;
use crate::config::SessionSettings;
use crate::icecast::live::{ListenerSession, LiveState};
use crate::icecast::Target;
use crate::log_input::Throttle;
use crate::metrics::Metrics;
use crate::rules::{self, TIMELIMIT_GRACE};
use crate::store::sessions::SessionStore;
use crate::store::StoreError;

/// Ops waiting to be written at most (and so applied in one transaction at most); beyond,
/// rows are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 16_384;
/// After the first op of a batch, the writer waits this long for more (unless
/// [`BATCH_ROWS`] have queued): one transaction then carries many rows, which costs far less
/// CPU than a transaction per row, and every batch evicts the callbacks' data from the CPU's
/// caches once, however many rows it carries. On one CPU at 27,000 joins a second, 100 ms
/// against 20 ms: the writer's thread 0.85-0.96 µs a row against 1.14-1.19 (BENCHMARKS.md).
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// Ops that end the window early: under tens of thousands of joins a second a batch stays
/// well inside [`QUEUE_CAPACITY`] (100 ms of 60,000 joins a second once dropped rows, while a
/// checkpoint held the writer).
pub const BATCH_ROWS: usize = 4_096;
/// How often the daemon purges old rows and closes lost ones.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);

/// What callbacks hand the writer task. A mutex held only to push (a `tokio::sync::mpsc`
/// channel cost ~1 µs more per row, measured: its blocks are allocated and moved through, and
/// every send wakes the receiver), and a wake-up only when the queue was empty.
#[derive(Default)]
struct Queue {
    msgs: std::sync::Mutex<Queued>,
    ready: Notify,
    /// [`BATCH_ROWS`] ops have queued.
    full: Notify,
    /// Set when the writer is dropped: the task ends.
    closed: std::sync::atomic::AtomicBool,
}

/// Ops queued per chunk at most. Chunks of a fixed, small size are allocated from memory the
/// allocator reuses; one `Vec` of a whole batch (megabytes at tens of thousands of joins a
/// second) was mapped fresh from the OS each time and grown by copying, under the lock
/// (measured: a fifth of the callbacks' CPU at 64 connections).
const CHUNK: usize = 256;

/// Ops in the order they came, in chunks of [`CHUNK`], and the flushes waiting for all of
/// them.
#[derive(Default)]
struct Queued {
    chunks: Vec<Vec<SessionOp>>,
    ops: usize,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Queued {
    fn is_empty(&self) -> bool {
        self.ops == 0 && self.flushes.is_empty()
    }
}

impl Queue {
    /// Queues `op`; false when the queue is full.
    fn push(&self, op: SessionOp) -> bool {
        let mut q = self.msgs.lock().unwrap_or_else(|p| p.into_inner());
        if q.ops >= QUEUE_CAPACITY {
            return false;
        }
        let first = q.is_empty();
        match q.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(op),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(op);
                q.chunks.push(chunk);
            }
        }
        q.ops += 1;
        let full = q.ops == BATCH_ROWS;
        drop(q);
        if first {
            self.ready.notify_one();
        }
        if full {
            // Wakes the writer if it is waiting out the window; no permit is kept for later.
            self.full.notify_waiters();
        }
        true
    }

    /// Answers `done` once everything queued before has been applied (or dropped).
    fn flush(&self, done: oneshot::Sender<()>) {
        let mut q = self.msgs.lock().unwrap_or_else(|p| p.into_inner());
        let first = q.is_empty();
        q.flushes.push(done);
        drop(q);
        if first {
            self.ready.notify_one();
        }
    }

    fn take(&self) -> Queued {
        std::mem::take(&mut *self.msgs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Writes listener sessions; a no-op (but for `jars_listening_seconds_total`) when
/// `[sessions] enabled = false`.
pub struct SessionWriter {
    queue: Option<QueueHandle>,
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
        let queue = Arc::new(Queue::default());
        let failed = metrics.sessions_dropped.with_label_values(&["store_error"]);
        tokio::spawn(write_batches(store.clone(), queue.clone(), failed, clock));
        SessionWriter {
            queue: Some(QueueHandle(queue)),
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

    fn send(&self, op: SessionOp) {
        if let Some(queue) = &self.queue {
            if !queue.push(op) {
                self.dropped_full.inc();
            }
        }
    }

    /// The row of a session `listener_add` is opening, with the callback's user agent and
    /// referer and the timelimit jars answers (made only when [`SessionWriter::enabled`]).
    pub fn row<'a>(
        &self,
        s: &ListenerSession,
        agent: Option<&'a str>,
        referer: Option<&'a str>,
        timelimit: Option<u64>,
    ) -> OpenedSession {
        let nonempty = |v: Option<&'a str>| v.filter(|v| !v.is_empty());
        let ip = kept_ip(&s.ip, self.settings.ip);
        let text = SessionText {
            server: &s.server,
            port: &s.port,
            client: &s.client,
            mount: &s.mount,
            ticket: s.ticket.as_deref(),
            ip: ip.as_deref(),
            agent: nonempty(agent),
            referer: nonempty(referer),
        };
        let event = match &s.target {
            Target::Event(id) => Some(*id),
            Target::Static(_) => None,
        };
        OpenedSession::new(text, event, s.started, s.member, timelimit)
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
            queue.flush(tx);
            let _ = rx.await;
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
            .open_before(
                now.checked_sub_signed(lost_after)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                now - TIMELIMIT_GRACE,
            )
            .await?
            .into_iter()
            .filter(|row| !live_keys.contains(&row.key))
            .filter(|row| rules::session_is_lost(row.started, row.timelimit, lost_after, now))
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

/// The writer's end of the queue: dropping it (with the writer) ends the task.
struct QueueHandle(Arc<Queue>);

impl std::ops::Deref for QueueHandle {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.0
    }
}

impl Drop for QueueHandle {
    fn drop(&mut self) {
        self.0
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.0.ready.notify_one();
    }
}

/// The writer task: waits for a first op, lets more queue for [`BATCH_WINDOW`] (or until
/// [`BATCH_ROWS`] have), applies all of them in one transaction, answers flushes, repeats;
/// ends when the writer is dropped (after writing what was queued).
async fn write_batches(
    store: Arc<dyn SessionStore>,
    queue: Arc<Queue>,
    failed: IntCounter,
    clock: SharedClock,
) {
    let throttle = Throttle::new(Duration::from_secs(60));
    loop {
        let closed = queue.closed.load(std::sync::atomic::Ordering::Acquire);
        // Registered before the queue is looked at, so that a push reaching BATCH_ROWS after
        // the look still wakes the wait below.
        let full = queue.full.notified();
        tokio::pin!(full);
        full.as_mut().enable();
        let (empty, waiting) = {
            let q = queue.msgs.lock().unwrap_or_else(|p| p.into_inner());
            (q.is_empty(), q.flushes.is_empty() && q.ops < BATCH_ROWS)
        };
        if empty {
            if closed {
                return;
            }
            queue.ready.notified().await;
            continue;
        }
        if waiting && !closed {
            tokio::select! {
                _ = tokio::time::sleep(BATCH_WINDOW) => {}
                _ = full => {}
            }
        }
        let Queued {
            chunks,
            ops,
            flushes,
        } = queue.take();
        if ops > 0 {
            let rows = ops as u64;
            if let Err(e) = store.apply_chunks(chunks).await {
                failed.inc_by(rows);
                if let Some(suppressed) = throttle.admit(clock.now()) {
                    tracing::error!(error = %e, rows, suppressed,
                        "could not store listener sessions; dropped them");
                }
            }
        }
        for done in flushes {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::SessionKey;

    fn op(client: usize) -> SessionOp {
        SessionOp::Kicked {
            key: SessionKey {
                server: "s".into(),
                port: "1".into(),
                client: client.to_string(),
            },
        }
    }

    fn client(op: &SessionOp) -> &str {
        match op {
            SessionOp::Kicked { key } => &key.client,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_queue_keeps_order_in_chunks_and_refuses_beyond_capacity() {
        let q = Queue::default();
        for i in 0..QUEUE_CAPACITY {
            assert!(q.push(op(i)), "op {i}");
        }
        assert!(!q.push(op(QUEUE_CAPACITY)), "full");
        let taken = q.take();
        assert_eq!(taken.ops, QUEUE_CAPACITY);
        assert!(taken.chunks.iter().all(|c| c.len() == CHUNK));
        let order: Vec<usize> = taken
            .chunks
            .iter()
            .flatten()
            .map(|o| client(o).parse().unwrap())
            .collect();
        assert_eq!(order, (0..QUEUE_CAPACITY).collect::<Vec<_>>());
        // Taking empties it: room again.
        assert!(q.take().is_empty());
        assert!(q.push(op(1)));
    }

    /// Records when each batch was applied, and how many ops it held.
    #[derive(Default)]
    struct Batches {
        applied: std::sync::Mutex<Vec<(tokio::time::Instant, usize)>>,
        done: Notify,
    }

    #[async_trait::async_trait]
    impl SessionStore for Batches {
        async fn apply_chunks(&self, chunks: Vec<Vec<SessionOp>>) -> Result<(), StoreError> {
            let ops = chunks.iter().map(Vec::len).sum();
            let now = tokio::time::Instant::now();
            self.applied.lock().unwrap().push((now, ops));
            self.done.notify_one();
            Ok(())
        }
        async fn sessions(
            &self,
            _: crate::sessions::SessionFilter,
        ) -> Result<Vec<crate::sessions::SessionRecord>, StoreError> {
            Ok(Vec::new())
        }
        async fn open_before(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<crate::sessions::OpenRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn close_lost(&self, _: &[i64], _: DateTime<Utc>) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn purge(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    /// A few ops wait out the window; BATCH_ROWS of them end it at once (time is paused: it
    /// moves only when every task waits on a timer).
    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_out_the_window_unless_batch_rows_have_queued() {
        let store = Arc::new(Batches::default());
        let queue = Arc::new(Queue::default());
        let failed = IntCounter::new("failed", "failed").unwrap();
        let clock = crate::clock::system();
        tokio::spawn(write_batches(store.clone(), queue.clone(), failed, clock));
        let t0 = tokio::time::Instant::now();
        queue.push(op(0));
        queue.push(op(1));
        store.done.notified().await;
        assert_eq!(
            *store.applied.lock().unwrap(),
            [(t0 + BATCH_WINDOW, 2)],
            "written when the window closed"
        );
        let t1 = tokio::time::Instant::now();
        queue.push(op(2));
        // The writer is now waiting out the window; the rest reach BATCH_ROWS.
        tokio::task::yield_now().await;
        for i in 1..BATCH_ROWS {
            queue.push(op(2 + i));
        }
        store.done.notified().await;
        assert_eq!(
            store.applied.lock().unwrap()[1],
            (t1, BATCH_ROWS),
            "written as soon as BATCH_ROWS had queued"
        );
    }

    #[test]
    fn a_flush_alone_is_work_for_the_task() {
        let q = Queue::default();
        assert!(q.take().is_empty());
        let (done, _) = oneshot::channel();
        q.flush(done);
        let taken = q.take();
        assert!(!taken.is_empty());
        assert_eq!((taken.ops, taken.flushes.len()), (0, 1));
    }
}
