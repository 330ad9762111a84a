//! Report maths over stored sessions, pure: how long each session lasted, peak concurrent
//! listeners (a sweep over start and end events), a one-point-a-minute series, and the summary
//! columns of `jars report` and `GET /jars/events/{id}/stats`, grouped by event or by day.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use serde::Serialize;

use super::{EndReason, SessionRecord};

/// Seconds a session lasted: Icecast's own `duration` when it sent one, else from its start to
/// its end (to `now` while open); never negative.
pub fn seconds(s: &SessionRecord, now: DateTime<Utc>) -> u64 {
    match s.duration {
        Some(d) => d,
        None => (s.ended.unwrap_or(now) - s.started).num_seconds().max(0) as u64,
    }
}

/// When a session is counted as listening: from its start for [`seconds`] (so hours and peak
/// agree).
pub fn interval(s: &SessionRecord, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let secs = i64::try_from(seconds(s, now)).unwrap_or(i64::MAX / 2_000_000);
    (s.started, s.started + Duration::seconds(secs))
}

/// Start (+1) and end (−1) events in time order; at the same instant ends come first, so a
/// session ending as another starts does not overlap it. Empty intervals are skipped.
fn sweep_events(intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(DateTime<Utc>, i32)> {
    let mut events: Vec<(DateTime<Utc>, i32)> = intervals
        .iter()
        .filter(|(start, end)| end > start)
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    events.sort_unstable();
    events
}

/// The most sessions listening at once among half-open `[start, end)` intervals.
pub fn peak_concurrent(intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> u32 {
    let mut now = 0i32;
    let mut peak = 0i32;
    for (_, delta) in sweep_events(intervals) {
        now += delta;
        peak = peak.max(now);
    }
    peak as u32
}

/// At most this many points in a series (about a month of minutes).
pub const MAX_SERIES_POINTS: usize = 45_000;

/// One point a minute, from the minute of the first start to the minute of the last end: the
/// most sessions listening at once during `[t, t + 1 min)`. The series' maximum is the peak.
pub fn per_minute(intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(DateTime<Utc>, u32)> {
    let events = sweep_events(intervals);
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Vec::new();
    };
    let minute = Duration::minutes(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(minute).unwrap_or(t);
    let mut t = floor(first.0);
    let end = last.0;
    let mut points = Vec::new();
    let mut current = 0i32;
    let mut next = 0usize;
    while t <= end && points.len() < MAX_SERIES_POINTS {
        let bucket_end = t + minute;
        let mut most = current;
        while next < events.len() && events[next].0 < bucket_end {
            current += events[next].1;
            most = most.max(current);
            next += 1;
        }
        points.push((t, most.max(0) as u32));
        t = bucket_end;
    }
    points
}

/// Who a session's listener was, for counting unique listeners: the member, else the ticket,
/// else the stored address; `None` when nothing tells (each such session counts as one).
fn listener_identity(s: &SessionRecord) -> Option<String> {
    if let Some(m) = s.member {
        return Some(format!("member:{m}"));
    }
    if let Some(t) = &s.ticket {
        return Some(format!("ticket:{t}"));
    }
    s.ip.as_ref().map(|ip| format!("ip:{ip}"))
}

/// The report's columns for a set of sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub sessions: u64,
    pub unique_listeners: u64,
    pub listening_hours: f64,
    pub mean_session_seconds: f64,
    pub peak_listeners: u32,
    pub first_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    /// Sessions whose end never came (closed as `lost`; their time is counted up to when jars
    /// found them lost).
    pub lost: u64,
}

/// The summary of `rows` at `now` (open sessions count up to `now`).
pub fn summarise(rows: &[&SessionRecord], now: DateTime<Utc>) -> Summary {
    let mut unique = HashSet::new();
    let mut anonymous = 0u64;
    let mut total = 0u64;
    let mut intervals = Vec::with_capacity(rows.len());
    let mut lost = 0;
    for s in rows {
        match listener_identity(s) {
            Some(id) => {
                unique.insert(id);
            }
            None => anonymous += 1,
        }
        total += seconds(s, now);
        intervals.push(interval(s, now));
        lost += u64::from(s.end_reason == Some(EndReason::Lost));
    }
    let sessions = rows.len() as u64;
    Summary {
        sessions,
        unique_listeners: unique.len() as u64 + anonymous,
        listening_hours: total as f64 / 3600.0,
        mean_session_seconds: if sessions == 0 {
            0.0
        } else {
            total as f64 / sessions as f64
        },
        peak_listeners: peak_concurrent(&intervals),
        first_start: intervals.iter().map(|i| i.0).min(),
        last_end: intervals.iter().map(|i| i.1).max(),
        lost,
    }
}

/// How report rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One row per event (a static mount by its name).
    Event,
    /// One row per UTC day a session started on.
    Day,
}

/// The group of one session: its event id or static mount, or its start's UTC date.
fn group_of(s: &SessionRecord, by: GroupBy) -> String {
    match by {
        GroupBy::Event => s.event.map_or_else(|| s.mount.clone(), |e| e.to_string()),
        GroupBy::Day => {
            let day: NaiveDate = s.started.date_naive();
            day.format("%Y-%m-%d").to_string()
        }
    }
}

/// One summary per group of `rows`, in the groups' order (event ids and mounts, or dates).
pub fn grouped(rows: &[SessionRecord], by: GroupBy, now: DateTime<Utc>) -> Vec<(String, Summary)> {
    let mut groups: BTreeMap<String, Vec<&SessionRecord>> = BTreeMap::new();
    for s in rows {
        groups.entry(group_of(s, by)).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|(k, v)| {
            let summary = summarise(&v, now);
            (k, summary)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_040 + secs, 0).unwrap()
    }

    fn row(start: i64, end: Option<i64>, duration: Option<u64>) -> SessionRecord {
        SessionRecord {
            event: None,
            mount: "/m".into(),
            started: at(start),
            ended: end.map(at),
            duration,
            ticket: None,
            member: None,
            ip: None,
            agent: None,
            referer: None,
            end_reason: end.map(|_| EndReason::Left),
        }
    }

    #[test]
    fn peak_sweep_counts_overlaps_not_touches() {
        let iv = |a: i64, b: i64| (at(a), at(b));
        assert_eq!(peak_concurrent(&[]), 0);
        assert_eq!(peak_concurrent(&[iv(0, 10)]), 1);
        // Back to back: never two at once.
        assert_eq!(peak_concurrent(&[iv(0, 10), iv(10, 20), iv(20, 30)]), 1);
        assert_eq!(
            peak_concurrent(&[iv(0, 10), iv(5, 15), iv(9, 12), iv(14, 30)]),
            3
        );
        // Nested and identical intervals.
        assert_eq!(peak_concurrent(&[iv(0, 100), iv(10, 20), iv(10, 20)]), 3);
        // Empty intervals are nobody.
        assert_eq!(peak_concurrent(&[iv(5, 5), iv(7, 3)]), 0);
    }

    #[test]
    fn series_has_a_point_a_minute_and_its_max_is_the_peak() {
        let iv = |a: i64, b: i64| (at(a), at(b));
        // at(0) is on a minute boundary (1_700_000_040 = 28_333_334 minutes).
        let intervals = [iv(0, 150), iv(30, 45), iv(130, 200), iv(125, 126)];
        let series = per_minute(&intervals);
        let times: Vec<i64> = series.iter().map(|p| (p.0 - at(0)).num_seconds()).collect();
        assert_eq!(times, [0, 60, 120, 180]);
        let counts: Vec<u32> = series.iter().map(|p| p.1).collect();
        // Minute 2 has [0,150), [130,200) and the 1-second [125,126) overlapping [0,150).
        assert_eq!(counts, [2, 1, 2, 1]);
        assert_eq!(
            series.iter().map(|p| p.1).max(),
            Some(peak_concurrent(&intervals))
        );
        assert!(per_minute(&[]).is_empty());
    }

    #[test]
    fn summary_columns() {
        let now = at(10_000);
        let mut a = row(0, Some(3600), Some(3600));
        a.member = Some(7);
        let mut b = row(1800, Some(5400), None); // no Icecast duration: ended - started
        b.member = Some(7); // the same member again
        let mut c = row(2000, None, None); // still open: counts up to now
        c.ticket = Some("jti-1".into());
        let mut d = row(9000, Some(9100), Some(100));
        d.ip = Some("192.0.2.0".into());
        let e = row(9000, Some(9010), None); // nothing identifies it: its own listener
        let mut lost = row(9500, Some(9600), None);
        lost.end_reason = Some(EndReason::Lost);
        lost.ip = Some("192.0.2.0".into());
        let rows = [&a, &b, &c, &d, &e, &lost];
        let s = summarise(&rows, now);
        assert_eq!(s.sessions, 6);
        // member:7, ticket:jti-1, ip:192.0.2.0, and the anonymous one.
        assert_eq!(s.unique_listeners, 4);
        let total = 3600 + 3600 + 8000 + 100 + 10 + 100;
        assert!((s.listening_hours - total as f64 / 3600.0).abs() < 1e-9);
        assert!((s.mean_session_seconds - total as f64 / 6.0).abs() < 1e-9);
        // At 2000..3600 a, b and c overlap.
        assert_eq!(s.peak_listeners, 3);
        assert_eq!(s.first_start, Some(at(0)));
        assert_eq!(s.last_end, Some(now));
        assert_eq!(s.lost, 1);
        let empty = summarise(&[], now);
        assert_eq!((empty.sessions, empty.peak_listeners), (0, 0));
        assert_eq!(empty.mean_session_seconds, 0.0);
        assert_eq!(empty.first_start, None);
    }

    #[test]
    fn grouping_by_event_and_by_day() {
        let now = at(200_000);
        let e1 = Uuid::new_v4();
        let mut a = row(0, Some(60), None);
        a.event = Some(e1);
        let mut b = row(100_000, Some(100_060), None);
        b.event = Some(e1);
        let c = row(10, Some(20), None); // the static mount /m
        let rows = vec![a, b, c];
        let by_event = grouped(&rows, GroupBy::Event, now);
        let keys: Vec<&str> = by_event.iter().map(|(k, _)| k.as_str()).collect();
        let mut want = vec![e1.to_string(), "/m".to_string()];
        want.sort();
        assert_eq!(keys, want);
        let of_e1 = &by_event
            .iter()
            .find(|(k, _)| *k == e1.to_string())
            .unwrap()
            .1;
        assert_eq!(of_e1.sessions, 2);
        let by_day = grouped(&rows, GroupBy::Day, now);
        assert_eq!(by_day.len(), 2, "{by_day:?}");
        assert_eq!(by_day[0].1.sessions, 2);
        assert_eq!(
            by_day[0].0,
            at(0).date_naive().format("%Y-%m-%d").to_string()
        );
    }
}
