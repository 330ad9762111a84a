//! Tokens against fixed keys and fixed clocks: the original service's own token, tampering,
//! kinds, audiences, leeway and the cache.
use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The public key the original service served in its README (`GET /jars/pubkey`).
pub const SEED_PUBKEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAm2CecPMulYLZeW7+Brf2
pVb14PWwgbv1ZnQjmp/RsFeu/dYbvR3XBIl4ozcH15LRE8g7ZTzhPYm4tQjYQn9u
NAELGjlU9It9VCSX7STdH+r3xTO5pQtBobWaXs8pv/Di3og2p4oGEWsxKxci2J08
NoUlKFL+x2LZ7Z+vc6h6QMdegOPht3kWZ/YrhDdvZT7jENo0fi7xRUiOl6FZi4gk
wBAR9gAG782jx0ZI4HargxETy1KwVl6BuFjFUQfu9kkDZxeq4j7+ID30lhqGhoxt
Ujz/YKP5Z9sGXB+Wk2UxA2vnbs9WAoVpgmIjjE+fRQC0MpSGRowPn/EkV/gCXFhS
MQIDAQAB
-----END PUBLIC KEY-----
";

/// The token from the original README's `POST /jars/token` example (signed 2018).
pub const SEED_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjE1MjI0OTk2OTIsInN1YiI6NzQ0OSwiYWNjZXNzX2xldmVsIjoiQURNSU5fVVNFUiIsImlhdCI6MTUyMjQxMzI5MiwiaXNzIjoiamFycyJ9.I5iPwJrPJ4mw-p0WBZxBxPFy4_U_LP0LTKZ9I_zXK7ygDhM30Ob3vIHLcQRzHkc-QoUsbIMr8o-V81s8QsdfN0VKqvEaaLQY67UlEpdTqlIEWYwjlvQFaCP6mgyVIxRXl0DUXu38XnKD54uGiqDBTs27Zg8AZJoPHJFyGg4DN20x4RYtzq02ssXeN21rJrwl6ApgRGaalYomx3fNUZuNEh0Me5oN7k0gGkkVIcKGgmW5Pml1uloN0nuSNCwek-Nd1AuwuMCrpx5S6YqZlROGqTIttwadV4LLU684I32V55tYZBhEQ9zUML68bcRKLtGq7-UlvnggXwf7QO_3_xSsbA";

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "jars".into(),
        audience: None,
        leeway: Duration::from_secs(30),
        lifetime: Duration::from_secs(86400),
    }
}

fn seed_service() -> TokenService {
    TokenService::new(KeySet::from_public_pem(SEED_PUBKEY).unwrap(), policy())
}

#[test]
fn seed_token_is_expired_today() {
    assert_eq!(
        seed_service()
            .verify_at(SEED_TOKEN, unix_now())
            .unwrap_err(),
        TokenError::Expired
    );
}

#[test]
fn seed_token_is_valid_at_its_own_iat() {
    let claims = seed_service().verify_at(SEED_TOKEN, 1522413292).unwrap();
    assert_eq!(claims.sub, 7449);
    assert_eq!(claims.access_level, AccessLevel::Admin);
    assert_eq!(claims.iss, "jars");
    assert_eq!(claims.exp, 1522499692);
}

#[test]
fn cached_token_still_expires() {
    let s = seed_service();
    assert!(s.verify_at(SEED_TOKEN, 1522413292).is_ok());
    // Past exp + leeway: refused even though the signature check is cached.
    assert_eq!(
        s.verify_at(SEED_TOKEN, 1522499692 + 31).unwrap_err(),
        TokenError::Expired
    );
    // Within the leeway: still fine.
    assert!(s.verify_at(SEED_TOKEN, 1522499692 + 29).is_ok());
}

#[test]
fn wrong_issuer_and_tampering_are_refused() {
    let mut p = policy();
    p.issuer = "other".into();
    let s = TokenService::new(KeySet::from_public_pem(SEED_PUBKEY).unwrap(), p);
    assert_eq!(
        s.verify_at(SEED_TOKEN, 1522413292).unwrap_err(),
        TokenError::InvalidIssuer
    );
    let s = seed_service();
    let mut parts: Vec<String> = SEED_TOKEN.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(
        br#"{"exp":1522499692,"sub":1,"access_level":"ADMIN_USER","iat":1522413292,"iss":"jars"}"#,
    );
    assert_eq!(
        s.verify_at(&parts.join("."), 1522413292).unwrap_err(),
        TokenError::InvalidSignature
    );
    assert_eq!(
        s.verify_at("not a token", unix_now()).unwrap_err(),
        TokenError::Decode
    );
    assert_eq!(
        s.verify_at(&format!("{SEED_TOKEN}.extra"), unix_now())
            .unwrap_err(),
        TokenError::Decode
    );
}

#[test]
fn none_and_hmac_algorithms_are_refused() {
    let s = seed_service();
    let payload = URL_SAFE_NO_PAD
        .encode(br#"{"exp":9999999999,"sub":1,"access_level":"ADMIN_USER","iat":1,"iss":"jars"}"#);
    for alg in ["none", "NONE", "HS256"] {
        let head = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let token = format!("{head}.{payload}.c2ln");
        assert_eq!(
            s.verify_at(&token, unix_now()).unwrap_err(),
            TokenError::InvalidAlgorithm,
            "{alg}"
        );
    }
}

#[test]
fn minted_tokens_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let s = TokenService::new(keys, policy());
    let (token, claims) = s.issue(42, AccessLevel::Standard, None).unwrap();
    assert_eq!(claims.exp - claims.iat, 86400);
    let verified = s.verify_at(&token, unix_now()).unwrap();
    assert_eq!(verified.sub, 42);
    assert_eq!(verified.access_level, AccessLevel::Standard);
    // The seed key set does not accept it.
    assert_eq!(
        seed_service().verify_at(&token, unix_now()).unwrap_err(),
        TokenError::UnknownKey
    );
}

#[test]
fn tickets_and_user_tokens_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let s = TokenService::new(keys, policy());
    let event = uuid::Uuid::new_v4();
    let (ticket, claims) = s
        .issue_ticket(
            event,
            Duration::from_secs(60),
            TicketBinding {
                ip: Some("192.0.2.1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(claims.sub, event.to_string());
    match s.verify_any_at(&ticket, unix_now()).unwrap() {
        Verified::Ticket(t) => {
            assert_eq!(t.kind, "ticket");
            assert_eq!(t.ip.as_deref(), Some("192.0.2.1"));
            assert_eq!(t.exp - t.iat, 60);
        }
        other => panic!("expected a ticket, got {other:?}"),
    }
    // A ticket is never a user token, cached or not.
    assert_eq!(
        s.verify_at(&ticket, unix_now()).unwrap_err(),
        TokenError::WrongKind
    );
    assert_eq!(
        s.verify_at(&ticket, unix_now()).unwrap_err(),
        TokenError::WrongKind
    );
    let (user, _) = s.issue(1, AccessLevel::Admin, None).unwrap();
    assert!(matches!(
        s.verify_any_at(&user, unix_now()).unwrap(),
        Verified::User(_)
    ));
}

#[test]
fn a_flood_of_heavy_tickets_stays_within_the_cache_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let mut s = TokenService::new(keys, policy());
    let budget = 40 * 1024;
    s.verified = ExpiringMap::with_budget(VERIFIED_CAPACITY, budget);
    // The attack: tickets bound to 2 KiB referers, ~6 KiB each in the cache.
    let referer = format!("https://radio.example/{}", "p".repeat(2048));
    for _ in 0..40 {
        let binding = TicketBinding {
            referer: Some(referer.clone()),
            ..Default::default()
        };
        let (ticket, _) = s
            .issue_ticket(uuid::Uuid::new_v4(), Duration::from_secs(600), binding)
            .unwrap();
        let verified = s.verify_any_at(&ticket, unix_now()).unwrap();
        assert!(verified.weight(ticket.len()) > ticket.len() + referer.len());
        assert!(s.verified.weight() <= budget, "{}", s.verified.weight());
    }
    assert!(s.verified.len() < 40, "by count alone all 40 would stay");
}

#[test]
fn audience_is_checked_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let mut p = policy();
    p.audience = Some("icecast".into());
    let with_aud = TokenService::new(keys, p);
    let (token, _) = with_aud.issue(1, AccessLevel::Standard, None).unwrap();
    assert!(with_aud.verify_at(&token, unix_now()).is_ok());
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let mut p = policy();
    p.audience = Some("elsewhere".into());
    let other = TokenService::new(keys, p);
    assert_eq!(
        other.verify_at(&token, unix_now()).unwrap_err(),
        TokenError::InvalidAudience
    );
}

/// The signing key of `keys` and a header naming it.
fn signing_header(keys: &KeySet) -> (&crate::keys::SigningKey, Header) {
    let signing = keys.signing.as_ref().unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(signing.kid.clone());
    (signing, header)
}

#[test]
fn without_a_configured_audience_any_aud_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let (signing, header) = signing_header(&keys);
    let now = unix_now();
    let mint = |aud: serde_json::Value| {
        let mut claims = serde_json::json!({
            "iss": "jars", "sub": 7, "iat": now, "exp": now + 60,
            "access_level": "STANDARD_USER",
        });
        if !aud.is_boolean() {
            claims["aud"] = aud;
        }
        jsonwebtoken::encode(&header, &claims, &signing.encoding).unwrap()
    };
    let (same_keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let s = TokenService::new(same_keys, policy());
    assert!(s.verify_at(&mint(false.into()), now).is_ok(), "no aud");
    for aud in [
        serde_json::json!("other-service"),
        serde_json::json!(["other-service"]),
        serde_json::json!([]),
        serde_json::json!(null),
        serde_json::json!(42),
    ] {
        assert_eq!(
            s.verify_at(&mint(aud.clone()), now).unwrap_err(),
            TokenError::InvalidAudience,
            "{aud}"
        );
    }
    // With an audience configured, a token for it passes and others do not.
    let mut p = policy();
    p.audience = Some("other-service".into());
    let (same_keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let s = TokenService::new(same_keys, p);
    assert!(s.verify_at(&mint("other-service".into()), now).is_ok());
    assert_eq!(
        s.verify_at(&mint("elsewhere".into()), now).unwrap_err(),
        TokenError::InvalidAudience
    );
}

#[test]
fn an_exp_at_the_end_of_time_neither_wraps_nor_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let (signing, header) = signing_header(&keys);
    let now = unix_now();
    let claims = Claims {
        iss: "jars".into(),
        sub: 7,
        iat: now,
        exp: i64::MAX - 1,
        access_level: AccessLevel::Standard,
        nbf: None,
        jti: None,
        aud: None,
    };
    let token = jsonwebtoken::encode(&header, &claims, &signing.encoding).unwrap();
    let s = TokenService::new(keys, policy());
    // exp + leeway used to overflow: a panic in debug builds, "expired" in release.
    assert_eq!(s.verify_at(&token, now).unwrap().exp, i64::MAX - 1);
    assert!(
        s.verify_at(&token, now).is_ok(),
        "and again, from the cache"
    );
    // Minting with an endless lifetime stops at the end of time too.
    let (_, claims) = s
        .issue(7, AccessLevel::Standard, Some(Duration::MAX))
        .unwrap();
    assert_eq!(claims.exp, i64::MAX);
    let ticket = TicketBinding::default();
    let (_, t) = s
        .issue_ticket(uuid::Uuid::nil(), Duration::MAX, ticket)
        .unwrap();
    assert_eq!(t.exp, i64::MAX);
}

/// Issue 29 #4: with a leeway for skewed clocks, user tokens get it on `exp`; tickets, listener
/// or source, never admit after their `exp` (a player reconnecting at +7 s was let in).
#[test]
fn a_ticket_never_admits_after_its_exp_whatever_the_leeway() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = KeySet::load(None, None, dir.path()).unwrap();
    let s = TokenService::new(keys, policy());
    let (ticket, t) = s
        .issue_ticket(
            uuid::Uuid::new_v4(),
            Duration::from_secs(5),
            TicketBinding::default(),
        )
        .unwrap();
    let (source, src) = s
        .issue_source_ticket(uuid::Uuid::new_v4(), 7, Duration::from_secs(5))
        .unwrap();
    let (user, u) = s.issue(42, AccessLevel::Standard, None).unwrap();
    // The last second before exp: all three; verified once, so later checks hit the cache.
    assert!(s.verify_any_at(&ticket, t.exp - 1).is_ok());
    assert!(s.verify_any_at(&source, src.exp - 1).is_ok());
    assert!(s.verify_at(&user, u.exp - 1).is_ok());
    for (token, exp) in [(&ticket, t.exp), (&source, src.exp)] {
        for after in [0, 1, 7, 21, 29] {
            assert_eq!(
                s.verify_any_at(token, exp + after).unwrap_err(),
                TokenError::Expired,
                "a ticket at exp + {after}s"
            );
        }
    }
    // The user token is within the policy's 30 s leeway.
    assert!(s.verify_at(&user, u.exp + 29).is_ok());
    assert_eq!(
        s.verify_at(&user, u.exp + 30).unwrap_err(),
        TokenError::Expired
    );
    // With no leeway (the default), expired at exp, as PyJWT 1.7.1 without one.
    let strict = TokenService::new(
        KeySet::load(None, None, dir.path()).unwrap().0,
        TokenPolicy {
            leeway: Duration::ZERO,
            ..policy()
        },
    );
    assert!(strict.verify_at(&user, u.exp - 1).is_ok());
    assert_eq!(
        strict.verify_at(&user, u.exp).unwrap_err(),
        TokenError::Expired
    );
}
