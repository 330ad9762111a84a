//! Build script: which of the integration tests' peers this machine has, as cfgs
//! (`jars_has = "postgres"`, `"icecast2"`, `"chromium"`, …), so that a test that cannot run
//! here is compiled `#[ignore]`d and shows in cargo's summary ("N ignored", with the reason)
//! instead of passing without having run. With `CI` set every peer counts as present: the
//! tests then run, and fail if one is missing. The crate itself uses none of these cfgs.
//!
//! Probed once per build: install a peer (or start PostgreSQL) after building and the tests
//! stay ignored until the next build script run (`touch build.rs`); take one away and its
//! tests fail, saying so.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Programs some tests need, looked up on `PATH` (Icecast also at Debian's path).
const PROGRAMS: [&str; 9] = [
    "icecast2",
    "ffmpeg",
    "chromium",
    "chromedriver",
    "curl",
    "script",
    "jq",
    "man",
    "systemd-socket-activate",
];

/// Where the tests find PostgreSQL without `DATABASE_URL` (tests/it/support/pg.rs).
const DEFAULT_POSTGRES: &str = "127.0.0.1:5432";

fn main() {
    let values: Vec<String> = PROGRAMS
        .iter()
        .chain(&["postgres"])
        .map(|v| format!("\"{v}\""))
        .collect();
    println!(
        "cargo::rustc-check-cfg=cfg(jars_has, values({}))",
        values.join(", ")
    );
    println!("cargo::rerun-if-changed=build.rs");
    for var in ["CI", "PATH", "DATABASE_URL"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let ci = std::env::var_os("CI").is_some();
    for program in PROGRAMS {
        let found = find(program);
        if let Some(path) = &found {
            // Removed or upgraded: probe again.
            println!("cargo::rerun-if-changed={}", path.display());
        }
        if ci || found.is_some() {
            println!("cargo::rustc-cfg=jars_has=\"{program}\"");
        }
    }
    if ci || postgres_answers() {
        println!("cargo::rustc-cfg=jars_has=\"postgres\"");
    }
}

fn find(program: &str) -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin").join(program);
    if debian.is_file() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether something accepts connections where the tests would look for PostgreSQL:
/// `DATABASE_URL`'s host and port, else 127.0.0.1:5432.
fn postgres_answers() -> bool {
    let target = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| host_port(&u))
        .unwrap_or_else(|| DEFAULT_POSTGRES.to_string());
    let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return false,
    };
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(300)).is_ok())
}

/// `host:port` of a `postgres://user:password@host:port/db` URL (5432 when it has none).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = match host.rfind(']') {
        Some(bracket) => host[bracket..].contains(':'),
        None => host.contains(':'),
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}
