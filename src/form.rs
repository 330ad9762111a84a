//! `application/x-www-form-urlencoded` decoding, strict: every key and value must be UTF-8 once
//! percent-decoded (a lossy decoder would turn hostile bytes into look-alike text).

/// A key or value that is not UTF-8 once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// Parses form bytes into (key, value) pairs in order; `+` is a space, empty pairs are skipped,
/// a key without `=` has an empty value.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, NotUtf8> {
    let decode = |part: &[u8]| -> Result<String, NotUtf8> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| NotUtf8)
    };
    input
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            Ok((decode(k)?, decode(v)?))
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
}
