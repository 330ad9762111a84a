//! Signals: SIGHUP asks for a reload; the first SIGTERM or SIGINT starts a graceful shutdown
//! (stop accepting, let in-flight requests finish); a second one ends the process at once.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reload,
    Shutdown,
}

/// The process's signal streams.
pub struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers. From now on these signals no longer kill the process by default.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next request.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.hup.recv() => Request::Reload,
            _ = self.term.recv() => Request::Shutdown,
            _ = self.int.recv() => Request::Shutdown,
        }
    }
}

/// A latch that trips once, when shutdown begins; servers wait on [`Shutdown::wait`].
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The side that trips the latch.
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A new, untripped latch.
pub fn latch() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn trip(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has begun.
    pub async fn wait(mut self) {
        let _ = self.rx.wait_for(|down| *down).await;
    }
}
