//! One DJ's show between their socket and Icecast: the stream's header and a bounded queue of
//! media (the oldest dropped beyond the bound, so neither an absent nor a slow Icecast makes
//! jars hold more), the latest title, and how the show ends. The DJ's side pushes into it
//! ([`Show::audio`], [`Show::title`]); the relay ([`super::relay`]) takes from it.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::{watch, Notify};

use super::framing::{Framer, Piece, MAX_HEADER};
use super::protocol::Stop;
use crate::metrics::WebcastMetrics;

/// How a show ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The DJ closed their socket (or it broke).
    DjLeft,
    /// jars ended it.
    Stopped(Stop),
}

/// A piece of media in the queue.
#[derive(Debug)]
pub struct Unit {
    pub bytes: Vec<u8>,
    /// A new Icecast connection may start with it.
    pub sync: bool,
}

#[derive(Debug)]
struct Queue {
    framer: Framer,
    header: Vec<u8>,
    units: VecDeque<Unit>,
    bytes: usize,
}

/// What the title updater works from: the DJ's latest title and the Icecast connection
/// streaming now (a new connection needs the title again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Titles {
    pub song: Option<String>,
    /// Counts the titles the DJ sent.
    pub version: u64,
    /// The Icecast connection now streaming, numbered; `None` while there is none.
    pub connection: Option<u64>,
}

/// One show.
pub struct Show {
    queue: Mutex<Queue>,
    /// At most this many media bytes are queued.
    cap: usize,
    /// Wakes the relay: media queued, or the show ended.
    pub wake: Notify,
    end: watch::Sender<Option<End>>,
    pub titles: watch::Sender<Titles>,
    metrics: WebcastMetrics,
}

impl Show {
    /// A show of a stream of media type `essence`, queueing at most `cap` bytes of media.
    pub fn new(essence: &str, cap: usize, metrics: WebcastMetrics) -> Show {
        Show {
            queue: Mutex::new(Queue {
                framer: Framer::for_type(essence),
                header: Vec::new(),
                units: VecDeque::new(),
                bytes: 0,
            }),
            cap,
            wake: Notify::new(),
            end: watch::channel(None).0,
            titles: watch::channel(Titles::default()).0,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues audio from the DJ. A header longer than any real stream's ends the show.
    pub fn audio(&self, data: &[u8]) -> Result<(), Stop> {
        let mut pieces = Vec::new();
        {
            let mut q = self.lock();
            q.framer.push(data, &mut pieces);
            for piece in pieces {
                match piece {
                    Piece::Header(bytes) => {
                        if q.header.len() + bytes.len() > MAX_HEADER {
                            return Err(Stop::BAD_STREAM);
                        }
                        q.header.extend_from_slice(&bytes);
                    }
                    Piece::Media { bytes, sync } => {
                        q.bytes += bytes.len();
                        q.units.push_back(Unit { bytes, sync });
                    }
                }
            }
            // The oldest go first; the newest piece stays even when alone over the bound.
            while q.bytes > self.cap && q.units.len() > 1 {
                if let Some(u) = q.units.pop_front() {
                    q.bytes -= u.bytes.len();
                    self.metrics.dropped_bytes.inc_by(u.bytes.len() as u64);
                }
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Whether the framer gave up on the stream (it is passed on as it comes).
    pub fn unframed(&self) -> bool {
        self.lock().framer.gave_up()
    }

    /// The header bytes from `from` on, if there are any.
    pub fn header_from(&self, from: usize) -> Option<Vec<u8>> {
        let q = self.lock();
        (q.header.len() > from).then(|| q.header[from..].to_vec())
    }

    /// The oldest queued media.
    pub fn next(&self) -> Option<Unit> {
        let mut q = self.lock();
        let u = q.units.pop_front()?;
        q.bytes -= u.bytes.len();
        Some(u)
    }

    /// Whether anything is there to send: header or media.
    pub fn has_data(&self) -> bool {
        let q = self.lock();
        !q.header.is_empty() || !q.units.is_empty()
    }

    /// Sets the title Icecast shows.
    pub fn title(&self, song: String) {
        self.titles.send_modify(|t| {
            t.song = Some(song);
            t.version += 1;
        });
    }

    /// Ends the show, unless it already ended; true if this ended it.
    pub fn finish(&self, end: End) -> bool {
        let ended = self.end.send_if_modified(|e| {
            if e.is_none() {
                *e = Some(end);
                true
            } else {
                false
            }
        });
        self.wake.notify_one();
        ended
    }

    /// How it ended, if it did.
    pub fn ended(&self) -> Option<End> {
        *self.end.borrow()
    }

    /// Waits until the show ends.
    pub async fn until_ended(&self) -> End {
        let mut rx = self.end.subscribe();
        loop {
            if let Some(end) = *rx.borrow_and_update() {
                return end;
            }
            if rx.changed().await.is_err() {
                return End::DjLeft;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(cap: usize) -> Show {
        Show::new("audio/mpeg", cap, crate::metrics::Metrics::new().webcast)
    }

    #[test]
    fn the_queue_is_bounded_by_dropping_the_oldest() {
        let s = show(10);
        for chunk in [b"aaaa", b"bbbb", b"cccc", b"dddd"] {
            s.audio(chunk).unwrap();
        }
        assert_eq!(s.metrics.dropped_bytes.get(), 8);
        assert_eq!(s.next().unwrap().bytes, b"cccc");
        assert_eq!(s.next().unwrap().bytes, b"dddd");
        assert!(s.next().is_none() && !s.has_data());
        // One piece larger than the bound is kept: it is what the DJ sends now.
        s.audio(&[0; 64]).unwrap();
        assert_eq!(s.next().unwrap().bytes.len(), 64);
    }

    #[test]
    fn a_show_ends_once() {
        let s = show(10);
        assert!(s.finish(End::Stopped(Stop::TIMEOUT)));
        assert!(!s.finish(End::DjLeft));
        assert_eq!(s.ended(), Some(End::Stopped(Stop::TIMEOUT)));
        s.title("A - T".into());
        assert_eq!(s.titles.borrow().version, 1);
    }

    #[test]
    fn a_header_beyond_any_real_one_ends_the_show() {
        let s = Show::new(
            "audio/webm",
            1 << 20,
            crate::metrics::Metrics::new().webcast,
        );
        // An EBML header element claiming more than MAX_HEADER bytes.
        let mut data = vec![0x1A, 0x45, 0xDF, 0xA3, 0x10, 0x02, 0x00, 0x00];
        data.extend(vec![0u8; MAX_HEADER]);
        assert_eq!(s.audio(&data), Err(Stop::BAD_STREAM));
    }
}
