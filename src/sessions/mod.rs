//! Session rows for reports and for restarts: one row per [`crate::domain::Session`] Icecast
//! reported (listeners and sources: who, which mount, from when to when, why it ended),
//! written off the callback path by [`writer`]. The rows live in a
//! [`crate::store::sessions::SessionStore`]; [`report`] turns the store's figures into what
//! `jars report` and `GET /jars/events/{id}/stats` show; [`ip`] decides how much of an address
//! a row (and every other output) keeps.

pub mod ip;
pub mod report;
pub mod writer;

pub use writer::SessionWriter;
