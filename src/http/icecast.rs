//! `POST /icecast/auth`: the one URL Icecast calls for all five URL-auth actions. Decodes the
//! callback, checks that the caller is our Icecast, asks [`crate::hooks::Hooks`], and renders
//! the verdict as Icecast's headers (`icecast-auth-user: 1` to allow).
//!
//! # Security
//! Set `[icecast] username/password` so that only Icecast can ask; otherwise anybody who can
//! reach jars can replay callbacks (e.g. fake `mount_add`). Tokens in listener URLs are never
//! logged: only the mount path is.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::AppState;
use crate::callback::Callback;
use crate::hooks::{DenyReason, Verdict};

const AUTH_USER: HeaderName = HeaderName::from_static("icecast-auth-user");
const AUTH_MESSAGE: HeaderName = HeaderName::from_static("icecast-auth-message");
const AUTH_TIMELIMIT: HeaderName = HeaderName::from_static("icecast-auth-timelimit");

/// Icecast-KH's default prefix for forwarded headers, accepted besides the configured one.
const KH_HEADER_PREFIX: &str = "ClientHeader-";

/// The user and password of the callback's own `Authorization: Basic` header (how Icecast
/// proves it is our Icecast), read from the request without copying its other headers.
pub struct CallerCredentials(Option<Basic>);

/// Decoded `user:password`.
pub struct Basic {
    decoded: String,
    colon: usize,
}

impl Basic {
    fn parse(value: &HeaderValue) -> Option<Basic> {
        let value = value.to_str().ok()?;
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let colon = decoded.find(':')?;
        Some(Basic { decoded, colon })
    }

    fn user(&self) -> &str {
        &self.decoded[..self.colon]
    }

    fn pass(&self) -> &str {
        &self.decoded[self.colon + 1..]
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CallerCredentials {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerCredentials(
            parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(Basic::parse),
        ))
    }
}

fn render(verdict: Verdict) -> Response {
    let mut resp = StatusCode::OK.into_response();
    let headers = resp.headers_mut();
    match verdict {
        Verdict::Allow { timelimit } => {
            headers.insert(AUTH_USER, HeaderValue::from_static("1"));
            if let Some(secs) = timelimit {
                headers.insert(AUTH_TIMELIMIT, secs.into());
            }
        }
        Verdict::Noted => {
            headers.insert(AUTH_USER, HeaderValue::from_static("1"));
        }
        Verdict::Deny(reason) => {
            headers.insert(AUTH_MESSAGE, HeaderValue::from_static(reason.message()));
        }
    }
    resp
}

/// `POST /icecast/auth`.
pub async fn callback(
    State(state): State<AppState>,
    CallerCredentials(basic): CallerCredentials,
    body: Bytes,
) -> Response {
    let settings = state.hooks.settings.load();
    let prefixes = [settings.header_prefix.as_str(), KH_HEADER_PREFIX];
    let callback = match Callback::decode(&body, &prefixes) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "malformed Icecast callback");
            let mut resp = (
                StatusCode::BAD_REQUEST,
                format!("malformed callback: {e}\n"),
            )
                .into_response();
            resp.headers_mut()
                .insert(AUTH_MESSAGE, HeaderValue::from_static("malformed callback"));
            return resp;
        }
    };
    if !state
        .hooks
        .caller_is_icecast(basic.as_ref().map(|b| (b.user(), b.pass())))
    {
        tracing::warn!(
            action = callback.action(),
            mount = %callback.mount().path(),
            caller_user = basic.as_ref().map(Basic::user).unwrap_or("(none)"),
            "callback without the configured Icecast credentials: denied"
        );
        state.metrics.decision(
            callback.action(),
            false,
            DenyReason::CallerNotIcecast.label(),
        );
        return render(Verdict::Deny(DenyReason::CallerNotIcecast));
    }
    let verdict = state.hooks.decide(&callback).await;
    match verdict {
        Verdict::Allow { .. } => state.metrics.decision(callback.action(), true, "ok"),
        Verdict::Deny(reason) => state
            .metrics
            .decision(callback.action(), false, reason.label()),
        Verdict::Noted => {}
    }
    if let Verdict::Deny(reason) = verdict {
        let ip = match &callback {
            Callback::StreamAuth { ip, .. } | Callback::ListenerAdd { ip, .. } => ip,
            _ => "",
        };
        tracing::info!(
            action = callback.action(),
            reason = reason.label(),
            mount = %callback.mount().path(),
            client = ip,
            "denied"
        );
    }
    render(verdict)
}
