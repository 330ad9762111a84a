//! `Args`: request arguments from the query string and a form-encoded or `multipart/form-data`
//! body, read by Tornado's rules as the original service read them, plus a token from
//! `Authorization: Bearer`.
//!
//! Tornado's `get_argument`: the last value wins; control characters `\x00`–`\x08` and
//! `\x0e`–`\x1f` become spaces, then surrounding whitespace is stripped; an empty value is a
//! value (only an absent argument is `MissingArgumentError`). Decoding is strict where it
//! matters: an argument the handler reads that is not UTF-8 once decoded is a 400, not a
//! mangled string; arguments nobody reads need not decode (`junk=%FF` beside them is ignored,
//! as Tornado ignored it). A malformed multipart body is a 400 whatever it holds.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::error::ApiError;
use super::AppState;
use crate::config::LimitSettings;

/// Decoded arguments, in order: query string first, then body. Lookups take the last value, as
/// Tornado's `get_argument` did.
#[derive(Debug, Default)]
pub struct Args {
    /// Values are decoded when the request is read, and an undecodable one kept as the error
    /// its reader gets.
    pairs: Vec<(String, crate::form::Value)>,
    bearer: Option<String>,
}

impl Args {
    /// The last value of `name`, empty or not, as Tornado's `get_argument` read it. Every
    /// value of `name` must be UTF-8 (Tornado decoded them all before taking the last);
    /// other arguments' need not.
    fn value(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        let mut last = None;
        for (k, v) in &self.pairs {
            if k == name {
                last = Some(v.as_deref().map_err(|_| ApiError::InvalidArgument(name))?);
            }
        }
        Ok(last)
    }

    /// The last value of `name` when it is not empty: for optional arguments, where an empty
    /// value means the default.
    pub fn get(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        Ok(self.value(name)?.filter(|v| !v.is_empty()))
    }

    /// The value of a required argument; empty is a value, only an absent one is missing.
    pub fn require(&self, name: &'static str) -> Result<&str, ApiError> {
        self.value(name)?.ok_or(ApiError::MissingArgument(name))
    }

    /// A token from `auth`, else from `Authorization: Bearer`.
    pub fn token(&self) -> Result<Option<&str>, ApiError> {
        Ok(self.get("auth")?.or(self.bearer.as_deref()))
    }

    /// Whether a flag such as `all=1` is set (any of PostgreSQL's boolean spellings).
    pub fn flag(&self, name: &'static str) -> Result<bool, ApiError> {
        match self.get(name)? {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or(ApiError::InvalidArgument(name)),
        }
    }
}

/// A value as Tornado's `get_argument` returned it: control characters `\x00`–`\x08` and
/// `\x0e`–`\x1f` replaced by spaces, then surrounding whitespace stripped (Python's
/// `str.strip()`, which is Unicode `White_Space` once those controls are gone).
pub fn tornado_value(v: &str) -> String {
    let is_control = |c: char| matches!(c, '\x00'..='\x08' | '\x0e'..='\x1f');
    v.replace(is_control, " ").trim().to_string()
}

/// PostgreSQL's boolean input, which the original's `private` went through: a unique prefix
/// of `true`, `false`, `yes`, `no`, `on`, `off` (at least two letters for the `o` words) or
/// `1`/`0`, any case, surrounding whitespace ignored.
pub fn parse_bool(v: &str) -> Option<bool> {
    // PostgreSQL's isspace: the C locale's six.
    let v = v
        .trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
        .to_ascii_lowercase();
    let prefix_of = |word: &str, min_len: usize| v.len() >= min_len && word.starts_with(&v);
    let spellings = [
        ("true", 1, true),
        ("yes", 1, true),
        ("on", 2, true),
        ("1", 1, true),
        ("false", 1, false),
        ("no", 1, false),
        ("off", 2, false),
        ("0", 1, false),
    ];
    spellings
        .iter()
        .find(|(word, min_len, _)| prefix_of(word, *min_len))
        .map(|(_, _, value)| *value)
}

/// Appends the pairs of form-encoded `input` to `into`.
fn parse_form(input: &[u8], into: &mut Vec<(String, crate::form::Value)>) {
    into.extend(crate::form::parse_values(input));
}

impl<S: Send + Sync> FromRequest<S> for Args {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut args = Args::default();
        if let Some(q) = req.uri().query() {
            parse_form(q.as_bytes(), &mut args.pairs);
        }
        args.bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string());
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidArgument("body")
            }
        })?;
        match content_type.as_deref() {
            // Tornado read no body without a Content-Type; jars reads it as a form.
            None => parse_form(&body, &mut args.pairs),
            Some(ct) if starts_with_ignore_case(ct, "application/x-www-form-urlencoded") => {
                parse_form(&body, &mut args.pairs)
            }
            Some(ct) => {
                if let Some(boundary) = crate::multipart::boundary(ct) {
                    let malformed = |_| ApiError::InvalidArgument("body");
                    let fields = crate::multipart::parse(&body, boundary.map_err(malformed)?)
                        .map_err(malformed)?;
                    args.pairs.extend(fields);
                }
            }
        }
        for (_, v) in &mut args.pairs {
            if let Ok(v) = v {
                *v = tornado_value(v);
            }
        }
        Ok(args)
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|t| t.eq_ignore_ascii_case(prefix))
}

/// The client's address: the peer of the connection, or, behind a trusted reverse proxy
/// (`[limits] trusted_proxies`, loopback by default), the address it forwarded. Absent without a connection, as in
/// the in-process router tests (`tests/it/router.rs`).
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(ClientAddr(None));
        };
        let api = state.api.load();
        Ok(ClientAddr(Some(client_ip(
            &parts.headers,
            peer,
            &api.limits,
        ))))
    }
}

/// The client's address from the connection's `peer` and, when the peer is one of
/// `limits.trusted_proxies`, the `limits.forwarded_header` headers
/// ([`crate::net::client_address`]).
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, limits: &LimitSettings) -> IpAddr {
    let trusted = &limits.trusted_proxies;
    if !trusted.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    let header = limits.forwarded_header;
    let values: Vec<&str> = headers
        .get_all(header.name())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    crate::net::client_address(peer, &header.chain(&values), trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_form_and_empty_is_a_value() {
        let mut v = Vec::new();
        parse_form(b"a=1&b=x+y%2Fz&c&a=2&&d=&e=1&e=", &mut v);
        let args = Args {
            pairs: v,
            bearer: None,
        };
        assert_eq!(args.get("a"), Ok(Some("2")));
        assert_eq!(args.get("b"), Ok(Some("x y/z")));
        assert_eq!(args.require("c"), Ok(""));
        assert_eq!(args.require("d"), Ok(""));
        assert_eq!(
            args.get("d"),
            Ok(None),
            "empty is the default for optional arguments"
        );
        assert_eq!(args.require("e"), Ok(""), "the last value wins, even empty");
        assert_eq!(args.require("f"), Err(ApiError::MissingArgument("f")));
    }

    #[test]
    fn values_are_cleaned_like_tornado() {
        assert_eq!(tornado_value(" alice "), "alice");
        assert_eq!(tornado_value("tok\n"), "tok");
        assert_eq!(tornado_value("a\x00b"), "a b");
        assert_eq!(
            tornado_value("\x01\x08x\x0e\x1f"),
            "x",
            "controls become spaces, then strip"
        );
        assert_eq!(
            tornado_value("a\tb\x0bc"),
            "a\tb\x0bc",
            "\\t-\\r are not replaced inside"
        );
        assert_eq!(
            tornado_value("\u{a0}\u{3000}x\u{2029}"),
            "x",
            "Unicode whitespace strips"
        );
        assert_eq!(
            tornado_value("\x7f"),
            "\x7f",
            "DEL is not one of Tornado's controls"
        );
        assert_eq!(tornado_value(" \x00 "), "");
    }

    #[test]
    fn only_arguments_read_must_be_utf8() {
        let mut v = Vec::new();
        parse_form(b"a=%ff%fe&b=1&junk=%FF&b=%ff&c=2&%ff=3", &mut v);
        let args = Args {
            pairs: v,
            bearer: None,
        };
        assert_eq!(args.require("a"), Err(ApiError::InvalidArgument("a")));
        assert_eq!(args.get("a"), Err(ApiError::InvalidArgument("a")));
        // Tornado decoded every value of a name it read, not just the last.
        assert_eq!(args.require("b"), Err(ApiError::InvalidArgument("b")));
        assert_eq!(
            args.require("c"),
            Ok("2"),
            "junk=%FF beside it is never read"
        );
        assert_eq!(args.token(), Ok(None));
    }

    /// Exactly what PostgreSQL's `boolin` accepts.
    #[test]
    fn boolean_words_are_postgresqls() {
        let trues = ["t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"];
        let falses = [
            "f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0",
        ];
        for t in trues {
            for v in [t.to_string(), t.to_uppercase(), format!(" \t{t}\n ")] {
                assert_eq!(parse_bool(&v), Some(true), "{v:?}");
            }
        }
        for f in falses {
            for v in [f.to_string(), f.to_uppercase(), format!("\r{f} \x0c")] {
                assert_eq!(parse_bool(&v), Some(false), "{v:?}");
            }
        }
        assert_eq!(parse_bool("TrUe"), Some(true));
        for bad in [
            "",
            " ",
            "o",
            "O",
            "onn",
            "offf",
            "truee",
            "yess",
            "noo",
            "falsee",
            "10",
            "01",
            "00",
            "2",
            "-1",
            "maybe",
            "tx",
            "t r",
            "\u{a0}true",
            "yes!",
            "nope",
        ] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }
}
