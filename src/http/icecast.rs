//! `POST /icecast/auth`: the one URL Icecast calls for all five URL-auth actions. Decodes the
//! callback, checks that the caller is our Icecast, asks [`crate::hooks::Hooks`], and renders
//! the verdict as Icecast's headers (`icecast-auth-user: 1` to allow).
//!
//! # Security
//! Set `[icecast] username/password` so that only Icecast can ask; otherwise anybody who can
//! reach jars can replay callbacks (e.g. fake `mount_add`). Tokens in listener URLs are never
//! logged: only the mount path is.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
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

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
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
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
    let basic = basic_credentials(&headers);
    if !state
        .hooks
        .caller_is_icecast(basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())))
    {
        tracing::warn!(
            action = callback.action(),
            mount = %callback.mount().path,
            caller_user = basic.as_ref().map(|(u, _)| u.as_str()).unwrap_or("(none)"),
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
            Callback::StreamAuth { ip, .. } | Callback::ListenerAdd { ip, .. } => ip.as_str(),
            _ => "",
        };
        tracing::info!(
            action = callback.action(),
            reason = reason.label(),
            mount = %callback.mount().path,
            client = ip,
            "denied"
        );
    }
    render(verdict)
}
