//! [`SigningSlots`]: where RSA signing (minting user tokens and listener tickets) runs — on the
//! blocking thread pool, at most one signing per core at once. On the async workers, a flood
//! of mint requests took the Icecast callbacks' median from 0.7 ms to 35 ms on 2 cores; off
//! them, callbacks keep their workers and the flood queues here, briefly, then is turned away.

use std::time::Duration;

use tokio::sync::Semaphore;

use crate::tokens::TokenError;

/// How long a signing waits for a slot before it is turned away: far longer than one RS256
/// signature (a millisecond or two), far shorter than a client's patience.
pub const SLOT_WAIT: Duration = Duration::from_millis(500);

/// Why a signing did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningError {
    /// Every slot stayed taken for [`SLOT_WAIT`]: try again shortly.
    Busy,
    /// The signing itself failed.
    Token(TokenError),
}

/// Slots for signings in progress.
pub struct SigningSlots {
    slots: Semaphore,
    wait: Duration,
}

impl SigningSlots {
    /// At most `max` signings at once; the next wait up to `wait` for a slot.
    pub fn new(max: usize, wait: Duration) -> SigningSlots {
        SigningSlots {
            slots: Semaphore::new(max.max(1)),
            wait,
        }
    }

    /// One slot per core, waiting up to [`SLOT_WAIT`].
    pub fn per_core() -> SigningSlots {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SigningSlots::new(cores, SLOT_WAIT)
    }

    /// Runs `sign` on the blocking pool once a slot is free.
    pub async fn run<T, F>(&self, sign: F) -> Result<T, SigningError>
    where
        F: FnOnce() -> Result<T, TokenError> + Send + 'static,
        T: Send + 'static,
    {
        let _slot = match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            // Timed out, or (never: it is not closed) the semaphore closed.
            _ => return Err(SigningError::Busy),
        };
        match tokio::task::spawn_blocking(sign).await {
            Ok(result) => result.map_err(SigningError::Token),
            // The signing panicked: report it as a failed signing, never as the client's fault.
            Err(_) => Err(SigningError::Token(TokenError::Signing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_turns_signings_away_after_the_wait() {
        let slots = std::sync::Arc::new(SigningSlots::new(1, Duration::from_millis(50)));
        let (started, started_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .run(move || {
                        started.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(1)
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(slots.run(|| Ok(2)).await, Err(SigningError::Busy));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(1));
        // The slot is free again.
        assert_eq!(slots.run(|| Ok(3)).await, Ok(3));
        assert_eq!(
            slots.run(|| Err::<u8, _>(TokenError::Signing)).await,
            Err(SigningError::Token(TokenError::Signing))
        );
    }
}
