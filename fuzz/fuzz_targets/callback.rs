//! Fuzzes the Icecast callback decoder and the decision path behind it, without HTTP.
//!
//! 1. The raw input is decoded as one callback body; on success the accessors are exercised and
//!    the decoder's own invariants checked.
//! 2. The input, with placeholders expanded (`$P` public event, `$Q` private event, `$O` the
//!    owner's token, … see `World::new`), is split at newlines into up to 8 callbacks that are
//!    decided in order by a `Hooks` built like `jars serve` builds it (real SQLite store behind
//!    the row cache, the default Icecast settings plus static mounts and a trusted relay), with
//!    fresh live state per input. Each verdict is checked against an oracle written from the
//!    README's rules: nothing is let in that the rules do not let in.

#![no_main]

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use jars::icecast::decode::{self, Callback};
use jars::config::{Access, Config, IcecastSettings, Overrides};
use jars::icecast::decide::{DenyReason, Hooks, Verdict};
use jars::identity::Identity;
use jars::icecast::live::LiveState;
use jars::store::{EventStore, NewEvent};
use jars::tokens::{AccessLevel, TicketBinding, TokenService};
use jars_fuzz::{Placeholders, HEADER_PREFIXES, TICKET_IP, TICKET_REFERER};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const RELAY_USER: &str = "relay";
const RELAY_PASS: &str = "relay-pass";
const EVENT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const MAX_CALLBACKS: usize = 8;

struct World {
    rt: tokio::runtime::Runtime,
    tokens: Arc<TokenService>,
    identity: Arc<Identity>,
    store: Arc<dyn EventStore>,
    settings: IcecastSettings,
    placeholders: Placeholders,
    public: Uuid,
    private: Uuid,
    /// Tokens that open the private event to a listener, whatever the address or referer.
    listener_tokens: Vec<String>,
    owner: String,
    admin: String,
    user_tokens: Vec<String>,
    ticket_ip: String,
    ticket_referer: String,
    /// `JARS_FUZZ_DEBUG` set: print every decision (to check what the seeds reach).
    debug: bool,
}

static WORLD: OnceLock<World> = OnceLock::new();

impl World {
    fn new() -> World {
        // Make sure the fuzz key exists, then run jars' own set-up on it.
        jars_fuzz::key_set();
        let dir = tempfile::Builder::new()
            .prefix("jars-fuzz-callback-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let toml = format!(
            r#"
[tokens]
private_key = "{key}"

[[icecast.mounts]]
name = "/studio"
access = "public"

[[icecast.mounts]]
name = "/members"
access = "members"

[[icecast.mounts]]
name = "/staff"
access = "admins"

[[icecast.trusted_sources]]
user = "{RELAY_USER}"
password = "{RELAY_PASS}"
"#,
            key = jars_fuzz::private_key_path().display()
        );
        let overrides = Overrides {
            config: None,
            data_dir: Some(dir.clone()),
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(format!("sqlite:{}", dir.join("events.sqlite3").display())),
        };
        let config = Config::from_toml_str(&toml, &overrides).expect("config");
        // One worker thread beside the fuzzing thread, as `serve` runs on a multi-thread
        // runtime: the tasks sqlx spawns (returning a connection to its pool) run there rather
        // than inside the next `block_on`; store decisions take half the time.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let state = rt
            .block_on(jars::setup::app_state(&config))
            .expect("app state");
        let tokens = state.tokens.clone();
        let identity = state.identity.clone();
        let store = state.store.clone();
        let create = |private: bool, lifetime: Duration| {
            rt.block_on(store.create(NewEvent {
                created_by: 1,
                title: "fuzz".into(),
                description: "fuzz".into(),
                private,
                lifetime,
            }))
            .expect("create event")
            .id
        };
        let public = create(false, EVENT_LIFETIME);
        let private = create(true, EVENT_LIFETIME);
        // Expired as soon as it exists.
        let expired = create(true, Duration::ZERO);
        let missing = Uuid::new_v4();

        let user = |sub, level| jars_fuzz::user_token(&tokens, sub, level);
        let owner = user(1, AccessLevel::Standard);
        let other = user(2, AccessLevel::Standard);
        let admin = user(3, AccessLevel::Admin);
        let ticket = |event, binding| jars_fuzz::ticket(&tokens, event, binding);
        let t_private = ticket(
            private,
            TicketBinding {
                max_listeners: Some(2),
                ..Default::default()
            },
        );
        let t_ip = ticket(
            private,
            TicketBinding {
                ip: Some(TICKET_IP.into()),
                ..Default::default()
            },
        );
        let t_referer = ticket(
            private,
            TicketBinding {
                referer: Some(TICKET_REFERER.into()),
                ..Default::default()
            },
        );
        let t_public = ticket(public, TicketBinding::default());
        let t_expired = ticket(expired, TicketBinding::default());
        let t_missing = ticket(missing, TicketBinding::default());

        let mut p = Placeholders::default();
        p.add(b'P', public.to_string());
        p.add(b'Q', private.to_string());
        p.add(b'X', expired.to_string());
        p.add(b'N', missing.to_string());
        p.add(b'O', owner.clone());
        p.add(b'S', other.clone());
        p.add(b'A', admin.clone());
        p.add(b'T', t_private.clone());
        p.add(b'I', t_ip.clone());
        p.add(b'R', t_referer.clone());
        p.add(b'U', t_public);
        p.add(b'E', t_expired);
        p.add(b'M', t_missing);

        World {
            settings: config.icecast.clone(),
            rt,
            tokens,
            identity,
            store,
            placeholders: p,
            public,
            private,
            listener_tokens: vec![owner.clone(), other.clone(), admin.clone(), t_private],
            user_tokens: vec![owner.clone(), other, admin.clone()],
            owner,
            admin,
            ticket_ip: t_ip,
            ticket_referer: t_referer,
            debug: std::env::var_os("JARS_FUZZ_DEBUG").is_some(),
        }
    }

    fn hooks(&self) -> Hooks {
        Hooks {
            tokens: self.tokens.clone(),
            identity: self.identity.clone(),
            store: self.store.clone(),
            live: Arc::new(LiveState::new()),
            settings: ArcSwap::from_pointee(self.settings.clone()),
        }
    }
}

/// What docs/icecast.md says a mount is.
#[derive(Debug, PartialEq)]
enum MountKind {
    Event(Uuid),
    Static(Access),
    Unknown,
}

fn classify(w: &World, cb: &Callback<'_>) -> MountKind {
    let mount = cb.mount();
    if let Some(id) = mount.event_id() {
        return MountKind::Event(id);
    }
    match w.settings.mounts.iter().find(|m| m.name == mount.path()) {
        Some(m) => MountKind::Static(m.access),
        None => MountKind::Unknown,
    }
}

/// Checks `verdict` for `cb` against the rules; panics (a libFuzzer crash) on a violation.
fn check(w: &World, cb: &Callback<'_>, verdict: Verdict) {
    let kind = classify(w, cb);
    let allowed = matches!(verdict, Verdict::Allow { .. });
    match cb {
        Callback::MountAdd { .. }
        | Callback::MountRemove { .. }
        | Callback::ListenerRemove { .. } => {
            assert_eq!(verdict, Verdict::Noted, "notification {cb:?}");
        }
        Callback::StreamAuth {
            credentials, admin, ..
        } => {
            assert_ne!(verdict, Verdict::Noted, "{cb:?}");
            if kind == MountKind::Unknown {
                assert_eq!(verdict, Verdict::Deny(DenyReason::UnknownMount), "{cb:?}");
            }
            if !allowed {
                return;
            }
            let _ = admin;
            assert!(
                !credentials.pass.is_empty(),
                "source allowed without credentials: {cb:?}"
            );
            let relay = credentials.user == RELAY_USER && credentials.pass == RELAY_PASS;
            match kind {
                MountKind::Event(id) => {
                    assert!(
                        id == w.public || id == w.private,
                        "source allowed on an expired or unknown event: {cb:?}"
                    );
                    assert!(
                        relay || credentials.pass == w.owner || credentials.pass == w.admin,
                        "source allowed without the owner's or an admin's token: {cb:?}"
                    );
                }
                MountKind::Static(_) => assert!(
                    relay || credentials.pass == w.admin,
                    "static mount source allowed without an admin token: {cb:?}"
                ),
                MountKind::Unknown => unreachable!(),
            }
        }
        Callback::ListenerAdd {
            mount,
            ip,
            credentials,
            headers,
            ..
        } => {
            assert_ne!(verdict, Verdict::Noted, "{cb:?}");
            if kind == MountKind::Unknown {
                assert_eq!(verdict, Verdict::Deny(DenyReason::UnknownMount), "{cb:?}");
            }
            let Verdict::Allow { timelimit } = verdict else {
                return;
            };
            let mut presented: Vec<Cow<'_, str>> = w
                .settings
                .token_params
                .iter()
                .filter_map(|p| mount.param(p))
                .collect();
            if !credentials.pass.is_empty() {
                presented.push(Cow::Borrowed(credentials.pass.as_ref()));
            }
            let referer = callback::header(headers, "referer");
            let any = |set: &[String]| presented.iter().any(|p| set.iter().any(|t| t == p));
            let has = |token: &str| presented.iter().any(|p| p == token);
            match kind {
                MountKind::Event(id) => {
                    assert!(
                        id == w.public || id == w.private,
                        "listener allowed on an expired or unknown event: {cb:?}"
                    );
                    if id == w.private {
                        let ip_ticket =
                            ip == TICKET_IP && has(&w.ticket_ip);
                        let referer_ticket = referer.is_some_and(|r| r.starts_with(TICKET_REFERER))
                            && has(&w.ticket_referer);
                        assert!(
                            any(&w.listener_tokens) || ip_ticket || referer_ticket,
                            "private event opened without a valid token or ticket: {cb:?}"
                        );
                    }
                    let limit = timelimit.expect("event listeners get a time limit");
                    assert!(
                        limit >= 1 && limit <= EVENT_LIFETIME.as_secs() + 1,
                        "time limit {limit} beyond the event's life: {cb:?}"
                    );
                }
                MountKind::Static(Access::Public) => {}
                MountKind::Static(Access::Members) => assert!(
                    any(&w.user_tokens),
                    "members mount opened without a user token: {cb:?}"
                ),
                MountKind::Static(Access::Admins) => assert!(
                    has(&w.admin),
                    "admins mount opened without an admin token: {cb:?}"
                ),
                MountKind::Unknown => unreachable!(),
            }
        }
    }
}

/// The decoder on its own: exercise the accessors and check what it promises.
fn decode_raw(data: &[u8]) {
    let Ok(cb) = Callback::decode(data, &HEADER_PREFIXES) else {
        return;
    };
    // Only the fields an action reads are decoded, so the whole form need not parse.
    let action = jars::form::raw_pairs(data)
        .filter(|(k, _)| jars::form::decode_component(k).is_ok_and(|k| k == "action"))
        .last()
        .map(|(_, v)| jars::form::decode_component(v).expect("the action decoded"));
    assert_eq!(
        action.as_deref(),
        Some(cb.action()),
        "action is the last action field"
    );
    let mount = cb.mount();
    assert!(!mount.path().contains('?'), "query split off the path");
    if let Some(id) = mount.event_id() {
        assert_eq!(id.get_version_num(), 4);
        let name = mount
            .path()
            .strip_prefix('/')
            .expect("event mounts start with /");
        assert!(
            name.len() == 36 || name.as_bytes().get(36) == Some(&b'.'),
            "event mount {name:?}"
        );
    }
    for name in ["token", "jwt", "x"] {
        if let Some(v) = mount.param(name) {
            assert!(!v.is_empty());
        }
    }
    let _ = format!("{cb:?}");
}

fuzz_target!(|data: &[u8]| {
    decode_raw(data);
    let w = WORLD.get_or_init(World::new);
    let expanded = w.placeholders.expand(data);
    let hooks = w.hooks();
    for part in expanded.split(|&b| b == b'\n').take(MAX_CALLBACKS) {
        let Ok(cb) = Callback::decode(part, &HEADER_PREFIXES) else {
            continue;
        };
        let verdict = w.rt.block_on(hooks.decide(&cb));
        if w.debug {
            eprintln!("{} {} -> {verdict:?}", cb.action(), cb.mount().path());
        }
        check(w, &cb, verdict);
    }
});
