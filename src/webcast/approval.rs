//! Approving a DJ for a relay — webcaster-relay's `/jars/connect` and jars' own
//! `/webcast/{mount}` alike: the password verified as a member's token or a guest's source
//! ticket ([`verify`]), the rule of [`rules::broadcast`] applied and the approval recorded as
//! the event's `connected_by` and `last_connected_at` ([`approve`]), which is what lets the
//! relay's own credentials through Icecast's `stream_auth` ([`rules::relay_may_source`]); live
//! state keeps the guest's ticket and the DJ's address with it, for the relay's source.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::domain::Target;
use crate::identity::{Identity, MemberError};
use crate::live::{Approval, LiveState};
use crate::rules::broadcast::{self, Broadcaster, Credential};
use crate::rules::sanctions::Party;
use crate::rules::{self, DenyReason};
use crate::sanctions::Sanctions;
use crate::store::{Connect, ConnectRequest, EventStore, StoreError};
use crate::tokens::{TokenError, TokenService, Verified};

/// What an approval reads and writes.
#[derive(Clone)]
pub struct Approver {
    pub tokens: Arc<TokenService>,
    pub identity: Arc<Identity>,
    pub store: Arc<dyn EventStore>,
    pub sanctions: Arc<Sanctions>,
    pub live: Arc<LiveState>,
    pub clock: SharedClock,
}

/// Why a DJ was not approved.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The member's token was refused, or their backend could not say who they are.
    #[error("{0}")]
    Member(MemberError),
    /// A rule refused.
    #[error("refused: {}", .0.label())]
    Denied(DenyReason),
    /// The event store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl ApprovalError {
    /// The refusal as the rules' reason (what the Icecast hooks would have said).
    pub fn reason(&self) -> DenyReason {
        match self {
            ApprovalError::Member(MemberError::Token(e)) => DenyReason::Token(*e),
            ApprovalError::Member(MemberError::Removed) => DenyReason::UserRemoved,
            ApprovalError::Member(MemberError::Identity(_)) => DenyReason::IdentityUnavailable,
            ApprovalError::Denied(r) => *r,
            ApprovalError::Store(_) => DenyReason::StoreUnavailable,
        }
    }

    /// Whether the refusal is jars' own trouble (a backend down), not the DJ's: worth
    /// retrying later.
    pub fn is_outage(&self) -> bool {
        matches!(
            self.reason(),
            DenyReason::IdentityUnavailable | DenyReason::StoreUnavailable
        ) || matches!(
            self,
            ApprovalError::Member(MemberError::Token(TokenError::KeySetStale))
        )
    }
}

/// What was approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approved {
    /// Recorded as the event's `connected_by`: the member, or the guest ticket's minter.
    pub connected_by: i64,
    pub at: DateTime<Utc>,
}

impl Approver {
    /// The DJ's password as a credential: a member's user token (its member still there) or a
    /// guest's source ticket (a listener ticket is the wrong kind).
    pub async fn verify(&self, password: &str) -> Result<Credential, ApprovalError> {
        match self.tokens.verify_any(password).await {
            // A removed member's token is refused here, before any other argument is read.
            Ok(Verified::User(claims)) => self
                .identity
                .current(claims)
                .map(Credential::Member)
                .map_err(ApprovalError::Member),
            Ok(Verified::Source(ticket)) => Ok(Credential::Guest(ticket)),
            Ok(Verified::Ticket(_)) => Err(ApprovalError::Member(MemberError::Token(
                TokenError::WrongKind,
            ))),
            Err(e) => Err(ApprovalError::Member(MemberError::Token(e))),
        }
    }

    /// Approves `credential` for event `id`, from `ip` (the DJ's address when jars sees it),
    /// as its member's or minter's rights and the sanctions stand now, and records the
    /// approval. Asked again before a relay reconnects, so a DJ who lost the right is never
    /// put back on air.
    pub async fn approve(
        &self,
        credential: &Credential,
        id: Uuid,
        ip: Option<&str>,
    ) -> Result<Approved, ApprovalError> {
        let approved = self.decide_and_record(credential, id, ip).await?;
        self.live.relay_approved(
            &Target::Event(id),
            Approval {
                member: approved.connected_by,
                ticket: credential.ticket().map(|(jti, iat)| (jti.to_string(), iat)),
                ip: ip.map(str::to_string),
            },
        );
        Ok(approved)
    }

    async fn decide_and_record(
        &self,
        credential: &Credential,
        id: Uuid,
        ip: Option<&str>,
    ) -> Result<Approved, ApprovalError> {
        let now = self.clock.now();
        let (by, terms) = match credential {
            Credential::Member(claims) => {
                let claims = self
                    .identity
                    .current(claims.clone())
                    .map_err(ApprovalError::Member)?;
                // Refused before anything is written: an ended event, a banned member or
                // address. The connect rule itself is checked by the write.
                let party = Party {
                    ip: ip.unwrap_or(""),
                    member: Some(claims.sub),
                    ticket: None,
                };
                rules::sanctions::admits(&self.sanctions.current(), &party, Some(id), now)
                    .map_err(ApprovalError::Denied)?;
                let terms = rules::connect_terms(&claims, now);
                return self
                    .record(id, claims.sub, terms, now, |row| {
                        rules::may_connect(&claims, row, now).map_err(DenyReason::from)
                    })
                    .await;
            }
            Credential::Guest(ticket) => {
                let minter = self
                    .identity
                    .standing(ticket.by)
                    .map_err(|e| ApprovalError::Member(MemberError::Identity(e)))?;
                let row = self
                    .store
                    .get_fresh(id)
                    .await
                    .map_err(ApprovalError::Store)?;
                let who = Broadcaster::Guest { ticket, minter };
                broadcast::may_broadcast(who, row.as_ref(), id, &self.sanctions.current(), ip, now)
                    .map_err(ApprovalError::Denied)?;
                (ticket.by, broadcast::guest_terms(ticket, minter, now))
            }
        };
        self.record(id, by, terms, now, |_| Err(DenyReason::NoSuchEvent))
            .await
    }

    /// Marks the event connected by `by` when `terms` admit its row (one statement); a refused
    /// write is explained by `why` from the row as read just after.
    async fn record(
        &self,
        id: Uuid,
        by: i64,
        terms: rules::ConnectTerms,
        at: DateTime<Utc>,
        why: impl FnOnce(Option<&crate::store::Event>) -> Result<(), DenyReason>,
    ) -> Result<Approved, ApprovalError> {
        let request = ConnectRequest { id, by, terms, at };
        match self
            .store
            .connect(request)
            .await
            .map_err(ApprovalError::Store)?
        {
            Connect::Done => Ok(Approved {
                connected_by: by,
                at,
            }),
            Connect::Refused(row) => {
                why(row.as_ref()).map_err(ApprovalError::Denied)?;
                // The row changed between the write and the read.
                Err(ApprovalError::Denied(DenyReason::NoSuchEvent))
            }
        }
    }
}
