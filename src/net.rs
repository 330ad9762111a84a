//! Client addresses: CIDR ranges ([`IpNet`], on the `ipnet` crate) and the client's address
//! behind trusted reverse proxies (`X-Forwarded-For`).

use std::net::IpAddr;

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`, or a bare address), kept with
/// its host bits cleared. IPv4 and IPv6 are one address space, as a dual-stack socket sees
/// them: an IPv4-mapped range (`::ffff:203.0.113.0/120`) is the IPv4 range it maps
/// (`203.0.113.0/24`), and an IPv6 range contains an IPv4 address when it contains its mapped
/// form (`::ffff:a.b.c.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet(ipnet::IpNet);

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.trim(), Some(p.trim())),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{s}\" is not an address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{s}\": prefix must be 0 to {max}"))?,
        };
        let net = ipnet::IpNet::new(addr, prefix)
            .map_err(|_| format!("\"{s}\": prefix must be 0 to {max}"))?;
        Ok(IpNet::canonical(net))
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl IpNet {
    /// `net` with its host bits cleared, an IPv4-mapped range as the IPv4 range it maps.
    fn canonical(net: ipnet::IpNet) -> IpNet {
        let net = net.trunc();
        if let ipnet::IpNet::V6(v6) = net {
            if let (Some(v4), Some(prefix)) =
                (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96))
            {
                if let Ok(v4) = ipnet::Ipv4Net::new(v4, prefix) {
                    return IpNet(ipnet::IpNet::V4(v4));
                }
            }
        }
        IpNet(net)
    }

    /// Whether `ip` is in the range; an IPv4-mapped IPv6 address counts as the IPv4 address
    /// it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.0, ip.to_canonical()) {
            (ipnet::IpNet::V4(net), IpAddr::V4(ip)) => net.contains(&ip),
            (ipnet::IpNet::V6(net), IpAddr::V6(ip)) => net.contains(&ip),
            // A range wider than ::ffff:0:0/96 (such as ::/0) covers the mapped addresses.
            (ipnet::IpNet::V6(net), IpAddr::V4(ip)) => net.contains(&ip.to_ipv6_mapped()),
            (ipnet::IpNet::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// The header in which trusted proxies name the client (`[limits] forwarded_header`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx, Apache, HAProxy, Caddy, Traefik).
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=…, for=…`.
    #[serde(rename = "forwarded")]
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }

    /// The setting's value (`x-forwarded-for` or `forwarded`, any case).
    pub fn parse(text: &str) -> Option<ForwardedHeader> {
        [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(text.trim()))
    }

    /// The addresses the header's `values` list, left to right (each proxy appends the
    /// address it took the request from). Entries that are not addresses (`unknown`, an
    /// obfuscated name, garbage) are skipped.
    pub fn chain(self, values: &[&str]) -> Vec<IpAddr> {
        let entries = values.iter().flat_map(|v| v.split(','));
        match self {
            ForwardedHeader::XForwardedFor => entries
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .collect(),
            ForwardedHeader::Forwarded => entries.filter_map(forwarded_for).collect(),
        }
    }
}

/// The `for=` address of one element of an RFC 7239 `Forwarded` header
/// (`for=192.0.2.60;proto=http`, `for="[2001:db8::17]:4711"`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    value
        .parse()
        .ok()
        .or_else(|| value.rsplit_once(':')?.0.parse().ok())
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// rightmost address of `chain` (what the forwarding header lists) that is not itself a
/// trusted proxy. A client cannot choose its address by sending the header: only trusted
/// peers' headers are read, and each proxy appends what it saw.
pub fn client_address(peer: IpAddr, chain: &[IpAddr], trusted: &[IpNet]) -> IpAddr {
    if !trusted.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    chain
        .iter()
        .rev()
        .find(|ip| !trusted.iter().any(|n| n.contains(**ip)))
        .copied()
        .unwrap_or(peer)
}

/// The proxies trusted when `[limits] trusted_proxies` is not set: loopback, where a reverse
/// proxy on the same host connects from.
pub fn loopback_proxies() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| n.parse().expect("loopback ranges parse"))
        .collect()
}

/// The block of addresses one client is taken to hold, for per-address limits: an IPv4
/// address alone (IPv4-mapped IPv6 counts as IPv4), but an IPv6 address's whole /64, since
/// one host is commonly given a /64 and may use any address in it.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_ranges() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("proxy".parse::<IpNet>().is_err());
        assert_eq!(
            "10.1.2.3/8".parse::<IpNet>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            " 192.0.2.7 ".parse::<IpNet>().unwrap().to_string(),
            "192.0.2.7/32"
        );
    }

    /// Issue 28, item 10: `::ffff:203.0.114.0/120` was accepted and banned nothing, since
    /// every IPv4 client is compared as IPv4.
    #[test]
    fn ipv4_mapped_ranges_are_the_ipv4_ranges_they_map() {
        let mapped: IpNet = "::ffff:203.0.114.0/120".parse().unwrap();
        assert_eq!(mapped.to_string(), "203.0.114.0/24");
        assert_eq!(mapped, "203.0.114.0/24".parse().unwrap());
        for (addr, inside) in [
            ("203.0.114.9", true),
            ("::ffff:203.0.114.200", true),
            ("203.0.115.1", false),
            ("2001:db8::1", false),
        ] {
            assert_eq!(mapped.contains(ip(addr)), inside, "{addr}");
        }
        let one: IpNet = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")));
        // Wider than the mapped block: it holds the mapped addresses, so every IPv4 one.
        let everything: IpNet = "::/0".parse().unwrap();
        assert!(everything.contains(ip("198.51.100.1")));
        assert!(everything.contains(ip("2001:db8::1")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(!v6.contains(ip("198.51.100.1")));
        assert!(!"0.0.0.0/0"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("2001:db8::1")));
    }

    #[test]
    fn a_client_network_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(client_network(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_network(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            client_network(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            client_network(ip("2001:db8:1:2::1")),
            client_network(ip("2001:db8:1:3::1"))
        );
    }

    fn xff(values: &[&str]) -> Vec<IpAddr> {
        ForwardedHeader::XForwardedFor.chain(values)
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = ["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_address(ip("198.51.100.7"), &xff(&["1.2.3.4"]), &trusted),
            ip("198.51.100.7")
        );
        // Trusted proxy chain: the rightmost untrusted address; spoofed left entries lose.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                &xff(&["6.6.6.6, 203.0.113.5, 10.0.0.2"]),
                &trusted
            ),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &[], &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &xff(&["garbage"]), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn rfc_7239_forwarded_elements() {
        let chain = ForwardedHeader::Forwarded.chain(&[
            "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
            "for=unknown, for=_hidden, proto=https;for=198.51.100.1:8080, for=\"198.51.100.2\"",
        ]);
        assert_eq!(
            chain,
            [
                ip("192.0.2.60"),
                ip("2001:db8:cafe::17"),
                ip("198.51.100.1"),
                ip("198.51.100.2")
            ]
        );
        assert_eq!(
            ForwardedHeader::parse(" Forwarded "),
            Some(ForwardedHeader::Forwarded)
        );
        assert_eq!(
            ForwardedHeader::parse("X-Forwarded-For"),
            Some(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(ForwardedHeader::parse("x-real-ip"), None);
        let trusted = loopback_proxies();
        assert_eq!(
            client_address(ip("::1"), &chain, &trusted),
            ip("198.51.100.2")
        );
    }
}
