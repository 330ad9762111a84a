//! Listener licence caps over several servers and nodes: how many listeners a scope (the
//! station, one event) has over the cluster ([`cluster_total`]), whether one more may join
//! ([`within_caps`]), and which servers' counts a node vouches for ([`vouches_for`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::DenyReason;
use crate::tokens::Claims;

/// Whether `claims` may set or change an event's own listener cap: admins only (a cap is the
/// station's licence terms, not the show's).
pub fn may_cap_events(claims: &Claims) -> bool {
    claims.is_admin()
}

/// An event cap that is neither a whole number from 1 to the most a row holds nor (where a cap
/// may be removed) empty or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotACap;

/// An event cap as typed (`/jars/create`, `/jars/events/{id}/max_listeners`, the CLI): a whole
/// number from 1 to `max`, or (`clearable`) empty or `none` for no cap.
pub fn event_cap(text: &str, max: u32, clearable: bool) -> Result<Option<u32>, NotACap> {
    let text = text.trim();
    if clearable && (text.is_empty() || text.eq_ignore_ascii_case("none")) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(NotACap),
    }
}

/// Listeners of one scope over the cluster: per server, the largest count any node gives
/// (`mine`: this node's own, fresh; `others`: the other nodes' as the store last had them),
/// summed over servers. Nodes that each see a server whole (by its callbacks, or a resync of
/// it) give the same count, so the largest is the truth or a little above it; summing would
/// count such a server twice.
pub fn cluster_total<'a>(
    mine: impl IntoIterator<Item = (&'a str, u32)>,
    others: impl IntoIterator<Item = (&'a str, u32)>,
) -> u64 {
    let mut by_server: Vec<(&str, u32)> = Vec::new();
    for (server, n) in mine.into_iter().chain(others) {
        match by_server.iter_mut().find(|(s, _)| *s == server) {
            Some((_, most)) => *most = (*most).max(n),
            None => by_server.push((server, n)),
        }
    }
    by_server.iter().map(|(_, n)| u64::from(*n)).sum()
}

/// Whether a server's listeners stop counting against the caps: its admin API has failed
/// `failures` checks in a row (at least `min_failures`) and last answered at `answered`, at
/// least `after` before `now` (or never). A dead Icecast sends no `listener_remove`: without this
/// its listeners, reconnecting to another server, would count twice and be refused.
pub fn presumed_gone(
    answered: Option<DateTime<Utc>>,
    failures: u32,
    min_failures: u32,
    now: DateTime<Utc>,
    after: Duration,
) -> bool {
    failures >= min_failures
        && match (answered, chrono::Duration::from_std(after)) {
            (Some(a), Ok(after)) => now - a >= after,
            (None, _) => true,
            (Some(_), Err(_)) => false,
        }
}

/// One cap and the listeners it covers, the joining one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capped {
    pub cap: u32,
    pub total: u64,
}

/// Whether a listener may join: `station` is the station's licence, `event` the event's own
/// cap, each with its cluster total counting this listener. The station's is checked first.
pub fn within_caps(station: Option<Capped>, event: Option<Capped>) -> Result<(), DenyReason> {
    let over = |c: Option<Capped>| c.is_some_and(|c| c.total > u64::from(c.cap));
    if over(station) {
        return Err(DenyReason::StationFull);
    }
    if over(event) {
        return Err(DenyReason::EventFull);
    }
    Ok(())
}

/// Whether a node vouches for its counts of a server: it heard a callback from it within
/// `hold` (`mine`), or no other node did (`others`: the last callback another node heard).
/// A node that only read the server's listing (a resync) while its callbacks go to another
/// node leaves it to that node, whose counts are current.
pub fn vouches_for(
    mine: Option<DateTime<Utc>>,
    others: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    hold: Duration,
) -> bool {
    let lately = |heard: Option<DateTime<Utc>>| match (heard, chrono::Duration::from_std(hold)) {
        (Some(h), Ok(hold)) => now - h < hold,
        _ => false,
    };
    lately(mine) || !lately(others)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_counts_once_at_the_largest_count_any_node_gives() {
        for (mine, others, want) in [
            (vec![], vec![], 0),
            (vec![("a:1", 5)], vec![], 5),
            (vec![("a:1", 5)], vec![("b:1", 7)], 12),
            // Two nodes that both know a:1 (one by callbacks, one by a resync).
            (vec![("a:1", 5)], vec![("a:1", 4), ("b:1", 7)], 12),
            (vec![("a:1", 5)], vec![("a:1", 9)], 9),
            (vec![("a:1", 0), ("b:1", 3)], vec![("c:1", 1)], 4),
        ] {
            assert_eq!(
                cluster_total(mine.clone(), others.clone()),
                want,
                "{mine:?} {others:?}"
            );
        }
    }

    #[test]
    fn a_server_failing_its_checks_long_enough_is_presumed_gone() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let s = |secs| t + chrono::Duration::seconds(secs);
        let after = Duration::from_secs(30);
        for (answered, failures, now, want) in [
            (Some(t), 0, s(100), false),
            (Some(t), 1, s(100), false),
            (Some(t), 2, s(29), false),
            (Some(t), 2, s(30), true),
            (None, 2, t, true),
            (None, 1, t, false),
        ] {
            assert_eq!(
                presumed_gone(answered, failures, 2, now, after),
                want,
                "{answered:?} {failures} {now}"
            );
        }
    }

    #[test]
    fn event_caps_as_typed() {
        for (text, clearable, want) in [
            ("25", false, Ok(Some(25))),
            (" 25 ", true, Ok(Some(25))),
            ("none", true, Ok(None)),
            ("", true, Ok(None)),
            ("none", false, Err(NotACap)),
            ("0", true, Err(NotACap)),
            ("-1", true, Err(NotACap)),
            ("1001", true, Err(NotACap)),
            ("1000", true, Ok(Some(1000))),
            ("2.5", true, Err(NotACap)),
        ] {
            assert_eq!(event_cap(text, 1000, clearable), want, "{text:?}");
        }
    }

    #[test]
    fn the_station_licence_then_the_events_cap() {
        let c = |cap, total| Some(Capped { cap, total });
        for (station, event, want) in [
            (None, None, Ok(())),
            (c(20, 20), None, Ok(())),
            (c(20, 21), None, Err(DenyReason::StationFull)),
            (None, c(5, 6), Err(DenyReason::EventFull)),
            (c(20, 21), c(5, 6), Err(DenyReason::StationFull)),
            (c(20, 6), c(5, 5), Ok(())),
            (c(20, 6), c(5, 6), Err(DenyReason::EventFull)),
        ] {
            assert_eq!(within_caps(station, event), want, "{station:?} {event:?}");
        }
    }

    #[test]
    fn a_node_vouches_for_servers_it_heard_lately_or_nobody_did() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let s = |secs| Some(t + chrono::Duration::seconds(secs));
        let hold = Duration::from_secs(600);
        for (mine, others, now, want) in [
            (s(0), None, t, true),
            (s(0), s(0), t + chrono::Duration::seconds(599), true),
            // Another node hears it now: that node's counts are current, this one's are not.
            (s(0), s(500), t + chrono::Duration::seconds(600), false),
            (None, s(0), t, false),
            // Nobody heard it lately (a node just restarted, or the server is idle): what the
            // node read of it counts.
            (None, None, t, true),
            (s(0), s(0), t + chrono::Duration::seconds(700), true),
        ] {
            assert_eq!(
                vouches_for(mine, others, now, hold),
                want,
                "{mine:?} {others:?} {now}"
            );
        }
    }
}
