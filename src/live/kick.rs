//! Taking access back from sessions Icecast already admitted: the [`Kicker`] seam between
//! what decides a session must go (revocations, bans, ended or expired events, lost rights, a
//! drop asked for by hand) and what asks an Icecast to drop it (its admin API, `killclient` /
//! `killsource`).

use crate::domain::{DenyReason, Session};

/// Drops live sessions on the Icecast that reported them. Calls return at once: retries,
/// backoff, logging and the `jars_kicks_total` samples are the implementation's business, so
/// a caller holding a lock or serving a request never waits on an Icecast.
pub trait Kicker: Send + Sync {
    /// Asks the Icecast at `session.key.server` to drop that listener or source.
    fn kick(&self, session: &Session, reason: DenyReason);
}

/// A node that knows no Icecast's admin API: access can be refused at the next callback, but
/// live sessions cannot be dropped.
#[derive(Debug, Default)]
pub struct NoKicker;

impl Kicker for NoKicker {
    fn kick(&self, _: &Session, _: DenyReason) {}
}
