//! # jars — Just Another Radio Station
//!
//! A daemon beside Icecast and webcaster-relay that decides who may broadcast to, and listen
//! to, a station's live events. A drop-in successor to the original JARS service.
//!
//! ## Module map
//! - [`config`]: TOML / environment / original `config.json`, validated before anything binds.
//! - [`form`]: strict form-encoded decoding, shared by the API and the callback decoder.
//! - [`crypto`]: `jsonwebtoken`'s crypto provider, with RS256 verified by `ring`.
//! - [`keys`]: the RS256 signing key and verification key set; PEM and JWKS.
//! - [`tokens`]: mint and verify user tokens into [`tokens::Claims`], with a verified-token cache.
//! - [`identity`]: credentials → member (users file or MyRadio).
//! - [`store`]: the [`store::EventStore`] trait, SQLite (embedded) and PostgreSQL (shared)
//!   implementations, and the short-lived row cache in front of them.
//! - [`limits`]: rate limits (GCRA per key).
//! - [`expiring_map`]: the bounded, expiring map behind the token and event-row caches.
//! - [`callback`]: Icecast URL-auth callback bodies decoded into [`callback::Callback`].
//! - [`auth`]: the decisions (may this member connect? which events may a viewer see?).
//! - [`live`]: this node's live state: live mounts, listener sessions, counts.
//! - [`hooks`]: Icecast callbacks decided into a [`hooks::Verdict`].
//! - [`metrics`]: the Prometheus registry and named metrics.
//! - [`http`]: [`http::App`] (Icecast's callbacks ahead of [`http::router`]), [`http::run`],
//!   [`http::AppState`], [`http::ApiError`].
//! - [`server`]: wires a [`config::Config`] into a running server.
//! - [`shutdown`]: the signals that stop it.
//! - [`cli`]: the `jars` command line.
//!
//! Domain modules (`tokens`, `auth`, `store`, `identity`) know nothing of HTTP.
#![forbid(unsafe_code)]

pub mod auth;
pub mod callback;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod expiring_map;
pub mod form;
pub mod hooks;
pub mod http;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod tokens;
