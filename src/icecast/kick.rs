//! Taking access back from sessions Icecast already admitted: the [`Kicker`] seam between
//! what decides a session must go (revocations, bans, ended or expired events, lost rights)
//! and what asks an Icecast to drop it (its admin API, `killclient` / `killsource`).

use crate::icecast::live::{ListenerSession, SourceSession};
use crate::icecast::Target;
use crate::rules::DenyReason;

/// Drops live sessions on the Icecast that reported them. Calls return at once: retries,
/// backoff, logging and the `jars_kicks_total` samples are the implementation's business, so
/// a caller holding a lock or serving a request never waits on an Icecast.
pub trait Kicker: Send + Sync {
    /// Asks the Icecast at `session.server:session.port` to drop that listener.
    fn kick_listener(&self, session: &ListenerSession, reason: DenyReason);
    /// Asks the Icecast at `source.server:source.port` to drop the source of `target`.
    fn kick_source(&self, target: &Target, source: &SourceSession, reason: DenyReason);
}

/// A node that knows no Icecast's admin API: access can be refused at the next callback, but
/// live sessions cannot be dropped.
#[derive(Debug, Default)]
pub struct NoKicker;

impl Kicker for NoKicker {
    fn kick_listener(&self, _: &ListenerSession, _: DenyReason) {}
    fn kick_source(&self, _: &Target, _: &SourceSession, _: DenyReason) {}
}
