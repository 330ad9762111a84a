//! What becomes of a live session: whether a listener's join opens one at all
//! ([`opens_session`]), how a stored session ended ([`end_of`]), and when a stored session
//! whose end never came is over for good ([`session_is_lost`]).

use chrono::{DateTime, Duration, Utc};

use crate::domain::{Airing, DenyReason, EndReason, Ending};

/// A session with a timelimit is over this long after it, whatever Icecast said.
pub const TIMELIMIT_GRACE: Duration = Duration::seconds(60);

/// Whether an admitted listener opens a session (counted live, stored as a row): not when
/// its mount is known to have no source, since Icecast then answers it 404 (players retry
/// like that while nothing is on air). When jars cannot tell, it counts.
pub fn opens_session(airing: Airing) -> bool {
    airing != Airing::Off
}

/// How a session that started at `started`, with the timelimit (seconds) jars answered, ended
/// at `at` after Icecast's `duration` (when it sent one): its end reason and, for a kick, the
/// reason jars asked for it. A reported end is `timelimit` when the session lasted, within a
/// second, as long as its timelimit, else `left`.
pub fn end_of(
    started: DateTime<Utc>,
    timelimit: Option<u64>,
    at: DateTime<Utc>,
    duration: Option<u64>,
    ending: Ending,
) -> (EndReason, Option<DenyReason>) {
    match ending {
        Ending::Kicked(reason) => (EndReason::Kicked, Some(reason)),
        Ending::Vanished => (EndReason::Lost, None),
        Ending::Reported => {
            let listened = duration.unwrap_or_else(|| {
                let micros = (at - started).num_microseconds().unwrap_or(i64::MAX);
                u64::try_from((micros + 500_000) / 1_000_000).unwrap_or(0)
            });
            match timelimit {
                Some(t) if listened.saturating_add(1) >= t => (EndReason::Timelimit, None),
                _ => (EndReason::Left, None),
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::t0;

    #[test]
    fn a_join_opens_a_session_unless_nothing_is_on_air() {
        assert!(opens_session(Airing::Live));
        assert!(
            opens_session(Airing::Unknown),
            "jars cannot tell: it counts"
        );
        assert!(!opens_session(Airing::Off));
    }

    #[test]
    fn how_a_session_ended() {
        let s = Duration::seconds;
        let end =
            |timelimit, at, duration, ending| end_of(t0(), timelimit, t0() + at, duration, ending);
        // Icecast's duration decides when sent, else the time between start and end.
        assert_eq!(
            end(Some(60), s(10), Some(59), Ending::Reported),
            (EndReason::Timelimit, None)
        );
        assert_eq!(
            end(Some(60), s(59), Some(58), Ending::Reported),
            (EndReason::Left, None)
        );
        assert_eq!(
            end(Some(60), s(59), None, Ending::Reported),
            (EndReason::Timelimit, None)
        );
        assert_eq!(
            end(Some(60), s(30), None, Ending::Reported),
            (EndReason::Left, None)
        );
        assert_eq!(
            end(None, s(3_600), None, Ending::Reported),
            (EndReason::Left, None)
        );
        assert_eq!(
            end(Some(60), s(5), None, Ending::Kicked(DenyReason::Banned)),
            (EndReason::Kicked, Some(DenyReason::Banned)),
            "a kick is a kick, however long it lasted"
        );
        assert_eq!(
            end(Some(60), s(60), None, Ending::Vanished),
            (EndReason::Lost, None)
        );
        // An end before the start (clocks) is not a negative duration.
        assert_eq!(
            end(Some(60), s(-5), None, Ending::Reported),
            (EndReason::Left, None)
        );
    }

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
}
