//! `GET /webcast/{mount}`: the webcast protocol's WebSocket (subprotocol `webcast`), as
//! webcaster-relay serves it, so existing webcast clients point at jars unchanged. The socket
//! side only: the `hello` (within [`HELLO_TIMEOUT`]), `metadata` and audio frames handed to
//! [`crate::webcast`], `status` frames telling the DJ whether Icecast has the show and how many
//! listen, and the socket closed with the [`Stop`] jars ends a show for.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::api::parse_event_id;
use super::args::ClientAddr;
use super::{ApiError, AppState};
use crate::icecast::Target;
use crate::log_input::Escaped;
use crate::webcast::protocol::{self, Frame, Stop};
use crate::webcast::Dj;

/// The subprotocol a webcast client asks for.
pub const SUBPROTOCOL: &str = "webcast";
/// The first frame must be a `hello`, within this long of the upgrade.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest audio frame taken (a `MediaRecorder` second at 320 kbit/s is 40 KB).
pub const MAX_MESSAGE: usize = 1 << 20;
/// How often jars pings the DJ's socket, and how long it may stay silent (pongs count).
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENT_FOR: Duration = Duration::from_secs(45);
/// How often the DJ's status is looked at; a `status` frame goes out when it changed.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// The `status` frame: whether Icecast has the show's source now, and the event's listeners
/// (as `/jars/events` counts them). Webcast clients discard types they do not know.
fn status_frame(icecast: bool, listeners: u32) -> String {
    serde_json::json!({"type": "status", "data": {"icecast": icecast, "listeners": listeners}})
        .to_string()
}

/// `GET /webcast/{mount}`: upgrades to the webcast WebSocket for an event's mount
/// (`<event id>` with an optional audio extension, the Icecast mount without its `/`).
pub async fn webcast(
    State(state): State<AppState>,
    Path(mount): Path<String>,
    ClientAddr(client): ClientAddr,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !state.webcast.enabled() {
        return ApiError::NotFound.into_response();
    }
    let event = match parse_event_id(&mount) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let Ok(ws) = ws else {
        return ApiError::InvalidArgument("upgrade").into_response();
    };
    let ws = ws.protocols([SUBPROTOCOL]);
    if ws.selected_protocol().is_none() {
        return ApiError::InvalidArgument("protocol").into_response();
    }
    let mount = mount.strip_prefix('/').unwrap_or(&mount).to_string();
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(state, socket, mount, event, client))
}

/// Closes `socket` with `stop`.
async fn close(mut socket: WebSocket, stop: Stop) {
    let frame = CloseFrame {
        code: stop.code,
        reason: stop.reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// The `hello`, if the first frame is one within [`HELLO_TIMEOUT`].
async fn hello(socket: &mut WebSocket) -> Result<protocol::Hello, Option<Stop>> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) => return Ok(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Binary(_))) => return Err(Some(Stop::BAD_HELLO)),
                // Gone before it said hello.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Err(None),
            }
        }
    })
    .await
    .map_err(|_| Some(Stop::TIMEOUT))??;
    match protocol::parse(first.as_str()) {
        Ok(Frame::Hello(h)) => Ok(h),
        _ => Err(Some(Stop::BAD_HELLO)),
    }
}

async fn session(
    state: AppState,
    mut socket: WebSocket,
    mount: String,
    event: Uuid,
    client: Option<std::net::IpAddr>,
) {
    let hello = match hello(&mut socket).await {
        Ok(h) => h,
        Err(stop) => {
            tracing::info!(event = %event, reason = stop.map(|s| s.reason),
                "webcast: no valid hello");
            if let Some(stop) = stop {
                close(socket, stop).await;
            }
            return;
        }
    };
    let dj = Dj { hello, ip: client };
    let live = match state.webcast.start(&mount, event, dj).await {
        Ok(live) => live,
        Err(stop) => {
            tracing::info!(event = %event, reason = stop.reason, client = ?client,
                "webcast: DJ refused");
            close(socket, stop).await;
            return;
        }
    };
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut status = tokio::time::interval(STATUS_EVERY);
    let mut told = None;
    let stop = loop {
        tokio::select! {
            msg = socket.recv() => {
                heard = Instant::now();
                match msg {
                    Some(Ok(Message::Binary(audio))) => {
                        if let Err(stop) = live.audio(&audio) {
                            break Some(stop);
                        }
                    }
                    Some(Ok(Message::Text(text))) => match protocol::parse(text.as_str()) {
                        Ok(Frame::Metadata(m)) => live.title(m.song),
                        Ok(_) => {}
                        // The protocol says to raise an error; a show is not cut for it.
                        Err(_) => tracing::debug!(event = %event,
                            frame = %Escaped(&text.as_str().chars().take(64).collect::<String>()),
                            "webcast: a text frame that is not a webcast frame, ignored"),
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) if e.to_string().contains("too long") => {
                        break Some(Stop::TOO_LARGE)
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                }
            }
            stop = live.stopped() => break Some(stop),
            _ = status.tick() => {
                let now = (
                    live.streaming(),
                    state.hooks.live.mount(&Target::Event(event)).listeners,
                );
                if told != Some(now) {
                    told = Some(now);
                    let frame = status_frame(now.0, now.1);
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break None;
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    break Some(Stop::TIMEOUT);
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
        }
    };
    drop(live);
    match stop {
        Some(stop) => {
            tracing::info!(event = %event, reason = stop.reason, "webcast: DJ's socket closed by jars");
            close(socket, stop).await;
        }
        None => tracing::info!(event = %event, "webcast: DJ left"),
    }
}
