//! `GET /listen/{event}`: the station's one listening address over several Icecast servers.
//! `{event}` is the event's id, bare or with an audio extension (`.mp3`, `.ogg`, `.aac`,
//! `.opus`): a redirect (302) to the server [`crate::placement`] picks, at its mount of the
//! event, the query string passed on unchanged (a listener ticket works on every server); or
//! `.m3u` / `.pls`: a one-entry playlist naming that URL, for players that do not follow
//! redirects. Every server full: 503 with `Retry-After`; the station's or the event's listener
//! cap already reached: the same, named so; not on air anywhere: 404.
//!
//! A private event is answered only to a request carrying a ticket for it or a member's token
//! (in a `[icecast] token_params` query parameter, or as the Basic password): without one it is
//! as unknown as at `/jars/events/{id}`. Whether that credential admits the listener is decided
//! where it always is, at `listener_add` on the server.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::domain::Target;
use crate::log_input::Escaped;
use crate::placement::Choice;
use crate::tokens::Verified;

/// What `/listen/{event}` answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Redirect,
    M3u,
    Pls,
}

/// `{event}` as the event's id, the extension its mount should have and the kind of answer.
fn parse(name: &str) -> Result<(Uuid, String, Answer), ApiError> {
    let (stem, answer, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if ext.eq_ignore_ascii_case("m3u") => (stem, Answer::M3u, ""),
        Some((stem, ext)) if ext.eq_ignore_ascii_case("pls") => (stem, Answer::Pls, ""),
        Some((_, ext)) => (name, Answer::Redirect, ext),
        None => (name, Answer::Redirect, ""),
    };
    let id = super::api::parse_event_id(stem)?;
    let extension = if extension.is_empty() {
        String::new()
    } else {
        format!(".{}", extension.to_ascii_lowercase())
    };
    Ok((id, extension, answer))
}

/// The credential a listener brings: the first configured token parameter in the query, else
/// the Basic password.
fn credential(state: &AppState, query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let params = state.hooks.settings.load().token_params.clone();
    let from_query = query.and_then(|q| {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect();
        params.iter().find_map(|p| {
            pairs
                .iter()
                .find(|(k, v)| k == p && !v.is_empty())
                .map(|(_, v)| v.clone())
        })
    });
    from_query.or_else(|| basic_password(headers))
}

fn basic_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// Whether `credential` may ask for private event `id`: a ticket for it, or a member's token.
async fn may_ask(state: &AppState, id: Uuid, credential: Option<String>) -> bool {
    let Some(token) = credential else {
        return false;
    };
    match state.tokens.verify_any(&token).await {
        Ok(Verified::Ticket(t)) => t.sub == id.to_string(),
        Ok(Verified::User(_)) => true,
        _ => false,
    }
}

/// The region a listener asks to be served from (`?region=eu`).
fn region(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "region")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// A title as one playlist line: no control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `GET /listen/{event}`.
pub async fn listen(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let outcome = place(&state, &name, query.as_deref(), &headers).await;
    let result = match &outcome {
        Ok(_) => "placed",
        Err(e) => e.reason_label(),
    };
    state
        .metrics
        .listen_requests
        .with_label_values(&[result])
        .inc();
    outcome
}

async fn place(
    state: &AppState,
    name: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (id, extension, answer) = parse(name)?;
    let now = state.clock.now();
    let event = state
        .store
        .get_shared(id)
        .await?
        .filter(|e| !e.is_expired(now))
        .ok_or(ApiError::NonExistentOrExpiredEvent)?;
    if event.private && !may_ask(state, id, credential(state, query, headers)).await {
        return Err(ApiError::NonExistentOrExpiredEvent);
    }
    let target = Target::Event(id);
    let caps = state.placement.caps();
    if let Some(refused) = caps.refusal(&target, event.max_listeners) {
        return Err(refused.into());
    }
    let extension = match answer {
        Answer::Redirect => extension,
        // A playlist names the stream in the station's format.
        Answer::M3u | Answer::Pls => state.api.load().ui.mount_extension.clone(),
    };
    let region = region(query);
    let (url, server) = match state
        .placement
        .choose(&target, &extension, region.as_deref())
    {
        Choice::To { url, server } => (url, server),
        Choice::Full => return Err(ApiError::ServersFull),
        Choice::Unhealthy => return Err(ApiError::NoHealthyServer),
        Choice::NotOnAir => return Err(ApiError::NotOnAir),
    };
    state.metrics.placements.with_label_values(&[&server]).inc();
    tracing::debug!(event = %id, server = %Escaped(&server), "listener sent to a server");
    let url = match query {
        Some(q) if !q.is_empty() => format!("{url}?{q}"),
        _ => url,
    };
    let title = one_line(event.title.as_deref().unwrap_or("Live"));
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(match answer {
        Answer::Redirect => {
            let location =
                HeaderValue::from_str(&url).map_err(|_| ApiError::InvalidArgument("query"))?;
            (
                StatusCode::FOUND,
                [(header::LOCATION, location), no_store],
            )
                .into_response()
        }
        Answer::M3u => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("audio/x-mpegurl"),
                ),
                no_store,
            ],
            format!("#EXTM3U\n#EXTINF:-1,{title}\n{url}\n"),
        )
            .into_response(),
        Answer::Pls => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("audio/x-scpls"),
                ),
                no_store,
            ],
            format!(
                "[playlist]\nNumberOfEntries=1\nFile1={url}\nTitle1={title}\nLength1=-1\nVersion=2\n"
            ),
        )
            .into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_the_event_the_extension_and_the_answer() {
        let id = "5e0b9230-086c-406f-a26c-13ff3a8d3880";
        let u = Uuid::parse_str(id).unwrap();
        for (name, want) in [
            (id.to_string(), (u, "", Answer::Redirect)),
            (format!("{id}.mp3"), (u, ".mp3", Answer::Redirect)),
            (format!("{id}.OGG"), (u, ".ogg", Answer::Redirect)),
            (format!("{id}.m3u"), (u, "", Answer::M3u)),
            (format!("{id}.pls"), (u, "", Answer::Pls)),
        ] {
            let (id, ext, answer) = parse(&name).unwrap();
            assert_eq!((id, ext.as_str(), answer), want, "{name}");
        }
        for bad in [
            format!("{id}.exe"),
            "not-an-id.mp3".to_string(),
            format!("{id}.m3u.pls"),
        ] {
            assert_eq!(parse(&bad), Err(ApiError::InvalidIdentifier), "{bad}");
        }
    }

    #[test]
    fn query_parts() {
        assert_eq!(region(Some("token=x&region=eu")).as_deref(), Some("eu"));
        assert_eq!(region(Some("region=")), None);
        assert_eq!(region(None), None);
        assert_eq!(one_line("Drive\ntime\r"), "Drive time ");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dTpzZWNyZXQ="),
        );
        assert_eq!(basic_password(&headers).as_deref(), Some("secret"));
    }
}
