//! What one RS256 verification costs on this machine: the cache-miss path of jars'
//! `TokenService` (header, signature and claims) against a bare signature check with `ring`,
//! on the same tickets. Scenario 3 of `bench/run` is bounded by the first.
//!
//! `verify_cost DATA_DIR TICKETS_FILE` (tickets minted by `mint_tickets` for that data dir)

use std::path::PathBuf;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jars::config::{Config, Overrides};
use jars::tokens::unix_now;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 3, "usage: verify_cost DATA_DIR TICKETS_FILE");
    let data_dir = PathBuf::from(&args[1]);
    let tickets: Vec<String> = std::fs::read_to_string(&args[2])
        .expect("tickets file")
        .lines()
        .map(str::to_string)
        .collect();
    let config = Config::load(&Overrides {
        data_dir: Some(data_dir),
        ..Default::default()
    })
    .expect("config");
    let tokens = jars::server::token_service(&config).expect("token service");

    // jars: every ticket is new to this TokenService, so each call is a cache miss.
    let now = unix_now();
    let started = Instant::now();
    for t in &tickets {
        tokens.verify_any_at(t, now).expect("a valid ticket");
    }
    let jars_us = started.elapsed().as_secs_f64() * 1e6 / tickets.len() as f64;

    // ring: the signature alone, with the public key from the ticket-signing key pair.
    let private_pem = std::fs::read_to_string(config.data_dir.join("jwt-private.pem")).unwrap();
    let der: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let public = UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
    );
    let started = Instant::now();
    for t in &tickets {
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        public
            .verify(input.as_bytes(), &sig)
            .expect("ring verifies");
    }
    let ring_us = started.elapsed().as_secs_f64() * 1e6 / tickets.len() as f64;
    println!(
        "{} tickets: jars TokenService miss {jars_us:.1} µs each; ring signature check {ring_us:.1} µs each",
        tickets.len()
    );
}
