//! What jars took back, as stored: the [`SanctionStore`] trait both backends implement, with a version number every write moves
//! so that nodes notice each other's changes by reading one row, and load only the rows
//! written since.

use chrono::{DateTime, Utc};

use super::StoreError;
pub use crate::domain::sanction::{
    Ban, EventEnd, NewBan, RevokedTicket, SanctionRows, TicketCutoff, ENDS_KEPT,
};

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
