//! `Args`: request arguments from the query string and a form-encoded body, as Tornado merged
//! them for the original service, plus a token from `Authorization: Bearer`.
//!
//! Decoding is strict: a value that is not UTF-8 once percent-decoded is a 400, not a silently
//! mangled string.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;

/// Decoded arguments, in order: query string first, then body. Lookups take the last value, as
/// Tornado's `get_argument` did.
#[derive(Debug, Default)]
pub struct Args {
    pairs: Vec<(String, String)>,
    bearer: Option<String>,
}

impl Args {
    /// The last non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        crate::form::last(&self.pairs, name)
    }

    /// The value of a required argument.
    pub fn require(&self, name: &'static str) -> Result<&str, ApiError> {
        self.get(name).ok_or(ApiError::MissingArgument(name))
    }

    /// A token from `auth`, else from `Authorization: Bearer`.
    pub fn token(&self) -> Option<&str> {
        self.get("auth").or(self.bearer.as_deref())
    }

    /// Whether a flag such as `all=1` is set (`1`, `true`, `yes`, `on`, …).
    pub fn flag(&self, name: &'static str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or(ApiError::InvalidArgument(name)),
        }
    }
}

/// The boolean words PostgreSQL accepts: `true/false/t/f/yes/no/y/n/on/off/1/0`, any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Appends the pairs of form-encoded `input` to `into`.
fn parse_form(input: &[u8], into: &mut Vec<(String, String)>) -> Result<(), ApiError> {
    let pairs = crate::form::parse(input).map_err(|_| ApiError::InvalidArgument("encoding"))?;
    into.extend(pairs);
    Ok(())
}

impl<S: Send + Sync> FromRequest<S> for Args {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut args = Args::default();
        if let Some(q) = req.uri().query() {
            parse_form(q.as_bytes(), &mut args.pairs)?;
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
        let form_body = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidArgument("body")
            }
        })?;
        if form_body {
            parse_form(&body, &mut args.pairs)?;
        }
        Ok(args)
    }
}

/// The client's address: the peer of the connection, or, behind a trusted reverse proxy
/// (`[limits] trusted_proxies`), the address it forwarded. Absent without a connection, as in
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
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let api = state.api.load();
        Ok(ClientAddr(Some(crate::net::client_address(
            peer,
            &forwarded,
            &api.limits.trusted_proxies,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_form() {
        let mut v = Vec::new();
        parse_form(b"a=1&b=x+y%2Fz&c&a=2&&d=", &mut v).unwrap();
        let args = Args {
            pairs: v,
            bearer: None,
        };
        assert_eq!(args.get("a"), Some("2"));
        assert_eq!(args.get("b"), Some("x y/z"));
        assert_eq!(args.get("c"), None);
        assert_eq!(args.get("d"), None);
        assert_eq!(args.require("d"), Err(ApiError::MissingArgument("d")));
    }

    #[test]
    fn rejects_invalid_utf8() {
        let mut v = Vec::new();
        assert_eq!(
            parse_form(b"a=%ff%fe", &mut v),
            Err(ApiError::InvalidArgument("encoding"))
        );
    }

    #[test]
    fn boolean_words() {
        for t in ["true", "T", "yes", "On", "1", "y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "F", "no", "OFF", "0", "n"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "maybe", "2", "truee"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }
}
