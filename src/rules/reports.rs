//! Who may read an event's listening figures ([`may_see_stats`]), and when a stored session
//! whose end never came is over for good ([`session_is_lost`]).

use chrono::{DateTime, Duration, Utc};

use crate::store::Event;
use crate::tokens::Claims;

/// A session with a timelimit is over this long after it, whatever Icecast said.
pub const TIMELIMIT_GRACE: Duration = Duration::seconds(60);

/// Whether an open session row that this node does not see live, started at `started` with
/// the timelimit (seconds) jars answered, can no longer end at `now`: older than its
/// timelimit plus [`TIMELIMIT_GRACE`], or than `lost_after` (whichever is shorter).
pub fn session_is_lost(
    started: DateTime<Utc>,
    timelimit: Option<u64>,
    lost_after: Duration,
    now: DateTime<Utc>,
) -> bool {
    let plausible = match timelimit {
        Some(t) => (Duration::seconds(t.min(i64::MAX as u64 / 2_000) as i64) + TIMELIMIT_GRACE)
            .min(lost_after),
        None => lost_after,
    };
    now - started > plausible
}

/// An event's listening stats are its owner's and the admins', expired or not (a show is
/// reported on after it ended).
pub fn may_see_stats(member: &Claims, event: &Event) -> bool {
    event.created_by == member.sub || member.is_admin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::{member, t0};

    #[test]
    fn a_session_is_lost_past_its_timelimit_and_grace_or_lost_after() {
        let day = Duration::hours(24);
        let s = Duration::seconds;
        // No timelimit: lost_after decides.
        assert!(!session_is_lost(t0(), None, day, t0() + day));
        assert!(session_is_lost(t0(), None, day, t0() + day + s(1)));
        // A timelimit: it and a minute's grace, at most lost_after.
        assert!(!session_is_lost(t0(), Some(600), day, t0() + s(660)));
        assert!(session_is_lost(t0(), Some(600), day, t0() + s(661)));
        assert!(session_is_lost(
            t0(),
            Some(7 * 86_400),
            day,
            t0() + day + s(1)
        ));
        // An absurd timelimit does not overflow.
        assert!(!session_is_lost(t0(), Some(u64::MAX), day, t0() + s(1)));
    }

    #[test]
    fn owner_and_admins_see_stats_of_live_and_expired_events() {
        let event = |owner: i64, expired: bool| Event {
            id: uuid::Uuid::new_v4(),
            title: None,
            description: None,
            private: false,
            created_by: owner,
            created_time: t0(),
            expires_time: if expired {
                t0()
            } else {
                t0() + chrono::Duration::hours(1)
            },
            connected: false,
            connected_by: None,
            last_connected_at: None,
            last_disconnected_at: None,
            relation_id: None,
        };
        for expired in [false, true] {
            assert!(may_see_stats(
                &member(1, false, i64::MAX),
                &event(1, expired)
            ));
            assert!(may_see_stats(
                &member(9, true, i64::MAX),
                &event(1, expired)
            ));
            assert!(!may_see_stats(
                &member(2, false, i64::MAX),
                &event(1, expired)
            ));
        }
    }
}
