//! The figures both backends aggregate, in SQL they share: each backend describes its table
//! in a [`Dialect`] and this module writes the aggregates ([`totals`], [`listeners`],
//! [`series`], [`peaks`]), reads their rows ([`of_event`], [`of_groups`]) and walks the
//! per-minute rows into a series. Nothing here returns a row per session: every statement
//! groups. How it groups suits each database ([`Grouping`]): SQLite groups by sorting, so its
//! statements read indexes in the order they group by (see `migrations/sqlite/sessions.sql`)
//! and sort nothing but a row per second; PostgreSQL hashes, so its statements read the rows as
//! few times as they can.
//!
//! A listener's session counts the whole seconds of Icecast's `duration` when it sent one,
//! else to its end (to now while open), never fewer than none. Concurrency is counted at
//! one-second resolution: a session listens from its start's second for as many seconds as it
//! counts, and within a second ends come before starts (a session that counts no second adds
//! and removes itself in the same second, so it never counts).

use chrono::DateTime;

use super::{EventFigures, Figures, Point, ServerFigures};

/// How a database groups rows best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grouping {
    /// By reading an index in the order it groups by: one statement per order (SQLite).
    InIndexOrder {
        /// The second a closed row's counting ends (NULL while open), as the index that
        /// holds closed rows in that order has it.
        closed_end: &'static str,
        /// Where the open rows' ends are read (the table and the index that holds them
        /// apart); `ended IS NULL AND duration IS NULL` tells them.
        open_rows: &'static str,
    },
    /// By hashing: as few passes over the rows as can be (PostgreSQL).
    Hashed,
}

/// What figures group by: `label` names a group (as text), `keys` are what rows group by. A
/// group is either one expression (both the same) or columns its label joins.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    pub label: &'static str,
    pub keys: &'static str,
}

impl Group {
    /// Groups by one expression.
    pub const fn by(expr: &'static str) -> Group {
        Group {
            label: expr,
            keys: expr,
        }
    }
}

/// By Icecast server, `server:port` as its callbacks name it; rows group by the two columns,
/// in the order both backends' event indexes hold them.
pub(super) const SERVER: Group = Group {
    label: "server || ':' || port",
    keys: "server, port",
};

/// How a backend's table says what the figures need. Bound values: `$1` now, `$2` the event
/// (when filtered on), `$3` and `$4` the range of starts.
pub(super) struct Dialect {
    pub grouping: Grouping,
    pub table: &'static str,
    /// The filter on the event `$2`, and the one that holds when there is none.
    pub event: &'static str,
    pub any_event: &'static str,
    /// The filter on starts in `[$3, $4)`.
    pub range: &'static str,
    /// A row's start's whole second since the Unix epoch.
    pub second: &'static str,
    /// The whole seconds a row counts, open rows up to `$1`.
    pub secs: &'static str,
    /// The time a row's counting ends (its start plus its seconds).
    pub until: &'static str,
    /// A time expression as integer microseconds since the Unix epoch.
    pub micros: fn(&str) -> String,
}

impl Dialect {
    /// `FROM … WHERE …`: the listeners' sessions of the event `$2` (`event`) or any, in the
    /// range.
    fn rows(&self, event: bool) -> String {
        self.rows_in(self.table, event)
    }

    /// [`Dialect::rows`], read from `table`.
    fn rows_in(&self, table: &str, event: bool) -> String {
        let which = if event { self.event } else { self.any_event };
        format!(
            "FROM {table} WHERE role = 'listener' AND {which} AND {}",
            self.range
        )
    }
}

/// Per group: sessions, listening seconds, first start and last end (in microseconds), lost
/// and kicked.
pub(super) fn totals(d: &Dialect, group: Group, event: bool) -> String {
    let (secs, rows, Group { label, keys }) = (d.secs, d.rows(event), group);
    format!(
        "SELECT CAST({label} AS TEXT), count(*), CAST(sum({secs}) AS BIGINT), {}, {}, \
         count(*) FILTER (WHERE end_reason = 'lost'), \
         count(*) FILTER (WHERE end_reason = 'kicked') {rows} GROUP BY {keys}",
        (d.micros)("min(started)"),
        (d.micros)(&format!("max({})", d.until)),
    )
}

/// Per group, unique listeners: each member once, then each ticket without a member, then
/// each address without either; each session none of these tell counts as its own. In index
/// order, one `count(DISTINCT …)` a statement (SQLite then counts along an index, sorting
/// nothing); hashed, one pass grouping by who.
pub(super) fn listeners(d: &Dialect, group: Group, event: bool) -> String {
    let (rows, Group { label, keys }) = (d.rows(event), group);
    match d.grouping {
        Grouping::InIndexOrder { .. } => format!(
            "SELECT CAST(g AS TEXT), CAST(sum(n) AS BIGINT) FROM ( \
               SELECT {label} AS g, count(DISTINCT member) AS n {rows} \
                 AND member IS NOT NULL GROUP BY {keys} \
               UNION ALL SELECT {label}, count(DISTINCT ticket) {rows} \
                 AND member IS NULL AND ticket IS NOT NULL GROUP BY {keys} \
               UNION ALL SELECT {label}, count(DISTINCT ip) {rows} \
                 AND member IS NULL AND ticket IS NULL AND ip IS NOT NULL GROUP BY {keys} \
               UNION ALL SELECT {label}, count(*) {rows} \
                 AND member IS NULL AND ticket IS NULL AND ip IS NULL GROUP BY {keys}) u \
             GROUP BY g"
        ),
        Grouping::Hashed => format!(
            "SELECT CAST(g AS TEXT), CAST(sum(CASE WHEN member IS NULL AND t IS NULL \
               AND i IS NULL THEN n ELSE 1 END) AS BIGINT) FROM ( \
               SELECT {label} AS g, member, CASE WHEN member IS NULL THEN ticket END AS t, \
                 CASE WHEN member IS NULL AND ticket IS NULL THEN ip END AS i, count(*) AS n \
               {rows} GROUP BY {keys}, 2, 3, 4) u GROUP BY g"
        ),
    }
}

/// Per group, the seconds in which listeners came or went and how many listen during each, as
/// `r`: `g`, `tick` (since the Unix epoch), `n` (how many came less how many went) and
/// `listening`, then its minutes as `m`: `g`, `minute` (since the Unix epoch), `first` (its
/// first second in which some came or went), `most` (listeners at once at most in those
/// seconds) and `net` (how many more listen at its end than at its start). `u` counts starts
/// and ends per second (in index order, closed rows' ends and open rows' apart, so that
/// SQLite reads the closed ones' in order from an index), `d` sums them per second.
fn minutes(d: &Dialect, group: Group, event: bool) -> String {
    let (second, secs, rows) = (d.second, d.secs, d.rows(event));
    let Group { label, keys } = group;
    let u = match d.grouping {
        // Starts, closed rows' ends and open rows' ends, each read in its index's order.
        Grouping::InIndexOrder {
            closed_end,
            open_rows,
        } => format!(
            "SELECT {label} AS g, {second} AS tick, count(*) AS n {rows} \
               GROUP BY {keys}, {second} \
             UNION ALL SELECT {label}, {closed_end}, -count(*) {rows} \
               AND {closed_end} IS NOT NULL GROUP BY {keys}, {closed_end} \
             UNION ALL SELECT {label}, {second} + {secs}, -count(*) {open} \
               AND ended IS NULL AND duration IS NULL GROUP BY {keys}, 2",
            open = d.rows_in(open_rows, event)
        ),
        // Starts and ends, each hashed in a pass of its own (faster than one pass hashing
        // twice the tuples).
        Grouping::Hashed => format!(
            "SELECT {label} AS g, {second} AS tick, count(*) AS n {rows} \
               GROUP BY {keys}, {second} \
             UNION ALL SELECT {label}, {second} + {secs}, -count(*) {rows} GROUP BY {keys}, 2"
        ),
    };
    format!(
        "WITH u AS ({u}), \
         d AS (SELECT g, tick, CAST(sum(n) AS BIGINT) AS n FROM u GROUP BY g, tick), \
         r AS (SELECT g, tick, n, \
            CAST(sum(n) OVER (PARTITION BY g ORDER BY tick) AS BIGINT) AS listening FROM d), \
         m AS (SELECT g, tick / 60 AS minute, min(tick) AS first, max(listening) AS most, \
            CAST(sum(n) AS BIGINT) AS net FROM r GROUP BY g, tick / 60)"
    )
}

/// One event's minutes in order, with how many listen at each one's end (`after`), as rows
/// with no group; then each server's peak, as a row with its group (`0, 0, peak, 0`). The
/// event's seconds are the sum of its servers', so its rows are read once for both.
pub(super) fn series(d: &Dialect) -> String {
    format!(
        "{}, \
         e AS (SELECT tick, CAST(sum(n) AS BIGINT) AS n FROM d GROUP BY tick), \
         er AS (SELECT tick, n, CAST(sum(n) OVER (ORDER BY tick) AS BIGINT) AS listening \
            FROM e), \
         em AS (SELECT tick / 60 AS minute, min(tick) AS first, max(listening) AS most, \
            CAST(sum(n) AS BIGINT) AS net FROM er GROUP BY tick / 60) \
         SELECT g, minute, first, most, after FROM ( \
           SELECT CAST(NULL AS TEXT) AS g, minute, first, most, \
             CAST(sum(net) OVER (ORDER BY minute) AS BIGINT) AS after FROM em \
           UNION ALL SELECT CAST(g AS TEXT), 0, 0, max(listening), 0 FROM r GROUP BY g) s \
         ORDER BY g IS NOT NULL, g, minute",
        minutes(d, SERVER, true)
    )
}

/// Each group's peak.
pub(super) fn peaks(d: &Dialect, group: Group, event: bool) -> String {
    format!(
        "{} SELECT CAST(g AS TEXT), max(most) FROM m GROUP BY g",
        minutes(d, group, event)
    )
}

/// A row of [`totals`]: group, sessions, seconds, first start and last end (in
/// microseconds), lost, kicked.
pub(super) type Totals = (String, i64, Option<i64>, Option<i64>, Option<i64>, i64, i64);

/// A row of [`listeners`] or [`peaks`]: group, count.
pub(super) type PerGroup = (String, i64);

/// A row of [`series`]: the group (none: the event's minute), minute, first, most, after.
pub(super) type Minute = (Option<String>, i64, i64, i64, i64);

/// One event's figures, series and servers from its [`totals`] by [`SERVER`], its
/// [`listeners`] (one row at most) and its [`series`] rows.
pub(super) fn of_event(
    totals: Vec<Totals>,
    listeners: Vec<PerGroup>,
    minutes: Vec<Minute>,
    max_points: usize,
) -> EventFigures {
    let mut figures = Figures::default();
    let mut servers: Vec<ServerFigures> = Vec::with_capacity(totals.len());
    for (server, f) in totals.into_iter().map(figures_of) {
        figures.sessions += f.sessions;
        figures.listening_seconds += f.listening_seconds;
        figures.lost += f.lost;
        figures.kicked += f.kicked;
        figures.first_start = earliest(figures.first_start, f.first_start);
        figures.last_end = figures.last_end.max(f.last_end);
        servers.push(ServerFigures {
            server,
            sessions: f.sessions,
            listening_seconds: f.listening_seconds,
            peak_listeners: 0,
        });
    }
    // By bytes, whatever the database's collation.
    servers.sort_by(|a, b| a.server.cmp(&b.server));
    figures.unique_listeners = listeners.first().map_or(0, |&(_, n)| count(n));
    let mut series = Series::new(max_points);
    for (server, minute, first, most, after) in minutes {
        match server {
            None => series.minute(minute, first, most, after),
            Some(server) => {
                if let Some(s) = servers.iter_mut().find(|s| s.server == server) {
                    s.peak_listeners = u32::try_from(most).unwrap_or(u32::MAX);
                }
            }
        }
    }
    let (peak, series) = series.finish();
    figures.peak_listeners = peak;
    EventFigures {
        figures,
        series,
        servers,
    }
}

/// The earlier of two times, either of which may be unknown.
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Each group's figures from the [`totals`], [`listeners`] and [`peaks`] rows, in the
/// groups' order.
pub(super) fn of_groups(
    totals: Vec<Totals>,
    listeners: Vec<PerGroup>,
    peaks: Vec<PerGroup>,
) -> Vec<(String, Figures)> {
    let mut groups: Vec<(String, Figures)> = totals.into_iter().map(figures_of).collect();
    // By bytes, whatever the database's collation.
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (g, n) in listeners {
        if let Some(f) = group(&mut groups, &g) {
            f.unique_listeners = count(n);
        }
    }
    for (g, peak) in peaks {
        if let Some(f) = group(&mut groups, &g) {
            f.peak_listeners = u32::try_from(peak).unwrap_or(u32::MAX);
        }
    }
    groups
}

fn group<'a>(groups: &'a mut [(String, Figures)], g: &str) -> Option<&'a mut Figures> {
    groups
        .iter_mut()
        .find(|(group, _)| group == g)
        .map(|(_, f)| f)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A row of [`totals`] as its group and figures (listeners and the peak left to the others).
fn figures_of(row: Totals) -> (String, Figures) {
    let (g, sessions, seconds, first_start, last_end, lost, kicked) = row;
    let figures = Figures {
        sessions: count(sessions),
        unique_listeners: 0,
        listening_seconds: count(seconds.unwrap_or(0)),
        peak_listeners: 0,
        first_start: first_start.and_then(DateTime::from_timestamp_micros),
        last_end: last_end.and_then(DateTime::from_timestamp_micros),
        lost: count(lost),
        kicked: count(kicked),
    };
    (g, figures)
}

/// One point a minute from the first minute [`series`] returns to its last, at most
/// `max_points`, and the peak over all of them. A minute without rows keeps the count the
/// minute before it ended with; a minute with rows shows the most of its own, and of that
/// count too when nobody came or went in its first second.
#[derive(Debug)]
struct Series {
    points: Vec<Point>,
    max_points: usize,
    peak: i64,
    /// The last minute seen, and the count at its end.
    last: Option<(i64, i64)>,
}

impl Series {
    fn new(max_points: usize) -> Series {
        Series {
            points: Vec::new(),
            max_points,
            peak: 0,
            last: None,
        }
    }

    /// The next row of [`series`].
    fn minute(&mut self, minute: i64, first: i64, most: i64, after: i64) {
        let mut carried = 0;
        if let Some((prev, count)) = self.last {
            for gap in (prev + 1..minute).take(self.room()) {
                self.push(gap, count);
            }
            carried = count;
        }
        self.peak = self.peak.max(most);
        let quiet_start = first > minute.saturating_mul(60);
        let listeners = if quiet_start { carried.max(most) } else { most };
        self.push(minute, listeners);
        self.last = Some((minute, after));
    }

    fn room(&self) -> usize {
        self.max_points.saturating_sub(self.points.len())
    }

    fn push(&mut self, minute: i64, listeners: i64) {
        let t = minute
            .checked_mul(60)
            .and_then(|s| DateTime::from_timestamp(s, 0));
        if let (true, Some(t)) = (self.room() > 0, t) {
            self.points.push(Point {
                t,
                listeners: u32::try_from(listeners.max(0)).unwrap_or(u32::MAX),
            });
        }
    }

    /// The peak and the points.
    fn finish(self) -> (u32, Vec<Point>) {
        (u32::try_from(self.peak).unwrap_or(u32::MAX), self.points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> chrono::DateTime<chrono::Utc> {
        DateTime::from_timestamp(minute * 60, 0).unwrap()
    }

    #[test]
    fn a_series_fills_quiet_minutes_and_carries_the_count_in() {
        let mut s = Series::new(100);
        // Minute 10: up to 3, 2 at its end; nothing in 11-12; minute 13: from second 790 one
        // more joins and two leave, 1 left; minute 14: the last leaves in its first second.
        s.minute(10, 600, 3, 2);
        s.minute(13, 790, 3, 1);
        s.minute(14, 840, 0, 0);
        let (peak, points) = s.finish();
        assert_eq!(peak, 3);
        let got: Vec<(i64, u32)> = points
            .iter()
            .map(|p| (p.t.timestamp() / 60, p.listeners))
            .collect();
        assert_eq!(got, vec![(10, 3), (11, 2), (12, 2), (13, 3), (14, 0)]);
        assert_eq!(points[0].t, at(10));
    }

    #[test]
    fn a_minute_counts_who_listened_before_its_first_change() {
        let mut s = Series::new(100);
        // Two listen to the end of minute 0; in minute 1 one leaves at second 70: the minute
        // had two until then.
        s.minute(0, 0, 2, 2);
        s.minute(1, 70, 1, 1);
        assert_eq!(
            s.finish().1.iter().map(|p| p.listeners).collect::<Vec<_>>(),
            [2, 2]
        );
    }

    #[test]
    fn a_series_stops_at_max_points_but_the_peak_does_not() {
        let mut s = Series::new(3);
        s.minute(0, 0, 1, 1);
        s.minute(10, 600, 5, 0);
        let (peak, points) = s.finish();
        assert_eq!(peak, 5, "the peak counts every minute");
        assert_eq!(points.len(), 3);
        assert!(points.iter().all(|p| p.listeners == 1));
        assert_eq!(Series::new(10).finish(), (0, vec![]));
    }
}
