//! Where `/listen` sends a listener ([`place`]): the healthy server with the most free room
//! that carries the event's mount, counting listeners sent there and not yet arrived
//! ([`pending`]); and whether a server is fit to take listeners at all ([`health`]): its admin
//! API answers and its callbacks arrive, judged on the node's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Whether listeners go through jars' `/listen`: some server says where they reach it.
pub fn listens_through_jars(servers: &[crate::config::IcecastServer]) -> bool {
    servers.iter().any(|s| s.public_url.is_some())
}

/// One server as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub healthy: bool,
    /// It has a mount of the event (its relay runs, or its source is there).
    pub carries: bool,
    /// Listeners on it now.
    pub listeners: u32,
    /// Listeners sent there that have not arrived yet.
    pub pending: u32,
    /// The most listeners it takes (`max_listeners`).
    pub capacity: u32,
    /// Its free room counts this many times; 0: no new listeners.
    pub weight: u32,
    pub region: Option<&'a str>,
}

impl Candidate<'_> {
    /// Room for more listeners: capacity less those on it and on their way.
    pub fn free(&self) -> u32 {
        self.capacity
            .saturating_sub(self.listeners)
            .saturating_sub(self.pending)
    }
}

/// Where a listener goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// To the candidate at this index.
    To(usize),
    /// Servers carry the event, but none that answers has room (or takes new listeners).
    Full,
    /// Servers carry the event, but none of them is healthy.
    Unhealthy,
    /// No server carries the event's mount.
    NotOnAir,
}

/// The healthy candidate carrying the event with the most free room (times its weight),
/// among those in `region` when one of them has room; ties go to the first listed. Listeners
/// on their way count as there, so a burst spreads instead of landing on one server, and
/// servers fill towards being full at the same time.
pub fn place(candidates: &[Candidate<'_>], region: Option<&str>) -> Placement {
    let carrying: Vec<(usize, &Candidate<'_>)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.carries)
        .collect();
    if carrying.is_empty() {
        return Placement::NotOnAir;
    }
    if !carrying.iter().any(|(_, c)| c.healthy) {
        return Placement::Unhealthy;
    }
    let room: Vec<(usize, &Candidate<'_>)> = carrying
        .into_iter()
        .filter(|(_, c)| c.healthy && c.weight > 0 && c.free() > 0)
        .collect();
    let in_region: Vec<(usize, &Candidate<'_>)> = match region {
        Some(r) => room
            .iter()
            .filter(|(_, c)| c.region == Some(r))
            .copied()
            .collect(),
        None => Vec::new(),
    };
    let pool = if in_region.is_empty() {
        &room
    } else {
        &in_region
    };
    // `max_by_key` keeps the last of equals: compare the index reversed to keep the first.
    pool.iter()
        .max_by_key(|(i, c)| {
            (
                u64::from(c.free()) * u64::from(c.weight),
                std::cmp::Reverse(*i),
            )
        })
        .map_or(Placement::Full, |(i, _)| Placement::To(*i))
}

/// One listener sent to a server: when, and how many listeners that server had admitted
/// ([`crate::live::ServerTally::joins`]) then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub at: DateTime<Utc>,
    pub joins: u64,
}

/// How many of the listeners `sent` to a server are still on their way at `now`: those sent
/// within `ttl`, less the listeners the server admitted since the first of them (`joins`
/// now). A listener that never arrives stops counting after `ttl`.
pub fn pending(sent: &[Sent], joins: u64, now: DateTime<Utc>, ttl: Duration) -> u32 {
    let recent: Vec<&Sent> = sent.iter().filter(|s| within(s.at, now, ttl)).collect();
    let Some(first) = recent.iter().map(|s| s.joins).min() else {
        return 0;
    };
    let arrived = joins.saturating_sub(first);
    u32::try_from((recent.len() as u64).saturating_sub(arrived)).unwrap_or(u32::MAX)
}

fn within(at: DateTime<Utc>, now: DateTime<Utc>, d: Duration) -> bool {
    chrono::Duration::from_std(d).is_ok_and(|d| now - at < d)
}

/// What a server's health is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals<'a> {
    /// When its admin API last answered.
    pub answered: Option<DateTime<Utc>>,
    /// Its admin API's failures in a row since then.
    pub failures: u32,
    /// The last callback from it (on any node).
    pub heard: Option<DateTime<Utc>>,
    /// Listeners sent to it lately.
    pub sent: &'a [Sent],
}

/// When a server stops counting as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthLimits {
    /// Its admin API has not answered for this long (the checks stalled).
    pub admin_quiet: Duration,
    /// Its admin API failed this many checks in a row.
    pub failures: u32,
    /// A listener sent there is expected to arrive within this (see [`pending`]).
    pub arrival: Duration,
    /// This many listeners sent there did not arrive, and no callback came from it since…
    pub unanswered: u32,
    /// …among those sent within this window: older ones are forgiven, so a server written off
    /// is tried again.
    pub window: Duration,
}

/// Whether a server may take listeners, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Its admin API has not been asked yet.
    Unchecked,
    /// Its admin API failed `failures` checks in a row; it last answered at `since`.
    AdminFailing {
        failures: u32,
        since: Option<DateTime<Utc>>,
    },
    /// Its admin API last answered at `since`, too long ago.
    AdminQuiet {
        since: DateTime<Utc>,
    },
    /// `sent` listeners sent there since `since` never arrived, and it sent no callback since.
    CallbacksQuiet {
        sent: u32,
        since: DateTime<Utc>,
    },
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// A short label for `/readyz` and the log.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unchecked => "unchecked",
            Health::AdminFailing { .. } => "admin_failing",
            Health::AdminQuiet { .. } => "admin_quiet",
            Health::CallbacksQuiet { .. } => "callbacks_quiet",
        }
    }
}

/// How a server stands at `now`: unhealthy when its admin API fails or goes quiet, or when
/// listeners sent there stop arriving while it sends no callback (its Icecast cannot reach
/// jars, or it is not the server its entry says).
pub fn health(s: &Signals<'_>, now: DateTime<Utc>, limits: &HealthLimits) -> Health {
    if s.failures >= limits.failures {
        return Health::AdminFailing {
            failures: s.failures,
            since: s.answered,
        };
    }
    let Some(answered) = s.answered else {
        return Health::Unchecked;
    };
    if !within(answered, now, limits.admin_quiet) {
        return Health::AdminQuiet { since: answered };
    }
    let lost: Vec<DateTime<Utc>> = s
        .sent
        .iter()
        .map(|t| t.at)
        .filter(|&at| {
            !within(at, now, limits.arrival)
                && within(at, now, limits.window)
                && s.heard.is_none_or(|h| h < at)
        })
        .collect();
    match lost.iter().min() {
        Some(&since) if lost.len() as u32 >= limits.unanswered => Health::CallbacksQuiet {
            sent: lost.len() as u32,
            since,
        },
        _ => Health::Healthy,
    }
}

#[cfg(test)]
mod tests;
