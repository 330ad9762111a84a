//! How a token is checked: the [`TokenPolicy`] from the configuration, the RS256-only
//! validation built from it, and the time checks with an explicit `now`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::{TokenError, Verified};
use crate::keys::KeySet;

/// Token policy from the configuration.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: Option<String>,
    pub leeway: Duration,
    pub lifetime: Duration,
}

/// The key set and policy in force; replaced as a whole on reload or key refresh.
pub(super) struct Verifier {
    pub(super) keys: Arc<KeySet>,
    pub(super) policy: TokenPolicy,
    pub(super) validation: Validation,
}

impl Verifier {
    pub(super) fn new(keys: Arc<KeySet>, policy: TokenPolicy) -> Verifier {
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

/// `time` plus `d` in Unix seconds, stopping at the end of time rather than wrapping (a token
/// may carry an `exp` near `i64::MAX`).
pub(super) fn seconds_after(time: i64, d: Duration) -> i64 {
    time.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `exp` and `nbf` against `now`, with the policy's leeway: on `nbf` for every token, on `exp`
/// for user tokens only. A ticket (listener or source) never admits after its `exp` whatever
/// the leeway: jars minted it for exactly that long, and Icecast's time limit ends there too.
pub(super) fn check_times(policy: &TokenPolicy, t: &Verified, now: i64) -> Result<(), TokenError> {
    if seconds_after(t.exp(), exp_leeway(policy, t)) <= now {
        return Err(TokenError::Expired);
    }
    if t.nbf()
        .is_some_and(|nbf| nbf > seconds_after(now, policy.leeway))
    {
        return Err(TokenError::Immature);
    }
    Ok(())
}

/// The leeway `t`'s `exp` gets: the policy's for a user token, none for a ticket.
pub(super) fn exp_leeway(policy: &TokenPolicy, t: &Verified) -> Duration {
    match t {
        Verified::User(_) => policy.leeway,
        Verified::Ticket(_) | Verified::Source(_) => Duration::ZERO,
    }
}

/// Reads the JOSE header, rejecting any algorithm but RS256 before a key is touched.
pub(super) fn header_kid(token: &str) -> Result<Option<String>, TokenError> {
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
pub(super) fn refuse_null_audience(
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

pub(super) fn map_error(kind: &ErrorKind) -> TokenError {
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
