//! `ApiError`: every way a request can fail, rendered as the original service's
//! `{"error": "Name"}` body with an honest status code. Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::identity::IdentityError;
use crate::rules::ConnectDenial;
use crate::signing::SigningError;
use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    MissingArgument(&'static str),
    InvalidArgument(&'static str),
    InvalidIdentifier,
    Token(TokenError),
    NoUser,
    NoUserPermission,
    UnauthorizedConnection,
    NonExistentOrExpiredEvent,
    /// Over a rate limit; retry after this many seconds.
    TooManyRequests(u64),
    MyRadioServiceFailure,
    ServiceUnavailable,
    /// Too many requests in progress: shed at once.
    Overloaded,
    PayloadTooLarge,
    /// The request body did not arrive in time.
    RequestTimeout,
    NotFound,
}

impl ApiError {
    /// The error name in the body: the original service's exception names.
    pub fn name(&self) -> &'static str {
        match self {
            ApiError::MissingArgument(_) => "MissingArgumentError",
            ApiError::InvalidArgument(_) => "InvalidArgumentError",
            ApiError::InvalidIdentifier => "InvalidIdentifierException",
            ApiError::Token(e) => e.name(),
            ApiError::NoUser => "NoUserException",
            ApiError::NoUserPermission => "NoUserPermissionException",
            ApiError::UnauthorizedConnection => "UnauthorizedConnectionException",
            ApiError::NonExistentOrExpiredEvent => "NonExistentOrExpiredEventException",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::MyRadioServiceFailure => "MyRadioServiceFailureException",
            ApiError::ServiceUnavailable | ApiError::Overloaded => "ServiceUnavailable",
            ApiError::PayloadTooLarge => "PayloadTooLarge",
            ApiError::RequestTimeout => "RequestTimeout",
            ApiError::NotFound => "NotFound",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingArgument(_)
            | ApiError::InvalidArgument(_)
            | ApiError::InvalidIdentifier => StatusCode::BAD_REQUEST,
            ApiError::Token(TokenError::NoSigningKey) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Token(TokenError::Signing | TokenError::KeySetStale) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Token(_) | ApiError::NoUser => StatusCode::UNAUTHORIZED,
            ApiError::NoUserPermission | ApiError::UnauthorizedConnection => StatusCode::FORBIDDEN,
            ApiError::NonExistentOrExpiredEvent | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MyRadioServiceFailure => StatusCode::BAD_GATEWAY,
            ApiError::ServiceUnavailable | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.name() });
        let mut resp = (self.status(), Json(body)).into_response();
        match self {
            ApiError::TooManyRequests(secs) => {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
            }
            ApiError::Overloaded => {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, 1.into());
            }
            _ => {}
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
                ApiError::ServiceUnavailable
            }
            StoreError::InvalidInput(_) => {
                // The client's input: never reported (or alerted on) as an outage.
                tracing::info!(error = %e, "event store refused a client's value");
                ApiError::InvalidArgument("value")
            }
        }
    }
}

impl From<ConnectDenial> for ApiError {
    fn from(d: ConnectDenial) -> Self {
        match d {
            ConnectDenial::NoEvent => ApiError::NonExistentOrExpiredEvent,
            ConnectDenial::NotOwnerOrAdmin => ApiError::UnauthorizedConnection,
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
            IdentityError::UsersFile(_) => {
                tracing::error!(error = %e, "users file unusable");
                ApiError::ServiceUnavailable
            }
        }
    }
}
