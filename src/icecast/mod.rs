//! The Icecast URL-auth pipeline, in the order a callback flows through it: [`decode`] turns
//! Icecast's form-encoded body into a [`decode::Callback`], [`decide`] answers it with a
//! [`decide::Verdict`] (asking [`crate::rules`] who may do what), and [`live`] keeps what
//! Icecast has told this node (live mounts, listener sessions). The HTTP glue is
//! [`crate::http::icecast`].

pub mod decide;
pub mod decode;
pub mod live;
