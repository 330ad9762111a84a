//! Who may go live on an event through a relay — `/jars/connect` (webcaster-relay's approval)
//! and jars' own `/webcast/{mount}`: a member by their
//! token ([`super::may_connect`]) or a guest by a source ticket
//! ([`super::sanctions::may_source_with_ticket`]), both under the sanctions in force. The
//! direct-to-Icecast path (`stream_auth`) asks the same two rules, so a guest has the same
//! rights on either path; once live, a relayed show is a source like any other and
//! [`super::sanctions::source_must_go`] says when it must stop.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sanctions::{self, Party, SanctionSet};
use super::{ConnectTerms, DenyReason, Standing};
use crate::domain::Event;
use crate::tokens::{AccessLevel, Claims, SourceTicketClaims};

/// A DJ's verified credential: a member's token (with their current rights) or a guest's
/// source ticket.
#[derive(Debug, Clone)]
pub enum Credential {
    Member(Arc<Claims>),
    Guest(Arc<SourceTicketClaims>),
}

impl Credential {
    /// The member the show is broadcast for: the token's, or the ticket's minter; what an
    /// approval records as `connected_by`.
    pub fn member(&self) -> i64 {
        match self {
            Credential::Member(c) => c.sub,
            Credential::Guest(t) => t.by,
        }
    }

    /// The source ticket's id and issue time (Unix seconds), for a guest.
    pub fn ticket(&self) -> Option<(&str, i64)> {
        match self {
            Credential::Member(_) => None,
            Credential::Guest(t) => Some((&t.jti, t.iat)),
        }
    }
}

/// Who asks to go live, as their identity backend stands now.
#[derive(Debug, Clone, Copy)]
pub enum Broadcaster<'a> {
    /// A member, with their current rights ([`super::current_claims`]).
    Member(&'a Claims),
    /// A guest's source ticket, and where its minter stands now.
    Guest {
        ticket: &'a SourceTicketClaims,
        minter: Standing,
    },
}

/// Whether `who` may go live on event `target` (its row: `event`) at `now`, from address `ip`
/// (`None`: not known, e.g. behind webcaster-relay): the connect rule for a member, the source
/// ticket rule for a guest, then the sanctions (an early end, a ban on the member, the
/// minter or the address, a revoked ticket).
pub fn may_broadcast(
    who: Broadcaster<'_>,
    event: Option<&Event>,
    target: Uuid,
    set: &SanctionSet,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    let party = match who {
        Broadcaster::Member(claims) => {
            super::may_connect(claims, event.filter(|e| e.id == target), now)?;
            Party {
                ip: ip.unwrap_or(""),
                member: Some(claims.sub),
                ticket: None,
            }
        }
        Broadcaster::Guest { ticket, minter } => {
            sanctions::may_source_with_ticket(ticket, minter, event, target, now)?;
            Party {
                ip: ip.unwrap_or(""),
                member: Some(ticket.by),
                ticket: Some((&ticket.jti, ticket.iat)),
            }
        }
    };
    sanctions::admits(set, &party, Some(target), now)
}

/// The conditions a store checks while it records a guest's approval
/// ([`crate::store::EventStore::connect`]): the event unexpired at `now`, and — unless the
/// minter is an admin, or their backend is not asked — created by the minter.
pub fn guest_terms(
    ticket: &SourceTicketClaims,
    minter: Standing,
    now: DateTime<Utc>,
) -> ConnectTerms {
    // A backend that is not asked leaves the ticket to speak for its minter.
    let admin = match minter {
        Standing::Present { access_level, .. } => access_level == AccessLevel::Admin,
        Standing::Unasked => true,
        Standing::Removed => false,
    };
    ConnectTerms {
        unexpired_at: now,
        owner: (!admin).then_some(ticket.by),
    }
}

#[cfg(test)]
mod tests;
