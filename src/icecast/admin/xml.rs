//! A small XML reader for what Icecast 2.4's admin API answers (libxml2's output: a prolog,
//! elements, attributes, text, the five named entities and character references), and the
//! three documents jars reads: `listmounts`, `listclients` and the `iceresponse` of a kill.

use std::borrow::Cow;

/// An element: its name, attributes, child elements and text (concatenated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The children named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name` (case-insensitive: Icecast writes both
    /// `<listeners>` and `<Listeners>`).
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.text.trim())
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not the XML Icecast writes: {0}")]
pub struct XmlError(&'static str);

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    /// Skips `<?…?>`, `<!--…-->` and `<!…>` before the root element.
    fn skip_misc(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            let (open, close) = if self.rest().starts_with("<?") {
                ("<?", "?>")
            } else if self.rest().starts_with("<!--") {
                ("<!--", "-->")
            } else if self.rest().starts_with("<!") {
                ("<!", ">")
            } else {
                return Ok(());
            };
            let end = self.rest()[open.len()..]
                .find(close)
                .ok_or(XmlError("unterminated declaration"))?;
            self.pos += open.len() + end + close.len();
        }
    }

    fn name(&mut self) -> Result<&'a str, XmlError> {
        let r = self.rest();
        let len = r
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '='))
            .unwrap_or(r.len());
        if len == 0 {
            return Err(XmlError("a name is missing"));
        }
        self.pos += len;
        Ok(&r[..len])
    }

    fn eat(&mut self, what: &str) -> Result<(), XmlError> {
        if !self.rest().starts_with(what) {
            return Err(XmlError("unexpected character"));
        }
        self.pos += what.len();
        Ok(())
    }

    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth > 16 {
            return Err(XmlError("nested too deeply"));
        }
        self.eat("<")?;
        let mut e = Element {
            name: self.name()?.to_string(),
            ..Element::default()
        };
        loop {
            self.skip_ws();
            if self.rest().starts_with("/>") {
                self.pos += 2;
                return Ok(e);
            }
            if self.rest().starts_with('>') {
                self.pos += 1;
                break;
            }
            let name = self.name()?.to_string();
            self.skip_ws();
            self.eat("=")?;
            self.skip_ws();
            let quote = self.rest().chars().next().ok_or(XmlError("truncated"))?;
            if quote != '"' && quote != '\'' {
                return Err(XmlError("an attribute value is not quoted"));
            }
            self.pos += 1;
            let end = self
                .rest()
                .find(quote)
                .ok_or(XmlError("unterminated attribute"))?;
            let value = unescape(&self.rest()[..end])?.into_owned();
            self.pos += end + 1;
            e.attributes.push((name, value));
        }
        loop {
            let r = self.rest();
            let lt = r.find('<').ok_or(XmlError("unterminated element"))?;
            e.text.push_str(&unescape(&r[..lt])?);
            self.pos += lt;
            if self.rest().starts_with("</") {
                self.pos += 2;
                if self.name()? != e.name {
                    return Err(XmlError("mismatched end tag"));
                }
                self.skip_ws();
                self.eat(">")?;
                return Ok(e);
            }
            if self.rest().starts_with("<!--") {
                let end = self
                    .rest()
                    .find("-->")
                    .ok_or(XmlError("unterminated comment"))?;
                self.pos += end + 3;
                continue;
            }
            e.children.push(self.element(depth + 1)?);
        }
    }
}

fn unescape(s: &str) -> Result<Cow<'_, str>, XmlError> {
    if !s.contains('&') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..]
            .find(';')
            .ok_or(XmlError("unterminated entity"))?;
        let entity = &rest[amp + 1..amp + semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or(XmlError("unknown entity"))?
            }
        };
        out.push(c);
        rest = &rest[amp + semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Parses a whole document and returns its root element.
pub fn parse(doc: &str) -> Result<Element, XmlError> {
    let mut r = Reader { s: doc, pos: 0 };
    r.skip_misc()?;
    let root = r.element(0)?;
    r.skip_misc()?;
    if !r.rest().is_empty() {
        return Err(XmlError("content after the root element"));
    }
    Ok(root)
}

/// A mount with a source, from `/admin/listmounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMount {
    pub mount: String,
    /// Seconds the source has been connected.
    pub connected: u64,
}

/// A listener, from `/admin/listclients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedClient {
    /// Icecast's client id (`<ID>`).
    pub id: String,
    pub ip: String,
    /// Seconds the listener has been connected.
    pub connected: u64,
}

fn seconds(e: &Element) -> u64 {
    e.child_text("Connected")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn icestats(doc: &str) -> Result<Element, XmlError> {
    let root = parse(doc)?;
    if root.name != "icestats" {
        return Err(XmlError("the root is not <icestats>"));
    }
    Ok(root)
}

/// The mounts of a `/admin/listmounts` answer.
pub fn list_mounts(doc: &str) -> Result<Vec<ListedMount>, XmlError> {
    icestats(doc)?
        .all("source")
        .map(|s| {
            Ok(ListedMount {
                mount: s
                    .attribute("mount")
                    .ok_or(XmlError("a <source> without a mount"))?
                    .to_string(),
                connected: seconds(s),
            })
        })
        .collect()
}

/// The listeners of a `/admin/listclients` answer.
pub fn list_clients(doc: &str) -> Result<Vec<ListedClient>, XmlError> {
    let root = icestats(doc)?;
    let mut out = Vec::new();
    for source in root.all("source") {
        for l in source.all("listener") {
            let id = l
                .child_text("ID")
                .or_else(|| l.attribute("id"))
                .ok_or(XmlError("a <listener> without an ID"))?;
            out.push(ListedClient {
                id: id.to_string(),
                ip: l.child_text("IP").unwrap_or_default().to_string(),
                connected: seconds(l),
            });
        }
    }
    Ok(out)
}

/// Whether an `<iceresponse>` (the answer to a kill) says it was done (`<return>1</return>`).
pub fn ice_response(doc: &str) -> Result<bool, XmlError> {
    let root = parse(doc)?;
    if root.name != "iceresponse" {
        return Err(XmlError("the root is not <iceresponse>"));
    }
    Ok(root.child_text("return") == Some("1"))
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

    #[test]
    fn listmounts_as_icecast_2_4_4_writes_it() {
        let mounts = list_mounts(capture!("listmounts.xml")).unwrap();
        assert_eq!(
            mounts,
            [
                ListedMount {
                    mount: "/a&b.mp3".into(),
                    connected: 2
                },
                ListedMount {
                    mount: "/live.mp3".into(),
                    connected: 15
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
    fn listclients_as_icecast_2_4_4_writes_it() {
        let clients = list_clients(capture!("listclients.xml")).unwrap();
        assert_eq!(
            clients,
            [
                ListedClient {
                    id: "4".into(),
                    ip: "127.0.0.1".into(),
                    connected: 15
                },
                ListedClient {
                    id: "20".into(),
                    ip: "127.0.0.1".into(),
                    connected: 1
                }
            ]
        );
        assert!(list_clients(capture!("listclients-empty.xml"))
            .unwrap()
            .is_empty());
        // The user agent's escaped `<`, `&` and `"` came through as text.
        let root = parse(capture!("listclients.xml")).unwrap();
        let agent = root.children[0].all("listener").nth(1).unwrap();
        assert_eq!(agent.child_text("UserAgent"), Some("Mozilla <x> & \"q\""));
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
            "<icestats/><more/>",
            "<a>&#xffffffff;</a>",
            "<icestats><source><listener></listener></source></icestats>",
        ] {
            assert!(
                list_clients(doc).is_err() || list_mounts(doc).is_err(),
                "{doc:?}"
            );
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).is_err());
        assert_eq!(
            parse("<a x='1&#65;'>t&#x42;<!-- c --></a>").unwrap(),
            Element {
                name: "a".into(),
                attributes: vec![("x".into(), "1A".into())],
                children: vec![],
                text: "tB".into()
            }
        );
    }
}
