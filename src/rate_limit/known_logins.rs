//! [`KnownLogins`]: which networks have logged in as which user lately, so that a member's own
//! network is exempt from the failure limit on her name, and nobody can lock her out by
//! guessing at it. Kept in memory and, when given a file, there too, so that a restart (which
//! empties every limiter) does not hand a password spray the lockout it could not get before.
//!
//! The file holds one line per pair, `<32 hex digits> <expiry, Unix seconds>`: a digest of the
//! name and the network, never either in clear. It is rewritten without expired lines at start
//! and appended to when a pair is new (or its expiry a day older than a fresh one would be).

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use ring::digest::SHA256;

use super::Bucket;
use crate::net::client_network;

/// How long a successful login exempts its network from the failure limit on that user name.
pub const KNOWN_LOGIN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The file's name in the data directory.
pub const KNOWN_LOGINS_FILE: &str = "known-logins";

/// Pairs remembered at most (in memory and in the file); beyond, the least used go first and
/// their owners are limited like anyone.
const MAX_PAIRS: u64 = 100_000;

/// A pair is written again once its recorded expiry is this much older than a fresh one.
const REWRITE_AFTER: i64 = 24 * 3600;

/// The (user name, client network) pairs that logged in successfully within
/// [`KNOWN_LOGIN_TTL`], each with the Unix second it is forgotten.
pub struct KnownLogins {
    pairs: Cache<Bucket, i64>,
    file: Option<PathBuf>,
}

impl Default for KnownLogins {
    /// In memory only: empty after a restart.
    fn default() -> Self {
        KnownLogins {
            pairs: Cache::builder()
                .max_capacity(MAX_PAIRS)
                .time_to_live(KNOWN_LOGIN_TTL)
                .build(),
            file: None,
        }
    }
}

fn ttl_secs() -> i64 {
    KNOWN_LOGIN_TTL.as_secs() as i64
}

fn parse_line(line: &str) -> Option<(Bucket, i64)> {
    let (hex, expiry) = line.split_once(' ')?;
    if hex.len() != 2 * size_of::<Bucket>() {
        return None;
    }
    let mut key = Bucket::default();
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((key, expiry.trim().parse().ok()?))
}

fn line(key: &Bucket, expiry: i64) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex} {expiry}\n")
}

impl KnownLogins {
    fn key(user: &str, ip: IpAddr) -> Bucket {
        // The name's length first, so no name/address split can collide with another.
        let mut ctx = ring::digest::Context::new(&SHA256);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(client_network(ip).to_string().as_bytes());
        let digest = ctx.finish();
        Bucket::try_from(&digest.as_ref()[..size_of::<Bucket>()])
            .expect("SHA-256 is longer than a bucket")
    }

    /// The pairs kept in `file` and not expired at `now`; the file is rewritten without the
    /// expired ones (and created, mode 0600, if missing). Without its directory, or when it
    /// cannot be read or written (warned of), the pairs are kept in memory only.
    pub fn open(file: &Path, now: DateTime<Utc>) -> KnownLogins {
        let mut known = KnownLogins::default();
        if file.parent().is_some_and(|dir| !dir.is_dir()) {
            // No data directory (a verify-only node, keys named elsewhere): memory only.
            return known;
        }
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                tracing::warn!(path = %file.display(), error = %e,
                    "cannot read the known logins; a restart forgets them");
                return known;
            }
        };
        let now = now.timestamp();
        let mut live: Vec<(Bucket, i64)> = text
            .lines()
            .filter_map(parse_line)
            .filter(|(_, expiry)| *expiry > now)
            .collect();
        // The latest expiry of each pair, the freshest pairs kept when over the bound.
        live.sort_unstable_by_key(|(key, expiry)| (*key, std::cmp::Reverse(*expiry)));
        live.dedup_by_key(|(key, _)| *key);
        live.sort_unstable_by_key(|(_, expiry)| std::cmp::Reverse(*expiry));
        live.truncate(MAX_PAIRS as usize);
        let mut compacted = String::with_capacity(live.len() * 44);
        for (key, expiry) in &live {
            known.pairs.insert(*key, *expiry);
            compacted.push_str(&line(key, *expiry));
        }
        match crate::atomic_file::write_atomically(file, compacted.as_bytes(), 0o600) {
            Ok(()) => known.file = Some(file.to_path_buf()),
            Err(e) => tracing::warn!(path = %file.display(), error = %e,
                "cannot write the known logins; a restart forgets them"),
        }
        known
    }

    /// Records that `ip` logged in as `user` at `now`.
    pub fn remember(&self, user: &str, ip: IpAddr, now: DateTime<Utc>) {
        let key = Self::key(user, ip);
        let expiry = now.timestamp() + ttl_secs();
        let fresh_enough = self
            .pairs
            .get(&key)
            .is_some_and(|recorded| recorded >= expiry - REWRITE_AFTER);
        if fresh_enough {
            return;
        }
        self.pairs.insert(key, expiry);
        if let Some(file) = &self.file {
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .open(file)
                .and_then(|mut f| f.write_all(line(&key, expiry).as_bytes()));
            if let Err(e) = appended {
                tracing::warn!(path = %file.display(), error = %e,
                    "cannot record a known login; a restart forgets it");
            }
        }
    }

    /// Whether `ip`'s network logged in as `user` within [`KNOWN_LOGIN_TTL`] before `now`.
    pub fn knows(&self, user: &str, ip: IpAddr, now: DateTime<Utc>) -> bool {
        self.pairs
            .get(&Self::key(user, ip))
            .is_some_and(|expiry| expiry > now.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn known_logins_are_per_user_and_per_network() {
        let known = KnownLogins::default();
        let home: IpAddr = "2001:db8:0:1::5".parse().unwrap();
        known.remember("alice", home, t(0));
        assert!(known.knows("alice", home, t(0)));
        assert!(
            known.knows("alice", "2001:db8:0:1::99".parse().unwrap(), t(0)),
            "same /64"
        );
        assert!(!known.knows("alice", "2001:db8:0:2::5".parse().unwrap(), t(0)));
        assert!(!known.knows("bob", home, t(0)));
        assert!(
            !known.knows("alice", home, t(ttl_secs())),
            "forgotten after 30 days"
        );
    }

    /// Issue 28, item 11: after a restart a password spray answered the real member 429 until
    /// a refill race was won, since the known networks were in memory only.
    #[test]
    fn known_logins_survive_a_restart_in_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(KNOWN_LOGINS_FILE);
        let home: IpAddr = "198.51.100.7".parse().unwrap();
        let office: IpAddr = "192.0.2.1".parse().unwrap();
        let known = KnownLogins::open(&file, t(0));
        known.remember("alice", home, t(0));
        known.remember("alice", home, t(60));
        known.remember("bob", office, t(-ttl_secs() + 10));
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            written.lines().count(),
            2,
            "a repeat within a day is not written"
        );
        assert!(
            !written.contains("alice") && !written.contains("198.51"),
            "{written}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // The same pair twice (appended on two days): one line after the next start.
        known.remember("alice", home, t(2 * REWRITE_AFTER));
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);
        let again = KnownLogins::open(&file, t(20));
        assert!(again.knows("alice", home, t(20)));
        assert!(!again.knows("bob", office, t(20)), "expired");
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
        // Garbage lines are skipped, not fatal.
        std::fs::write(&file, "zz 1\nnot a line\n").unwrap();
        assert!(!KnownLogins::open(&file, t(20)).knows("alice", home, t(20)));
    }
}
