//! Rate limits: a GCRA (leaky bucket as a meter) per key, e.g. per client network and per user
//! name on `/jars/token`, so passwords cannot be guessed at line speed, and per member on
//! `/jars/create`, `/jars/ticket` and `/jars/tickets/revoke`, so one account cannot flood the
//! store or the signer.
//!
//! # Security
//! A key is kept as a 16-byte digest, so a client's 16 KiB user name costs 16 bytes per entry
//! and cannot balloon the table. Address keys (`ip:<address>`) count per client network
//! ([`client_network`]): an IPv6 client cannot escape its limit by walking its /64.
//!
//! On `/jars/token` only failures count, per address and per name (OWASP): a studio behind
//! one address, or every member behind a proxy, logs in without a shared budget.
//! [`KnownLogins`] remembers which networks have logged in as which user (in a file of the
//! data directory too), so a member's own address is exempt from the failure limit on her
//! name: a third party cannot lock her out, not even across a restart.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache;
use ring::digest::{digest, SHA256};

use crate::net::client_network;

mod known_logins;
pub use known_logins::{KnownLogins, KNOWN_LOGINS_FILE, KNOWN_LOGIN_TTL};

/// The prefix of keys that name a client address (`ip:203.0.113.5`).
pub const ADDRESS_PREFIX: &str = "ip:";

/// What a key is counted under: SHA-256 of the key, truncated; an attacker cannot make two
/// keys share a count.
type Bucket = [u8; 16];

fn bucket(key: &str) -> Bucket {
    let address = key
        .strip_prefix(ADDRESS_PREFIX)
        .and_then(|a| a.parse::<IpAddr>().ok());
    let digest = match address {
        Some(ip) => digest(
            &SHA256,
            format!("{ADDRESS_PREFIX}{}", client_network(ip)).as_bytes(),
        ),
        None => digest(&SHA256, key.as_bytes()),
    };
    Bucket::try_from(&digest.as_ref()[..size_of::<Bucket>()])
        .expect("SHA-256 is longer than a bucket")
}

/// Allows a number of requests per key and period on average, with bursts of up to `burst`.
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    /// Per key: the theoretical arrival time of the next conforming request.
    next: Cache<Bucket, Instant>,
}

impl RateLimiter {
    /// `per_minute` requests per key per minute, bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::per(Duration::from_secs(60), per_minute, burst)
    }

    /// `count` requests per key per `period`, bursts of up to `burst`.
    pub fn per(period: Duration, count: u32, burst: u32) -> RateLimiter {
        let interval = period / count.max(1);
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

    /// Counts one request for `key` (`ip:<address>` for a client, counted per its network;
    /// any other text as it is); `Err(retry_after)` when it is over the limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut verdict = Ok(());
        self.next.entry(bucket(key)).and_compute_with(|entry| {
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

    /// Gives back one request counted for `key` by [`RateLimiter::check`]: for a limit that
    /// should count only some outcomes (failed logins), counted up front so that concurrent
    /// attempts cannot all slip under it.
    pub fn refund(&self, key: &str) {
        let now = Instant::now();
        self.next
            .entry(bucket(key))
            .and_compute_with(|entry| match entry {
                Some(e) => match e.into_value().checked_sub(self.interval) {
                    Some(tat) if tat > now => Op::Put(tat),
                    _ => Op::Remove,
                },
                None => Op::Nop,
            });
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

    #[test]
    fn an_hourly_limit_refills_one_request_per_interval() {
        let limiter = RateLimiter::per(Duration::from_secs(3600), 60, 2);
        assert!(limiter.check("member:1").is_ok());
        assert!(limiter.check("member:1").is_ok());
        let retry = limiter.check("member:1").unwrap_err();
        // One event a minute: the next is due within that minute, not within seconds.
        assert!(
            retry > Duration::from_secs(50) && retry <= Duration::from_secs(60),
            "{retry:?}"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let limiter = RateLimiter::new(10, 2);
        // Every request from a fresh address of one /64: the second address is already over.
        assert!(limiter.check("ip:2001:db8:0:1::1").is_ok());
        assert!(limiter.check("ip:2001:db8:0:1::2").is_ok());
        assert!(limiter
            .check("ip:2001:db8:0:1:ffff:ffff:ffff:ffff")
            .is_err());
        assert!(limiter.check("ip:2001:db8:0:2::1").is_ok(), "another /64");
        assert!(limiter.check("ip:192.0.2.1").is_ok());
        assert!(limiter.check("ip:::ffff:192.0.2.1").is_ok());
        assert!(
            limiter.check("ip:192.0.2.1").is_err(),
            "mapped IPv4 is IPv4"
        );
        assert!(
            limiter.check("ip:192.0.2.2").is_ok(),
            "IPv4 stays per address"
        );
    }

    #[test]
    fn long_names_are_kept_as_fixed_size_keys_and_still_counted_apart() {
        let limiter = RateLimiter::new(10, 1);
        let long = "n".repeat(16 * 1024);
        let other = format!("{}m", &long[1..]);
        assert!(limiter.check(&format!("user:{long}")).is_ok());
        assert!(limiter.check(&format!("user:{other}")).is_ok(), "own count");
        assert!(limiter.check(&format!("user:{long}")).is_err());
        limiter.next.run_pending_tasks();
        assert_eq!(limiter.next.entry_count(), 2);
        // What the table holds per name: 16 bytes, not the 16 KiB the client sent.
        assert!(limiter
            .next
            .iter()
            .all(|(k, _)| std::mem::size_of_val(&*k) == 16));
    }

    #[test]
    fn a_refund_gives_back_one_request() {
        let limiter = RateLimiter::new(10, 2);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
        limiter.refund("a");
        assert!(limiter.check("a").is_ok(), "one slot back");
        assert!(limiter.check("a").is_err());
        limiter.refund("never-seen");
        assert!(limiter.check("never-seen").is_ok());
    }
}
