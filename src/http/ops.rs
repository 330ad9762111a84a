//! Operational endpoints: liveness, and the JSON 404 for unknown paths.

use axum::http::StatusCode;

use super::ApiError;

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

/// Any path jars does not serve.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
