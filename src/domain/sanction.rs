//! What jars took back, as plain rows: bans ([`Ban`]), revoked tickets ([`RevokedTicket`]),
//! event ticket cut-offs ([`TicketCutoff`]) and events ended early ([`EventEnd`]), and a load
//! of them ([`SanctionRows`]) — what the stores keep and the rules read.

use chrono::{DateTime, Utc};
use uuid::Uuid;

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
