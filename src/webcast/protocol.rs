//! The webcast protocol's text frames (webcast.js `SPECS.md`, as webcaster-relay reads them):
//! a `hello` first (`mime`, the `password`, optional `audio` settings), then `metadata`; any
//! other `type` is discarded. And how jars closes a DJ's socket: a [`Stop`], a close code in
//! 4000–4999 with a reason a page can show.

use serde::Deserialize;

use crate::rules::DenyReason;
use crate::tokens::TokenError;

/// The longest text frame read (a `hello` carrying a token, or `metadata`).
pub const MAX_TEXT_FRAME: usize = 16 * 1024;
/// The longest `mime` accepted.
const MAX_MIME: usize = 128;
/// The longest title Icecast is sent.
pub const MAX_SONG_CHARS: usize = 255;

/// A text frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Metadata(Metadata),
    /// A frame of a type this protocol does not define: discarded.
    Other,
}

/// The first frame: what the stream is and who sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Hello {
    /// The stream's media type as the DJ's encoder named it (`audio/webm;codecs=opus`).
    pub mime: String,
    /// A member's token or a guest's source ticket (never logged).
    pub password: String,
    pub audio: AudioInfo,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hello({}, ***, {:?})", self.mime, self.audio)
    }
}

/// The `hello`'s optional `audio` settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AudioInfo {
    pub channels: Option<u32>,
    pub samplerate: Option<u32>,
    /// kbit/s.
    pub bitrate: Option<u32>,
}

impl AudioInfo {
    /// Icecast's `ice-audio-info` header value for what is known (`channels=2;samplerate=…`).
    pub fn ice_audio_info(&self) -> Option<String> {
        let parts: Vec<String> = [
            ("channels", self.channels),
            ("samplerate", self.samplerate),
            ("bitrate", self.bitrate),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(";"))
    }
}

/// A `metadata` frame, as the title Icecast shows (`artist - title`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub song: String,
}

/// Why a text frame was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not the `{"type": …, "data": …}` JSON the protocol defines.
    NotAFrame,
    /// A `hello` without a usable `mime` or `password`.
    BadHello,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct RawHello {
    mime: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    audio: Option<serde_json::Value>,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Frame, FrameError> {
    if text.len() > MAX_TEXT_FRAME {
        return Err(FrameError::NotAFrame);
    }
    let raw: Raw = serde_json::from_str(text).map_err(|_| FrameError::NotAFrame)?;
    match raw.kind.as_str() {
        "hello" => {
            let h: RawHello = serde_json::from_value(raw.data).map_err(|_| FrameError::BadHello)?;
            let mime = media_type(&h.mime).ok_or(FrameError::BadHello)?;
            let password = h
                .password
                .filter(|p| !p.is_empty())
                .ok_or(FrameError::BadHello)?;
            // Settings that do not parse are left out, not refused: they are only shown.
            let audio = h
                .audio
                .and_then(|a| serde_json::from_value(a).ok())
                .unwrap_or_default();
            Ok(Frame::Hello(Hello {
                mime,
                password,
                audio,
            }))
        }
        "metadata" => {
            Ok(song(&raw.data).map_or(Frame::Other, |song| Frame::Metadata(Metadata { song })))
        }
        _ => Ok(Frame::Other),
    }
}

/// `mime` when it reads as a media type (`type/subtype`, optional `;` parameters) of printable
/// ASCII fit for a header line; lowercased.
fn media_type(mime: &str) -> Option<String> {
    let mime = mime.trim();
    let (essence, _) = mime.split_once(';').unwrap_or((mime, ""));
    let (kind, sub) = essence.trim().split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let printable = mime.bytes().all(|b| (0x20..0x7f).contains(&b));
    (mime.len() <= MAX_MIME && token(kind) && token(sub) && printable)
        .then(|| mime.to_ascii_lowercase())
}

/// The essence of a media type (`audio/webm` of `audio/webm;codecs=opus`): what Icecast 2.4
/// picks its format handler by, so what jars sends it as `Content-Type`.
pub fn essence(mime: &str) -> &str {
    mime.split(';').next().unwrap_or(mime).trim()
}

/// The title of a `metadata` frame's data: `artist - title`, either alone, or a `song`; control
/// characters become spaces; at most [`MAX_SONG_CHARS`].
fn song(data: &serde_json::Value) -> Option<String> {
    let field = |k: &str| {
        data.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let text = match (field("artist"), field("title"), field("song")) {
        (Some(a), Some(t), _) => format!("{a} - {t}"),
        (Some(one), None, _) | (None, Some(one), _) | (None, None, Some(one)) => one.to_string(),
        (None, None, None) => return None,
    };
    Some(
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_SONG_CHARS)
            .collect(),
    )
}

/// How jars ends a DJ's session: a WebSocket close code (4000–4999, the range for
/// applications) and a reason a page can show (a fixed label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub code: u16,
    pub reason: &'static str,
}

impl Stop {
    /// The first frame was not a valid `hello`.
    pub const BAD_HELLO: Stop = Stop {
        code: 4400,
        reason: "bad_hello",
    };
    /// No `hello` in time, or nothing from the DJ for too long.
    pub const TIMEOUT: Stop = Stop {
        code: 4408,
        reason: "timeout",
    };
    /// Another DJ is live on the event through this node.
    pub const MOUNT_IN_USE: Stop = Stop {
        code: 4409,
        reason: "mount_in_use",
    };
    /// The same DJ connected again: the newer socket carries on.
    pub const REPLACED: Stop = Stop {
        code: 4409,
        reason: "replaced",
    };
    /// A binary frame larger than jars takes.
    pub const TOO_LARGE: Stop = Stop {
        code: 4413,
        reason: "too_large",
    };
    /// The stream does not look like its media type (a header beyond any real one).
    pub const BAD_STREAM: Stop = Stop {
        code: 4415,
        reason: "bad_stream",
    };
    /// Icecast refused jars' source credentials again and again (see `[webcast]`).
    pub const ICECAST_REFUSED: Stop = Stop {
        code: 4502,
        reason: "icecast_refused",
    };
    /// jars could not check the DJ (its store or users file is down).
    pub const UNAVAILABLE: Stop = Stop {
        code: 4503,
        reason: "unavailable",
    };

    /// Ending (or refusing) a DJ for `reason`.
    pub fn denied(reason: DenyReason) -> Stop {
        let (code, reason) = match reason {
            DenyReason::Token(TokenError::Expired) => (4401, "expired"),
            DenyReason::Token(TokenError::WrongKind) => (4401, "wrong_token_kind"),
            DenyReason::Token(TokenError::KeySetStale) => (4503, "unavailable"),
            DenyReason::Token(_) | DenyReason::NoCredentials => (4401, "invalid_token"),
            DenyReason::UserRemoved => (4401, "user_removed"),
            DenyReason::NoSuchEvent => (4404, "no_event"),
            DenyReason::EventExpired => (4410, "event_ended"),
            DenyReason::Revoked => (4403, "revoked"),
            DenyReason::Banned => (4403, "banned"),
            DenyReason::TicketForAnotherEvent => (4403, "wrong_event"),
            DenyReason::StoreUnavailable | DenyReason::IdentityUnavailable => (4503, "unavailable"),
            _ => (4403, "not_owner"),
        };
        Stop { code, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_as_webcast_js_and_webcaster_send_them() {
        let hello = r#"{"type":"hello","data":{"mime":"audio/webm;codecs=opus","password":"tok",
            "audio":{"channels":2,"samplerate":48000,"bitrate":128,"encoder":"x"},"mount":"/x"}}"#;
        let Ok(Frame::Hello(h)) = parse(hello) else {
            panic!("{:?}", parse(hello))
        };
        assert_eq!(h.mime, "audio/webm;codecs=opus");
        assert_eq!(essence(&h.mime), "audio/webm");
        assert_eq!(h.password, "tok");
        assert_eq!(
            h.audio.ice_audio_info().as_deref(),
            Some("channels=2;samplerate=48000;bitrate=128")
        );
        assert!(!format!("{h:?}").contains("tok"));
        let bare = r#"{"type":"hello","data":{"mime":"AUDIO/MPEG","password":"p","audio":"?"}}"#;
        let Ok(Frame::Hello(h)) = parse(bare) else {
            panic!()
        };
        assert_eq!(
            (h.mime.as_str(), h.audio.ice_audio_info()),
            ("audio/mpeg", None)
        );

        for bad in [
            r#"{"type":"hello","data":{"password":"p"}}"#,
            r#"{"type":"hello","data":{"mime":"audio/mpeg"}}"#,
            r#"{"type":"hello","data":{"mime":"audio/mpeg","password":""}}"#,
            r#"{"type":"hello","data":{"mime":"audio","password":"p"}}"#,
            "{\"type\":\"hello\",\"data\":{\"mime\":\"audio/mpeg\\r\\nX: y\",\"password\":\"p\"}}",
        ] {
            assert_eq!(parse(bad), Err(FrameError::BadHello), "{bad}");
        }
        for bad in ["hello", "{}", r#"{"data":{}}"#, "[1]"] {
            assert_eq!(parse(bad), Err(FrameError::NotAFrame), "{bad}");
        }
        assert_eq!(
            parse(&"x".repeat(MAX_TEXT_FRAME + 1)),
            Err(FrameError::NotAFrame)
        );

        let meta = |data: &str| parse(&format!(r#"{{"type":"metadata","data":{data}}}"#));
        let song = |s: &str| Ok(Frame::Metadata(Metadata { song: s.into() }));
        assert_eq!(meta(r#"{"title":"T","artist":"A"}"#), song("A - T"));
        assert_eq!(meta(r#"{"title":"Only"}"#), song("Only"));
        assert_eq!(meta(r#"{"song":"S\nx"}"#), song("S x"));
        assert_eq!(meta(r#"{"title":" "}"#), Ok(Frame::Other));
        assert_eq!(
            meta(&format!(r#"{{"title":"{}"}}"#, "é".repeat(300))),
            song(&"é".repeat(MAX_SONG_CHARS))
        );
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(Frame::Other));
    }

    #[test]
    fn stops_are_application_codes_with_fixed_reasons() {
        let mut all: Vec<Stop> = crate::rules::DenyReason::EACH_LABEL
            .iter()
            .map(|r| Stop::denied(*r))
            .collect();
        all.extend([
            Stop::BAD_HELLO,
            Stop::TIMEOUT,
            Stop::MOUNT_IN_USE,
            Stop::REPLACED,
            Stop::TOO_LARGE,
            Stop::BAD_STREAM,
            Stop::ICECAST_REFUSED,
            Stop::UNAVAILABLE,
        ]);
        for s in all {
            assert!((4000..5000).contains(&s.code), "{s:?}");
            assert!(s
                .reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(Stop::denied(DenyReason::Revoked).reason, "revoked");
        assert_eq!(Stop::denied(DenyReason::Banned).reason, "banned");
        assert_eq!(Stop::denied(DenyReason::EventExpired).reason, "event_ended");
    }
}
