//! A show's way to Icecast, one task per DJ: exactly one source connection at a time, opened
//! again with backoff (0.5 s doubling to 5 s) when Icecast drops or restarts, each new one
//! starting with the stream's header and at a place a stream may start; the DJ's right
//! checked again before each reconnect; and the title kept on Icecast ([`titles`]). While
//! live, the show's Icecast source is a session like any other: sanctions drop it, and
//! [`super::registry::WebcastKicker`] ends the show with the reason. When jars ends the show
//! it is never reconnected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use super::icecast::{self, SourceError, SourceRequest};
use super::protocol::Stop;
use super::show::{End, Show};
use super::Webcast;
use crate::rules::broadcast::Credential;

/// The wait before the first reconnect; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// A write Icecast does not take within this long means the connection is lost.
const WRITE_STALL: Duration = Duration::from_secs(10);
/// Icecast refusing jars' credentials this many times in a row ends the show.
const MAX_REFUSALS: u32 = 5;
/// Titles are sent at most this often.
const TITLE_EVERY: Duration = Duration::from_secs(1);

/// What Icecast is told about the stream.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub content_type: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub public: bool,
    pub audio_info: Option<String>,
}

/// One DJ's relay.
pub struct Relay {
    pub webcast: Arc<Webcast>,
    pub show: Arc<Show>,
    pub credential: Credential,
    pub event: Uuid,
    /// The Icecast mount, with its leading `/`.
    pub mount: String,
    pub ip: Option<String>,
    pub stream: StreamInfo,
}

/// How one connection ended.
enum Lost {
    /// Icecast closed it or stopped taking audio.
    Dropped(String),
    /// The show ended.
    Ended,
}

impl Relay {
    /// Runs until the show ends.
    pub async fn run(self) {
        tokio::select! {
            () = self.connections() => {}
            () = self.titles() => {}
        }
    }

    async fn until_ended(&self) {
        self.show.until_ended().await;
    }

    /// Keeps one connection to Icecast open while the show lasts.
    async fn connections(&self) {
        let settings = &self.webcast.settings;
        let metrics = &self.webcast.metrics.webcast;
        let mut backoff = FIRST_BACKOFF;
        let mut refusals = 0;
        let mut serial = 0u64;
        loop {
            if serial > 0 {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = self.until_ended() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Never back on air without the right to be.
                let ip = self.ip.as_deref();
                match self
                    .webcast
                    .approver
                    .approve(&self.credential, self.event, ip)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_outage() => {
                        tracing::warn!(event = %self.event, error = %e,
                            "webcast: cannot check the DJ before reconnecting; retrying");
                        continue;
                    }
                    Err(e) => {
                        self.stop(Stop::denied(e.reason()), "refused before reconnecting");
                        return;
                    }
                }
                metrics.reconnects.inc();
            }
            serial += 1;
            // An idle DJ opens nothing: Icecast would drop a source that sends no audio.
            while !self.show.has_data() {
                tokio::select! {
                    () = self.show.wake.notified() => {}
                    () = self.until_ended() => return,
                }
            }
            let request = SourceRequest {
                addr: &settings.icecast_addr,
                mount: &self.mount,
                user: &settings.user,
                password: &settings.password,
                content_type: &self.stream.content_type,
                name: self.stream.name.as_deref(),
                description: self.stream.description.as_deref(),
                public: self.stream.public,
                audio_info: self.stream.audio_info.as_deref(),
            };
            let opened = tokio::select! {
                opened = request.open() => opened,
                () = self.until_ended() => return,
            };
            match opened {
                Ok(stream) => {
                    refusals = 0;
                    tracing::info!(event = %self.event, mount = %self.mount, connection = serial,
                        "webcast: streaming to Icecast");
                    let started = Instant::now();
                    self.show
                        .titles
                        .send_modify(|t| t.connection = Some(serial));
                    let lost = self.pump(stream).await;
                    self.show.titles.send_modify(|t| t.connection = None);
                    if started.elapsed() >= STABLE {
                        backoff = FIRST_BACKOFF;
                    }
                    match lost {
                        Lost::Ended => return,
                        Lost::Dropped(why) => {
                            tracing::warn!(event = %self.event, mount = %self.mount, why,
                                "webcast: Icecast connection lost; reconnecting")
                        }
                    }
                }
                Err(SourceError::Refused) => {
                    refusals += 1;
                    tracing::warn!(event = %self.event, mount = %self.mount, refusals,
                        "webcast: Icecast refused the source (is [webcast] user/password one \
                         of [[icecast.trusted_sources]], and Icecast's stream_auth jars?)");
                    if refusals >= MAX_REFUSALS {
                        self.stop(Stop::ICECAST_REFUSED, "Icecast kept refusing the source");
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(event = %self.event, mount = %self.mount, error = %e,
                        "webcast: cannot stream to Icecast; retrying")
                }
            }
        }
    }

    /// Streams the header, then media from a place a stream may start, until the
    /// connection is lost or the show ends.
    async fn pump(&self, stream: TcpStream) -> Lost {
        let metrics = &self.webcast.metrics.webcast;
        let (mut from_icecast, mut to_icecast) = stream.into_split();
        let mut header_sent = 0usize;
        let mut synced = self.show.unframed();
        let mut scratch = [0u8; 512];
        loop {
            if self.show.ended().is_some() {
                return Lost::Ended;
            }
            let bytes = match self.show.header_from(header_sent) {
                Some(header) => {
                    header_sent += header.len();
                    Some(header)
                }
                None => match self.show.next() {
                    // Until a place to start, media would only confuse Icecast's parser.
                    Some(u) if !synced && !u.sync => {
                        metrics.dropped_bytes.inc_by(u.bytes.len() as u64);
                        continue;
                    }
                    Some(u) => {
                        synced = true;
                        Some(u.bytes)
                    }
                    None => None,
                },
            };
            match bytes {
                Some(bytes) => {
                    let write = tokio::time::timeout(WRITE_STALL, to_icecast.write_all(&bytes));
                    let written = tokio::select! {
                        written = write => written,
                        () = self.until_ended() => return Lost::Ended,
                    };
                    match written {
                        Ok(Ok(())) => metrics.bytes.inc_by(bytes.len() as u64),
                        Ok(Err(e)) => return Lost::Dropped(e.to_string()),
                        Err(_) => return Lost::Dropped("Icecast stopped taking audio".into()),
                    }
                }
                None => tokio::select! {
                    () = self.show.wake.notified() => {}
                    read = from_icecast.read(&mut scratch) => match read {
                        Ok(0) => return Lost::Dropped("closed by Icecast".into()),
                        Err(e) => return Lost::Dropped(e.to_string()),
                        Ok(_) => {}
                    },
                },
            }
        }
    }

    /// Ends the show for `stop`, saying why in the log.
    fn stop(&self, stop: Stop, why: &str) {
        if self.show.finish(End::Stopped(stop)) {
            tracing::info!(event = %self.event, mount = %self.mount, reason = stop.reason,
                "webcast: show ended by jars: {why}");
        }
    }

    /// Sends the DJ's title to Icecast whenever it changes or a new connection starts.
    async fn titles(&self) {
        let settings = &self.webcast.settings;
        let mut rx = self.show.titles.subscribe();
        let mut sent = None;
        loop {
            let current = rx.borrow_and_update().clone();
            if let (Some(song), Some(connection)) = (&current.song, current.connection) {
                let key = (current.version, connection);
                if sent != Some(key) {
                    sent = Some(key);
                    let creds = (settings.user.as_str(), settings.password.as_str());
                    let update = icecast::update_title(
                        &self.webcast.http,
                        &settings.icecast_url,
                        creds,
                        &self.mount,
                        song,
                    );
                    match update.await {
                        Ok(()) => tracing::debug!(event = %self.event, "webcast: title updated"),
                        Err(e) => tracing::info!(event = %self.event, error = e,
                            "webcast: Icecast did not take the title"),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(TITLE_EVERY) => {}
                        () = self.until_ended() => return,
                    }
                    continue;
                }
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                () = self.until_ended() => return,
            }
        }
    }
}
