//! Tokens: minting and verifying RS256 JWTs — user tokens ([`Claims`]) and listener tickets
//! ([`TicketClaims`]) — with a cache of verified tokens so a repeated token costs a hash lookup
//! instead of an RSA verify.
//!
//! Validation follows RFC 8725: the algorithm list is pinned to RS256 (never `none`, never an
//! HMAC keyed with the public key), `iss` and `exp` are required, `nbf` is honoured, and the
//! time checks (with the configured leeway) run on every use, cached or not.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use crate::clock::SharedClock;

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header};

use crate::expiring_map::ExpiringMap;
use crate::keys::{KeyError, KeySet, RemoteKeySource};
use crate::metrics::Metrics;

mod claims;
mod verify;

pub use crate::domain::TokenError;
use claims::classify;
pub use claims::{
    AccessLevel, Claims, SourceTicketClaims, TicketBinding, TicketClaims, Verified, MAX_TOKEN_LEN,
    SOURCE_TICKET_KIND, TICKET_KIND,
};
pub use verify::TokenPolicy;
use verify::{
    check_times, exp_leeway, header_kid, map_error, refuse_null_audience, seconds_after, Verifier,
};

/// Verified tokens cached at most.
const VERIFIED_CAPACITY: usize = 100_000;
/// What the verified tokens cached may weigh together ([`Verified::weight`]): by count alone,
/// tickets bound to long referers would take ~575 MiB at the capacity.
pub const VERIFIED_BUDGET_BYTES: usize = 64 << 20;

/// Whether a verification was answered from the cache; indexes `cache_counters`.
#[derive(Clone, Copy)]
enum CacheResult {
    Hit = 0,
    Miss = 1,
}

/// Mints and verifies tokens against a swappable key set: local key files, or a remote key set
/// (verify-only nodes) refreshed in the background and refetched when a token names an
/// unknown `kid`.
pub struct TokenService {
    current: ArcSwap<Verifier>,
    /// Only tokens whose signature verified get in, so keys are never an attacker's choice:
    /// a fast hasher is safe here.
    verified: ExpiringMap<Arc<str>, Verified, foldhash::fast::RandomState>,
    remote: Option<RemoteKeySource>,
    /// When the key set was last loaded or fetched successfully, by [`TokenService::clock`].
    loaded_at: Mutex<DateTime<Utc>>,
    /// Where `now` comes from for expiry, issue times and the key set's age.
    clock: SharedClock,
    /// When a remote fetch was last attempted (rate limit for unknown-`kid` refetches).
    last_fetch: Mutex<Option<DateTime<Utc>>>,
    metrics: Option<Arc<Metrics>>,
    /// `jars_token_cache_requests_total{result="hit"}` and `{result="miss"}`, resolved once.
    cache_counters: Option<[prometheus::IntCounter; 2]>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TokenService {
    pub fn new(keys: KeySet, policy: TokenPolicy) -> TokenService {
        crate::crypto::install();
        let clock = crate::clock::system();
        TokenService {
            current: ArcSwap::from_pointee(Verifier::new(Arc::new(keys), policy)),
            verified: ExpiringMap::with_budget(VERIFIED_CAPACITY, VERIFIED_BUDGET_BYTES),
            remote: None,
            loaded_at: Mutex::new(clock.now()),
            clock,
            last_fetch: Mutex::new(None),
            metrics: None,
            cache_counters: None,
        }
    }

    /// Reads `now` from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> TokenService {
        *lock(&self.loaded_at) = clock.now();
        self.clock = clock;
        self
    }

    /// The clock this service reads `now` from.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Counts cache hits and key set refreshes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> TokenService {
        self.cache_counters =
            Some(["hit", "miss"].map(|r| metrics.token_cache.with_label_values(&[r])));
        self.metrics = Some(metrics);
        self
    }

    /// Takes the key set from `source` (a verify-only node); call [`TokenService::refresh`]
    /// to fetch it.
    pub fn with_remote(mut self, source: RemoteKeySource) -> TokenService {
        self.remote = Some(source);
        self
    }

    pub fn remote(&self) -> Option<&RemoteKeySource> {
        self.remote.as_ref()
    }

    /// The policy in force.
    pub fn policy(&self) -> TokenPolicy {
        self.current.load().policy.clone()
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.current.load().keys.clone()
    }

    /// Whether this node can mint tokens.
    pub fn can_sign(&self) -> bool {
        self.current.load().keys.signing.is_some()
    }

    /// Replaces key set and policy at once (SIGHUP). Verified tokens are forgotten: they were
    /// checked against the old set.
    pub fn replace(&self, keys: KeySet, policy: TokenPolicy) {
        self.current
            .store(Arc::new(Verifier::new(Arc::new(keys), policy)));
        self.verified.clear();
        *lock(&self.loaded_at) = self.clock.now();
    }

    /// Replaces the policy, keeping the key set (a verify-only node's reload).
    pub fn replace_policy(&self, policy: TokenPolicy) {
        let keys = self.current.load().keys.clone();
        self.current.store(Arc::new(Verifier::new(keys, policy)));
        self.verified.clear();
    }

    /// Replaces the key set, keeping the policy (a remote refresh).
    fn set_keys(&self, keys: KeySet) {
        let policy = self.current.load().policy.clone();
        self.replace(keys, policy);
    }

    /// Time since a verify-only node last fetched its key set successfully; zero for local
    /// key files, which are always as fresh as the disk.
    pub fn key_set_age(&self) -> Duration {
        if self.remote.is_some() {
            let loaded_at = *lock(&self.loaded_at);
            (self.clock.now() - loaded_at)
                .to_std()
                .unwrap_or(Duration::ZERO)
        } else {
            Duration::ZERO
        }
    }

    /// A verify-only node whose key set is older than `max_stale`: it fails closed.
    pub fn is_stale(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|r| self.key_set_age() > r.max_stale)
    }

    /// Whether tokens can be verified now: some keys, not stale.
    pub fn is_ready(&self) -> bool {
        !self.current.load().keys.verifying.is_empty() && !self.is_stale()
    }

    /// Fetches the remote key set and installs it; on failure the last good set stays.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        *lock(&self.last_fetch) = Some(self.clock.now());
        let result = remote.fetch().await;
        if let Some(m) = &self.metrics {
            let label = if result.is_ok() { "ok" } else { "error" };
            m.key_set_refreshes.with_label_values(&[label]).inc();
        }
        match result {
            Ok(keys) => {
                self.set_keys(keys);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, age = ?self.key_set_age(), "key set refresh failed; keeping the last good set");
                Err(e)
            }
        }
    }

    /// A refetch for a token with an unknown `kid`, at most once per `refetch_min_interval`.
    async fn refetch_for_unknown_key(&self) -> bool {
        let Some(remote) = &self.remote else {
            return false;
        };
        let now = self.clock.now();
        let due = lock(&self.last_fetch).is_none_or(|t| {
            (now - t).to_std().unwrap_or(Duration::ZERO) >= remote.refetch_min_interval
        });
        due && self.refresh().await.is_ok()
    }

    /// Verifies a user token now, refetching a remote key set for an unknown `kid`.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        match self.verify_any(token).await? {
            Verified::User(c) => Ok(c),
            Verified::Ticket(_) | Verified::Source(_) => Err(TokenError::WrongKind),
        }
    }

    /// Verifies a token of any kind now, refetching a remote key set for an unknown `kid`.
    pub async fn verify_any(&self, token: &str) -> Result<Verified, TokenError> {
        if self.is_stale() {
            return Err(TokenError::KeySetStale);
        }
        match self.verify_any_at(token, self.clock.unix_now()) {
            Err(TokenError::UnknownKey) if self.refetch_for_unknown_key().await => {
                self.verify_any_at(token, self.clock.unix_now())
            }
            other => other,
        }
    }

    /// Mints a token for member `sub`, valid for `lifetime` (the policy's default when `None`).
    pub fn issue(
        &self,
        sub: i64,
        access_level: AccessLevel,
        lifetime: Option<Duration>,
    ) -> Result<(String, Claims), TokenError> {
        self.mint(|policy, now| Claims {
            iss: policy.issuer.clone(),
            sub,
            iat: now,
            exp: seconds_after(now, lifetime.unwrap_or(policy.lifetime)),
            access_level,
            nbf: None,
            jti: Some(uuid::Uuid::new_v4().to_string()),
            aud: policy.audience.clone(),
        })
    }

    /// Mints the claims `build` makes of the policy in force and `now` (Unix seconds), signed
    /// with the signing key, its `kid` in the header.
    fn mint<C: serde::Serialize>(
        &self,
        build: impl FnOnce(&TokenPolicy, i64) -> C,
    ) -> Result<(String, C), TokenError> {
        let current = self.current.load();
        let signing = current
            .keys
            .signing
            .as_ref()
            .ok_or(TokenError::NoSigningKey)?;
        let claims = build(&current.policy, self.clock.unix_now());
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &signing.encoding)
            .map_err(|_| TokenError::Signing)?;
        Ok((token, claims))
    }

    /// Mints a listener ticket for `event`, valid for `lifetime`.
    pub fn issue_ticket(
        &self,
        event: uuid::Uuid,
        lifetime: Duration,
        binding: TicketBinding,
    ) -> Result<(String, TicketClaims), TokenError> {
        self.mint(|policy, now| TicketClaims {
            iss: policy.issuer.clone(),
            sub: event.to_string(),
            kind: TICKET_KIND.into(),
            iat: now,
            exp: seconds_after(now, lifetime.max(Duration::from_secs(1))),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: None,
            ip: binding.ip,
            referer: binding.referer,
            max_listeners: binding.max_listeners,
            aud: policy.audience.clone(),
        })
    }

    /// Mints a source ticket for `event` on behalf of member `by`, valid for `lifetime`.
    pub fn issue_source_ticket(
        &self,
        event: uuid::Uuid,
        by: i64,
        lifetime: Duration,
    ) -> Result<(String, SourceTicketClaims), TokenError> {
        self.mint(|policy, now| SourceTicketClaims {
            iss: policy.issuer.clone(),
            sub: event.to_string(),
            kind: SOURCE_TICKET_KIND.into(),
            by,
            iat: now,
            exp: seconds_after(now, lifetime.max(Duration::from_secs(1))),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: None,
            aud: policy.audience.clone(),
        })
    }

    /// Verifies a user token as of `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Arc<Claims>, TokenError> {
        match self.verify_any_at(token, now)? {
            Verified::User(c) => Ok(c),
            Verified::Ticket(_) | Verified::Source(_) => Err(TokenError::WrongKind),
        }
    }

    /// Verifies a token of any kind as of `now` (Unix seconds).
    pub fn verify_any_at(&self, token: &str, now: i64) -> Result<Verified, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Decode);
        }
        let current = self.current.load();
        if let Some(verified) = self.verified.get(token) {
            self.count_cache(CacheResult::Hit);
            check_times(&current.policy, &verified, now)?;
            return Ok(verified);
        }
        self.count_cache(CacheResult::Miss);
        let kid = header_kid(token)?;
        let mut result = Err(TokenError::UnknownKey);
        for key in current.keys.candidates(kid.as_deref()) {
            match jsonwebtoken::decode::<serde_json::Value>(
                token,
                &key.decoding,
                &current.validation,
            ) {
                Ok(data) => {
                    result = refuse_null_audience(&current.policy, data.claims);
                    break;
                }
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    result = Err(TokenError::InvalidSignature);
                    continue;
                }
                Err(e) => return Err(map_error(e.kind())),
            }
        }
        let verified = classify(result?)?;
        check_times(&current.policy, &verified, now)?;
        // Cached until the token expires (plus leeway), never longer.
        let left = seconds_after(verified.exp(), exp_leeway(&current.policy, &verified))
            .saturating_sub(now);
        let weight = verified.weight(token.len());
        self.verified.insert_weighed(
            Arc::from(token),
            verified.clone(),
            Duration::from_secs(left.max(0) as u64),
            weight,
        );
        Ok(verified)
    }

    fn count_cache(&self, result: CacheResult) {
        if let Some(counters) = &self.cache_counters {
            counters[result as usize].inc();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
