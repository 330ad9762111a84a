//! Logging what requests send, safely: attacker-chosen text is written escaped ([`Escaped`]),
//! so a mount or user name cannot forge a log line or drive the terminal, and a warning that
//! any caller can provoke is written at most once per period ([`Throttle`]).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Request input for a log field (`mount = %Escaped(path)`): control characters and the
/// characters that reorder or break lines (bidi controls, U+2028/U+2029) are written as escape
/// sequences (`\n`, `\x1b`, `\u{202e}`), and a backslash as `\\`, so every escape is
/// unambiguous. Everything else is written as it is.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            f.write_str(&rest[..at])?;
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_ascii() => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Lets a log line through at most once per `period`, counting the ones held back.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    state: Mutex<ThrottleState>,
}

#[derive(Debug, Default)]
struct ThrottleState {
    last: Option<DateTime<Utc>>,
    suppressed: u64,
}

impl Throttle {
    /// A throttle that lets one line through per `period`.
    pub fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            state: Mutex::default(),
        }
    }

    /// Whether a line may be written at `now`: `Some(n)`, with `n` lines held back since the
    /// last one written, or `None` (this one is held back and counted).
    pub fn admit(&self, now: DateTime<Utc>) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let period = chrono::Duration::from_std(self.period).unwrap_or(chrono::Duration::MAX);
        match s.last {
            Some(last) if now - last < period => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let cases = [
            ("/live.mp3", "/live.mp3"),
            (
                "/x\n2026 INFO connect approved",
                "/x\\n2026 INFO connect approved",
            ),
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("a\r\tb\0c\x7f", "a\\r\\tb\\x00c\\x7f"),
            ("back\\n slash", "back\\\\n slash"),
            ("\u{202e}txt.exe", "\\u{202e}txt.exe"),
            ("line\u{2028}sep\u{85}", "line\\u{2028}sep\\u{85}"),
            ("café ☕", "café ☕"),
            ("", ""),
        ];
        for (input, want) in cases {
            let got = Escaped(input).to_string();
            assert_eq!(got, want, "{input:?}");
            assert!(!got.chars().any(char::is_control), "{got:?}");
        }
        assert_eq!(format!("{:?}", Escaped("a\nb")), "\"a\\nb\"");
    }

    #[test]
    fn one_line_per_period_with_the_count_held_back() {
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let at = |s| t0 + chrono::Duration::milliseconds(s);
        let throttle = Throttle::new(Duration::from_secs(10));
        assert_eq!(throttle.admit(at(0)), Some(0));
        assert_eq!(throttle.admit(at(1)), None);
        assert_eq!(throttle.admit(at(9_999)), None);
        assert_eq!(throttle.admit(at(10_000)), Some(2));
        assert_eq!(throttle.admit(at(10_001)), None);
        assert_eq!(throttle.admit(at(30_000)), Some(1));
    }
}
