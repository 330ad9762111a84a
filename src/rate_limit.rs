//! Rate limits: a GCRA (leaky bucket as a meter) per key, e.g. per client address and per user
//! name on `/jars/token`, so passwords cannot be guessed at line speed.

use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache;

/// Allows `per_minute` requests per key on average, with bursts of up to `burst`.
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    /// Per key: the theoretical arrival time of the next conforming request.
    next: Cache<String, Instant>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        RateLimiter {
            interval,
            tolerance: interval * burst.max(1),
            next: Cache::builder()
                .max_capacity(100_000)
                // An idle key has refilled its whole burst long before this.
                .time_to_idle(interval * burst.max(1) + Duration::from_secs(60))
                .build(),
        }
    }

    /// Counts one request for `key`; `Err(retry_after)` when it is over the limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut verdict = Ok(());
        self.next.entry_by_ref(key).and_compute_with(|entry| {
            let tat = entry.map(|e| *e.value()).unwrap_or(now).max(now);
            let new_tat = tat + self.interval;
            if new_tat - now > self.tolerance {
                verdict = Err(new_tat - now - self.tolerance);
                Op::Nop
            } else {
                Op::Put(new_tat)
            }
        });
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_refuses_with_a_retry_time() {
        let limiter = RateLimiter::new(10, 3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let retry = limiter.check("a").unwrap_err();
        assert!(
            retry > Duration::ZERO && retry <= Duration::from_secs(6),
            "{retry:?}"
        );
        // Other keys are unaffected.
        assert!(limiter.check("b").is_ok());
    }
}
