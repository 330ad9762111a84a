//! What a ban names, read from an operator's or admin's text: an address or CIDR range
//! ([`ban_ip`]), or a member by name or numeric id ([`ban_member`]). Shared by the API and
//! the CLI.

use crate::identity::{Identity, IdentityError};
use crate::net::IpNet;
use crate::rules::sanctions::canonical_ip;

/// The ban text of an address (`192.0.2.7`) or CIDR range (`192.0.2.0/24`): an address as
/// itself, a range with its prefix; `None` when `text` is neither.
pub fn ban_ip(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(ip) = canonical_ip(text) {
        return Some(ip.to_string());
    }
    let net: IpNet = text.parse().ok()?;
    Some(net.to_string())
}

/// The member `text` names: a numeric id as is (with their name when the users file knows
/// them), else a user name (MyRadio: ids only).
pub async fn ban_member(
    identity: &Identity,
    text: &str,
) -> Result<(i64, Option<String>), IdentityError> {
    let text = text.trim();
    if let Ok(id) = text.parse::<i64>() {
        let name = match identity {
            Identity::UsersFile(f) => f.user_by_id(id).ok().flatten().map(|u| u.name),
            Identity::MyRadio(_) => None,
        };
        return Ok((id, name));
    }
    let member = identity.member(text).await?;
    Ok((member.id, Some(text.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ranges() {
        assert_eq!(ban_ip(" 192.0.2.7 ").as_deref(), Some("192.0.2.7"));
        assert_eq!(ban_ip("::ffff:192.0.2.7").as_deref(), Some("192.0.2.7"));
        assert_eq!(ban_ip("192.0.2.0/24").as_deref(), Some("192.0.2.0/24"));
        assert_eq!(ban_ip("2001:db8::/32").as_deref(), Some("2001:db8::/32"));
        // An IPv4-mapped range is the IPv4 range it maps (issue 28, item 10).
        assert_eq!(
            ban_ip("::ffff:203.0.114.0/120").as_deref(),
            Some("203.0.114.0/24")
        );
        assert_eq!(ban_ip("192.0.2.9/24").as_deref(), Some("192.0.2.0/24"));
        assert_eq!(ban_ip("192.0.2.0/33"), None);
        assert_eq!(ban_ip("radio.example"), None);
        assert_eq!(ban_ip(""), None);
    }
}
