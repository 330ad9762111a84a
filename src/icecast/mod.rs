//! The Icecast URL-auth pipeline, in the order a callback flows through it: [`decode`] turns
//! Icecast's form-encoded body into a [`decode::Callback`], [`decide`] answers it with a
//! [`decide::Verdict`] (asking [`crate::rules`] who may do what), and [`live`] keeps what
//! Icecast has told this node (live mounts, listener sessions). The HTTP glue is
//! [`crate::http::icecast`].

pub mod admin;
pub mod decide;
pub mod decode;
pub mod kick;
pub mod live;

use uuid::Uuid;

/// What a callback's mount is: an event's, or one declared in `[[icecast.mounts]]`. The key of
/// this node's live state, and what [`decide`] classifies every mount into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An event mount (`/<event id>`, with an optional extension).
    Event(Uuid),
    /// A mount from `[[icecast.mounts]]`, by name.
    Static(String),
}
