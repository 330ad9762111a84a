//! Who may send Icecast callbacks ([`may_send_callbacks`]): the configured credentials, and
//! where the callback comes from; and that a browser never may ([`not_from_a_browser`]).

use std::net::IpAddr;

use super::DenyReason;
use crate::net::IpNet;

/// What a callback's own Basic credentials show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackCredentials {
    /// `[icecast] username/password` are not configured.
    Unset,
    /// The configured ones.
    Right,
    /// Missing or different.
    Wrong,
}

/// Whether a callback may be decided. `caller` is the peer's address (the client's, behind a
/// trusted proxy); `None` when it is unknown, as when a proxy that is not trusted relayed it.
///
/// Wrong credentials are refused wherever they come from. Without configured credentials
/// only the address speaks for the caller: loopback (Icecast on the same host) or one of
/// `allowed_from`. With them, `allowed_from`, when not empty, narrows further: the right
/// credentials count only from loopback or those ranges.
pub fn may_send_callbacks(
    credentials: CallbackCredentials,
    caller: Option<IpAddr>,
    allowed_from: &[IpNet],
) -> Result<(), DenyReason> {
    let from_allowed_address = || {
        caller.is_some_and(|ip| {
            // ::ffff:127.0.0.1 is loopback too.
            let loopback = match ip {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
                IpAddr::V4(v4) => v4.is_loopback(),
            };
            loopback || allowed_from.iter().any(|n| n.contains(ip))
        })
    };
    match credentials {
        CallbackCredentials::Wrong => Err(DenyReason::CallerNotIcecast),
        CallbackCredentials::Right if allowed_from.is_empty() => Ok(()),
        _ if from_allowed_address() => Ok(()),
        _ => Err(DenyReason::CallerAddressNotAllowed),
    }
}

/// What a callback's headers show of a browser: `Origin`, which browsers send with every
/// `POST` (a form or `fetch` from any page), and `Sec-Fetch-Site`, which they send with every
/// request. Icecast sends neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrowserSigns<'a> {
    /// An `Origin` header is present (whatever it says, `null` included).
    pub origin: bool,
    /// The `Sec-Fetch-Site` header's value, if any.
    pub fetch_site: Option<&'a str>,
}

/// A callback that carries a browser's headers is refused, whatever its credentials and
/// address: without `[icecast] username/password` a page in a browser on the Icecast host
/// (loopback) could otherwise post `mount_add` or `listener_add` cross-site and be obeyed.
/// Only `Sec-Fetch-Site: none` (a request the user typed, never a form post) is not taken as
/// a sign on its own.
pub fn not_from_a_browser(signs: BrowserSigns<'_>) -> Result<(), DenyReason> {
    let fetched = signs
        .fetch_site
        .is_some_and(|site| !site.trim().eq_ignore_ascii_case("none"));
    if signs.origin || fetched {
        Err(DenyReason::CallerIsBrowser)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::CallbackCredentials::{Right, Unset, Wrong};
    use super::*;

    #[test]
    fn browsers_never_send_callbacks() {
        let browser = Err(DenyReason::CallerIsBrowser);
        let signs = |origin, fetch_site| BrowserSigns { origin, fetch_site };
        #[rustfmt::skip]
        let cases = [
            (signs(false, None), Ok(())),
            (signs(false, Some("none")), Ok(())),
            (signs(false, Some("cross-site")), browser),
            (signs(false, Some("Cross-Site")), browser),
            (signs(false, Some("same-site")), browser),
            (signs(false, Some("same-origin")), browser),
            (signs(true, None), browser),
            (signs(true, Some("none")), browser),
        ];
        for (signs, want) in cases {
            assert_eq!(not_from_a_browser(signs), want, "{signs:?}");
        }
    }

    #[test]
    fn who_may_send_callbacks() {
        let lan: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        let none: Vec<IpNet> = Vec::new();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let ok = Ok(());
        let creds = Err(DenyReason::CallerNotIcecast);
        let here = Err(DenyReason::CallerAddressNotAllowed);
        #[rustfmt::skip]
        let cases = [
            // Without credentials: loopback, and allowed_from only.
            (Unset, ip("127.0.0.1"), &none, ok),
            (Unset, ip("127.3.2.1"), &none, ok),
            (Unset, ip("::1"), &none, ok),
            (Unset, ip("::ffff:127.0.0.1"), &none, ok),
            (Unset, ip("192.0.2.7"), &none, here),
            (Unset, ip("192.0.2.7"), &lan, ok),
            (Unset, ip("::ffff:192.0.2.7"), &lan, ok),
            (Unset, ip("198.51.100.1"), &lan, here),
            (Unset, ip("0.0.0.0"), &none, here),
            (Unset, None, &none, here),
            (Unset, None, &lan, here),
            // With credentials: they decide; allowed_from, when set, narrows.
            (Right, ip("198.51.100.1"), &none, ok),
            (Right, None, &none, ok),
            (Right, ip("198.51.100.1"), &lan, here),
            (Right, ip("192.0.2.7"), &lan, ok),
            (Right, ip("127.0.0.1"), &lan, ok),
            (Right, None, &lan, here),
            (Wrong, ip("127.0.0.1"), &none, creds),
            (Wrong, ip("192.0.2.7"), &lan, creds),
            (Wrong, None, &none, creds),
        ];
        for (credentials, caller, allowed, want) in cases {
            assert_eq!(
                may_send_callbacks(credentials, caller, allowed),
                want,
                "{credentials:?} from {caller:?}, allowed_from {allowed:?}"
            );
        }
    }
}
