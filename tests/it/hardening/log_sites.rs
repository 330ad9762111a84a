//! Issue 28, item 4: `ticket revoked … ticket=%jti` wrote a caller's `jti` into the log raw, so
//! a `jti` holding `\n2026-12-06T03:00:00Z INFO … ban removed ban=9 by=3` forged a line.
//!
//! Every attacker-chosen value reaches the log through one escaping path,
//! `jars::log_input::Escaped`. How that is kept true: the fmt subscriber already writes a
//! plain `&str`/`String` field (`user = name`) and a `?` field through `Debug`, quoted and
//! escaped; what it writes raw is a `%` field (`Display`), `tracing::field::display(…)`, and a
//! `{placeholder}` of the message. [`every_displayed_log_field_is_escaped_or_known_safe`]
//! walks every `tracing::` macro in `src/` and requires each of those to be wrapped in
//! `Escaped(…)` or listed in [`SAFE`] with the reason it cannot carry request input. A new log
//! line with a new raw field fails here until its author decides.
//!
//! Why not a type that makes raw input unloggable: request input reaches the handlers as
//! `&str` from `Args` and the callback decoder, and a wrapper there would ripple through
//! every handler, rule and store call while still not stopping `%input.as_str()`. Why not
//! escaping in the subscriber: values already escaped would be escaped twice, and a
//! subscriber of someone else's (a JSON layer, journald) would not have it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::logs::Captured;

/// `%` fields, `field::display` lines and message placeholders that write a value raw, by
/// file and expression, with why the value cannot carry request input.
const SAFE: &[(&str, &str, &str)] = &[
    ("http/api.rs", "client", "an IpAddr, formatted (or \"unknown\")"),
    ("http/api.rs", "event.id", "a Uuid"),
    ("http/api.rs", "id", "a Uuid"),
    ("http/api.rs", "t.jti", "the jti jars just minted (a UUID)"),
    ("http/api.rs", "let event = subject.event.map(tracing::field::display);", "a Uuid"),
    ("http/edge.rs", "e", "an I/O or hyper error: no request bytes"),
    ("http/edge.rs", "peer", "a SocketAddr"),
    ("http/error.rs", "e", "TokenError, SigningError, StoreError::Unavailable (an outage), IdentityError: texts of jars' own; the store's refusal of a client's value is Escaped"),
    ("http/icecast.rs", "caller_user", "an Escaped built above"),
    ("http/sanctions.rs", "event", "a Uuid"),
    ("http/sanctions.rs", "id", "a Uuid"),
    ("http/sanctions.rs", "event = ban.event.map(tracing::field::display),", "a Uuid"),
    ("http/ops.rs", "e", "IdentityError, StoreError: outages, the operator's files"),
    ("http/server.rs", "e", "an I/O error of the listener"),
    ("http/shed.rs", "e", "a body read error (length limit, connection): no request bytes"),
    ("icecast/admin/mod.rs", "e", "AdminError: fixed texts, reqwest errors without the URL, XmlError's fixed texts, ReadError"),
    ("icecast/admin/mod.rs", "{what}", "\"listener\" or \"source\""),
    ("icecast/admin/resync.rs", "e", "AdminError (see icecast/admin/mod.rs)"),
    ("icecast/admin/resync.rs", "server", "a ServerId from the operator's [[icecast.servers]] entry"),
    ("http/sessions.rs", "id", "a Uuid"),
    ("http/listen.rs", "id", "a Uuid (parse_event_id checked it)"),
    ("placement/caps.rs", "e", "StoreError: outages of the shared listener counts"),
    ("http/webcast.rs", "event", "a Uuid"),
    ("http/api.rs", "jti", "the jti of a verified source ticket: jars minted it"),
    ("webcast/mod.rs", "event", "a Uuid"),
    ("webcast/mod.rs", "e", "ApprovalError, an outage: jars' own texts"),
    ("webcast/relay.rs", "self.event", "a Uuid"),
    ("webcast/relay.rs", "self.mount", "an event id with a known extension (parse_event_id checked it)"),
    ("webcast/relay.rs", "e", "SourceError, ApprovalError: jars' own texts, outages, I/O errors without request bytes"),
    ("webcast/relay.rs", "{why}", "a fixed reason text (DenyReason::message, protocol's fixed reasons)"),
    ("icecast/decide.rs", "e", "StoreError::Unavailable or IdentityError: outages, jars' own texts"),
    ("icecast/decide.rs", "id", "a Uuid"),
    ("main.rs", "addr", "the configured listen address"),
    ("main.rs", "data_dir.display()", "the operator's data directory"),
    ("main.rs", "path.display()", "the operator's SQLite path"),
    ("main.rs", "e", "a config error: the operator's own file"),
    ("rate_limit/known_logins.rs", "file.display()", "the data directory's file"),
    ("rate_limit/known_logins.rs", "e", "an I/O error of that file"),
    ("sanctions/mod.rs", "e", "StoreError: outages"),
    ("sanctions/refresh.rs", "e", "StoreError: outages"),
    ("sessions/writer.rs", "e", "StoreError: outages"),
    ("setup.rs", "private_key.display()", "the data directory's key path"),
    ("setup.rs", "config.listen", "the configured listen address"),
    ("setup.rs", "e", "KeyError, IdentityError: the operator's files, or the issuer's key set (texts of jars' own)"),
    ("store/postgres.rs", "self.label", "the store's label: its configured URL without the password"),
    ("store/postgres.rs", "inner.label", "as self.label"),
    ("store/postgres.rs", "store.inner.label", "as self.label"),
    ("store/postgres.rs", "m", "a connection error's text"),
    ("store/postgres/sanctions.rs", "label", "as store/postgres.rs self.label"),
    ("store/postgres/sanctions.rs", "e", "a LISTEN connection error"),
    ("tokens/mod.rs", "e", "KeyError of the key set fetch: jars' own texts (serde's quote what they show)"),
];

/// A value written raw by a log call site.
#[derive(Debug)]
struct Raw {
    file: String,
    line: usize,
    /// The expression after `%`, a `{placeholder}`, or a whole line naming `field::display`.
    expr: String,
}

fn source_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The end of the string literal starting at `s[i] == '"'` (index after the closing quote).
fn skip_string(s: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < s.len() && s[i] != b'"' {
        if s[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The arguments of the macro call whose `(` is at `open`, split at top-level commas, and
/// the index after its `)`.
fn arguments(s: &[u8], open: usize) -> (Vec<String>, usize) {
    let mut args = Vec::new();
    let mut depth = 0;
    let mut start = open + 1;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            b'"' => {
                i = skip_string(s, i);
                continue;
            }
            b'\'' if s.get(i + 2) == Some(&b'\'') || s.get(i + 1) == Some(&b'\\') => {
                // A char literal ('x', '\n'); a lifetime has no closing quote.
                i = s[i + 2..].iter().position(|b| *b == b'\'').unwrap() + i + 3;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    args.push(String::from_utf8_lossy(&s[start..i]).into_owned());
                    return (args, i + 1);
                }
            }
            b',' if depth == 1 => {
                args.push(String::from_utf8_lossy(&s[start..i]).into_owned());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced macro call");
}

/// The `{name}` placeholders of a format string written with `Display` (`{}` as `{}`); `{{`
/// and `Debug` ones (`{x:?}`, quoted and escaped) skipped.
fn placeholders(literal: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = literal;
    while let Some(at) = rest.find('{') {
        if rest[at + 1..].starts_with('{') {
            rest = &rest[at + 2..];
            continue;
        }
        let end = rest[at..].find('}').map_or(rest.len(), |e| at + e);
        let (name, spec) = rest[at + 1..end]
            .split_once(':')
            .unwrap_or((&rest[at + 1..end], ""));
        if !spec.contains('?') {
            out.push(format!("{{{name}}}"));
        }
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out
}

/// Every value the `tracing::` macros in `src` write raw, and how many call sites there are.
fn raw_values(src: &Path) -> (Vec<Raw>, usize) {
    let mut files = Vec::new();
    source_files(src, &mut files);
    let mut raw = Vec::new();
    let mut sites = 0;
    for path in files {
        let file = path
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("field::display") && !line.contains("Escaped(") {
                raw.push(Raw {
                    file: file.clone(),
                    line: n + 1,
                    expr: line.trim().to_string(),
                });
            }
            // A macro imported bare would escape this walk.
            let code = line.split("//").next().unwrap_or_default();
            assert!(
                !code.contains("use tracing::") || code.contains("use tracing::field"),
                "{file}:{}: call tracing's macros as tracing::info!(…), so the walk sees them",
                n + 1
            );
        }
        let s = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find("tracing::") {
            let start = i + at;
            let after = &text[start + "tracing::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            let bang = start + "tracing::".len() + name.len();
            i = bang;
            if !text[bang..].starts_with('!') {
                continue;
            }
            let Some(open) = text[bang..].find('(').map(|o| bang + o) else {
                continue;
            };
            assert!(
                ["$level", "trace", "debug", "info", "warn", "error"].contains(&name.as_str()),
                "{file}: tracing::{name}! is not walked"
            );
            sites += 1;
            let line = text[..start].lines().count().max(1);
            let (args, end) = arguments(s, open);
            i = end;
            let mut positional = false;
            for arg in args {
                let arg = arg.split_whitespace().collect::<Vec<_>>().join(" ");
                let value = match arg.split_once(" = ") {
                    Some((_, v)) => v.to_string(),
                    None if positional => format!("%{arg}"),
                    None => arg.clone(),
                };
                if value.starts_with('"') {
                    for p in placeholders(&value) {
                        positional |= p == "{}";
                        raw.push(Raw {
                            file: file.clone(),
                            line,
                            expr: p,
                        });
                    }
                } else if let Some(expr) = value.strip_prefix('%') {
                    if !expr.starts_with("Escaped(") {
                        raw.push(Raw {
                            file: file.clone(),
                            line,
                            expr: expr.to_string(),
                        });
                    }
                }
            }
        }
    }
    (raw, sites)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_displayed_log_field_is_escaped_or_known_safe() {
    let (raw, sites) = raw_values(&src_dir());
    assert!(sites >= 60, "the walk found only {sites} log call sites");
    let unknown: Vec<String> = raw
        .iter()
        .filter(|r| {
            !SAFE
                .iter()
                .any(|(file, expr, _)| r.file == *file && r.expr == *expr)
        })
        .map(|r| format!("{}:{}: {}", r.file, r.line, r.expr))
        .collect();
    assert!(
        unknown.is_empty(),
        "written to the log raw: wrap each in log_input::Escaped, or add it to SAFE with why \
         it cannot carry request input:\n{}",
        unknown.join("\n")
    );
    // No stale entry: each still names a call site.
    let used: HashSet<(&str, &str)> = raw
        .iter()
        .map(|r| (r.file.as_str(), r.expr.as_str()))
        .collect();
    for (file, expr, _) in SAFE {
        assert!(
            used.contains(&(*file, *expr)),
            "SAFE names nothing now: {file} {expr}"
        );
    }
}

/// The walk itself catches what it must: the raw `jti` of issue 28, a `{}` argument, a
/// `field::display` of input, and accepts `Escaped(…)` and `Debug`-written fields.
#[test]
fn the_walk_finds_raw_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probe.rs"),
        r#"
fn f(row: &Row, jti: &str, name: &str) {
    tracing::info!(event = %event, ticket = %row.jti, by = claims.sub, "ticket revoked");
    tracing::warn!(user = name, title = ?title, mount = %Escaped(mount), "fine");
    tracing::debug!("revoked {} and {jti:?}, {{literal}}", row.jti);
    let shown = input.map(tracing::field::display);
}
"#,
    )
    .unwrap();
    let (raw, sites) = raw_values(dir.path());
    assert_eq!(sites, 3);
    let found: Vec<&str> = raw.iter().map(|r| r.expr.as_str()).collect();
    assert_eq!(
        found,
        [
            "let shown = input.map(tracing::field::display);",
            "event",
            "row.jti",
            "{}",
            "row.jti",
        ]
    );
}

/// The attack itself, on the real log: a revocation whose `jti` holds a newline and a forged
/// line is written as one line of jars' (or refused), never as two.
#[tokio::test]
async fn a_jti_cannot_forge_a_log_line() {
    let log = Captured::default();
    let _guard = log.start();
    let server = TestServer::start("").await;
    server.add_user("carol", "carol-password", false);
    let carol = server.login("carol", "carol-password").await;
    let event = server.create_event(&carol, "Carol's", true).await;
    let forged =
        "x\n2026-12-06T03:00:00Z  INFO jars::http::sanctions: ban removed ban=9 by=3\x1b[2K";
    let (status, body) = post_form(
        &server.url("/jars/tickets/revoke"),
        &[("auth", &carol), ("jti", forged), ("mount", &event)],
    )
    .await;
    assert!(status == 200 || status == 400, "{status} {body}");
    let text = log.text();
    assert!(!text.contains('\x1b'), "raw ESC in the log:\n{text}");
    for line in text.lines() {
        let level = line.trim_start().split(' ').next().unwrap_or_default();
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&level),
            "a line jars did not write: {line:?}\n{text}"
        );
    }
}

/// A live session's server, port and client id are written to the log when jars drops it
/// (`dropping a listener`): a callback cannot put a line break there.
#[tokio::test]
async fn icecasts_own_fields_cannot_carry_a_line_break() {
    let server = TestServer::start("").await;
    server.add_user("dj", "dj-password", false);
    let dj = server.login("dj", "dj-password").await;
    let event = server.create_event(&dj, "Public", false).await;
    let mount = format!("/{event}");
    let join = |field: &'static str, value: &'static str| {
        let mut fields = vec![
            ("action", "listener_add"),
            ("server", "ice.example"),
            ("port", "8000"),
            ("client", "7"),
            ("mount", mount.as_str()),
            ("user", ""),
            ("pass", ""),
            ("ip", "192.0.2.1"),
        ];
        for f in &mut fields {
            if f.0 == field {
                f.1 = value;
            }
        }
        crate::support::callback_body(&fields)
    };
    assert!(
        callback_allows(&server, join("client", "7")).await,
        "the baseline"
    );
    for (field, value) in [
        ("server", "ice\n2026-12-06T03:00:00Z  INFO forged"),
        ("port", "8000\r"),
        ("client", "7\x1b[2K"),
    ] {
        let resp = client()
            .post(server.url("/icecast/auth"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(join(field, value))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{field}");
        assert!(resp.headers().get("icecast-auth-user").is_none(), "{field}");
    }
}
