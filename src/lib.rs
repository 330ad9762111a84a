//! # jars — Just Another Radio Station
//!
//! A daemon beside Icecast and webcaster-relay that decides who may broadcast to, and listen
//! to, a station's live events. A drop-in successor to the original JARS service.
//!
//! ## Module map
//! In the order a request flows through them, top to bottom; each layer uses only those
//! below it (no two top-level modules depend on each other in a circle):
//! - [`cli`], [`config`], [`setup`]: the `jars` command line; TOML / environment / original
//!   `config.json`, validated before anything binds; a config turned into the shared state
//!   ([`http::AppState`]), and a reload applied.
//! - [`http`]: the edge — [`http::App`] (Icecast's callbacks ahead of [`http::router`]),
//!   [`http::run`], the JARS API handlers ([`http::api`]), [`http::ApiError`]. The only module
//!   that knows HTTP.
//! - [`icecast`]: the URL-auth pipeline, [`icecast::decode`] → [`icecast::decide`], and
//!   [`icecast::admin`] (resync from Icecast's admin API, dropping sessions).
//! - [`placement`]: several Icecast servers and jars nodes as one station — which server
//!   `/listen` sends a listener to, each server's health, and the listener licence caps held
//!   over every server and node.
//! - [`webcast`]: jars' own webcast relay — a DJ's browser stream (WebSocket, subprotocol
//!   `webcast`) sent on to Icecast as a source that survives a blip — and relays' approvals.
//! - [`sanctions`]: bans, revocations and early ends in force on this node, kept in step with
//!   the store and enforced on live sessions. [`sessions`]: session rows written off the
//!   callback path, and what reports show of them.
//! - [`live`]: **live state** — every live [`domain::Session`] Icecast reported (listeners and
//!   sources), each mount's counts, the kicks jars asked for; a resync's linear diff; the
//!   [`live::Kicker`] seam.
//! - [`identity`] (credentials → member: users file or MyRadio), [`tokens`] (mint and verify,
//!   with a verified-token cache), [`keys`] (the signing key and verification key set),
//!   [`signing`], [`crypto`].
//! - [`store`]: [`store::EventStore`], [`store::sanctions::SanctionStore`] and
//!   [`store::sessions::SessionStore`] on SQLite (embedded) and PostgreSQL (shared), and the
//!   short-lived row cache in front of them.
//! - [`rules`]: **every access rule**, pure, with an explicit `now`: who may connect,
//!   broadcast, listen, see an event, mint a ticket, for how long; what sanctions take back;
//!   how a session ended.
//! - [`domain`]: the types every layer shares — events, a live session and its key, why
//!   something was refused. Plain data at the bottom.
//! - Beside them, used by many: [`clock`] (where `now` comes from; tests hand in a
//!   [`clock::ManualClock`] and move the daemon's sweeps with it), [`form`] and [`multipart`]
//!   (strict argument decoding), [`net`] (client addresses, ranges), [`rate_limit`],
//!   [`expiring_map`], [`metrics`], [`log_input`] (request input logged escaped),
//!   [`upstream`] (other services' answers read up to a limit, whatever their framing),
//!   [`atomic_file`], [`data_dir`], [`shutdown`].
//!
//! ## One live session
//! A listener or a source on one Icecast server is one [`domain::Session`], keyed by the
//! server (`server`, `port` callback fields) and its client id there (a source: its mount).
//! Callbacks open and end it in [`live::LiveState`]; the session writer stores one row each;
//! sanctions check it and the [`live::Kicker`] drops it (its row then ends `kicked`, with the
//! reason); a resync diffs it against Icecast's listing and, after a restart, gets back from
//! the open rows the ticket and member that let it in.
#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod domain;
pub mod expiring_map;
pub mod form;
pub mod http;
pub mod icecast;
pub mod identity;
pub mod keys;
pub mod live;
pub mod log_input;
pub mod metrics;
pub mod multipart;
pub mod net;
pub mod placement;
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
pub mod webcast;
