//! Mints listener tickets for `bench/run`: tens of thousands of distinct, valid tickets for one
//! event, fast enough that a cache-miss benchmark never has to send a ticket twice.
//!
//! The first ticket comes from the library itself (`TokenService::issue_ticket`, what
//! `POST /jars/ticket` and `jars ticket` call); every other one is that ticket with a new `jti`,
//! re-signed with the same key. The signing is done with `ring` (already in the dependency tree
//! through rustls) rather than the `rsa` crate jars uses, because it signs about six times
//! faster; jars verifies the result like any other ticket, which the example checks.
//!
//! `mint_tickets DATA_DIR EVENT_ID COUNT LIFETIME_SECS > tickets.txt` (one ticket a line)

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jars::config::{Config, Overrides};
use jars::tokens::{unix_now, TicketBinding};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};

fn usage(problem: &str) -> ! {
    eprintln!("mint_tickets: {problem}\nusage: mint_tickets DATA_DIR EVENT_ID COUNT LIFETIME_SECS");
    std::process::exit(64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        usage("four arguments expected");
    }
    let data_dir = PathBuf::from(&args[1]);
    let event: uuid::Uuid = args[2]
        .parse()
        .unwrap_or_else(|_| usage("EVENT_ID: a uuid"));
    let count: usize = args[3].parse().unwrap_or_else(|_| usage("COUNT: a number"));
    let lifetime: u64 = args[4]
        .parse()
        .unwrap_or_else(|_| usage("LIFETIME_SECS: a number"));
    let config = Config::load(&Overrides {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    })
    .unwrap_or_else(|e| usage(&format!("config: {e}")));
    let tokens = jars::setup::token_service(&config).expect("token service");
    let (template, _) = tokens
        .issue_ticket(
            event,
            Duration::from_secs(lifetime),
            TicketBinding::default(),
        )
        .expect("issue a ticket");

    // The template's header (alg, kid) and claims; only the jti changes from ticket to ticket.
    let (header, rest) = template.split_once('.').expect("a JWT");
    let (claims, _) = rest.split_once('.').expect("a JWT");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64url claims"))
            .expect("JSON claims");

    // bench/run's jars generates its key pair in the data directory.
    let pem_path = data_dir.join("jwt-private.pem");
    let pem = std::fs::read_to_string(&pem_path)
        .unwrap_or_else(|e| usage(&format!("{}: {e}", pem_path.display())));
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(der).expect("base64 PEM body");
    let key = RsaKeyPair::from_pkcs8(&der)
        .or_else(|_| RsaKeyPair::from_der(&der))
        .expect("an RSA private key (PKCS#8 or PKCS#1)");

    let mint = |_: usize| -> String {
        let mut claims = claims.clone();
        claims["jti"] = uuid::Uuid::new_v4().to_string().into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("JSON"));
        let input = format!("{header}.{body}");
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    };

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.saturating_sub(1).div_ceil(threads);
    let mut minted = vec![template.clone()];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(1 + t * per_thread));
                s.spawn(move || (0..n).map(mint).collect::<Vec<String>>())
            })
            .collect();
        for h in handles {
            minted.extend(h.join().expect("minting thread"));
        }
    });
    minted.truncate(count);

    // What jars would say about one of them.
    if let Some(last) = minted.last() {
        if let Err(e) = tokens.verify_any_at(last, unix_now()) {
            eprintln!("mint_tickets: a minted ticket does not verify: {e}");
            std::process::exit(1);
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for ticket in &minted {
        writeln!(out, "{ticket}").expect("write");
    }
}
