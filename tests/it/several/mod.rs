//! Several Icecast servers and jars nodes (issue 30): shared listener counts and the event cap
//! column on the stores.

mod counts;
