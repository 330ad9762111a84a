//! Where a DJ's stream may be cut and taken up again: Icecast needs every new source
//! connection to start like a stream starts. For WebM (what a browser's `MediaRecorder`
//! makes) that is the EBML header, `Segment`, `Info` and `Tracks` — everything before the
//! first `Cluster` — then a `Cluster`; for Ogg, the header pages, then a page. MP3 and AAC
//! resynchronise on their own: any byte will do.
//!
//! A [`Framer`] reads the stream as it comes and splits it into the stream's [`Piece::Header`]
//! (kept for every reconnect) and media [`Piece::Media`], each marked when it starts where a
//! new connection may start (`sync`). A stream that does not parse as its type is passed on
//! unmarked from there on ([`Framer::gave_up`]).

/// A part of the stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The stream's header: sent first on every connection to Icecast.
    Header(Vec<u8>),
    /// Media; `sync`: a new connection may start with it.
    Media { bytes: Vec<u8>, sync: bool },
}

/// The longest header kept (WebM's `Tracks` or Ogg's header pages are a few kilobytes).
pub const MAX_HEADER: usize = 64 * 1024;
/// The longest Ogg page (27 + 255 + 255 × 255 bytes).
const MAX_OGG_PAGE: usize = 27 + 255 + 255 * 255;

/// Splits one stream.
#[derive(Debug)]
pub struct Framer {
    kind: Kind,
    /// Bytes read but not yet given out: at most one element head or one Ogg page.
    pending: Vec<u8>,
    /// Whether media has begun (the header is complete).
    media: bool,
    /// The stream stopped parsing: the rest is passed on as it comes.
    gave_up: bool,
}

#[derive(Debug)]
enum Kind {
    Raw,
    /// Bytes of the current element still to pass over.
    Ebml {
        skip: u64,
    },
    Ogg,
}

const EBML_SEGMENT: u32 = 0x1853_8067;
const EBML_CLUSTER: u32 = 0x1F43_B675;

impl Framer {
    /// A framer for a stream of media type `essence` (`audio/webm`, `audio/ogg`, …).
    pub fn for_type(essence: &str) -> Framer {
        let kind = match essence {
            "audio/webm" | "video/webm" | "audio/x-matroska" | "video/x-matroska" => {
                Kind::Ebml { skip: 0 }
            }
            "audio/ogg" | "application/ogg" | "video/ogg" | "application/x-ogg" => Kind::Ogg,
            _ => Kind::Raw,
        };
        Framer {
            kind,
            pending: Vec::new(),
            media: false,
            gave_up: false,
        }
    }

    /// Whether the stream stopped parsing as its type.
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Reads `data`, appending what can be given out to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Piece>) {
        if self.gave_up || matches!(self.kind, Kind::Raw) {
            if !data.is_empty() {
                out.push(Piece::Media {
                    bytes: data.to_vec(),
                    sync: !self.gave_up,
                });
            }
            return;
        }
        self.pending.extend_from_slice(data);
        let buf = std::mem::take(&mut self.pending);
        let used = match self.kind {
            Kind::Ebml { .. } => self.ebml(&buf, out),
            Kind::Ogg => self.ogg(&buf, out),
            Kind::Raw => unreachable!("handled above"),
        };
        if self.gave_up {
            self.media = true;
            self.emit(&buf[used..], false, out);
        } else {
            self.pending = buf[used..].to_vec();
        }
    }

    /// Gives out `bytes`: header until media began, else media.
    fn emit(&mut self, bytes: &[u8], sync: bool, out: &mut Vec<Piece>) {
        if bytes.is_empty() {
            return;
        }
        if self.media {
            out.push(Piece::Media {
                bytes: bytes.to_vec(),
                sync,
            });
        } else {
            out.push(Piece::Header(bytes.to_vec()));
        }
    }

    /// Walks EBML elements: into `Segment` and `Cluster` (live encoders leave their size
    /// unknown), over everything else. Returns the bytes used.
    fn ebml(&mut self, buf: &[u8], out: &mut Vec<Piece>) -> usize {
        let Kind::Ebml { mut skip } = self.kind else {
            return 0;
        };
        let mut pos = 0usize;
        let mut run = 0usize;
        let mut run_sync = false;
        loop {
            if skip > 0 {
                let n = skip.min((buf.len() - pos) as u64);
                pos += n as usize;
                skip -= n;
                if skip > 0 {
                    break;
                }
                continue;
            }
            let Some(head) = element_head(&buf[pos..]) else {
                break;
            };
            let Ok((id, size, len)) = head else {
                self.gave_up = true;
                break;
            };
            match id {
                EBML_CLUSTER => {
                    self.emit(&buf[run..pos], run_sync, out);
                    self.media = true;
                    run = pos;
                    run_sync = true;
                    pos += len;
                }
                EBML_SEGMENT => pos += len,
                _ => match size {
                    Some(size) => {
                        pos += len;
                        skip = size;
                    }
                    None => {
                        self.gave_up = true;
                        break;
                    }
                },
            }
        }
        self.kind = Kind::Ebml { skip };
        // Give out what was read, keeping an incomplete element head for the next read.
        self.emit(&buf[run..pos], run_sync, out);
        pos
    }

    /// Gives out whole Ogg pages: header pages (granule position 0, or none) until the first
    /// page that ends audio, then each page as a place to start. Returns the bytes used.
    fn ogg(&mut self, buf: &[u8], out: &mut Vec<Piece>) -> usize {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            if rest.len() < 27 {
                break;
            }
            if &rest[..4] != b"OggS" {
                self.gave_up = true;
                break;
            }
            let segments = rest[26] as usize;
            if rest.len() < 27 + segments {
                break;
            }
            let body: usize = rest[27..27 + segments].iter().map(|&b| b as usize).sum();
            let len = 27 + segments + body;
            debug_assert!(len <= MAX_OGG_PAGE);
            if rest.len() < len {
                break;
            }
            let granule = u64::from_le_bytes(rest[6..14].try_into().unwrap_or([0; 8]));
            if granule != 0 && granule != u64::MAX {
                self.media = true;
            }
            self.emit(&rest[..len], true, out);
            pos += len;
        }
        pos
    }
}

/// An EBML element head: its id, its size (`None`: unknown) and the head's length.
type ElementHead = (u32, Option<u64>, usize);

/// The EBML element head at the start of `b`; `None` while incomplete; `Err` when it is not
/// an element head.
fn element_head(b: &[u8]) -> Option<Result<ElementHead, ()>> {
    let first = *b.first()?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Some(Err(()));
    }
    let size_first = *b.get(id_len)?;
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Some(Err(()));
    }
    if b.len() < id_len + size_len {
        return None;
    }
    let id = b[..id_len].iter().fold(0u32, |a, &x| a << 8 | x as u32);
    let mask = (0xFFu16 >> size_len) as u8;
    let mut value = (size_first & mask) as u64;
    let mut all_ones = size_first & mask == mask;
    for &x in &b[id_len + 1..id_len + size_len] {
        value = value << 8 | x as u64;
        all_ones &= x == 0xFF;
    }
    let size = (!all_ones).then_some(value);
    Some(Ok((id, size, id_len + size_len)))
}

#[cfg(test)]
mod tests;
