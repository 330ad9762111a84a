//! What a listener ticket admits: the one event it was minted for, from the address it is
//! bound to (compared as addresses, not as text), for a page at the referer it is bound to
//! (compared by origin, then by path on a `/` boundary), and how many listeners it may hold.

use std::net::IpAddr;

use url::Url;
use uuid::Uuid;

use super::DenyReason;
use crate::domain::Event;
use crate::tokens::TicketClaims;

/// The longest referer a ticket may be bound to, in bytes. Every ticket is held in the
/// verified-token cache while in use: a long referer would make each one heavy there, and no
/// page address a station binds tickets to needs more.
pub const MAX_REFERER_BYTES: usize = 512;

/// Whether `referer` is short enough to bind a ticket to.
pub fn referer_fits(referer: &str) -> bool {
    referer.len() <= MAX_REFERER_BYTES
}

/// A listener as Icecast reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listener<'a> {
    /// The listener's address, as Icecast wrote it (`ip`).
    pub ip: &'a str,
    /// The `Referer` header Icecast forwarded, if any.
    pub referer: Option<&'a str>,
}

/// Whether `ticket` admits `listener` to `event`.
pub fn admits(
    ticket: &TicketClaims,
    event: &Event,
    listener: &Listener<'_>,
) -> Result<(), DenyReason> {
    if !is_for(ticket, event.id) {
        return Err(DenyReason::TicketForAnotherEvent);
    }
    if let Some(bound) = &ticket.ip {
        if !same_address(bound, listener.ip) {
            return Err(DenyReason::TicketBoundToAnotherAddress);
        }
    }
    if let Some(allowed) = &ticket.referer {
        if !listener
            .referer
            .is_some_and(|r| referer_allowed(allowed, r))
        {
            return Err(DenyReason::RefererNotAllowed);
        }
    }
    Ok(())
}

/// The ticket's `sub` names `event` (tickets are minted with the lower-case hyphenated form).
fn is_for(ticket: &TicketClaims, event: Uuid) -> bool {
    let mut buf = Uuid::encode_buffer();
    ticket.sub == *event.hyphenated().encode_lower(&mut buf)
}

/// How many listeners a ticket may hold at once: its own cap and the station's, the smaller.
pub fn cap(ticket: &TicketClaims, station: Option<u32>) -> Option<u32> {
    match (ticket.max_listeners, station) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether two textual addresses are the same address: an IPv4-mapped IPv6 address is its
/// IPv4 address, and any valid spelling of an IPv6 address is that address. Text that is not
/// an address matches nothing.
pub fn same_address(a: &str, b: &str) -> bool {
    match (parse_ip(a), parse_ip(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    Some(text.parse::<IpAddr>().ok()?.to_canonical())
}

/// Whether a page at `referer` is one the ticket allows: the same origin (scheme, host, port)
/// as `allowed`, and a path under `allowed`'s path on a `/` boundary. A referer that is not an
/// absolute http(s) URL, or carries user info, is not allowed.
pub fn referer_allowed(allowed: &str, referer: &str) -> bool {
    let (Some(allowed), Some(referer)) = (web_url(allowed), web_url(referer)) else {
        return false;
    };
    if allowed.origin() != referer.origin() {
        return false;
    }
    let prefix = allowed.path().trim_end_matches('/');
    let path = referer.path();
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn web_url(text: &str) -> Option<Url> {
    let url = Url::parse(text.trim()).ok()?;
    let web = matches!(url.scheme(), "http" | "https");
    let plain = url.username().is_empty() && url.password().is_none();
    (web && plain && url.host().is_some()).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_as_addresses() {
        let cases = [
            ("192.0.2.1", "192.0.2.1", true),
            ("192.0.2.1", "192.0.2.2", false),
            ("192.0.2.1", "::ffff:192.0.2.1", true),
            ("::ffff:192.0.2.1", "192.0.2.1", true),
            (
                "2001:db8::1",
                "2001:0db8:0000:0000:0000:0000:0000:0001",
                true,
            ),
            ("2001:db8::1", "2001:DB8::1", true),
            ("2001:db8::1", "[2001:db8::1]", true),
            ("2001:db8::1", "2001:db8::2", false),
            ("192.0.2.1", "", false),
            ("not an address", "not an address", false),
        ];
        for (bound, seen, expected) in cases {
            assert_eq!(same_address(bound, seen), expected, "{bound} vs {seen}");
        }
    }

    #[test]
    fn referers_compare_by_origin_then_path() {
        let cases = [
            ("https://good.example", "https://good.example/", true),
            (
                "https://good.example",
                "https://good.example/player?x=1",
                true,
            ),
            (
                "https://good.example",
                "https://good.example.evil.com/",
                false,
            ),
            (
                "https://good.example",
                "https://good.example@evil.com/",
                false,
            ),
            ("https://good.example", "http://good.example/", false),
            ("https://good.example", "https://good.example:8443/", false),
            ("https://good.example:443", "https://good.example/", true),
            (
                "https://good.example/player",
                "https://good.example/player",
                true,
            ),
            (
                "https://good.example/player",
                "https://good.example/player/a",
                true,
            ),
            (
                "https://good.example/player/",
                "https://good.example/player/a",
                true,
            ),
            (
                "https://good.example/player",
                "https://good.example/playerx",
                false,
            ),
            (
                "https://good.example/player",
                "https://good.example/",
                false,
            ),
            ("https://GOOD.example", "https://good.EXAMPLE/", true),
            ("https://good.example", "javascript:alert(1)", false),
            ("https://good.example", "", false),
            ("good.example", "https://good.example/", false),
        ];
        for (allowed, referer, expected) in cases {
            assert_eq!(
                referer_allowed(allowed, referer),
                expected,
                "{allowed} vs {referer}"
            );
        }
    }

    #[test]
    fn the_smaller_cap_wins() {
        let mut t = crate::rules::tests::ticket_for(Uuid::new_v4(), i64::MAX);
        assert_eq!(cap(&t, None), None);
        assert_eq!(cap(&t, Some(5)), Some(5));
        t.max_listeners = Some(2);
        assert_eq!(cap(&t, Some(5)), Some(2));
        assert_eq!(cap(&t, None), Some(2));
        t.max_listeners = Some(9);
        assert_eq!(cap(&t, Some(5)), Some(5));
    }
}
