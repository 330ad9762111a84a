//! The no-op baseline of `bench/run`: an axum server that answers every request (any path, any
//! method) `200` with `icecast-auth-user: 1`, without reading the body. It costs what the HTTP
//! stack costs and nothing else, so jars' numbers divided by its numbers, measured in the same
//! run on the same machine, show what jars' own work adds.
//!
//! `noop 127.0.0.1:PORT`

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const AUTH_USER: HeaderName = HeaderName::from_static("icecast-auth-user");

/// The same response jars gives an allowed callback, minus the time limit header.
async fn allow() -> Response {
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert(AUTH_USER, HeaderValue::from_static("1"));
    resp
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8889".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("noop: serving on {}", listener.local_addr()?);
    let app = axum::Router::new().fallback(allow);
    axum::serve(listener, app).await
}
