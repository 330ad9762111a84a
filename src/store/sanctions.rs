//! What jars took back, as stored: bans ([`Ban`]), revoked tickets ([`RevokedTicket`]), event
//! ticket cut-offs ([`TicketCutoff`]) and events ended early ([`EventEnd`]); the
//! [`SanctionStore`] trait both backends implement, with a version number every write moves
//! so that nodes notice each other's changes by reading one row.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// A ban of an address (or CIDR range) or a member, everywhere or on one event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ban {
    pub id: i64,
    /// An address or CIDR range, as given.
    pub ip: Option<String>,
    pub member: Option<i64>,
    /// The member's name when the ban was made, if it named one.
    pub member_name: Option<String>,
    pub event: Option<Uuid>,
    pub reason: Option<String>,
    pub created_by: i64,
    pub created: DateTime<Utc>,
    /// `None`: until removed.
    pub expires: Option<DateTime<Utc>>,
}

/// A ban to add.
#[derive(Debug, Clone)]
pub struct NewBan {
    pub ip: Option<String>,
    pub member: Option<i64>,
    pub member_name: Option<String>,
    pub event: Option<Uuid>,
    pub reason: Option<String>,
    pub created_by: i64,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

/// One ticket, by its `jti`, revoked until it would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedTicket {
    pub jti: String,
    pub event: Uuid,
    /// The ticket's own expiry: the row is useless after it.
    pub expires: DateTime<Utc>,
    pub created_by: i64,
    pub created: DateTime<Utc>,
}

/// Every ticket of `event` issued at or before `before` is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketCutoff {
    pub event: Uuid,
    pub before: DateTime<Utc>,
}

/// An event ended early, at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventEnd {
    pub event: Uuid,
    pub at: DateTime<Utc>,
}

/// Every sanction in force, as of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanctionRows {
    pub version: i64,
    pub bans: Vec<Ban>,
    pub tickets: Vec<RevokedTicket>,
    pub cutoffs: Vec<TicketCutoff>,
    pub ends: Vec<EventEnd>,
}

/// How long an event's early end is kept in [`SanctionRows`]: longer than any cached event
/// row can be (the last known row of an event is kept a day).
pub const ENDS_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// Where revocations, bans and early ends are kept. Every write moves [`Self::version`].
#[async_trait::async_trait]
pub trait SanctionStore: Send + Sync {
    /// The current version: it changes whenever any sanction does.
    async fn version(&self) -> Result<i64, StoreError>;
    /// Every sanction in force at `now` (bans and revoked tickets not yet expired, cut-offs,
    /// ends of the last [`ENDS_KEPT`]), with the version they are as of.
    async fn load(&self, now: DateTime<Utc>) -> Result<SanctionRows, StoreError>;
    /// Adds a ban and returns it with its id.
    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError>;
    /// Bans not expired at `now`, oldest first.
    async fn bans(&self, now: DateTime<Utc>) -> Result<Vec<Ban>, StoreError>;
    /// Removes a ban; false if there was none with that id.
    async fn remove_ban(&self, id: i64) -> Result<bool, StoreError>;
    /// Revokes one ticket; false if it was revoked already.
    async fn revoke_ticket(&self, ticket: RevokedTicket) -> Result<bool, StoreError>;
    /// Revokes every ticket of `cutoff.event` issued at or before `cutoff.before`.
    async fn revoke_event_tickets(&self, cutoff: TicketCutoff, by: i64) -> Result<(), StoreError>;
    /// Ends an event at `end.at`: its expiry becomes `end.at` unless it was earlier. False if
    /// there is no such event.
    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError>;
    /// Wakes `wake` whenever any connection commits a change, as long as `wake` lives
    /// (PostgreSQL: `LISTEN`). Stores that cannot push do nothing: they are polled.
    fn push_changes_to(&self, wake: std::sync::Weak<tokio::sync::Notify>) {
        let _ = wake;
    }
}
