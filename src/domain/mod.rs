//! The types every layer shares, at the bottom of the crate: an [`event::Event`] row, a live
//! [`session::Session`], why something was refused ([`DenyReason`]) and why a token was
//! ([`TokenError`]). Plain data and their own small invariants; no I/O, no rules, nothing
//! above them.

pub mod denial;
pub mod event;
pub mod sanction;
pub mod session;
pub mod token_error;

use std::collections::{HashMap, HashSet};

pub use denial::{ConnectDenial, DenyReason};
pub use event::{ConnectTerms, Event, EventCursor, ListFilter};
pub use session::{
    Airing, EndReason, Ending, Role, ServerId, Session, SessionEnd, SessionKey, SessionOp, Target,
};
pub use token_error::TokenError;

/// A hash map with a fast hasher, for keys jars or Icecast chose (ids, addresses, session
/// keys), never a client's free text: nobody can aim collisions at it.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The set of [`FastMap`].
pub type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
