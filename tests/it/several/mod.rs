//! Several Icecast servers and jars nodes (issue 30): shared listener counts and the event cap
//! column on the stores; `/listen` and the caps on one node.

mod counts;
mod listen;
