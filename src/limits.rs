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

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not an address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{s}\": prefix must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        // Compare IPv4-mapped IPv6 peers (::ffff:a.b.c.d) as IPv4.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// rightmost address of `X-Forwarded-For` that is not itself a trusted proxy. A client cannot
/// choose its address by sending the header: only trusted peers' headers are read.
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded_for: &[&str],
    trusted: &[IpNet],
) -> std::net::IpAddr {
    if !trusted.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .rev()
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .find(|ip| !trusted.iter().any(|n| n.contains(*ip)))
        .unwrap_or(peer)
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_ranges() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("proxy".parse::<IpNet>().is_err());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = ["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_address(ip("198.51.100.7"), &["1.2.3.4"], &trusted),
            ip("198.51.100.7")
        );
        // Trusted proxy chain: the rightmost untrusted address; spoofed left entries lose.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                &["6.6.6.6, 203.0.113.5, 10.0.0.2"],
                &trusted
            ),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &[], &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &["garbage"], &trusted),
            ip("127.0.0.1")
        );
    }
}
