//! jars as an Icecast 2.4 source: a plain HTTP/1.1 `PUT /<mount>` over a TCP stream, the
//! audio as raw bytes after the head (no `Expect: 100-continue`, no chunked encoding: Icecast
//! 2.4.4 answers `HTTP/1.0 200 OK` once `stream_auth` allowed it, then reads the body until
//! the connection closes), and the stream title through its admin API
//! (`/admin/metadata?mode=updinfo`). Nothing here logs a credential.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long Icecast may take to answer a `PUT`: its `stream_auth` callback may take up to
/// its own 15 s timeout.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(17);
/// The longest response head read.
const MAX_HEAD: usize = 8 * 1024;

/// The source request for one mount.
pub struct SourceRequest<'a> {
    /// `host:port` of Icecast.
    pub addr: &'a str,
    /// The mount, with its leading `/`.
    pub mount: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    /// The stream's media type essence (`audio/webm`): what Icecast picks its format by.
    pub content_type: &'a str,
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub public: bool,
    /// `ice-audio-info`.
    pub audio_info: Option<&'a str>,
}

/// Why Icecast did not take the source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach Icecast: {0}")]
    Unreachable(std::io::Error),
    #[error("Icecast did not answer in time")]
    Timeout,
    /// 401: `stream_auth` refused jars' credentials.
    #[error("Icecast refused the source credentials (HTTP 401)")]
    Refused,
    /// 403: the mount already has a source ("Mountpoint in use"), or too many sources.
    #[error("Icecast refused the mount (HTTP 403: in use, or too many sources)")]
    InUse,
    #[error("unexpected answer: {0}")]
    Answer(String),
}

/// A header value as Icecast gets it: control characters (a newline would end the header)
/// become spaces; at most 255 characters.
fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(255)
        .collect::<String>()
        .trim()
        .to_string()
}

impl SourceRequest<'_> {
    /// The request head.
    fn head(&self) -> String {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let mut head = format!(
            "PUT {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\n\
             User-Agent: jars/{}\r\nContent-Type: {}\r\nIce-Public: {}\r\n",
            self.mount,
            self.addr,
            env!("CARGO_PKG_VERSION"),
            header_value(self.content_type),
            u8::from(self.public),
        );
        let mut line = |name: &str, value: Option<&str>| {
            if let Some(v) = value.map(header_value).filter(|v| !v.is_empty()) {
                head.push_str(&format!("{name}: {v}\r\n"));
            }
        };
        line("Ice-Name", self.name);
        line("Ice-Description", self.description);
        line("Ice-Audio-Info", self.audio_info);
        head.push_str("\r\n");
        head
    }

    /// Connects, sends the head and waits for Icecast's answer: the stream to write the audio
    /// to once it took the source.
    pub async fn open(&self) -> Result<TcpStream, SourceError> {
        let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
            .map_err(|_| SourceError::Timeout)?
            .map_err(SourceError::Unreachable)?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(self.head().as_bytes())
            .await
            .map_err(SourceError::Unreachable)?;
        let status = tokio::time::timeout(ANSWER_TIMEOUT, status(&mut stream))
            .await
            .map_err(|_| SourceError::Timeout)??;
        match status {
            200 => Ok(stream),
            401 => Err(SourceError::Refused),
            403 => Err(SourceError::InUse),
            other => Err(SourceError::Answer(format!("HTTP {other}"))),
        }
    }
}

/// Reads one response head (a `100 Continue` is passed over) and returns its status.
async fn status(stream: &mut TcpStream) -> Result<u16, SourceError> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]);
            let code = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| SourceError::Answer("not HTTP".into()))?;
            if code == 100 {
                buf.drain(..end + 4);
                continue;
            }
            return Ok(code);
        }
        if buf.len() > MAX_HEAD {
            return Err(SourceError::Answer("response head too long".into()));
        }
        // Byte by byte: nothing after the head may be consumed (Icecast sends none anyway).
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(0) => return Err(SourceError::Answer("closed without an answer".into())),
            Ok(_) => buf.push(byte[0]),
            Err(e) => return Err(SourceError::Unreachable(e)),
        }
    }
}

/// Sets the title of `mount` (`/admin/metadata?mode=updinfo`) with the source credentials:
/// Icecast 2.4 asks `stream_auth` (`admin=1`), which admits the relay while its source is live.
pub async fn update_title(
    http: &reqwest::Client,
    base: &str,
    (user, password): (&str, &str),
    mount: &str,
    song: &str,
) -> Result<(), String> {
    let resp = http
        .get(format!("{base}/admin/metadata"))
        .query(&[
            ("mode", "updinfo"),
            ("mount", mount),
            ("song", song),
            ("charset", "UTF-8"),
        ])
        .basic_auth(user, Some(password))
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() && body.contains("<return>1</return>") {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_what_icecast_reads_and_values_cannot_add_lines() {
        let r = SourceRequest {
            addr: "127.0.0.1:8000",
            mount: "/e.mp3",
            user: "relay",
            password: "pw",
            content_type: "audio/mpeg",
            name: Some("Breakfast\r\nX-Evil: 1"),
            description: Some(""),
            public: true,
            audio_info: Some("channels=2"),
        };
        let head = r.head();
        assert!(head.starts_with("PUT /e.mp3 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"));
        assert!(head.contains("Authorization: Basic cmVsYXk6cHc=\r\n"));
        assert!(head.contains("Content-Type: audio/mpeg\r\nIce-Public: 1\r\n"));
        assert!(head.contains("Ice-Name: Breakfast  X-Evil: 1\r\n"));
        assert!(!head.contains("Ice-Description"));
        assert!(head.contains("Ice-Audio-Info: channels=2\r\n"));
        assert!(!head.contains("Expect") && !head.contains("Transfer-Encoding"));
        assert!(head.ends_with("\r\n\r\n"));
        assert_eq!(head.matches("\r\n").count(), 9);
    }
}
