//! `GET /jars/events/{id}/stats`: an event's listening figures for its owner or an admin —
//! the report's columns ([`crate::sessions::report::Summary`]) plus listeners a minute and
//! each Icecast server's sessions, hours and peak, aggregated by the store. At most `max_concurrent_lists` of these (and listings) read the
//! store at once; the others wait their turn within the request's time, and a request that
//! ends (its client gone, its 408) stops its query.

use axum::extract::{Path, State};
use axum::Json;
use uuid::Uuid;

use super::api::{parse_event_id, verified};
use super::args::Args;
use super::{ApiError, AppState};
use crate::rules;
use crate::sessions::report::{EventStats, MAX_SERIES_POINTS};
use crate::store::sessions::EventFigures;

/// `GET /jars/events/{id}/stats` with `auth` (the owner's or an admin's token). Sessions
/// not stored (`[sessions] enabled = false`) read as none.
pub async fn event_stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<Json<EventStats>, ApiError> {
    let token = args.token()?.ok_or(ApiError::MissingArgument("auth"))?;
    let claims = verified(&state, token).await?;
    let id: Uuid = parse_event_id(&id)?;
    let event = state
        .store
        .get(id)
        .await?
        .ok_or(ApiError::NonExistentOrExpiredEvent)?;
    if !rules::may_see_stats(&claims, &event) {
        return Err(ApiError::UnauthorizedConnection);
    }
    let Some(store) = state.hooks.sessions.store() else {
        return Ok(Json(EventStats::of(id, EventFigures::default())));
    };
    let slots = state.api.load().list_slots.clone();
    let _slot = slots
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Overloaded)?;
    let figures = store
        .event_figures(id, state.clock.now(), MAX_SERIES_POINTS)
        .await?;
    Ok(Json(EventStats::of(id, figures)))
}
