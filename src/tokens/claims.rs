//! What a token says: a member's [`Claims`], a listener [`TicketClaims`] or a guest's
//! [`SourceTicketClaims`], and [`Verified`], the three kinds once a signature checked out.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::TokenError;

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

/// The `kind` claim of a source ticket (a guest DJ's permission to broadcast on one event).
pub const SOURCE_TICKET_KIND: &str = "source";

/// The claims of a source ticket: permission to source one event's mount, as the member who
/// minted it (`by`) would. Never a user token, never a listener ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTicketClaims {
    pub iss: String,
    /// The event id.
    pub sub: String,
    pub kind: String,
    /// The member who minted it (the event's owner or an admin).
    pub by: i64,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
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
    Source(Arc<SourceTicketClaims>),
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
            Verified::Source(t) => {
                size_of::<SourceTicketClaims>()
                    + t.iss.len()
                    + t.sub.len()
                    + t.kind.len()
                    + t.jti.len()
                    + text(&t.aud)
            }
        };
        OVERHEAD + token_len + claims
    }

    pub(super) fn exp(&self) -> i64 {
        match self {
            Verified::User(c) => c.exp,
            Verified::Ticket(t) => t.exp,
            Verified::Source(t) => t.exp,
        }
    }

    pub(super) fn nbf(&self) -> Option<i64> {
        match self {
            Verified::User(c) => c.nbf,
            Verified::Ticket(t) => t.nbf,
            Verified::Source(t) => t.nbf,
        }
    }
}

/// Decodes a verified payload into the kind it declares. A `kind` jars does not know, a
/// ticket with a numeric `sub` or a user token with a textual one are all malformed.
pub(super) fn classify(payload: serde_json::Value) -> Result<Verified, TokenError> {
    match payload.get("kind") {
        None | Some(serde_json::Value::Null) => serde_json::from_value::<Claims>(payload)
            .map(|c| Verified::User(Arc::new(c)))
            .map_err(|_| TokenError::Decode),
        Some(serde_json::Value::String(k)) if k == TICKET_KIND => {
            serde_json::from_value::<TicketClaims>(payload)
                .map(|t| Verified::Ticket(Arc::new(t)))
                .map_err(|_| TokenError::Decode)
        }
        Some(serde_json::Value::String(k)) if k == SOURCE_TICKET_KIND => {
            serde_json::from_value::<SourceTicketClaims>(payload)
                .map(|t| Verified::Source(Arc::new(t)))
                .map_err(|_| TokenError::Decode)
        }
        Some(_) => Err(TokenError::Decode),
    }
}
