//! `application/x-www-form-urlencoded` decoding, strict: every key and value must be UTF-8 once
//! percent-decoded (a lossy decoder would turn hostile bytes into look-alike text).
//!
//! Two layers: [`raw_pairs`] and [`decode_component`] borrow from the input and decode only
//! what a caller asks for (the Icecast callback decoder, on the hot path); [`parse`] decodes a
//! whole form into owned pairs (the management API).

use std::borrow::Cow;

/// A key or value that is not UTF-8 once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// The still-encoded (key, value) pairs of a form, in order. Empty pairs are skipped; a key
/// without `=` has an empty value.
pub fn raw_pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    input
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        })
}

/// Decodes one key or value: `+` is a space, `%xx` a byte. Borrows from `part` when nothing in
/// it is escaped.
pub fn decode_component(part: &[u8]) -> Result<Cow<'_, str>, NotUtf8> {
    if !part.contains(&b'+') {
        return percent_encoding::percent_decode(part)
            .decode_utf8()
            .map_err(|_| NotUtf8);
    }
    let spaced: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(|s| Cow::Owned(s.into_owned()))
        .map_err(|_| NotUtf8)
}

/// Parses form bytes into owned (key, value) pairs in order (see [`raw_pairs`]).
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, NotUtf8> {
    raw_pairs(input)
        .map(|(k, v)| {
            Ok((
                decode_component(k)?.into_owned(),
                decode_component(v)?.into_owned(),
            ))
        })
        .collect()
}

/// The last non-empty value of `name` in `pairs` (the last one wins, as Tornado's
/// `get_argument` did; an empty value counts as absent).
pub fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_browser_form() {
        let pairs = parse(b"a=1&b=x+y%2Fz&c&&d=%2flive%3ftoken%3dabc").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y/z".into()),
                ("c".into(), "".into()),
                ("d".into(), "/live?token=abc".into()),
            ]
        );
        assert_eq!(parse(b"a=%ff%fe"), Err(NotUtf8));
        assert_eq!(parse(b"%c3%28=1"), Err(NotUtf8));
    }

    #[test]
    fn components_borrow_unless_escaped() {
        assert!(matches!(decode_component(b"token"), Ok(Cow::Borrowed("token"))));
        assert_eq!(decode_component(b"a%2eb").unwrap(), "a.b");
        assert_eq!(decode_component(b"a+b%2B").unwrap(), "a b+");
        assert_eq!(decode_component(b"%ff"), Err(NotUtf8));
        assert_eq!(decode_component(b"\xff"), Err(NotUtf8));
        let raw: Vec<_> = raw_pairs(b"a=1&&b&c=").collect();
        assert_eq!(raw, [(&b"a"[..], &b"1"[..]), (b"b", b""), (b"c", b"")]);
    }
}
