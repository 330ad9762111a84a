//! Listener sessions (issue 17): the session table on both backends ([`store`]), the stats API
//! and the writer through a real jars ([`api`]), `jars report` ([`cli`]), and sessions
//! reported by a real Icecast 2.4.4 across a jars restart ([`icecast`]).

mod api;
mod cli;
mod icecast;
mod store;
