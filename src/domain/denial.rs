//! Why a request or callback was refused: [`DenyReason`] (every reason a rule or a hook can
//! give, with its Icecast log text and metric label) and [`ConnectDenial`] (the connect rule's
//! answers).

use super::TokenError;

/// Why a connect (or a ticket mint) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectDenial {
    /// No such event.
    NoEvent,
    /// The event has expired, or was ended.
    Expired,
    /// The event exists, but the member neither owns it nor is an admin.
    NotOwnerOrAdmin,
}

impl ConnectDenial {
    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        DenyReason::from(self).label()
    }
}

impl From<ConnectDenial> for DenyReason {
    fn from(d: ConnectDenial) -> DenyReason {
        match d {
            ConnectDenial::NoEvent => DenyReason::NoSuchEvent,
            ConnectDenial::Expired => DenyReason::EventExpired,
            ConnectDenial::NotOwnerOrAdmin => DenyReason::NotOwnerOrAdmin,
        }
    }
}

/// Why a source or listener was turned away. The text goes to Icecast's error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    UnknownMount,
    NoCredentials,
    Token(TokenError),
    NoSuchEvent,
    EventExpired,
    NotOwnerOrAdmin,
    RelayNotApproved,
    TicketRequired,
    TicketForAnotherEvent,
    TicketBoundToAnotherAddress,
    RefererNotAllowed,
    TicketFull,
    MembersOnly,
    AdminsOnly,
    StoreUnavailable,
    /// A valid token of a user who has since been removed.
    UserRemoved,
    /// The identity backend failed while checking a token's user.
    IdentityUnavailable,
    /// The callback did not carry the configured Basic credentials.
    CallerNotIcecast,
    /// The callback came from an address that may not send them (not loopback, not in
    /// `[icecast] allowed_from`). Counted as `bad_caller` too.
    CallerAddressNotAllowed,
    /// The callback carries a browser's headers (`Origin`, `Sec-Fetch-Site`). Counted as
    /// `bad_caller` too.
    CallerIsBrowser,
    /// The ticket was revoked (by id, or with every ticket of its event).
    Revoked,
    /// The address or member is banned (everywhere, or from this event).
    Banned,
    /// The event's owner or an admin dropped the session by hand (nothing revoked).
    Dropped,
    /// The station's listener licence (`[limits] max_listeners`) is used up, over every
    /// server and node.
    StationFull,
    /// The event's own listener cap (its `max_listeners`) is reached, over every server and
    /// node.
    EventFull,
}

impl DenyReason {
    /// A short, useful line for Icecast's error log; never contains a secret.
    pub fn message(self) -> &'static str {
        match self {
            DenyReason::UnknownMount => "not an event mount",
            DenyReason::NoCredentials => "no credentials",
            DenyReason::Token(TokenError::Expired) => "ticket or token expired",
            DenyReason::Token(TokenError::Immature) => "ticket or token not yet valid",
            DenyReason::Token(TokenError::WrongKind) => "a listener ticket cannot do this",
            DenyReason::Token(TokenError::InvalidSignature) => "bad signature",
            DenyReason::Token(_) => "invalid token",
            DenyReason::NoSuchEvent => "no such event",
            DenyReason::EventExpired => "event expired",
            DenyReason::NotOwnerOrAdmin => "not the event's owner or an admin",
            DenyReason::RelayNotApproved => "relay not approved by /jars/connect",
            DenyReason::TicketRequired => "private event: ticket required",
            DenyReason::TicketForAnotherEvent => "ticket for another event",
            DenyReason::TicketBoundToAnotherAddress => "ticket bound to another address",
            DenyReason::RefererNotAllowed => "referer not allowed for this ticket",
            DenyReason::TicketFull => "ticket already has its maximum listeners",
            DenyReason::MembersOnly => "members only",
            DenyReason::AdminsOnly => "admins only",
            DenyReason::StoreUnavailable => "event store unavailable",
            DenyReason::UserRemoved => "user no longer exists",
            DenyReason::IdentityUnavailable => "users unavailable",
            DenyReason::CallerNotIcecast => "callback credentials wrong",
            DenyReason::CallerAddressNotAllowed => {
                "callback not from loopback or icecast.allowed_from"
            }
            DenyReason::CallerIsBrowser => "callback from a browser",
            DenyReason::Revoked => "ticket revoked",
            DenyReason::Banned => "banned",
            DenyReason::Dropped => "dropped by the event's owner or an admin",
            DenyReason::StationFull => "the station has its maximum listeners",
            DenyReason::EventFull => "the event has its maximum listeners",
        }
    }

    /// One reason of each label, so every label can be listed (metrics start at zero);
    /// reasons that share a label appear once.
    pub const EACH_LABEL: [DenyReason; 25] = [
        DenyReason::UnknownMount,
        DenyReason::NoCredentials,
        DenyReason::Token(TokenError::Expired),
        DenyReason::Token(TokenError::WrongKind),
        DenyReason::Token(TokenError::Decode),
        DenyReason::NoSuchEvent,
        DenyReason::EventExpired,
        DenyReason::NotOwnerOrAdmin,
        DenyReason::RelayNotApproved,
        DenyReason::TicketRequired,
        DenyReason::TicketForAnotherEvent,
        DenyReason::TicketBoundToAnotherAddress,
        DenyReason::RefererNotAllowed,
        DenyReason::TicketFull,
        DenyReason::MembersOnly,
        DenyReason::AdminsOnly,
        DenyReason::StoreUnavailable,
        DenyReason::UserRemoved,
        DenyReason::IdentityUnavailable,
        DenyReason::CallerNotIcecast,
        DenyReason::Revoked,
        DenyReason::Banned,
        DenyReason::Dropped,
        DenyReason::StationFull,
        DenyReason::EventFull,
    ];

    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            DenyReason::UnknownMount => "unknown_mount",
            DenyReason::NoCredentials => "no_credentials",
            DenyReason::Token(TokenError::Expired) => "expired",
            DenyReason::Token(TokenError::WrongKind) => "wrong_token_kind",
            DenyReason::Token(_) => "invalid_token",
            DenyReason::NoSuchEvent => "no_event",
            DenyReason::EventExpired => "event_expired",
            DenyReason::NotOwnerOrAdmin => "not_owner",
            DenyReason::RelayNotApproved => "relay_not_approved",
            DenyReason::TicketRequired => "ticket_required",
            DenyReason::TicketForAnotherEvent => "wrong_event",
            DenyReason::TicketBoundToAnotherAddress => "wrong_ip",
            DenyReason::RefererNotAllowed => "wrong_referer",
            DenyReason::TicketFull => "ticket_full",
            DenyReason::MembersOnly => "members_only",
            DenyReason::AdminsOnly => "admins_only",
            DenyReason::StoreUnavailable => "store_error",
            DenyReason::UserRemoved => "user_removed",
            DenyReason::IdentityUnavailable => "identity_error",
            DenyReason::CallerNotIcecast
            | DenyReason::CallerAddressNotAllowed
            | DenyReason::CallerIsBrowser => "bad_caller",
            DenyReason::Revoked => "revoked",
            DenyReason::Banned => "banned",
            DenyReason::Dropped => "dropped",
            DenyReason::StationFull => "station_full",
            DenyReason::EventFull => "event_full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_label_once() {
        let mut labels: Vec<&str> = DenyReason::EACH_LABEL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(
            labels.len(),
            DenyReason::EACH_LABEL.len(),
            "a label listed twice"
        );
    }
}
