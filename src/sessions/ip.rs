//! How much of a listener's address a session row keeps (`[sessions] ip`): a pure function.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::IpMode;

/// The address Icecast reported, as `mode` keeps it: `Full` as given, `None` nothing,
/// `Truncated` the network only — IPv4 /24 (`192.0.2.0`), IPv6 /48 (`2001:db8:1::`), an
/// IPv4-mapped IPv6 address as IPv4. Text that is no address is not kept when truncating (it
/// could be anything). An empty address is never kept.
pub fn kept_ip(reported: &str, mode: IpMode) -> Option<String> {
    let reported = reported.trim();
    if reported.is_empty() {
        return None;
    }
    match mode {
        IpMode::None => None,
        IpMode::Full => Some(reported.to_string()),
        IpMode::Truncated => match truncated(reported.parse().ok()?) {
            // Written by hand: `Ipv4Addr`'s `Display` goes through the formatting machinery,
            // the largest part of a session row's cost on the callback path (callgrind).
            IpAddr::V4(v4) => Some(dotted(v4)),
            v6 => Some(v6.to_string()),
        },
    }
}

fn truncated(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4_network(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4_network(v4)),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
        },
    }
}

/// `v4` in dotted decimal, as its `Display` writes it.
fn dotted(v4: Ipv4Addr) -> String {
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

fn v4_network(v4: Ipv4Addr) -> Ipv4Addr {
    let [a, b, c, _] = v4.octets();
    Ipv4Addr::new(a, b, c, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_keeps_what_it_says() {
        let t = IpMode::Truncated;
        assert_eq!(kept_ip("192.0.2.77", t).as_deref(), Some("192.0.2.0"));
        assert_eq!(kept_ip(" 10.1.2.3 ", t).as_deref(), Some("10.1.2.0"));
        assert_eq!(
            kept_ip("2001:db8:abcd:12:1:2:3:4", t).as_deref(),
            Some("2001:db8:abcd::")
        );
        assert_eq!(
            kept_ip("::ffff:198.51.100.9", t).as_deref(),
            Some("198.51.100.0")
        );
        assert_eq!(kept_ip("::1", t).as_deref(), Some("::"));
        assert_eq!(kept_ip("not-an-ip", t), None);
        assert_eq!(kept_ip("", t), None);
        assert_eq!(
            kept_ip("2001:db8::1", IpMode::Full).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            kept_ip("192.0.2.77", IpMode::Full).as_deref(),
            Some("192.0.2.77")
        );
        assert_eq!(kept_ip("", IpMode::Full), None);
        assert_eq!(kept_ip("192.0.2.77", IpMode::None), None);
    }

    #[test]
    fn dotted_writes_what_display_writes() {
        for v4 in [
            [0, 0, 0, 0],
            [9, 10, 99, 100],
            [255, 255, 255, 255],
            [1, 20, 200, 7],
        ] {
            let ip = Ipv4Addr::from(v4);
            assert_eq!(dotted(ip), ip.to_string());
        }
    }
}
