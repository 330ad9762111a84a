//! What jars took back, as stored: bans ([`Ban`]), revoked tickets ([`RevokedTicket`]), event
//! ticket cut-offs ([`TicketCutoff`]) and events ended early ([`EventEnd`]); the
//! [`SanctionStore`] trait both backends implement, with a version number every write moves
//! so that nodes notice each other's changes by reading one row, and load only the rows
//! written since.

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

/// One ticket, by its `jti` and the event it belongs to, revoked until it would have expired
/// anyway. Keyed by both: a revocation recorded against one event can neither reach nor block
/// a revocation of the same `jti` on another (issue 28). The nil event stands for "whichever
/// event": only an admin or the operator records one.
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

/// Sanctions as of one version: every one in force ([`Self::complete`]), or only those
/// written after the version a node had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanctionRows {
    pub version: i64,
    /// Every sanction in force (a whole load), not only the changes after a version. A whole
    /// load holds nothing expired; changes may (a ticket revoked after it expired).
    pub complete: bool,
    pub bans: Vec<Ban>,
    /// Bans lifted after the version a node had (changes only).
    pub lifted: Vec<i64>,
    /// How many distinct versions the rows carry (changes only): each write stamps its
    /// version on a row it writes, so fewer than the versions elapsed means a writer that
    /// stamps none (or rows written again since), and a whole load is needed to be sure.
    pub versions_seen: i64,
    pub tickets: Vec<RevokedTicket>,
    pub cutoffs: Vec<TicketCutoff>,
    pub ends: Vec<EventEnd>,
}

/// How long an event's early end is kept in [`SanctionRows`]: longer than any cached event
/// row can be (the last known row of an event is kept a day).
pub const ENDS_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// What [`SanctionStore::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Bans expired or lifted.
    pub bans: u64,
    /// Revoked tickets past their expiry.
    pub tickets: u64,
    /// Cut-offs of events that have ended (or are gone).
    pub cutoffs: u64,
    /// Early ends older than [`ENDS_KEPT`].
    pub ends: u64,
}

impl Purged {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.bans + self.tickets + self.cutoffs + self.ends
    }
}

/// Where revocations, bans and early ends are kept. Every write moves [`Self::version`] and
/// stamps the rows it writes with the new version (a lifted ban stays as a marked row until
/// purged), so that a node loads only what changed since the version it has. A purge deletes
/// rows and moves the *horizon* to the version it made: a node older than the horizon loads
/// everything again, which is how deletions reach it.
#[async_trait::async_trait]
pub trait SanctionStore: Send + Sync {
    /// The current version: it changes whenever any sanction does.
    async fn version(&self) -> Result<i64, StoreError>;
    /// With `since` `None` (or older than the horizon): every sanction in force at `now`
    /// (bans and revoked tickets not expired, cut-offs, ends of the last [`ENDS_KEPT`]),
    /// [`SanctionRows::complete`]. Otherwise the rows written after version `since`, with the
    /// bans lifted since. Either as of one snapshot, with its version.
    async fn load(
        &self,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<SanctionRows, StoreError>;
    /// Adds a ban and returns it with its id.
    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError>;
    /// Bans not expired at `now`, oldest first.
    async fn bans(&self, now: DateTime<Utc>) -> Result<Vec<Ban>, StoreError>;
    /// Removes a ban; false if there was none with that id.
    async fn remove_ban(&self, id: i64) -> Result<bool, StoreError>;
    /// Revokes one ticket of one event; false if it was revoked on that event already.
    async fn revoke_ticket(&self, ticket: RevokedTicket) -> Result<bool, StoreError>;
    /// Revokes every ticket of `cutoff.event` issued at or before `cutoff.before`.
    async fn revoke_event_tickets(&self, cutoff: TicketCutoff, by: i64) -> Result<(), StoreError>;
    /// Ends an event at `end.at`: its expiry becomes `end.at` unless it was earlier. False if
    /// there is no such event.
    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError>;
    /// Deletes what can no longer matter at `now`: bans expired or lifted, revoked tickets
    /// past their expiry, cut-offs of events that ended, early ends older than [`ENDS_KEPT`].
    /// When anything was deleted, moves the version and the horizon to it.
    async fn purge(&self, now: DateTime<Utc>) -> Result<Purged, StoreError>;
    /// Wakes `wake` whenever any connection commits a change, as long as `wake` lives
    /// (PostgreSQL: `LISTEN`). Stores that cannot push do nothing: they are polled.
    fn push_changes_to(&self, wake: std::sync::Weak<tokio::sync::Notify>) {
        let _ = wake;
    }
}
