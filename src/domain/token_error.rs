//! [`TokenError`]: why a token was refused, named as PyJWT named it.

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
