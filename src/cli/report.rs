//! `jars report`: the listening report from the stored sessions, per event, per day or per
//! Icecast server, as a table, CSV or JSON. The columns are [`crate::sessions::report::Summary`]'s, aggregated by
//! the store; events get their title from the event store.

use super::out;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Failure, ReportBy, ReportFormat};
use crate::config::Config;
use crate::log_input::Escaped;
use crate::sessions::report::{GroupBy, Summary};
use crate::store::sessions::SessionFilter;

/// What the report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub filter: SessionFilter,
}

/// `DATE` (`2026-11-30`, midnight UTC; with `end_of_day` the midnight after) or an RFC 3339
/// time.
fn parse_time(flag: &str, text: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!("{flag}: \"{text}\" is not a date like 2026-11-30 or an RFC 3339 time")
        })
}

impl Query {
    /// The command's `--event`, `--from`, `--to`; a usage error names the flag.
    pub fn parse(
        event: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Query, String> {
        let event = event
            .map(|e| {
                crate::http::api::parse_event_id(e)
                    .map_err(|_| format!("--event: \"{e}\" is not an event id"))
            })
            .transpose()?;
        let from = from.map(|f| parse_time("--from", f, false)).transpose()?;
        let to = to.map(|t| parse_time("--to", t, true)).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                return Err("--to: must be after --from".into());
            }
        }
        Ok(Query {
            filter: SessionFilter { event, from, to },
        })
    }
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Line {
    /// The event id (or static mount), or the day.
    group: String,
    /// The event's title (`--by event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(flatten)]
    summary: Summary,
}

/// Runs the report.
pub async fn run(
    config: &Config,
    query: Query,
    by: ReportBy,
    format: ReportFormat,
) -> Result<(), Failure> {
    crate::data_dir::existing_store(config).map_err(Failure::Runtime)?;
    let runtime = |e: crate::store::StoreError| Failure::Runtime(e.to_string());
    let sessions = crate::store::sessions::open(&config.store)
        .await
        .map_err(runtime)?;
    let by = match by {
        ReportBy::Event => GroupBy::Event,
        ReportBy::Day => GroupBy::Day,
        ReportBy::Server => GroupBy::Server,
    };
    let mut lines: Vec<Line> = sessions
        .report(query.filter, by, Utc::now())
        .await
        .map_err(runtime)?
        .into_iter()
        .map(|(group, figures)| Line {
            group,
            title: None,
            summary: Summary::of(&figures),
        })
        .collect();
    if let (Some(id), true) = (query.filter.event, lines.is_empty()) {
        // An empty table would not say whether the event exists.
        let events = crate::store::open(&config.store).await.map_err(runtime)?;
        if events.get(id).await.map_err(runtime)?.is_none() {
            return Err(Failure::Runtime(format!("no event {id}")));
        }
        eprintln!("jars: no listener sessions stored for event {id} in this period");
    }
    if by == GroupBy::Event && !lines.is_empty() {
        let events = crate::store::open(&config.store).await.map_err(runtime)?;
        for line in &mut lines {
            if let Ok(id) = Uuid::try_parse(&line.group) {
                let event = events.get(id).await.map_err(runtime)?;
                line.title = Some(event.and_then(|e| e.title).unwrap_or_default());
            }
        }
    }
    let header = match by {
        GroupBy::Event => "event",
        GroupBy::Day => "day",
        GroupBy::Server => "server",
    };
    out::write_bytes(render(&lines, header, format).as_bytes());
    Ok(())
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The characters that make a spreadsheet read a cell as a formula (or, for a tab or carriage
/// return at the start, that some applications strip before looking again).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV field: a cell starting with a formula character gets a leading `'` (OWASP's rule
/// against CSV injection: a title such as `=HYPERLINK(…)` stays text when the royalty sheet
/// is opened), then the field is quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

const COLUMNS: [&str; 10] = [
    "title",
    "sessions",
    "unique_listeners",
    "listening_hours",
    "mean_session_seconds",
    "peak_listeners",
    "first_start",
    "last_end",
    "lost",
    "kicked",
];

fn cells(line: &Line) -> [String; 10] {
    let s = &line.summary;
    [
        line.title.clone().unwrap_or_default(),
        s.sessions.to_string(),
        s.unique_listeners.to_string(),
        format!("{:.3}", s.listening_hours),
        format!("{:.1}", s.mean_session_seconds),
        s.peak_listeners.to_string(),
        time(s.first_start),
        time(s.last_end),
        s.lost.to_string(),
        s.kicked.to_string(),
    ]
}

/// The report's text: `header` names the group column.
fn render(lines: &[Line], header: &str, format: ReportFormat) -> String {
    let titled = lines.iter().any(|l| l.title.is_some());
    let skip = usize::from(!titled);
    match format {
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(lines).unwrap_or_else(|_| "[]".into());
            text.push('\n');
            text
        }
        ReportFormat::Csv => {
            let mut out = std::iter::once(header)
                .chain(COLUMNS[skip..].iter().copied())
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
            for line in lines {
                let row: Vec<String> = std::iter::once(csv_field(&line.group))
                    .chain(cells(line)[skip..].iter().map(|c| csv_field(c)))
                    .collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
            out
        }
        ReportFormat::Table => {
            let mut rows: Vec<Vec<String>> = vec![std::iter::once(header.to_uppercase())
                .chain(COLUMNS[skip..].iter().map(|c| c.to_uppercase()))
                .collect()];
            // Control characters shown escaped: a title holding `\r\n` cannot forge a row.
            let shown = |text: &str| Escaped(text).to_string();
            for line in lines {
                rows.push(
                    std::iter::once(shown(&line.group))
                        .chain(cells(line)[skip..].iter().map(|c| shown(c)))
                        .collect(),
                );
            }
            let widths: Vec<usize> = (0..rows[0].len())
                .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
                .collect();
            let mut out = String::new();
            for row in rows {
                let padded: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out.push_str(padded.join("  ").trim_end());
                out.push('\n');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        let q = Query::parse(None, Some("2026-11-01"), Some("2026-11-30")).unwrap();
        assert_eq!(
            q.filter.from.unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        // A --to date includes that day.
        assert_eq!(
            q.filter.to.unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        let q = Query::parse(None, None, Some("2026-11-30T10:00:00+01:00")).unwrap();
        assert_eq!(
            q.filter.to.unwrap().to_rfc3339(),
            "2026-11-30T09:00:00+00:00"
        );
        assert!(Query::parse(None, Some("yesterday"), None)
            .unwrap_err()
            .starts_with("--from"));
        assert!(Query::parse(Some("nope"), None, None)
            .unwrap_err()
            .starts_with("--event"));
        assert!(Query::parse(None, Some("2026-11-02"), Some("2026-11-01")).is_err());
    }

    #[test]
    fn csv_quotes_what_it_must() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    /// Issue 28, item 5: titles written unescaped became formulas in the royalty sheet.
    #[test]
    fn csv_cells_never_start_a_formula() {
        let cases = [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "\"'\r=1\""),
            ("Drive = time", "Drive = time"),
            ("0.500", "0.500"),
        ];
        for (cell, want) in cases {
            assert_eq!(csv_field(cell), want, "{cell:?}");
        }
    }

    fn line(group: &str, title: &str) -> Line {
        Line {
            group: group.into(),
            title: Some(title.into()),
            summary: Summary::of(&crate::store::sessions::Figures::default()),
        }
    }

    #[test]
    fn table_cells_show_control_characters_escaped() {
        let lines = [line("e1", "Show\r\nFORGED  9  9  9"), line("e2", "\x1b[2J")];
        let text = render(&lines, "event", ReportFormat::Table);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("Show\\r\\nFORGED"), "{text}");
        assert!(text.contains("\\x1b[2J"), "{text}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
}
