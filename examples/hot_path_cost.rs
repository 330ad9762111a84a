//! The cost of each step of a `listener_add` decision, outside HTTP, on this machine:
//! decoding Icecast's form body, deciding it (event cache, token cache, live state) and, for a
//! ticket jars has not seen, verifying it (jars' `TokenService` miss path against a bare `ring`
//! signature check on the same tickets). `bench/run` prints these under its table, so a gap to
//! the no-op can be read against what jars' own steps cost.
//!
//! `hot_path_cost DATA_DIR PUBLIC_EVENT PRIVATE_EVENT TICKETS_FILE` (tickets for PRIVATE_EVENT,
//! minted by `mint_tickets` for that data dir; the events must exist in its store)

use std::path::PathBuf;
use std::time::Instant;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jars::config::{Config, Overrides};
use jars::icecast::decide::Verdict;
use jars::icecast::decode::Callback;
use jars::tokens::unix_now;
use ring::signature::{KeyPair, RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

/// Every byte but `[A-Za-z0-9]` as `%xx`, as Icecast 2.4.4 escapes callback fields.
fn icecast_escape(s: &str) -> String {
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

/// A `listener_add` body as bench/run sends it.
fn listener_add(event: &str, ticket: Option<&str>, client: u64) -> String {
    let mount = match ticket {
        Some(t) => format!("/{event}.mp3?token={t}"),
        None => format!("/{event}.mp3"),
    };
    format!(
        "action=listener_add&server=localhost&port=8000&client={client}&mount={}&user=&pass=&ip={}&agent={}&ClientHeader.referer={}",
        icecast_escape(&mount),
        icecast_escape("127.0.0.1"),
        icecast_escape("VLC/3.0.18 LibVLC/3.0.18"),
        icecast_escape("https://radio.example.org/player"),
    )
}

/// Mean microseconds per call of `f` over `n` calls.
fn per_call(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        f(i);
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(
        args.len(),
        5,
        "usage: hot_path_cost DATA_DIR PUBLIC_EVENT PRIVATE_EVENT TICKETS_FILE"
    );
    let (public, private) = (&args[2], &args[3]);
    let tickets: Vec<String> = std::fs::read_to_string(&args[4])
        .expect("tickets file")
        .lines()
        .map(str::to_string)
        .collect();
    let config = Config::load(&Overrides {
        data_dir: Some(PathBuf::from(&args[1])),
        ..Default::default()
    })
    .expect("config");
    let state = jars::setup::app_state(&config).await.expect("app state");
    let prefixes = [config.icecast.header_prefix.as_str(), "ClientHeader-"];
    const N: usize = 20_000;

    let mut report = Vec::new();
    for (what, event, ticket) in [
        ("public event", public, None),
        (
            "private event, ticket (cache hit)",
            private,
            Some(&tickets[0]),
        ),
    ] {
        let body = listener_add(event, ticket.map(String::as_str), 1);
        let decode = per_call(N, |_| {
            std::hint::black_box(Callback::decode(body.as_bytes(), &prefixes).unwrap());
        });
        let callback = Callback::decode(body.as_bytes(), &prefixes).unwrap();
        assert!(matches!(
            state.hooks.decide(&callback).await,
            Verdict::Allow { .. }
        ));
        let started = Instant::now();
        for _ in 0..N {
            std::hint::black_box(state.hooks.decide(&callback).await);
        }
        let decide = started.elapsed().as_secs_f64() * 1e6 / N as f64;
        report.push(format!(
            "listener_add, {what}: body {} bytes; decode {decode:.2} µs, decide {decide:.2} µs",
            body.len()
        ));
    }

    // Cache misses: every ticket but the first is new to this TokenService.
    let fresh = &tickets[1..];
    let now = unix_now();
    let miss = per_call(fresh.len(), |i| {
        state.tokens.verify_any_at(&fresh[i], now).expect("valid");
    });
    let pem = std::fs::read_to_string(config.data_dir.join("jwt-private.pem")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap();
    let public_key = UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref().to_vec(),
    );
    let ring = per_call(fresh.len(), |i| {
        let (input, sig) = fresh[i].rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        public_key.verify(input.as_bytes(), &sig).expect("ring");
    });
    report.push(format!(
        "new ticket ({} of them): jars' verification (cache miss) {miss:.1} µs; ring's RS256 check of the same {ring:.1} µs",
        fresh.len()
    ));
    for line in report {
        println!("{line}");
    }
}
