//! A webcast client, as a DJ's browser speaks to webcaster-relay or to jars' `/webcast`: a
//! WebSocket with subprotocol `webcast`, a `hello` text frame, then audio (MP3 frames every
//! 20 ms, each filled with a marker byte so a listener can tell whose audio it hears, or any
//! stream in chunks) and `metadata` frames; it records the close code and reason it is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// An MP3 frame (128 kbit/s, 44.1 kHz) whose body is `marker` bytes.
pub fn marked_frame(marker: u8) -> Vec<u8> {
    let mut frame = vec![marker; 417];
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
    frame
}

/// How jars closed the socket: the code and reason of its close frame.
pub type Closed = (u16, String);

/// A DJ streaming through `/webcast`.
pub struct WebcastDj {
    closed: Arc<Mutex<Option<Closed>>>,
    /// The subprotocol jars chose in its answer.
    pub protocol: Option<String>,
    to_send: mpsc::UnboundedSender<Message>,
    task: tokio::task::JoinHandle<()>,
}

impl WebcastDj {
    /// Connects to `ws://addr/webcast/<mount>`, says hello with `password` and `mime`, then
    /// streams frames of `marker` every 20 ms until closed.
    pub async fn go_live(addr: SocketAddr, mount: &str, password: &str, marker: u8) -> WebcastDj {
        let hello = serde_json::json!({"type": "hello", "data": {
            "mime": "audio/mpeg", "password": password,
            "audio": {"channels": 2, "samplerate": 44100, "bitrate": 128, "encoder": "test"}}});
        let audio = std::iter::repeat(marked_frame(marker));
        Self::connect(
            addr,
            mount,
            Some(hello.to_string()),
            audio,
            Duration::from_millis(20),
        )
        .await
    }

    /// Connects and sends `hello` as the first frame (none: silence), then a frame of
    /// `audio` every `every` while it lasts.
    pub async fn connect(
        addr: SocketAddr,
        mount: &str,
        hello: Option<String>,
        audio: impl Iterator<Item = Vec<u8>> + Send + 'static,
        every: Duration,
    ) -> WebcastDj {
        let mut request = format!("ws://{addr}/webcast/{mount}")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "webcast".parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("webcast upgrade of {mount}: {e}"));
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (mut sink, mut stream) = ws.split();
        if let Some(hello) = hello {
            sink.send(Message::text(hello)).await.unwrap();
        }
        let closed = Arc::new(Mutex::new(None));
        let (to_send, mut queued) = mpsc::unbounded_channel::<Message>();
        let record = closed.clone();
        let task = tokio::spawn(async move {
            let mut audio = audio;
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Close(frame))) => {
                            let c = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                            *record.lock().unwrap() = Some(c.unwrap_or((1005, String::new())));
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            record.lock().unwrap().get_or_insert((1006, String::new()));
                            break;
                        }
                    },
                    Some(m) = queued.recv() => {
                        if sink.send(m).await.is_err() {
                            break;
                        }
                    }
                    _ = tick.tick() => {
                        let Some(frame) = audio.next() else { continue };
                        if sink.send(Message::binary(frame)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        WebcastDj {
            closed,
            protocol,
            to_send,
            task,
        }
    }

    /// Sends a `metadata` frame.
    pub fn metadata(&self, title: &str, artist: &str) {
        let m = serde_json::json!({"type": "metadata", "data": {"title": title, "artist": artist}});
        let _ = self.to_send.send(Message::text(m.to_string()));
    }

    /// How jars closed the socket, if it has.
    pub fn closed(&self) -> Option<Closed> {
        self.closed.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for jars to close the socket.
    pub async fn wait_closed(&self, timeout: Duration) -> Option<Closed> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.closed() {
                return Some(c);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Leaves: the socket is dropped.
    pub fn leave(self) {
        self.task.abort();
    }
}

impl Drop for WebcastDj {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads `want` bytes of `url` (a mount on Icecast) within `timeout`; what arrived.
pub async fn hear(url: &str, want: usize, timeout: Duration) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut heard = Vec::new();
    let Ok(Ok(mut resp)) = tokio::time::timeout_at(deadline, reqwest::get(url)).await else {
        return heard;
    };
    if resp.status() != 200 {
        return heard;
    }
    while heard.len() < want {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => heard.extend_from_slice(&chunk),
            _ => break,
        }
    }
    heard
}
