//! The Icecast URL-auth pipeline, in the order a callback flows through it: [`decode`] turns
//! Icecast's form-encoded body into a [`decode::Callback`], [`decide`] answers it with a
//! [`decide::Verdict`] (asking [`crate::rules`] who may do what) and records what Icecast
//! reports in [`crate::live`] and the session rows; [`admin`] acts on Icecast through its admin
//! API (resync, dropping sessions). The HTTP glue is [`crate::http::icecast`].

pub mod admin;
pub mod decide;
pub mod decode;

pub use crate::domain::Target;
