//! Set-up shared by the fuzz targets and the seed generator: the fuzz key pair, the tokens
//! minted with it, and the placeholders (`$O`, `$Q`, …) that inputs use to refer to tokens and
//! event ids which only exist while a target runs.
//!
//! The key pair lives in `fuzz/keys/` (git-ignored): generated on first use, then reused, so
//! tokens that `gen-seeds` wrote into the corpus keep verifying in later runs. Every token
//! minted with it is appended to `fuzz/keys/minted.txt`; the `token` target treats any other
//! string that verifies as a finding (a forged or malleable token).

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use jars::keys::KeySet;
use jars::tokens::{AccessLevel, TicketBinding, TokenPolicy, TokenService};

/// Where the fuzz key pair and the list of minted tokens live.
pub fn key_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/keys"))
}

/// The private key file in [`key_dir`] (jars' own file name).
pub fn private_key_path() -> PathBuf {
    key_dir().join(jars::keys::PRIVATE_KEY_FILE)
}

const MINTED_FILE: &str = "minted.txt";

/// Header-forwarding prefixes, as `/icecast/auth` passes them with the default config.
pub const HEADER_PREFIXES: [&str; 2] = ["ClientHeader.", "ClientHeader-"];

/// Listener address an IP-bound ticket is bound to.
pub const TICKET_IP: &str = "192.0.2.1";
/// Referer prefix a referer-bound ticket requires.
pub const TICKET_REFERER: &str = "http://ok.example/";

/// Lifetime of fuzz tokens: long, so that corpus entries do not expire under the fuzzer.
pub const LONG: Duration = Duration::from_secs(20 * 365 * 24 * 3600);

/// The token policy jars uses by default.
pub fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "jars".into(),
        audience: None,
        leeway: Duration::from_secs(30),
        lifetime: Duration::from_secs(24 * 3600),
    }
}

/// Loads the fuzz key pair, generating it on first use.
pub fn key_set() -> KeySet {
    let dir = key_dir();
    fs::create_dir_all(&dir).expect("fuzz/keys");
    KeySet::load(None, None, &dir).expect("fuzz key pair").0
}

/// A token service over the fuzz key pair.
pub fn token_service() -> TokenService {
    TokenService::new(key_set(), policy())
}

/// Records minted tokens so that later runs know them as genuine.
pub fn remember_minted(tokens: &[&str]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(key_dir().join(MINTED_FILE))
        .expect("minted.txt");
    for t in tokens {
        writeln!(f, "{t}").expect("minted.txt");
    }
}

/// Every token ever minted with the fuzz key.
pub fn minted() -> HashSet<String> {
    fs::read_to_string(key_dir().join(MINTED_FILE))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Mints a user token for `sub` with a long lifetime.
pub fn user_token(tokens: &TokenService, sub: i64, level: AccessLevel) -> String {
    tokens.issue(sub, level, Some(LONG)).expect("issue").0
}

/// Mints a ticket for `event` with a long lifetime.
pub fn ticket(tokens: &TokenService, event: uuid::Uuid, binding: TicketBinding) -> String {
    tokens
        .issue_ticket(event, LONG, binding)
        .expect("issue_ticket")
        .0
}

/// `$` + one letter in an input stands for a value known only at run time.
#[derive(Default)]
pub struct Placeholders(Vec<(u8, String)>);

impl Placeholders {
    pub fn add(&mut self, letter: u8, value: impl Into<String>) {
        self.0.push((letter, value.into()));
    }

    /// `data` with every known `$X` replaced by its value.
    pub fn expand(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            if data[i] == b'$' && i + 1 < data.len() {
                if let Some((_, v)) = self.0.iter().find(|(l, _)| *l == data[i + 1]) {
                    out.extend_from_slice(v.as_bytes());
                    i += 2;
                    continue;
                }
            }
            out.push(data[i]);
            i += 1;
        }
        out
    }
}

/// Percent-encodes like Icecast 2.4: every byte but `[A-Za-z0-9]`, as lowercase `%xx`.
pub fn icecast_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}
