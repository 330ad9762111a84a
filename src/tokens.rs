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
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::expiring_map::ExpiringMap;
use crate::keys::{KeyError, KeySet, RemoteKeySource};
use crate::metrics::Metrics;

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

/// Tokens longer than this are rejected before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A member's access level, as the original service wrote it into `access_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessLevel {
    #[serde(rename = "STANDARD_USER")]
    Standard,
    #[serde(rename = "ADMIN_USER")]
    Admin,
}

impl AccessLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Standard => "STANDARD_USER",
            AccessLevel::Admin => "ADMIN_USER",
        }
    }
}

/// The claims of a user token, compatible with the original JARS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The member id (a JSON number).
    pub sub: i64,
    pub iat: i64,
    pub exp: i64,
    pub access_level: AccessLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Written when an audience is configured; checked by the JWT library, not read back here
    /// (a token's `aud` may legitimately be a list).
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub aud: Option<String>,
}

impl Claims {
    pub fn is_admin(&self) -> bool {
        self.access_level == AccessLevel::Admin
    }
}

/// The `kind` claim of a listener ticket. User tokens carry no `kind`.
pub const TICKET_KIND: &str = "ticket";

/// The claims of a listener ticket: permission to listen to one event, possibly bound to an
/// address, a referer prefix and a number of simultaneous listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    pub iss: String,
    /// The event id.
    pub sub: String,
    pub kind: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_listeners: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub aud: Option<String>,
}

/// What a ticket is bound to, when minted.
#[derive(Debug, Clone, Default)]
pub struct TicketBinding {
    pub ip: Option<String>,
    pub referer: Option<String>,
    pub max_listeners: Option<u32>,
}

/// A verified token of either kind.
#[derive(Debug, Clone)]
pub enum Verified {
    User(Arc<Claims>),
    Ticket(Arc<TicketClaims>),
}

impl Verified {
    /// Roughly the bytes a cache entry for this, under a key of `token_len` bytes, holds: the
    /// key, the claims and their text, and the map's own overhead.
    pub fn weight(&self, token_len: usize) -> usize {
        const OVERHEAD: usize = 64;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let claims = match self {
            Verified::User(c) => size_of::<Claims>() + c.iss.len() + text(&c.jti) + text(&c.aud),
            Verified::Ticket(t) => {
                size_of::<TicketClaims>()
                    + t.iss.len()
                    + t.sub.len()
                    + t.kind.len()
                    + t.jti.len()
                    + text(&t.ip)
                    + text(&t.referer)
                    + text(&t.aud)
            }
        };
        OVERHEAD + token_len + claims
    }

    fn exp(&self) -> i64 {
        match self {
            Verified::User(c) => c.exp,
            Verified::Ticket(t) => t.exp,
        }
    }

    fn nbf(&self) -> Option<i64> {
        match self {
            Verified::User(c) => c.nbf,
            Verified::Ticket(t) => t.nbf,
        }
    }
}

/// Decodes a verified payload into the kind it declares. A `kind` jars does not know, a
/// ticket with a numeric `sub` or a user token with a textual one are all malformed.
fn classify(payload: serde_json::Value) -> Result<Verified, TokenError> {
    match payload.get("kind") {
        None | Some(serde_json::Value::Null) => serde_json::from_value::<Claims>(payload)
            .map(|c| Verified::User(Arc::new(c)))
            .map_err(|_| TokenError::Decode),
        Some(serde_json::Value::String(k)) if k == TICKET_KIND => {
            serde_json::from_value::<TicketClaims>(payload)
                .map(|t| Verified::Ticket(Arc::new(t)))
                .map_err(|_| TokenError::Decode)
        }
        Some(_) => Err(TokenError::Decode),
    }
}

/// Why a token was rejected; the names are PyJWT's, as the original service surfaced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("DecodeError")]
    Decode,
    #[error("InvalidSignatureError")]
    InvalidSignature,
    #[error("ExpiredSignatureError")]
    Expired,
    #[error("ImmatureSignatureError")]
    Immature,
    #[error("InvalidIssuerError")]
    InvalidIssuer,
    #[error("InvalidAudienceError")]
    InvalidAudience,
    #[error("InvalidAlgorithmError")]
    InvalidAlgorithm,
    /// A valid token of the wrong kind: a listener ticket where a user token is needed, or
    /// the other way round.
    #[error("InvalidTokenError")]
    WrongKind,
    /// No key of the current set has the token's `kid` (or the set is empty).
    #[error("unknown signing key")]
    UnknownKey,
    /// A verify-only node could not refresh its key set for longer than `max_stale`: it fails
    /// closed.
    #[error("key set stale")]
    KeySetStale,
    /// This node holds no private key.
    #[error("no signing key")]
    NoSigningKey,
    #[error("signing failed")]
    Signing,
}

impl TokenError {
    /// The PyJWT exception name for rejected tokens.
    pub fn name(self) -> &'static str {
        match self {
            TokenError::Decode => "DecodeError",
            TokenError::InvalidSignature | TokenError::UnknownKey => "InvalidSignatureError",
            TokenError::Expired => "ExpiredSignatureError",
            TokenError::Immature => "ImmatureSignatureError",
            TokenError::InvalidIssuer => "InvalidIssuerError",
            TokenError::InvalidAudience => "InvalidAudienceError",
            TokenError::InvalidAlgorithm => "InvalidAlgorithmError",
            TokenError::WrongKind => "InvalidTokenError",
            TokenError::NoSigningKey => "VerifyOnlyNode",
            TokenError::Signing | TokenError::KeySetStale => "ServiceUnavailable",
        }
    }
}

/// Token policy from the configuration.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: Option<String>,
    pub leeway: Duration,
    pub lifetime: Duration,
}

/// The key set and policy in force; replaced as a whole on reload or key refresh.
struct Verifier {
    keys: Arc<KeySet>,
    policy: TokenPolicy,
    validation: Validation,
}

impl Verifier {
    fn new(keys: Arc<KeySet>, policy: TokenPolicy) -> Verifier {
        let mut validation = Validation::new(Algorithm::RS256);
        // Time claims are checked by `check_times` with an explicit clock, for cache hits too.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[policy.issuer.as_str()]);
        // Without a configured audience the library refuses any `aud`, as PyJWT did: a token
        // minted for another service is not replayed here (RFC 8725 §3.9).
        if let Some(aud) = &policy.audience {
            validation.set_audience(&[aud.as_str()]);
        }
        Verifier {
            keys,
            policy,
            validation,
        }
    }
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
            Verified::Ticket(_) => Err(TokenError::WrongKind),
        }
    }

    /// Verifies a token of either kind now, refetching a remote key set for an unknown `kid`.
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
        let current = self.current.load();
        let signing = current
            .keys
            .signing
            .as_ref()
            .ok_or(TokenError::NoSigningKey)?;
        let now = self.clock.unix_now();
        let lifetime = lifetime.unwrap_or(current.policy.lifetime);
        let claims = Claims {
            iss: current.policy.issuer.clone(),
            sub,
            iat: now,
            exp: seconds_after(now, lifetime),
            access_level,
            nbf: None,
            jti: Some(uuid::Uuid::new_v4().to_string()),
            aud: current.policy.audience.clone(),
        };
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
        let current = self.current.load();
        let signing = current
            .keys
            .signing
            .as_ref()
            .ok_or(TokenError::NoSigningKey)?;
        let now = self.clock.unix_now();
        let claims = TicketClaims {
            iss: current.policy.issuer.clone(),
            sub: event.to_string(),
            kind: TICKET_KIND.into(),
            iat: now,
            exp: seconds_after(now, lifetime.max(Duration::from_secs(1))),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: None,
            ip: binding.ip,
            referer: binding.referer,
            max_listeners: binding.max_listeners,
            aud: current.policy.audience.clone(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &signing.encoding)
            .map_err(|_| TokenError::Signing)?;
        Ok((token, claims))
    }

    /// Verifies a user token as of `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Arc<Claims>, TokenError> {
        match self.verify_any_at(token, now)? {
            Verified::User(c) => Ok(c),
            Verified::Ticket(_) => Err(TokenError::WrongKind),
        }
    }

    /// Verifies a token of either kind as of `now` (Unix seconds).
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
        let left = seconds_after(verified.exp(), current.policy.leeway).saturating_sub(now);
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

/// `time` plus `d` in Unix seconds, stopping at the end of time rather than wrapping (a token
/// may carry an `exp` near `i64::MAX`).
fn seconds_after(time: i64, d: Duration) -> i64 {
    time.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `exp` and `nbf` against `now`, with the policy's leeway.
fn check_times(policy: &TokenPolicy, t: &Verified, now: i64) -> Result<(), TokenError> {
    if seconds_after(t.exp(), policy.leeway) <= now {
        return Err(TokenError::Expired);
    }
    if t.nbf()
        .is_some_and(|nbf| nbf > seconds_after(now, policy.leeway))
    {
        return Err(TokenError::Immature);
    }
    Ok(())
}

/// Reads the JOSE header, rejecting any algorithm but RS256 before a key is touched.
fn header_kid(token: &str) -> Result<Option<String>, TokenError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<serde_json::Value>,
        kid: Option<serde_json::Value>,
    }
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Decode);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .map_err(|_| TokenError::Decode)?;
    let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| TokenError::Decode)?;
    match header.alg {
        Some(serde_json::Value::String(alg)) if alg == "RS256" => {}
        Some(_) => return Err(TokenError::InvalidAlgorithm),
        None => return Err(TokenError::Decode),
    }
    match header.kid {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(kid)) => Ok(Some(kid)),
        Some(_) => Err(TokenError::Decode),
    }
}

/// `"aud": null` reads as no audience to the JWT library; PyJWT refused any `aud` key when
/// no audience was configured.
fn refuse_null_audience(
    policy: &TokenPolicy,
    claims: serde_json::Value,
) -> Result<serde_json::Value, TokenError> {
    match claims.get("aud") {
        Some(serde_json::Value::Null) if policy.audience.is_none() => {
            Err(TokenError::InvalidAudience)
        }
        _ => Ok(claims),
    }
}

fn map_error(kind: &ErrorKind) -> TokenError {
    match kind {
        // PyJWT named a malformed `aud` an invalid audience too.
        ErrorKind::InvalidClaimFormat(claim) if claim == "aud" => TokenError::InvalidAudience,
        ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            TokenError::InvalidSignature
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::InvalidAlgorithm,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::Immature,
        ErrorKind::InvalidIssuer => TokenError::InvalidIssuer,
        ErrorKind::InvalidAudience => TokenError::InvalidAudience,
        _ => TokenError::Decode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public key the original service served in its README (`GET /jars/pubkey`).
    pub const SEED_PUBKEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAm2CecPMulYLZeW7+Brf2
pVb14PWwgbv1ZnQjmp/RsFeu/dYbvR3XBIl4ozcH15LRE8g7ZTzhPYm4tQjYQn9u
NAELGjlU9It9VCSX7STdH+r3xTO5pQtBobWaXs8pv/Di3og2p4oGEWsxKxci2J08
NoUlKFL+x2LZ7Z+vc6h6QMdegOPht3kWZ/YrhDdvZT7jENo0fi7xRUiOl6FZi4gk
wBAR9gAG782jx0ZI4HargxETy1KwVl6BuFjFUQfu9kkDZxeq4j7+ID30lhqGhoxt
Ujz/YKP5Z9sGXB+Wk2UxA2vnbs9WAoVpgmIjjE+fRQC0MpSGRowPn/EkV/gCXFhS
MQIDAQAB
-----END PUBLIC KEY-----
";

    /// The token from the original README's `POST /jars/token` example (signed 2018).
    pub const SEED_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjE1MjI0OTk2OTIsInN1YiI6NzQ0OSwiYWNjZXNzX2xldmVsIjoiQURNSU5fVVNFUiIsImlhdCI6MTUyMjQxMzI5MiwiaXNzIjoiamFycyJ9.I5iPwJrPJ4mw-p0WBZxBxPFy4_U_LP0LTKZ9I_zXK7ygDhM30Ob3vIHLcQRzHkc-QoUsbIMr8o-V81s8QsdfN0VKqvEaaLQY67UlEpdTqlIEWYwjlvQFaCP6mgyVIxRXl0DUXu38XnKD54uGiqDBTs27Zg8AZJoPHJFyGg4DN20x4RYtzq02ssXeN21rJrwl6ApgRGaalYomx3fNUZuNEh0Me5oN7k0gGkkVIcKGgmW5Pml1uloN0nuSNCwek-Nd1AuwuMCrpx5S6YqZlROGqTIttwadV4LLU684I32V55tYZBhEQ9zUML68bcRKLtGq7-UlvnggXwf7QO_3_xSsbA";

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuer: "jars".into(),
            audience: None,
            leeway: Duration::from_secs(30),
            lifetime: Duration::from_secs(86400),
        }
    }

    fn seed_service() -> TokenService {
        TokenService::new(KeySet::from_public_pem(SEED_PUBKEY).unwrap(), policy())
    }

    #[test]
    fn seed_token_is_expired_today() {
        assert_eq!(
            seed_service()
                .verify_at(SEED_TOKEN, unix_now())
                .unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn seed_token_is_valid_at_its_own_iat() {
        let claims = seed_service().verify_at(SEED_TOKEN, 1522413292).unwrap();
        assert_eq!(claims.sub, 7449);
        assert_eq!(claims.access_level, AccessLevel::Admin);
        assert_eq!(claims.iss, "jars");
        assert_eq!(claims.exp, 1522499692);
    }

    #[test]
    fn cached_token_still_expires() {
        let s = seed_service();
        assert!(s.verify_at(SEED_TOKEN, 1522413292).is_ok());
        // Past exp + leeway: refused even though the signature check is cached.
        assert_eq!(
            s.verify_at(SEED_TOKEN, 1522499692 + 31).unwrap_err(),
            TokenError::Expired
        );
        // Within the leeway: still fine.
        assert!(s.verify_at(SEED_TOKEN, 1522499692 + 29).is_ok());
    }

    #[test]
    fn wrong_issuer_and_tampering_are_refused() {
        let mut p = policy();
        p.issuer = "other".into();
        let s = TokenService::new(KeySet::from_public_pem(SEED_PUBKEY).unwrap(), p);
        assert_eq!(
            s.verify_at(SEED_TOKEN, 1522413292).unwrap_err(),
            TokenError::InvalidIssuer
        );
        let s = seed_service();
        let mut parts: Vec<String> = SEED_TOKEN.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            br#"{"exp":1522499692,"sub":1,"access_level":"ADMIN_USER","iat":1522413292,"iss":"jars"}"#,
        );
        assert_eq!(
            s.verify_at(&parts.join("."), 1522413292).unwrap_err(),
            TokenError::InvalidSignature
        );
        assert_eq!(
            s.verify_at("not a token", unix_now()).unwrap_err(),
            TokenError::Decode
        );
        assert_eq!(
            s.verify_at(&format!("{SEED_TOKEN}.extra"), unix_now())
                .unwrap_err(),
            TokenError::Decode
        );
    }

    #[test]
    fn none_and_hmac_algorithms_are_refused() {
        let s = seed_service();
        let payload = URL_SAFE_NO_PAD.encode(
            br#"{"exp":9999999999,"sub":1,"access_level":"ADMIN_USER","iat":1,"iss":"jars"}"#,
        );
        for alg in ["none", "NONE", "HS256"] {
            let head = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let token = format!("{head}.{payload}.c2ln");
            assert_eq!(
                s.verify_at(&token, unix_now()).unwrap_err(),
                TokenError::InvalidAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn minted_tokens_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let s = TokenService::new(keys, policy());
        let (token, claims) = s.issue(42, AccessLevel::Standard, None).unwrap();
        assert_eq!(claims.exp - claims.iat, 86400);
        let verified = s.verify_at(&token, unix_now()).unwrap();
        assert_eq!(verified.sub, 42);
        assert_eq!(verified.access_level, AccessLevel::Standard);
        // The seed key set does not accept it.
        assert_eq!(
            seed_service().verify_at(&token, unix_now()).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn tickets_and_user_tokens_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let s = TokenService::new(keys, policy());
        let event = uuid::Uuid::new_v4();
        let (ticket, claims) = s
            .issue_ticket(
                event,
                Duration::from_secs(60),
                TicketBinding {
                    ip: Some("192.0.2.1".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(claims.sub, event.to_string());
        match s.verify_any_at(&ticket, unix_now()).unwrap() {
            Verified::Ticket(t) => {
                assert_eq!(t.kind, "ticket");
                assert_eq!(t.ip.as_deref(), Some("192.0.2.1"));
                assert_eq!(t.exp - t.iat, 60);
            }
            other => panic!("expected a ticket, got {other:?}"),
        }
        // A ticket is never a user token, cached or not.
        assert_eq!(
            s.verify_at(&ticket, unix_now()).unwrap_err(),
            TokenError::WrongKind
        );
        assert_eq!(
            s.verify_at(&ticket, unix_now()).unwrap_err(),
            TokenError::WrongKind
        );
        let (user, _) = s.issue(1, AccessLevel::Admin, None).unwrap();
        assert!(matches!(
            s.verify_any_at(&user, unix_now()).unwrap(),
            Verified::User(_)
        ));
    }

    #[test]
    fn a_flood_of_heavy_tickets_stays_within_the_cache_budget() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let mut s = TokenService::new(keys, policy());
        let budget = 40 * 1024;
        s.verified = ExpiringMap::with_budget(VERIFIED_CAPACITY, budget);
        // The attack: tickets bound to 2 KiB referers, ~6 KiB each in the cache.
        let referer = format!("https://radio.example/{}", "p".repeat(2048));
        for _ in 0..40 {
            let binding = TicketBinding {
                referer: Some(referer.clone()),
                ..Default::default()
            };
            let (ticket, _) = s
                .issue_ticket(uuid::Uuid::new_v4(), Duration::from_secs(600), binding)
                .unwrap();
            let verified = s.verify_any_at(&ticket, unix_now()).unwrap();
            assert!(verified.weight(ticket.len()) > ticket.len() + referer.len());
            assert!(s.verified.weight() <= budget, "{}", s.verified.weight());
        }
        assert!(s.verified.len() < 40, "by count alone all 40 would stay");
    }

    #[test]
    fn audience_is_checked_when_configured() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let mut p = policy();
        p.audience = Some("icecast".into());
        let with_aud = TokenService::new(keys, p);
        let (token, _) = with_aud.issue(1, AccessLevel::Standard, None).unwrap();
        assert!(with_aud.verify_at(&token, unix_now()).is_ok());
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let mut p = policy();
        p.audience = Some("elsewhere".into());
        let other = TokenService::new(keys, p);
        assert_eq!(
            other.verify_at(&token, unix_now()).unwrap_err(),
            TokenError::InvalidAudience
        );
    }

    /// The signing key of `keys` and a header naming it.
    fn signing_header(keys: &KeySet) -> (&crate::keys::SigningKey, Header) {
        let signing = keys.signing.as_ref().unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signing.kid.clone());
        (signing, header)
    }

    #[test]
    fn without_a_configured_audience_any_aud_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let (signing, header) = signing_header(&keys);
        let now = unix_now();
        let mint = |aud: serde_json::Value| {
            let mut claims = serde_json::json!({
                "iss": "jars", "sub": 7, "iat": now, "exp": now + 60,
                "access_level": "STANDARD_USER",
            });
            if !aud.is_boolean() {
                claims["aud"] = aud;
            }
            jsonwebtoken::encode(&header, &claims, &signing.encoding).unwrap()
        };
        let (same_keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let s = TokenService::new(same_keys, policy());
        assert!(s.verify_at(&mint(false.into()), now).is_ok(), "no aud");
        for aud in [
            serde_json::json!("other-service"),
            serde_json::json!(["other-service"]),
            serde_json::json!([]),
            serde_json::json!(null),
            serde_json::json!(42),
        ] {
            assert_eq!(
                s.verify_at(&mint(aud.clone()), now).unwrap_err(),
                TokenError::InvalidAudience,
                "{aud}"
            );
        }
        // With an audience configured, a token for it passes and others do not.
        let mut p = policy();
        p.audience = Some("other-service".into());
        let (same_keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let s = TokenService::new(same_keys, p);
        assert!(s.verify_at(&mint("other-service".into()), now).is_ok());
        assert_eq!(
            s.verify_at(&mint("elsewhere".into()), now).unwrap_err(),
            TokenError::InvalidAudience
        );
    }

    #[test]
    fn an_exp_at_the_end_of_time_neither_wraps_nor_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
        let (signing, header) = signing_header(&keys);
        let now = unix_now();
        let claims = Claims {
            iss: "jars".into(),
            sub: 7,
            iat: now,
            exp: i64::MAX - 1,
            access_level: AccessLevel::Standard,
            nbf: None,
            jti: None,
            aud: None,
        };
        let token = jsonwebtoken::encode(&header, &claims, &signing.encoding).unwrap();
        let s = TokenService::new(keys, policy());
        // exp + leeway used to overflow: a panic in debug builds, "expired" in release.
        assert_eq!(s.verify_at(&token, now).unwrap().exp, i64::MAX - 1);
        assert!(
            s.verify_at(&token, now).is_ok(),
            "and again, from the cache"
        );
        // Minting with an endless lifetime stops at the end of time too.
        let (_, claims) = s
            .issue(7, AccessLevel::Standard, Some(Duration::MAX))
            .unwrap();
        assert_eq!(claims.exp, i64::MAX);
        let ticket = TicketBinding::default();
        let (_, t) = s
            .issue_ticket(uuid::Uuid::nil(), Duration::MAX, ticket)
            .unwrap();
        assert_eq!(t.exp, i64::MAX);
    }
}
