//! Group commit: one writer task per store takes the writes queued to it and commits them
//! together (in one transaction, or one statement, as the backend does it), so concurrent
//! requests share one commit (on SQLite, one WAL write) instead of each paying for its own. The task never waits for a batch to fill: it
//! takes whatever is queued when it is free, so a lone request is committed at once, alone.

use std::future::Future;
use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// At most this many writes share one transaction.
pub const MAX_BATCH: usize = 64;

/// Writes queued beyond the batch being committed; a request finding the queue full waits.
const QUEUE: usize = 1024;

type Reply<R> = oneshot::Sender<Result<R, StoreError>>;

/// The queue to a writer task committing jobs `J` in batches, each answered with an `R`.
pub struct GroupCommit<J, R> {
    queue: OnceLock<mpsc::Sender<(J, Reply<R>)>>,
}

/// Commits one batch in one transaction: one answer per job, in order, or one error for all.
pub trait CommitBatch<J, R>: Send + 'static {
    /// Writes `jobs` and commits them together.
    fn commit(&mut self, jobs: Vec<J>) -> impl Future<Output = Result<Vec<R>, StoreError>> + Send;
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// No task yet: it is spawned on the first [`GroupCommit::submit`], on the runtime that
    /// submits (a store may be opened before the runtime that serves it runs).
    pub fn new() -> GroupCommit<J, R> {
        GroupCommit {
            queue: OnceLock::new(),
        }
    }

    /// Queues `job` and waits for its batch to commit. `writer` is what the task commits with
    /// (used only by the first call). Fails with the batch's error, or `Unavailable` when the
    /// task is gone.
    pub async fn submit<W>(&self, job: J, writer: impl FnOnce() -> W) -> Result<R, StoreError>
    where
        W: CommitBatch<J, R>,
    {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(rx, writer()));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the store's writer task has stopped".into());
        queue.send((job, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl<J: Send + 'static, R: Send + 'static> Default for GroupCommit<J, R> {
    fn default() -> Self {
        Self::new()
    }
}

/// The writer task: until every sender is gone, takes what is queued (at least one, at most
/// [`MAX_BATCH`]), commits it, answers each.
async fn run<J, R, W: CommitBatch<J, R>>(mut rx: mpsc::Receiver<(J, Reply<R>)>, mut writer: W) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        let (jobs, replies): (Vec<J>, Vec<Reply<R>>) = queued.drain(..).unzip();
        let n = jobs.len();
        match writer.commit(jobs).await {
            Ok(answers) if answers.len() == n => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    // The request may have gone: its write stands all the same.
                    let _ = reply.send(Ok(answer));
                }
            }
            Ok(answers) => {
                let e = StoreError::Unavailable(format!(
                    "a batch of {n} writes gave {} answers",
                    answers.len()
                ));
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records each batch's size; the first batch says it started, then waits to be let go.
    struct Recorder {
        sizes: Arc<Mutex<Vec<usize>>>,
        started: Option<oneshot::Sender<()>>,
        hold: Option<oneshot::Receiver<()>>,
    }

    impl CommitBatch<u32, u32> for Recorder {
        async fn commit(&mut self, jobs: Vec<u32>) -> Result<Vec<u32>, StoreError> {
            if let (Some(started), Some(hold)) = (self.started.take(), self.hold.take()) {
                let _ = started.send(());
                let _ = hold.await;
            }
            self.sizes.lock().unwrap().push(jobs.len());
            if jobs.contains(&0) {
                return Err(StoreError::Unavailable("zero".into()));
            }
            Ok(jobs.iter().map(|j| j * 10).collect())
        }
    }

    fn existing_writer() -> Recorder {
        panic!("the writer task exists already")
    }

    #[tokio::test]
    async fn a_lone_write_commits_alone_and_queued_ones_together() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (started, has_started) = oneshot::channel();
        let (go, hold) = oneshot::channel();
        let group = Arc::new(GroupCommit::new());
        let writer = Recorder {
            sizes: sizes.clone(),
            started: Some(started),
            hold: Some(hold),
        };
        // The first write is taken at once, alone, and holds the writer while ten more queue.
        let first = {
            let group = group.clone();
            tokio::spawn(async move { group.submit(1, || writer).await })
        };
        has_started.await.unwrap();
        let rest: Vec<_> = (2..=11)
            .map(|j| {
                let group = group.clone();
                tokio::spawn(async move { group.submit(j, existing_writer).await })
            })
            .collect();
        while group.queue.get().unwrap().capacity() > QUEUE - 10 {
            tokio::task::yield_now().await;
        }
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        for (j, task) in (2..=11).zip(rest) {
            assert_eq!(task.await.unwrap().unwrap(), j * 10);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 10]);
        // A failed batch fails each of its writes; the next batch is unaffected.
        assert!(group.submit(0, existing_writer).await.is_err());
        assert_eq!(group.submit(5, existing_writer).await.unwrap(), 50);
    }
}
