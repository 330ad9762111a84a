//! Icecast 2.4's admin API answers, read with `roxmltree`: `listmounts` ([`list_mounts`]), the
//! answer to a kill ([`ice_response`]), and `listclients` as a stream ([`ListenerStream`]): its
//! `<listener>` elements are cut out of the body as it arrives and read one at a time, so a
//! mount with a hundred thousand listeners is never held whole, and no one element may grow
//! past [`MAX_ELEMENT`].

use roxmltree::{Document, Node};

use crate::domain::session::stored_text;

/// The longest `<listener>` element read (its user agent is the listener's to choose).
pub const MAX_ELEMENT: usize = 16 << 10;

/// Why an answer could not be read. Display is fit for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed admin answer: {0}")]
pub struct XmlError(pub &'static str);

/// A mount with a source, from `/admin/listmounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMount {
    pub mount: String,
    /// Seconds the source has been connected.
    pub connected: u64,
    /// Its listeners as Icecast counts them (an edge server's pull is one of them).
    pub listeners: u32,
}

/// A listener, from `/admin/listclients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedClient {
    /// Icecast's client id (`<ID>`).
    pub id: String,
    pub ip: String,
    /// As stored: capped like any user agent.
    pub agent: Option<String>,
    /// Seconds the listener has been connected.
    pub connected: u64,
}

fn child_text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
}

fn seconds(node: Node<'_, '_>) -> u64 {
    child_text(node, "Connected")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn root<'a>(doc: &'a Document<'a>, name: &str) -> Result<Node<'a, 'a>, XmlError> {
    let root = doc.root_element();
    if root.has_tag_name(name) {
        Ok(root)
    } else {
        Err(XmlError("unexpected root element"))
    }
}

fn parse(text: &str) -> Result<Document<'_>, XmlError> {
    Document::parse(text).map_err(|_| XmlError("not well-formed XML"))
}

/// The mounts of a `/admin/listmounts` answer.
pub fn list_mounts(text: &str) -> Result<Vec<ListedMount>, XmlError> {
    let doc = parse(text)?;
    root(&doc, "icestats")?
        .children()
        .filter(|n| n.has_tag_name("source"))
        .map(|s| {
            Ok(ListedMount {
                mount: s
                    .attribute("mount")
                    .ok_or(XmlError("a <source> without a mount"))?
                    .to_string(),
                connected: seconds(s),
                listeners: child_text(s, "listeners")
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

/// Whether an `<iceresponse>` (the answer to a kill) says it was done (`<return>1</return>`).
pub fn ice_response(text: &str) -> Result<bool, XmlError> {
    let doc = parse(text)?;
    Ok(child_text(root(&doc, "iceresponse")?, "return").map(str::trim) == Some("1"))
}

fn listener(element: &str) -> Result<ListedClient, XmlError> {
    let doc = parse(element)?;
    let l = root(&doc, "listener")?;
    let id = child_text(l, "ID")
        .or_else(|| l.attribute("id"))
        .ok_or(XmlError("a <listener> without an ID"))?;
    Ok(ListedClient {
        id: id.trim().to_string(),
        ip: child_text(l, "IP").unwrap_or_default().trim().to_string(),
        agent: child_text(l, "UserAgent")
            .filter(|a| !a.is_empty())
            .map(stored_text),
        connected: seconds(l),
    })
}

/// `/admin/listclients`'s listeners, read as the body arrives ([`ListenerStream::push`]).
#[derive(Debug, Default)]
pub struct ListenerStream {
    pending: String,
    /// Whether the root `<icestats>` was seen.
    started: bool,
}

const OPEN: &str = "<listener";
const CLOSE: &str = "</listener>";

impl ListenerStream {
    /// Reads what `chunk` completes: every whole `<listener>` element so far, in order. The
    /// rest waits for the next chunk. An element longer than [`MAX_ELEMENT`] is an error.
    pub fn push(&mut self, chunk: &str) -> Result<Vec<ListedClient>, XmlError> {
        self.pending.push_str(chunk);
        if !self.started {
            if self.pending.contains("<icestats") {
                self.started = true;
            } else if self.pending.len() > MAX_ELEMENT {
                return Err(XmlError("no <icestats>"));
            }
        }
        let mut out = Vec::new();
        let mut done = 0;
        while let Some(open) = self.pending[done..].find(OPEN).map(|i| done + i) {
            let Some(close) = self.pending[open..]
                .find(CLOSE)
                .map(|i| open + i + CLOSE.len())
            else {
                break;
            };
            if close - open > MAX_ELEMENT {
                return Err(XmlError("a <listener> too long"));
            }
            out.push(listener(&self.pending[open..close])?);
            done = close;
        }
        // What precedes an unfinished element is read; keep the element itself.
        let keep_from = self.pending[done..]
            .find(OPEN)
            .map_or(self.pending.len().saturating_sub(OPEN.len()), |i| done + i);
        let keep_from = floor_char_boundary(&self.pending, keep_from.max(done));
        self.pending.drain(..keep_from);
        if self.pending.len() > MAX_ELEMENT {
            return Err(XmlError("a <listener> too long"));
        }
        Ok(out)
    }

    /// The body ended: it must have been an `<icestats>` answer.
    pub fn finish(self) -> Result<(), XmlError> {
        if self.started {
            Ok(())
        } else {
            Err(XmlError("no <icestats>"))
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! capture {
        ($name:literal) => {
            include_str!(concat!(
                "../../../tests/fixtures/icecast-2.4.4-admin/",
                $name
            ))
        };
    }

    /// All listeners of `doc`, fed in chunks of `size` bytes (on char boundaries).
    fn streamed(doc: &str, size: usize) -> Result<Vec<ListedClient>, XmlError> {
        let mut stream = ListenerStream::default();
        let mut out = Vec::new();
        let mut at = 0;
        while at < doc.len() {
            let end = floor_char_boundary(doc, (at + size).min(doc.len())).max(at + 1);
            let end = (at..=doc.len())
                .find(|&e| e >= end && doc.is_char_boundary(e))
                .unwrap();
            out.extend(stream.push(&doc[at..end])?);
            at = end;
        }
        stream.finish()?;
        Ok(out)
    }

    #[test]
    fn listmounts_as_icecast_2_4_4_writes_it() {
        let mounts = list_mounts(capture!("listmounts.xml")).unwrap();
        assert_eq!(
            mounts,
            [
                ListedMount {
                    mount: "/a&b.mp3".into(),
                    connected: 2,
                    listeners: 0,
                },
                ListedMount {
                    mount: "/live.mp3".into(),
                    connected: 15,
                    listeners: 1,
                }
            ]
        );
        assert_eq!(
            list_mounts(capture!("listmounts-one.xml")).unwrap().len(),
            1
        );
        assert!(list_mounts(capture!("listmounts-empty.xml"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn listclients_as_icecast_2_4_4_writes_it_in_any_chunks() {
        let want = [
            ListedClient {
                id: "4".into(),
                ip: "127.0.0.1".into(),
                agent: Some("curl/7.88.1".into()),
                connected: 15,
            },
            ListedClient {
                id: "20".into(),
                ip: "127.0.0.1".into(),
                // The escaped `<`, `&` and `"` come through as text.
                agent: Some("Mozilla <x> & \"q\"".into()),
                connected: 1,
            },
        ];
        for size in [1, 2, 7, 64, 100_000] {
            assert_eq!(
                streamed(capture!("listclients.xml"), size).unwrap(),
                want,
                "{size}"
            );
        }
        assert!(streamed(capture!("listclients-empty.xml"), 5)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_long_agent_is_capped_and_an_endless_element_refused() {
        let agent = "A".repeat(8_000);
        let doc = format!(
            "<icestats><source mount=\"/m\"><listener><IP>1.2.3.4</IP><UserAgent>{agent}\
             </UserAgent><Connected>3</Connected><ID>9</ID></listener></source></icestats>"
        );
        let got = streamed(&doc, 1000).unwrap();
        assert_eq!(got[0].agent.as_ref().map(String::len), Some(512));
        let endless = format!("<icestats><listener><IP>{}", "x".repeat(MAX_ELEMENT + 10));
        assert!(streamed(&endless, 4096).is_err());
        assert!(
            streamed("<html>no</html>", 4).is_err(),
            "not an icestats answer"
        );
    }

    #[test]
    fn kill_answers() {
        assert_eq!(ice_response(capture!("killclient.xml")), Ok(true));
        assert_eq!(ice_response(capture!("killsource.xml")), Ok(true));
        assert_eq!(
            ice_response(capture!("killclient-not-found.xml")),
            Ok(false)
        );
        // A missing source is an HTML error page: not an <iceresponse>.
        assert!(ice_response(capture!("killsource-no-source.html")).is_err());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for doc in [
            "",
            "<",
            "<icestats",
            "<icestats><source mount=\"/a></icestats>",
            "<icestats></source>",
            "<icestats>&bogus;</icestats>",
            "<a>&#xffffffff;</a>",
        ] {
            assert!(list_mounts(doc).is_err(), "{doc:?}");
        }
        assert!(streamed(
            "<icestats><source><listener></listener></source></icestats>",
            9
        )
        .is_err());
    }
}
