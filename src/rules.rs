//! The decisions, free of HTTP: may this member broadcast to (connect to) this event, and which
//! events may a viewer see.

use chrono::{DateTime, Utc};

use crate::store::{Event, ListFilter};
use crate::tokens::Claims;

/// Why a connect was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectDenial {
    /// No such event, or it has expired.
    NoEvent,
    /// The event exists, but the member neither owns it nor is an admin.
    NotOwnerOrAdmin,
}

/// The `/jars/connect` rule (and later `stream_auth`'s): the event exists and has not expired,
/// and the member owns it or is an admin.
pub fn may_connect(
    claims: &Claims,
    event: Option<&Event>,
    now: DateTime<Utc>,
) -> Result<(), ConnectDenial> {
    let event = event
        .filter(|e| !e.is_expired(now))
        .ok_or(ConnectDenial::NoEvent)?;
    if event.created_by == claims.sub || claims.is_admin() {
        Ok(())
    } else {
        Err(ConnectDenial::NotOwnerOrAdmin)
    }
}

/// Which events a listing shows: public unexpired ones to everybody, a member's own private
/// ones to them, everything to admins; expired ones only to admins who ask for `all`.
pub fn list_filter(viewer: Option<&Claims>, all: bool) -> ListFilter {
    let admin = viewer.is_some_and(Claims::is_admin);
    ListFilter {
        private_of: viewer.map(|c| c.sub),
        all_private: admin,
        include_expired: admin && all,
    }
}

/// The same rule as [`list_filter`], for one event.
pub fn may_see(viewer: Option<&Claims>, event: &Event, all: bool, now: DateTime<Utc>) -> bool {
    let f = list_filter(viewer, all);
    (f.include_expired || !event.is_expired(now))
        && (!event.private || f.all_private || f.private_of == Some(event.created_by))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::AccessLevel;
    use uuid::Uuid;

    fn claims(sub: i64, admin: bool) -> Claims {
        Claims {
            iss: "jars".into(),
            sub,
            iat: 0,
            exp: i64::MAX / 2,
            access_level: if admin {
                AccessLevel::Admin
            } else {
                AccessLevel::Standard
            },
            nbf: None,
            jti: None,
            aud: None,
        }
    }

    fn event(owner: i64, private: bool, expires_in: i64) -> Event {
        let now = Utc::now();
        Event {
            id: Uuid::new_v4(),
            title: None,
            description: None,
            private,
            created_by: owner,
            created_time: now,
            expires_time: now + chrono::Duration::seconds(expires_in),
            connected: false,
            connected_by: None,
            last_connected_at: None,
            last_disconnected_at: None,
            relation_id: None,
        }
    }

    #[test]
    fn connect_rule() {
        let now = Utc::now();
        let e = event(1, false, 60);
        assert_eq!(may_connect(&claims(1, false), Some(&e), now), Ok(()));
        assert_eq!(may_connect(&claims(9, true), Some(&e), now), Ok(()));
        assert_eq!(
            may_connect(&claims(2, false), Some(&e), now),
            Err(ConnectDenial::NotOwnerOrAdmin)
        );
        assert_eq!(
            may_connect(&claims(1, false), None, now),
            Err(ConnectDenial::NoEvent)
        );
        let old = event(1, false, -1);
        assert_eq!(
            may_connect(&claims(9, true), Some(&old), now),
            Err(ConnectDenial::NoEvent)
        );
    }

    #[test]
    fn visibility_rule() {
        let now = Utc::now();
        let private = event(1, true, 60);
        let expired = event(1, false, -1);
        assert!(!may_see(None, &private, false, now));
        assert!(may_see(Some(&claims(1, false)), &private, false, now));
        assert!(!may_see(Some(&claims(2, false)), &private, false, now));
        assert!(may_see(Some(&claims(2, true)), &private, false, now));
        assert!(!may_see(Some(&claims(1, false)), &expired, true, now));
        assert!(!may_see(Some(&claims(2, true)), &expired, false, now));
        assert!(may_see(Some(&claims(2, true)), &expired, true, now));
    }
}
