//! `ApiError`: every way a request can fail, rendered as the original service's
//! `{"error": "Name"}` body with an honest status code. Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::identity::IdentityError;
use crate::log_input::Escaped;
use crate::rules::{ConnectDenial, DenyReason};
use crate::signing::SigningError;
use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    MissingArgument(&'static str),
    InvalidArgument(&'static str),
    /// `/jars/create`'s `private` is not a boolean word: PostgreSQL's name for the error the
    /// original met when it stored it (SQLSTATE 22P02, psycopg2's class name).
    InvalidTextRepresentation(&'static str),
    /// `/jars/create`'s title or description is over 255 characters: PostgreSQL's name for
    /// the original's `VARCHAR(255)` refusing it (SQLSTATE 22001).
    StringDataRightTruncation(&'static str),
    InvalidIdentifier,
    Token(TokenError),
    /// Bad credentials: no such user, or the wrong password.
    NoUser,
    /// A valid token of a member who has since been removed (same answer as [`Self::NoUser`]).
    UserRemoved,
    NoUserPermission,
    UnauthorizedConnection,
    NonExistentOrExpiredEvent,
    /// Over a rate limit; retry after this many seconds.
    TooManyRequests(u64),
    MyRadioServiceFailure,
    /// The event store is unusable.
    StoreUnavailable,
    /// The users file is unusable.
    UsersUnavailable,
    /// A bounded resource (the listing slots) stayed busy.
    ServiceUnavailable,
    /// Too many requests in progress: shed at once.
    Overloaded,
    PayloadTooLarge,
    /// The request body did not arrive in time.
    RequestTimeout,
    NotFound,
    /// No ban has that id.
    NoSuchBan,
    /// No such live session on this node.
    NoSuchSession,
    /// The member is banned from the event.
    Banned,
    /// A guest's source ticket was revoked.
    Revoked,
    /// A guest's source ticket is for another event.
    WrongEvent,
    /// `/listen`: every server carrying the event is full.
    ServersFull,
    /// `/listen`: servers carry the event, but none of them is healthy.
    NoHealthyServer,
    /// `/listen`: no server carries the event (it is not on air).
    NotOnAir,
    /// The station's listener licence is used up.
    StationFull,
    /// The event's own listener cap is reached.
    EventFull,
}

impl ApiError {
    /// The error name in the body: the original service's exception names.
    pub fn name(&self) -> &'static str {
        match self {
            ApiError::MissingArgument(_) => "MissingArgumentError",
            ApiError::InvalidArgument(_) => "InvalidArgumentError",
            ApiError::InvalidTextRepresentation(_) => "InvalidTextRepresentation",
            ApiError::StringDataRightTruncation(_) => "StringDataRightTruncation",
            ApiError::InvalidIdentifier => "InvalidIdentifierException",
            ApiError::Token(e) => e.name(),
            ApiError::NoUser | ApiError::UserRemoved => "NoUserException",
            ApiError::NoUserPermission => "NoUserPermissionException",
            ApiError::UnauthorizedConnection => "UnauthorizedConnectionException",
            ApiError::NonExistentOrExpiredEvent => "NonExistentOrExpiredEventException",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::MyRadioServiceFailure => "MyRadioServiceFailureException",
            ApiError::StoreUnavailable
            | ApiError::UsersUnavailable
            | ApiError::ServiceUnavailable
            | ApiError::Overloaded => "ServiceUnavailable",
            ApiError::PayloadTooLarge => "PayloadTooLarge",
            ApiError::RequestTimeout => "RequestTimeout",
            ApiError::NotFound => "NotFound",
            ApiError::NoSuchBan => "NoSuchBanException",
            ApiError::NoSuchSession => "NoSuchSessionException",
            ApiError::Banned | ApiError::Revoked | ApiError::WrongEvent => {
                "UnauthorizedConnectionException"
            }
            ApiError::ServersFull => "ServersFullException",
            ApiError::NoHealthyServer => "NoHealthyServerException",
            ApiError::NotOnAir => "NotOnAirException",
            ApiError::StationFull => "StationFullException",
            ApiError::EventFull => "EventFullException",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingArgument(_)
            | ApiError::InvalidArgument(_)
            | ApiError::InvalidTextRepresentation(_)
            | ApiError::StringDataRightTruncation(_)
            | ApiError::InvalidIdentifier => StatusCode::BAD_REQUEST,
            ApiError::Token(TokenError::NoSigningKey) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Token(TokenError::Signing | TokenError::KeySetStale) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Token(_) | ApiError::NoUser | ApiError::UserRemoved => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::NoUserPermission | ApiError::UnauthorizedConnection => StatusCode::FORBIDDEN,
            ApiError::NonExistentOrExpiredEvent
            | ApiError::NotFound
            | ApiError::NoSuchBan
            | ApiError::NoSuchSession => StatusCode::NOT_FOUND,
            ApiError::Banned | ApiError::Revoked | ApiError::WrongEvent => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MyRadioServiceFailure => StatusCode::BAD_GATEWAY,
            ApiError::StoreUnavailable
            | ApiError::UsersUnavailable
            | ApiError::ServiceUnavailable
            | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotOnAir => StatusCode::NOT_FOUND,
            ApiError::ServersFull
            | ApiError::NoHealthyServer
            | ApiError::StationFull
            | ApiError::EventFull => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Seconds a client should wait before asking again, for answers that say so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests(secs) => Some((*secs).max(1)),
            ApiError::Overloaded => Some(1),
            ApiError::NoHealthyServer => Some(5),
            ApiError::ServersFull => Some(10),
            ApiError::StationFull | ApiError::EventFull => Some(30),
            _ => None,
        }
    }

    /// Every label [`Self::reason_label`] gives, so their metric series can start at zero.
    pub const REASON_LABELS: [&'static str; 32] = [
        "missing_argument",
        "invalid_argument",
        "invalid_identifier",
        "invalid_token",
        "expired",
        "wrong_token_kind",
        "key_set_stale",
        "verify_only",
        "signing_error",
        "bad_credentials",
        "user_removed",
        "no_permission",
        "not_owner",
        "no_event",
        "rate_limited",
        "backend_error",
        "store_error",
        "unavailable",
        "overloaded",
        "payload_too_large",
        "request_timeout",
        "not_found",
        "no_ban",
        "no_session",
        "banned",
        "revoked",
        "wrong_event",
        "servers_full",
        "no_healthy_server",
        "not_on_air",
        "station_full",
        "event_full",
    ];

    /// The refusal's reason as a fixed metric label and log field. Where a callback refuses
    /// for the same reason the label is the callback's (`expired`, `not_owner`, `no_event`,
    /// `invalid_token`, `wrong_token_kind`, `user_removed`, `store_error`), so dashboards
    /// compare; identity failures are `backend_error` as `/jars/token` always counted them.
    pub fn reason_label(&self) -> &'static str {
        match self {
            ApiError::MissingArgument(_) => "missing_argument",
            ApiError::InvalidArgument(_)
            | ApiError::InvalidTextRepresentation(_)
            | ApiError::StringDataRightTruncation(_) => "invalid_argument",
            ApiError::InvalidIdentifier => "invalid_identifier",
            ApiError::Token(TokenError::Expired) => "expired",
            ApiError::Token(TokenError::WrongKind) => "wrong_token_kind",
            ApiError::Token(TokenError::KeySetStale) => "key_set_stale",
            ApiError::Token(TokenError::NoSigningKey) => "verify_only",
            ApiError::Token(TokenError::Signing) => "signing_error",
            ApiError::Token(_) => "invalid_token",
            ApiError::NoUser => "bad_credentials",
            ApiError::UserRemoved => "user_removed",
            ApiError::NoUserPermission => "no_permission",
            ApiError::UnauthorizedConnection => "not_owner",
            ApiError::NonExistentOrExpiredEvent => "no_event",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::MyRadioServiceFailure | ApiError::UsersUnavailable => "backend_error",
            ApiError::StoreUnavailable => "store_error",
            ApiError::ServiceUnavailable => "unavailable",
            ApiError::Overloaded => "overloaded",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::NotFound => "not_found",
            ApiError::NoSuchBan => "no_ban",
            ApiError::NoSuchSession => "no_session",
            ApiError::Banned => "banned",
            ApiError::Revoked => "revoked",
            ApiError::WrongEvent => "wrong_event",
            ApiError::ServersFull => "servers_full",
            ApiError::NoHealthyServer => "no_healthy_server",
            ApiError::NotOnAir => "not_on_air",
            ApiError::StationFull => "station_full",
            ApiError::EventFull => "event_full",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.name() });
        let mut resp = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Signing => tracing::error!(error = %e, "cannot mint tokens"),
            TokenError::KeySetStale => {
                tracing::error!("key set older than tokens.max_stale: refusing all tokens")
            }
            _ => {}
        }
        ApiError::Token(e)
    }
}

impl From<SigningError> for ApiError {
    fn from(e: SigningError) -> Self {
        match e {
            SigningError::Busy => ApiError::Overloaded,
            SigningError::Token(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "event store failed");
                ApiError::StoreUnavailable
            }
            StoreError::InvalidInput(_) => {
                // The client's input: never reported (or alerted on) as an outage. The store's
                // text may quote the value: escaped.
                let error = e.to_string();
                tracing::info!(
                    error = %Escaped(&error),
                    "event store refused a client's value"
                );
                ApiError::InvalidArgument("value")
            }
        }
    }
}

impl From<ConnectDenial> for ApiError {
    fn from(d: ConnectDenial) -> Self {
        match d {
            ConnectDenial::NoEvent | ConnectDenial::Expired => ApiError::NonExistentOrExpiredEvent,
            ConnectDenial::NotOwnerOrAdmin => ApiError::UnauthorizedConnection,
        }
    }
}

impl From<DenyReason> for ApiError {
    /// A refusal of the rules shared with the Icecast hooks (a guest's source ticket, the
    /// sanctions), as the API answers it.
    fn from(r: DenyReason) -> Self {
        match r {
            DenyReason::Token(e) => e.into(),
            DenyReason::NoSuchEvent | DenyReason::EventExpired => {
                ApiError::NonExistentOrExpiredEvent
            }
            DenyReason::TicketForAnotherEvent => ApiError::WrongEvent,
            DenyReason::Revoked => ApiError::Revoked,
            DenyReason::Banned => ApiError::Banned,
            DenyReason::UserRemoved => ApiError::UserRemoved,
            DenyReason::IdentityUnavailable => ApiError::UsersUnavailable,
            DenyReason::StoreUnavailable => ApiError::StoreUnavailable,
            DenyReason::StationFull => ApiError::StationFull,
            DenyReason::EventFull => ApiError::EventFull,
            _ => ApiError::UnauthorizedConnection,
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::NoUser => ApiError::NoUser,
            IdentityError::NoPermission => ApiError::NoUserPermission,
            IdentityError::Backend(_) => {
                tracing::error!(error = %e, "identity backend failed");
                ApiError::MyRadioServiceFailure
            }
            IdentityError::UsersFile(_) | IdentityError::UsersFileSyntax(_) => {
                tracing::error!(error = %e, "users file unusable");
                ApiError::UsersUnavailable
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each kind a handler can return.
    fn each() -> Vec<ApiError> {
        let mut all = vec![
            ApiError::MissingArgument("a"),
            ApiError::InvalidArgument("a"),
            ApiError::InvalidTextRepresentation("a"),
            ApiError::StringDataRightTruncation("a"),
            ApiError::InvalidIdentifier,
            ApiError::NoUser,
            ApiError::UserRemoved,
            ApiError::NoUserPermission,
            ApiError::UnauthorizedConnection,
            ApiError::NonExistentOrExpiredEvent,
            ApiError::TooManyRequests(1),
            ApiError::MyRadioServiceFailure,
            ApiError::StoreUnavailable,
            ApiError::UsersUnavailable,
            ApiError::ServiceUnavailable,
            ApiError::Overloaded,
            ApiError::PayloadTooLarge,
            ApiError::RequestTimeout,
            ApiError::NotFound,
            ApiError::NoSuchBan,
            ApiError::NoSuchSession,
            ApiError::ServersFull,
            ApiError::NoHealthyServer,
            ApiError::NotOnAir,
            ApiError::StationFull,
            ApiError::EventFull,
            ApiError::Banned,
            ApiError::Revoked,
            ApiError::WrongEvent,
        ];
        all.extend(
            [
                TokenError::Decode,
                TokenError::InvalidSignature,
                TokenError::Expired,
                TokenError::Immature,
                TokenError::InvalidIssuer,
                TokenError::InvalidAudience,
                TokenError::InvalidAlgorithm,
                TokenError::WrongKind,
                TokenError::UnknownKey,
                TokenError::KeySetStale,
                TokenError::NoSigningKey,
                TokenError::Signing,
            ]
            .map(ApiError::Token),
        );
        all
    }

    #[test]
    fn reason_labels_are_the_listed_ones_and_each_is_used() {
        let mut used: Vec<&str> = each().iter().map(ApiError::reason_label).collect();
        used.sort_unstable();
        used.dedup();
        let mut listed = ApiError::REASON_LABELS.to_vec();
        listed.sort_unstable();
        assert_eq!(used, listed);
    }

    #[test]
    fn a_removed_member_is_answered_as_bad_credentials() {
        assert_eq!(ApiError::UserRemoved.name(), ApiError::NoUser.name());
        assert_eq!(ApiError::UserRemoved.status(), ApiError::NoUser.status());
        assert_ne!(
            ApiError::UserRemoved.reason_label(),
            ApiError::NoUser.reason_label()
        );
    }
}
