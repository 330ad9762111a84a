//! The no-op baseline of `bench/run`: an axum server that answers every request (any path, any
//! method) `200` with `icecast-auth-user: 1`, without reading the body. It costs what the HTTP
//! stack costs and nothing else, so jars' numbers divided by its numbers, measured in the same
//! run on the same machine, show what jars' own work adds.
//!
//! With `--like-jars` it does what any real handler behind jars' router must: it reads the body,
//! under the body limit `jars::http::router` puts on callbacks, and it is served by jars' own
//! connection loop (`jars::http::serve`: header read timeout, `TCP_NODELAY`, client address).
//! The gap between the two no-ops is the HTTP stack's share of jars' gap; what remains is
//! jars' own work.
//!
//! `noop 127.0.0.1:PORT [--like-jars]`

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
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

/// [`allow`], after reading the whole body.
async fn allow_after_reading(body: Bytes) -> Response {
    std::hint::black_box(body);
    allow().await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8889".to_string());
    let like_jars = args.next().as_deref() == Some("--like-jars");
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "noop{}: serving on {}",
        if like_jars { " --like-jars" } else { "" },
        listener.local_addr()?
    );
    if like_jars {
        let app = axum::Router::new()
            .fallback(allow_after_reading)
            .layer(DefaultBodyLimit::max(jars::http::MAX_BODY_BYTES));
        jars::http::serve(listener, app, std::future::pending()).await
    } else {
        axum::serve(listener, axum::Router::new().fallback(allow)).await
    }
}
