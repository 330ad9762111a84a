//! `GET /jars/events/{id}/stats`: an event's listening figures for its owner or an admin —
//! the report's columns ([`crate::sessions::report::Summary`]) plus listeners a minute.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::api::{parse_event_id, verified};
use super::args::Args;
use super::{ApiError, AppState};
use crate::rules;
use crate::sessions::report::{interval, per_minute, summarise, Summary};
use crate::sessions::{SessionFilter, SessionRecord};

/// One point of the series: the most listeners at once during the minute starting at `t`.
#[derive(Debug, Serialize)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub listeners: u32,
}

/// The body of `GET /jars/events/{id}/stats`.
#[derive(Debug, Serialize)]
pub struct EventStats {
    pub event: Uuid,
    pub sessions: u64,
    pub unique_listeners: u64,
    pub listening_hours: f64,
    pub mean_session_seconds: f64,
    pub peak_listeners: u32,
    pub first_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    pub series: Vec<Point>,
}

/// The stats of `event` from its stored sessions at `now` (open ones count up to `now`).
pub fn event_stats_of(event: Uuid, rows: &[SessionRecord], now: DateTime<Utc>) -> EventStats {
    let refs: Vec<&SessionRecord> = rows.iter().collect();
    let Summary {
        sessions,
        unique_listeners,
        listening_hours,
        mean_session_seconds,
        peak_listeners,
        first_start,
        last_end,
        ..
    } = summarise(&refs, now);
    let intervals: Vec<_> = rows.iter().map(|r| interval(r, now)).collect();
    EventStats {
        event,
        sessions,
        unique_listeners,
        listening_hours,
        mean_session_seconds,
        peak_listeners,
        first_start,
        last_end,
        series: per_minute(&intervals)
            .into_iter()
            .map(|(t, listeners)| Point { t, listeners })
            .collect(),
    }
}

/// `GET /jars/events/{id}/stats` with `auth` (the owner's or an admin's token). Sessions
/// not stored (`[sessions] enabled = false`) read as none.
pub async fn event_stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<Json<EventStats>, ApiError> {
    let token = args.token()?.ok_or(ApiError::MissingArgument("auth"))?;
    let claims = verified(&state, token).await?;
    let id = parse_event_id(&id)?;
    let event = state
        .store
        .get(id)
        .await?
        .ok_or(ApiError::NonExistentOrExpiredEvent)?;
    if !rules::may_see_stats(&claims, &event) {
        return Err(ApiError::UnauthorizedConnection);
    }
    let rows = match state.hooks.sessions.store() {
        Some(store) => {
            store
                .sessions(SessionFilter {
                    event: Some(id),
                    ..SessionFilter::default()
                })
                .await?
        }
        None => Vec::new(),
    };
    Ok(Json(event_stats_of(id, &rows, state.clock.now())))
}
