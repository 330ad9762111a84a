//! The integration tests, one binary: each module below was once its own `tests/*.rs` binary,
//! each recompiling `support` and linking separately. Run one module with a filter, e.g.
//! `cargo test --test it hooks::`.

mod support;

mod amplification;
mod api;
mod callers;
mod cli;
mod cli_operator;
mod compat;
mod decisions;
mod durability;
mod edge;
mod hardening;
mod hooks;
mod icecast_admin;
mod icecast_e2e;
mod icecast_harness;
mod logs;
mod members;
mod myradio;
mod ops;
mod page;
mod postgres;
mod postgres_grants;
mod relay;
mod revoke_e2e;
mod router;
mod sanctions_pg;
mod seams;
mod sessions;
mod several;
mod signals;
mod store_suite;
mod webcast;
