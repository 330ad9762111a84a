//! `multipart/form-data` bodies (RFC 7578) read as form fields, as Tornado read them for the
//! original service: a browser's `FormData` sends these. Strict: a malformed body is an error,
//! never a partial form. File parts (with a `filename`) are not arguments and are skipped, as
//! Tornado kept them apart. A field whose content is not UTF-8 is kept as an error for whoever
//! reads it: Tornado decoded only the arguments a handler read.

use memchr::memmem;

use crate::form::{NotUtf8, Value};

/// A body that is not well-formed `multipart/form-data` (its part headers included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The `boundary` parameter of a `multipart/form-data` content type (quotes removed), or
/// `Err` when it has none. `None` when the type is not `multipart/form-data`.
pub fn boundary(content_type: &str) -> Option<Result<&str, Malformed>> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let found = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| unquote(v.trim()))
    });
    // RFC 2046: 1 to 70 characters.
    Some(
        found
            .filter(|b| (1..=70).contains(&b.len()))
            .ok_or(Malformed),
    )
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// The (name, value) fields of `body`, in order.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<(String, Value)>, Malformed> {
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let next_part = [b"\r\n--", boundary.as_bytes()].concat();
    let mut rest = body.strip_prefix(&delimiter[..]).ok_or(Malformed)?;
    let mut fields = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            // The close delimiter; anything after it is an epilogue.
            return Ok(fields);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(Malformed)?;
        let end_of_headers = memmem::find(rest, b"\r\n\r\n").ok_or(Malformed)?;
        let headers = std::str::from_utf8(&rest[..end_of_headers]).map_err(|_| Malformed)?;
        rest = &rest[end_of_headers + 4..];
        let end = memmem::find(rest, &next_part).ok_or(Malformed)?;
        let content = &rest[..end];
        rest = &rest[end + next_part.len()..];
        if let Some(name) = field_name(headers)? {
            let value = String::from_utf8(content.to_vec()).map_err(|_| NotUtf8);
            fields.push((name.to_string(), value));
        }
    }
}

/// The `name` of a part from its headers; `None` for a file. Every part must be `form-data`
/// with a name.
fn field_name(headers: &str) -> Result<Option<&str>, Malformed> {
    let disposition = headers
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v)
        .ok_or(Malformed)?;
    let mut params = disposition.split(';');
    if !params
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("form-data"))
    {
        return Err(Malformed);
    }
    let mut name = None;
    let mut file = false;
    for p in params {
        let (k, v) = p.split_once('=').ok_or(Malformed)?;
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(unquote(v.trim())),
            "filename" | "filename*" => file = true,
            _ => {}
        }
    }
    match name {
        Some(n) if !n.is_empty() => Ok((!file).then_some(n)),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &[u8] = b"------WebKitFormBoundaryx7\r\n\
Content-Disposition: form-data; name=\"user\"\r\n\r\n alice \r\n\
------WebKitFormBoundaryx7\r\n\
Content-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n\
------WebKitFormBoundaryx7\r\n\
Content-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n\
Content-Type: text/plain\r\n\r\nfile\r\nbody\r\n\
------WebKitFormBoundaryx7\r\n\
content-disposition: form-data; name=\"password\"\r\n\r\nline1\r\nline2\r\n\
------WebKitFormBoundaryx7--\r\n";

    #[test]
    fn reads_a_browsers_form_data() {
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryx7";
        let b = boundary(ct).unwrap().unwrap();
        let fields = parse(BROWSER, b).unwrap();
        assert_eq!(
            fields,
            [
                ("user".to_string(), Ok(" alice ".to_string())),
                ("empty".into(), Ok("".into())),
                ("password".into(), Ok("line1\r\nline2".into())),
            ]
        );
    }

    #[test]
    fn boundaries_from_the_content_type() {
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(
            boundary("Multipart/Form-Data; boundary=\"a b\""),
            Some(Ok("a b"))
        );
        assert_eq!(boundary("multipart/form-data"), Some(Err(Malformed)));
        assert_eq!(
            boundary("multipart/form-data; boundary="),
            Some(Err(Malformed))
        );
        let long = format!("multipart/form-data; boundary={}", "x".repeat(71));
        assert_eq!(boundary(&long), Some(Err(Malformed)));
    }

    #[test]
    fn refuses_malformed_bodies() {
        let part = |headers: &str, rest: &str| format!("--b\r\n{headers}\r\n\r\nv\r\n--b{rest}");
        assert!(parse(
            part("Content-Disposition: form-data; name=x", "--").as_bytes(),
            "b"
        )
        .is_ok());
        for bad in [
            part("Content-Disposition: form-data; name=x", ""), // no close delimiter
            part("Content-Disposition: attachment; name=x", "--"),
            part("Content-Disposition: form-data", "--"),
            part("Content-Disposition: form-data; name=\"\"", "--"),
            part("Content-Type: text/plain", "--"),
            "--b\r\nContent-Disposition: form-data; name=x\r\nv\r\n--b--".into(),
            "preamble\r\n--b--".into(),
            "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\u{0}\r\n--c--".into(),
        ] {
            assert_eq!(parse(bad.as_bytes(), "b"), Err(Malformed), "{bad:?}");
        }
        let not_utf8 = b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\xff\r\n--b--";
        assert_eq!(parse(not_utf8, "b"), Ok(vec![("x".into(), Err(NotUtf8))]));
        let header_not_utf8 = b"--b\r\nContent-Disposition: form-data; name=\xff\r\n\r\nv\r\n--b--";
        assert_eq!(parse(header_not_utf8, "b"), Err(Malformed));
    }
}
