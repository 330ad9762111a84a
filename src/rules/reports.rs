//! Who may read an event's listening figures ([`may_see_stats`]).

use crate::domain::Event;
use crate::tokens::Claims;

/// An event's listening stats are its owner's and the admins', expired or not (a show is
/// reported on after it ended).
pub fn may_see_stats(member: &Claims, event: &Event) -> bool {
    event.created_by == member.sub || member.is_admin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::{member, t0};

    #[test]
    fn owner_and_admins_see_stats_of_live_and_expired_events() {
        let event = |owner: i64, expired: bool| Event {
            id: uuid::Uuid::new_v4(),
            title: None,
            description: None,
            private: false,
            created_by: owner,
            created_time: t0(),
            expires_time: if expired {
                t0()
            } else {
                t0() + chrono::Duration::hours(1)
            },
            connected: false,
            connected_by: None,
            last_connected_at: None,
            last_disconnected_at: None,
            max_listeners: None,
            relation_id: None,
        };
        for expired in [false, true] {
            assert!(may_see_stats(
                &member(1, false, i64::MAX),
                &event(1, expired)
            ));
            assert!(may_see_stats(
                &member(9, true, i64::MAX),
                &event(1, expired)
            ));
            assert!(!may_see_stats(
                &member(2, false, i64::MAX),
                &event(1, expired)
            ));
        }
    }
}
