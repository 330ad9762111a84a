//! # jars — Just Another Radio Station
//!
//! A daemon beside Icecast and webcaster-relay that decides who may broadcast to, and listen
//! to, a station's live events. A drop-in successor to the original JARS service.
//!
//! ## Module map
//! In the order a request flows through them:
//! - [`config`]: TOML / environment / original `config.json`, validated before anything binds.
//! - [`setup`]: turns a [`config::Config`] into the shared state ([`http::AppState`]), and
//!   applies a reload.
//! - [`http`]: [`http::App`] (Icecast's callbacks ahead of [`http::router`]), [`http::run`],
//!   the JARS API handlers ([`http::api`]), [`http::ApiError`].
//! - [`icecast`]: the URL-auth pipeline: [`icecast::decode`] → [`icecast::decide`] →
//!   [`icecast::live`].
//! - [`clock`]: where `now` comes from ([`clock::SystemClock`]; tests hand in a
//!   [`clock::ManualClock`]).
//! - [`rules`]: **every access rule**, pure, with an explicit `now`: who may connect, broadcast,
//!   listen, see an event, mint a ticket, and for how long.
//! - [`sanctions`]: bans, revocations and early ends in force on this node, kept in step
//!   with the store and enforced on live sessions.
//! - [`tokens`]: mint and verify user tokens and listener tickets, with a verified-token cache.
//! - [`signing`]: where minting's RSA signing runs (the blocking pool, one per core at once).
//! - [`crypto`]: `jsonwebtoken`'s crypto provider, with RS256 verified by `ring`.
//! - [`keys`]: the RS256 signing key and verification key set; PEM and JWKS. Loaded from
//!   [`keys::files`] (generated, rotated in the data directory) or [`keys::remote`] (fetched).
//! - [`atomic_file`]: whole-file replacement (write beside, rename over) for keys and users.
//! - [`identity`]: credentials → member (users file or MyRadio).
//! - [`sessions`]: listener sessions for reports: the writer off the callback path, the
//!   report maths, how much of an address is kept ([`store::sessions`] holds the rows).
//! - [`store`]: the [`store::EventStore`] trait, SQLite (embedded) and PostgreSQL (shared)
//!   implementations, and the short-lived row cache in front of them.
//! - [`form`]: strict form-encoded decoding, shared by the API and the callback decoder;
//!   [`multipart`]: `multipart/form-data` bodies (a browser's `FormData`), read the same way.
//! - [`rate_limit`]: [`rate_limit::RateLimiter`], a GCRA per key (client network, user name).
//! - [`net`]: client addresses: CIDR ranges and `X-Forwarded-For` from trusted proxies.
//! - [`upstream`]: answers of other services (key sets, MyRadio, Icecast's admin API), read
//!   up to a limit whatever their framing.
//! - [`expiring_map`]: the bounded, expiring map behind the token and event-row caches.
//! - [`metrics`]: the Prometheus registry and named metrics.
//! - [`log_input`]: request input written to the log escaped, and warnings throttled.
//! - [`shutdown`]: the signals that stop it.
//! - [`cli`]: the `jars` command line; [`data_dir`]: its absolute path and existence checks.
//!
//! Domain modules (`rules`, `tokens`, `store`, `identity`) know nothing of HTTP.
#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod expiring_map;
pub mod form;
pub mod http;
pub mod icecast;
pub mod identity;
pub mod keys;
pub mod log_input;
pub mod metrics;
pub mod multipart;
pub mod net;
pub mod rate_limit;
pub mod rules;
pub mod sanctions;
pub mod sessions;
pub mod setup;
pub mod shutdown;
pub mod signing;
pub mod store;
pub mod tokens;
pub mod upstream;
