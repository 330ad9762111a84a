//! What a ban takes from a member at the API ([`ban_takes`]): the powers it covers, as
//! [`super::admits`] takes them at Icecast.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DenyReason, SanctionSet};

/// A power a member uses through the API, with the event it is used on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// `/jars/create`.
    CreateEvent,
    /// `/jars/connect`: broadcasting to the event.
    Connect(Uuid),
    /// `/jars/ticket`: a listener ticket that admits others to the event.
    MintTicket(Uuid),
    /// `/jars/ticket kind=source`: a guest's source ticket for the event.
    MintSourceTicket(Uuid),
    /// `/jars/bans`: adding, listing and lifting bans (admins), which would let a banned
    /// admin lift their own ban.
    ManageBans,
}

impl Power {
    /// The event the power is used on; `None`: the station as a whole.
    fn event(self) -> Option<Uuid> {
        match self {
            Power::CreateEvent | Power::ManageBans => None,
            Power::Connect(e) | Power::MintTicket(e) | Power::MintSourceTicket(e) => Some(e),
        }
    }
}

/// Whether a ban in `set` takes `power` from `member` at `now`: a station-wide ban takes
/// every power; a ban from one event takes the powers used on that event. Ending an event and
/// revoking its tickets only take access back: no ban stops them.
///
/// Listener tickets minted before the ban name no minter and keep admitting until they
/// expire: revoke them (`mount` alone) or end the event to take them back too.
pub fn ban_takes(
    set: &SanctionSet,
    member: i64,
    power: Power,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    if set.member_banned(member, power.event(), now) {
        Err(DenyReason::Banned)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::sanctions::tests::{ban, bans, secs};
    use crate::rules::tests::t0;

    #[test]
    fn a_ban_takes_the_powers_it_covers() {
        let (mine, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let everywhere = bans(vec![ban(None, Some(7), None, None)]);
        let from_mine = bans(vec![ban(None, Some(7), Some(mine), Some(60))]);
        let banned = Err(DenyReason::Banned);
        #[rustfmt::skip]
        let cases = [
            (&everywhere, 7, Power::CreateEvent, 0, banned),
            (&everywhere, 7, Power::Connect(mine), 0, banned),
            (&everywhere, 7, Power::MintTicket(other), 0, banned),
            (&everywhere, 7, Power::MintSourceTicket(mine), 0, banned),
            (&everywhere, 7, Power::ManageBans, 0, banned),
            (&everywhere, 8, Power::CreateEvent, 0, Ok(())),
            // One event's ban: that event's powers, until it runs out.
            (&from_mine, 7, Power::Connect(mine), 0, banned),
            (&from_mine, 7, Power::MintTicket(mine), 59, banned),
            (&from_mine, 7, Power::MintSourceTicket(mine), 0, banned),
            (&from_mine, 7, Power::MintTicket(mine), 60, Ok(())),
            (&from_mine, 7, Power::MintTicket(other), 0, Ok(())),
            (&from_mine, 7, Power::CreateEvent, 0, Ok(())),
            (&from_mine, 7, Power::ManageBans, 0, Ok(())),
        ];
        for (set, member, power, at, want) in cases {
            assert_eq!(
                ban_takes(set, member, power, t0() + secs(at)),
                want,
                "{member} {power:?} at +{at}s"
            );
        }
    }
}
