//! The clock the decision path reads `now` from. Production hands in [`SystemClock`]; tests hand
//! in a [`ManualClock`] and move it across expiry, leeway and window boundaries instead of
//! sleeping.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where `now` comes from.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// The current time in whole Unix seconds (the unit of JWT claims).
    fn unix_now(&self) -> i64 {
        self.now().timestamp()
    }

    /// Completes once `d` has passed on this clock: what the daemon's sweeps wait on, so that
    /// a test moves them by moving its clock.
    fn sleep(&self, d: Duration) -> Sleep;
}

/// A clock shared by everything that decides.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until told to move: for tests. Moving it wakes whatever
/// [`Clock::sleep`]s on it past its deadline.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn at(now: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: watch::Sender::new(now),
        })
    }

    /// A clock standing at the system's current time.
    pub fn starting_now() -> Arc<ManualClock> {
        Self::at(Utc::now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a test advances by a sane duration");
        self.now.send_modify(|now| *now += by);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        self.now.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        let deadline = self.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let mut moves = self.now.subscribe();
        Box::pin(async move {
            while *moves.borrow_and_update() < deadline {
                if moves.changed().await.is_err() {
                    // The clock is gone: it will never get there.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = ManualClock::at(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - start, chrono::Duration::milliseconds(1500));
        assert_eq!(clock.unix_now(), 1_700_000_001);
        clock.set(start);
        assert_eq!(clock.unix_now(), 1_700_000_000);
    }

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::at(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let mut sleep = clock.sleep(Duration::from_secs(10));
        let poll = |s: &mut Sleep| {
            let waker = std::task::Waker::noop();
            s.as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_ready()
        };
        assert!(!poll(&mut sleep));
        clock.advance(Duration::from_secs(9));
        assert!(!poll(&mut sleep), "not yet");
        clock.advance(Duration::from_secs(1));
        assert!(poll(&mut sleep), "at the deadline");
        // An already-passed deadline is ready at once.
        assert!(poll(&mut clock.sleep(Duration::ZERO)));
    }
}
