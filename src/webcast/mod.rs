//! jars' own webcast relay: a DJ's browser streams to `/webcast/{mount}` (the WebSocket lives in
//! `http::webcast`) and jars sends it on to Icecast as a source — what webcaster-relay does,
//! with the DJ approved by the same rules as `/jars/connect` ([`approval`]), guests included,
//! and surviving Icecast's restarts ([`relay`]).
//!
//! The parts, in the order the audio flows: [`protocol`] (the frames, and how a show is
//! stopped), [`show`] (what one DJ sends, bounded, with [`framing`] saying where a stream may
//! be taken up again), [`relay`] (the way to Icecast, [`icecast`] speaking its source
//! protocol), and [`registry`] (the live shows, and how sanctions end one).

pub mod approval;
pub mod framing;
pub mod icecast;
pub mod protocol;
pub mod registry;
pub mod relay;
pub mod show;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

pub use approval::{ApprovalError, Approved, Approver};
use protocol::{essence, Hello, Stop};
use registry::{Claim, DjKey, Registry};
use relay::{Relay, StreamInfo};
use show::{End, Show};

use crate::config::WebcastSettings;
use crate::log_input::Escaped;
use crate::metrics::Metrics;
use crate::rules::broadcast::Credential;

/// The bitrate assumed for sizing the buffer when the `hello` names none (kbit/s).
const DEFAULT_KBPS: u32 = 256;
/// The buffer's bounds in bytes, whatever `buffer` and the bitrate say.
const MIN_BUFFER: usize = 64 * 1024;
const MAX_BUFFER: usize = 2 << 20;
/// How long a DJ replacing their own show waits for the old Icecast connection to close.
const REPLACE_WAIT: Duration = Duration::from_secs(5);

/// The webcast service of this node.
pub struct Webcast {
    pub approver: Approver,
    /// `[webcast]`, when configured; without it `/webcast` answers 404.
    pub(crate) settings: WebcastSettings,
    enabled: bool,
    pub registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) http: reqwest::Client,
}

/// A DJ who sent a `hello`.
pub struct Dj {
    pub hello: Hello,
    pub ip: Option<IpAddr>,
}

impl Webcast {
    /// The service for `settings` (`None`: not offered; `/jars/connect` approvals still work).
    pub fn new(
        approver: Approver,
        settings: Option<WebcastSettings>,
        metrics: Arc<Metrics>,
    ) -> Webcast {
        let enabled = settings.is_some();
        Webcast {
            approver,
            settings: settings.unwrap_or_else(|| WebcastSettings {
                icecast_url: String::new(),
                icecast_addr: String::new(),
                user: String::new(),
                password: String::new(),
                buffer: Duration::from_secs(5),
            }),
            enabled,
            registry: Arc::default(),
            metrics,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("jars/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// Whether `[webcast]` is configured.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Puts `dj` live on event `event` through Icecast mount `/<mount>`: their password
    /// verified and approved as `/jars/connect` would, the event taken in the registry, and
    /// the relay to Icecast started. The [`Live`] handle is the DJ's side of the show.
    pub async fn start(self: &Arc<Self>, mount: &str, event: Uuid, dj: Dj) -> Result<Live, Stop> {
        let refused = |e: ApprovalError| {
            if e.is_outage() {
                tracing::warn!(event = %event, error = %e, "webcast: cannot check a DJ");
            }
            Stop::denied(e.reason())
        };
        let credential = self
            .approver
            .verify(&dj.hello.password)
            .await
            .map_err(refused)?;
        let key = match &credential {
            Credential::Member(c) => DjKey::Member(c.sub),
            Credential::Guest(t) => DjKey::Ticket(t.jti.clone()),
        };
        let mime = essence(&dj.hello.mime).to_string();
        let cap = buffer_bytes(self.settings.buffer, dj.hello.audio.bitrate);
        let show = Arc::new(Show::new(&mime, cap, self.metrics.webcast.clone()));
        let (claim, replaced) = self.registry.claim(event, key, show.clone())?;
        let ip = dj.ip.map(|ip| ip.to_canonical().to_string());
        let approved = self
            .approver
            .approve(&credential, event, ip.as_deref())
            .await
            .map_err(refused)?;
        if let Some(mut old) = replaced {
            // The old relay closes its Icecast connection before the new one opens.
            let _ = tokio::time::timeout(REPLACE_WAIT, old.wait_for(|done| *done)).await;
        }
        let row = self.approver.store.get(event).await.ok().flatten();
        let stream = StreamInfo {
            content_type: mime,
            name: row.as_ref().and_then(|e| e.title.clone()),
            description: row.as_ref().and_then(|e| e.description.clone()),
            public: row.as_ref().is_some_and(|e| !e.private),
            audio_info: dj.hello.audio.ice_audio_info(),
        };
        tracing::info!(event = %event, mount = %Escaped(mount), by = approved.connected_by,
            ticket = credential.ticket().map(|(jti, _)| jti), ip = ip.as_deref(),
            mime = %Escaped(&stream.content_type), "webcast: DJ live");
        let relay = Relay {
            webcast: self.clone(),
            show: show.clone(),
            credential,
            event,
            mount: format!("/{mount}"),
            ip,
            stream,
        };
        self.metrics.webcast.sessions.inc();
        tokio::spawn(run(relay, claim, self.metrics.clone()));
        Ok(Live { show })
    }
}

/// Runs a relay; when it ends, the show's place is released and counted.
async fn run(relay: Relay, claim: Claim, metrics: Arc<Metrics>) {
    relay.run().await;
    drop(claim);
    metrics.webcast.sessions.dec();
}

/// The bytes of media kept for Icecast: `buffer` at the DJ's bitrate, within bounds.
fn buffer_bytes(buffer: Duration, kbps: Option<u32>) -> usize {
    let kbps = kbps
        .filter(|k| (8..=1024).contains(k))
        .unwrap_or(DEFAULT_KBPS);
    let bytes = buffer.as_secs_f64() * f64::from(kbps) * 1000.0 / 8.0;
    (bytes as usize).clamp(MIN_BUFFER, MAX_BUFFER)
}

/// The DJ's side of a live show. Dropping it ends the show (the DJ left).
pub struct Live {
    show: Arc<Show>,
}

impl Live {
    /// Audio from the DJ.
    pub fn audio(&self, data: &[u8]) -> Result<(), Stop> {
        self.show.audio(data)
    }

    /// A title from the DJ.
    pub fn title(&self, song: String) {
        self.show.title(song);
    }

    /// Whether an Icecast connection of the show is open now (Icecast has the source).
    pub fn streaming(&self) -> bool {
        self.show.titles.borrow().connection.is_some()
    }

    /// Waits until jars ends the show, and says why.
    pub async fn stopped(&self) -> Stop {
        loop {
            match self.show.until_ended().await {
                End::Stopped(stop) => return stop,
                // Only the DJ's own side ends it so, and it is not waiting then.
                End::DjLeft => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.show.finish(End::DjLeft);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_follows_the_bitrate_within_bounds() {
        let five = Duration::from_secs(5);
        assert_eq!(buffer_bytes(five, Some(128)), 80_000);
        assert_eq!(buffer_bytes(five, None), 160_000);
        assert_eq!(buffer_bytes(five, Some(0)), 160_000);
        assert_eq!(buffer_bytes(Duration::from_secs(1), Some(32)), MIN_BUFFER);
        assert_eq!(
            buffer_bytes(Duration::from_secs(30), Some(1024)),
            MAX_BUFFER
        );
    }
}
