//! Fuzzes token verification (`TokenService::verify_any_at`) and the strict form decoder
//! (`jars::form::parse`).
//!
//! Tokens: the input (UTF-8, lossily) with placeholders expanded (`$U` a user token, `$A` an
//! admin token, `$T` a ticket) is verified now and 30 years from now. Never a panic; nothing
//! verifies but a token minted with the fuzz key, byte for byte (anything else would be a
//! forgery or a malleable encoding); nothing verifies after it expired; a ticket never passes
//! as a user token.
//!
//! Forms: never a panic, and what parses survives an encode/parse round trip.

#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use jars::tokens::{unix_now, AccessLevel, TicketBinding, TokenError, TokenService, Verified};
use jars_fuzz::Placeholders;
use libfuzzer_sys::fuzz_target;

struct World {
    tokens: TokenService,
    placeholders: Placeholders,
    minted: HashSet<String>,
    now: i64,
}

static WORLD: OnceLock<World> = OnceLock::new();

impl World {
    fn new() -> World {
        let tokens = jars_fuzz::token_service();
        let user = jars_fuzz::user_token(&tokens, 7, AccessLevel::Standard);
        let admin = jars_fuzz::user_token(&tokens, 8, AccessLevel::Admin);
        let ticket = jars_fuzz::ticket(
            &tokens,
            uuid::Uuid::new_v4(),
            TicketBinding {
                ip: Some("192.0.2.1".into()),
                referer: Some("http://ok.example/".into()),
                max_listeners: Some(3),
            },
        );
        let mut minted = jars_fuzz::minted();
        let mut placeholders = Placeholders::default();
        for (letter, t) in [(b'U', user), (b'A', admin), (b'T', ticket)] {
            minted.insert(t.clone());
            placeholders.add(letter, t);
        }
        World {
            tokens,
            placeholders,
            minted,
            now: unix_now(),
        }
    }
}

fn tokens(w: &World, data: &[u8]) {
    let expanded = w.placeholders.expand(data);
    let text = String::from_utf8_lossy(&expanded);
    let result = w.tokens.verify_any_at(&text, w.now);
    if let Ok(verified) = &result {
        assert!(
            w.minted.contains(text.as_ref()),
            "a token that was never minted verifies: {text:?} -> {verified:?}"
        );
        if let Verified::Ticket(_) = verified {
            assert_eq!(
                w.tokens.verify_at(&text, w.now).unwrap_err(),
                TokenError::WrongKind,
                "a ticket passed as a user token"
            );
        }
    }
    // Fuzz tokens live 20 years: 30 years on, nothing may verify (cached or not).
    let later = w.now + 30 * 365 * 24 * 3600;
    assert!(
        w.tokens.verify_any_at(&text, later).is_err(),
        "a token verifies after it expired: {text:?}"
    );
}

fn form(data: &[u8]) {
    let Ok(pairs) = jars::form::parse(data) else {
        return;
    };
    let encoded = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                jars_fuzz::icecast_escape(k),
                jars_fuzz::icecast_escape(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let again = jars::form::parse(encoded.as_bytes()).expect("re-encoded form parses");
    assert_eq!(pairs, again, "form round trip");
}

fuzz_target!(|data: &[u8]| {
    let w = WORLD.get_or_init(World::new);
    tokens(w, data);
    form(data);
});
