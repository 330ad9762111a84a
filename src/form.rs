//! `application/x-www-form-urlencoded` decoding, strict: every key and value must be UTF-8 once
//! percent-decoded (a lossy decoder would turn hostile bytes into look-alike text).
//!
//! Two layers: [`raw_pairs`] and [`decode_component`] borrow from the input and decode only
//! what a caller asks for (the Icecast callback decoder, on the hot path); [`parse`] decodes a
//! whole form into owned pairs, and [`parse_values`] does too but keeps an undecodable value
//! as an error for whoever reads it (the management API: only arguments read must decode).

use std::borrow::Cow;

/// A key or value that is not UTF-8 once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// The still-encoded (key, value) pairs of a form, in order. Empty pairs are skipped; a key
/// without `=` has an empty value.
pub fn raw_pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = Some(input);
    std::iter::from_fn(move || loop {
        let current = rest?;
        let pair = match memchr::memchr(b'&', current) {
            Some(i) => {
                rest = Some(&current[i + 1..]);
                &current[..i]
            }
            None => {
                rest = None;
                current
            }
        };
        if !pair.is_empty() {
            return Some(match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            });
        }
    })
}

/// Decodes one key or value: `+` is a space, `%xx` a byte (a `%` not followed by two hex
/// digits stays as it is). Borrows from `part` when nothing in it is escaped.
pub fn decode_component(part: &[u8]) -> Result<Cow<'_, str>, NotUtf8> {
    // memchr2 scans 32 bytes a step: a ticket in a listener's URL is one long plain run.
    let Some(first) = memchr::memchr2(b'%', b'+', part) else {
        return std::str::from_utf8(part)
            .map(Cow::Borrowed)
            .map_err(|_| NotUtf8);
    };
    let mut out = Vec::with_capacity(part.len());
    let mut rest = part;
    let mut next = Some(first);
    // Copy each plain run whole, then decode the `%xx` or `+` after it.
    while let Some(i) = next {
        out.extend_from_slice(&rest[..i]);
        rest = match (rest[i], &rest[i + 1..]) {
            (b'+', after) => {
                out.push(b' ');
                after
            }
            (_, [hi, lo, after @ ..]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                out.push(hex(*hi) << 4 | hex(*lo));
                after
            }
            (_, after) => {
                out.push(b'%');
                after
            }
        };
        next = next_escape(rest);
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).map(Cow::Owned).map_err(|_| NotUtf8)
}

/// Where the next `%` or `+` is, once one was found: Icecast escapes every byte but
/// `[A-Za-z0-9]`, so in an escaped value the next is a few bytes on, nearer than a vector
/// search's setup pays for (a third of a user agent's decoding, callgrind); a long plain run
/// still goes to memchr2.
fn next_escape(bytes: &[u8]) -> Option<usize> {
    const NEAR: usize = 16;
    let (near, far) = bytes.split_at(bytes.len().min(NEAR));
    match near.iter().position(|b| matches!(b, b'%' | b'+')) {
        Some(i) => Some(i),
        None => memchr::memchr2(b'%', b'+', far).map(|i| i + near.len()),
    }
}

/// The value of an ASCII hex digit.
fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => (digit | 0x20) - b'a' + 10,
    }
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

/// One decoded value, or why it could not be: kept for whoever reads it.
pub type Value = Result<String, NotUtf8>;

/// Parses form bytes into owned (key, value) pairs in order, as [`parse`] does, except that a
/// value that is not UTF-8 is kept as [`NotUtf8`] instead of failing the whole form, and a
/// pair whose key is not UTF-8 is left out: no reader can name it. The original (Tornado)
/// decoded only the arguments a handler read, so `junk=%FF` beside them changed nothing.
pub fn parse_values(input: &[u8]) -> Vec<(String, Value)> {
    raw_pairs(input)
        .filter_map(|(k, v)| {
            let key = decode_component(k).ok()?.into_owned();
            Some((key, decode_component(v).map(Cow::into_owned)))
        })
        .collect()
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
    fn undecodable_values_wait_for_their_reader() {
        assert_eq!(
            parse_values(b"a=1&junk=%ff&%c3%28=1&b=x+y"),
            vec![
                ("a".into(), Ok("1".into())),
                ("junk".into(), Err(NotUtf8)),
                ("b".into(), Ok("x y".into())),
            ]
        );
    }

    #[test]
    fn components_borrow_unless_escaped() {
        assert!(matches!(
            decode_component(b"token"),
            Ok(Cow::Borrowed("token"))
        ));
        assert_eq!(decode_component(b"a%2eb").unwrap(), "a.b");
        assert_eq!(decode_component(b"a+b%2B").unwrap(), "a b+");
        assert_eq!(decode_component(b"%ff"), Err(NotUtf8));
        assert_eq!(decode_component(b"\xff"), Err(NotUtf8));
        // Malformed escapes stay literal, as browsers and percent-encoding leave them.
        assert_eq!(decode_component(b"100%").unwrap(), "100%");
        assert_eq!(decode_component(b"%zz%4").unwrap(), "%zz%4");
        assert_eq!(decode_component(b"%41%4a%4A%c3%a9").unwrap(), "AJJ\u{e9}");
        let raw: Vec<_> = raw_pairs(b"a=1&&b&c=").collect();
        assert_eq!(raw, [(&b"a"[..], &b"1"[..]), (b"b", b""), (b"c", b"")]);
    }

    /// The hand-written decoder agrees with the `percent-encoding` crate (plus `+` as space)
    /// on many random inputs drawn from the bytes that matter.
    #[test]
    fn agrees_with_percent_encoding() {
        let alphabet = b"%+aAfF09gz.\xc3\xa9\xff";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 9) as usize;
            let input: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (8 + 5 * i)) % alphabet.len() as u64) as usize])
                .collect();
            let spaced: Vec<u8> = input
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            let expected = percent_encoding::percent_decode(&spaced)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| NotUtf8);
            let got = decode_component(&input).map(Cow::into_owned);
            assert_eq!(got, expected, "{input:?}");
        }
    }

    /// Escapes found near (within 16 bytes of the last) and far, at every distance between.
    #[test]
    fn finds_escapes_at_any_distance() {
        for gap in 0..48 {
            let plain = "a".repeat(gap);
            let input = format!("%41{plain}%42{plain}+{plain}");
            let expected = format!("A{plain}B{plain} {plain}");
            assert_eq!(decode_component(input.as_bytes()).unwrap(), expected);
        }
    }
}
