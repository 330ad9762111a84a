//! Several Icecast servers and jars nodes (issue 30): shared listener counts and the event cap
//! column on the stores; `/listen` and the caps on one node; a master and two edges on real
//! Icecast 2.4.4, with one jars node and with two on one PostgreSQL; reports by server.

mod counts;
mod icecast;
mod listen;
mod reports;
