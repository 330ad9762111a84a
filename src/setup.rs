//! Turns a validated [`Config`] into a running server: keys, identity backend and store are
//! loaded before the listener accepts, so a bad setup fails without ever accepting a request;
//! and [`reload`] applies a new config on SIGHUP, all or nothing.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::SharedClock;
use crate::config::{Config, LimitSettings, Overrides};
use crate::http::{ApiSettings, AppState};
use crate::icecast::admin::IcecastAdmin;
use crate::icecast::decide::Hooks;
use crate::identity::Identity;
use crate::keys::{KeyOrigin, KeySet, RemoteFormat, RemoteKeySource};
use crate::live::LiveState;
use crate::metrics::Metrics;
use crate::placement::{Caps, Placement};
use crate::rate_limit::{KnownLogins, RateLimiter};
use crate::sanctions::Sanctions;
use crate::sessions::writer::spawn_maintenance;
use crate::sessions::SessionWriter;
use crate::signing::SigningSlots;
use crate::store::cache::CachedStore;
use crate::store::metered::MeteredStore;
use crate::tokens::{TokenPolicy, TokenService};

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A problem with what the operator configured (exit code 64).
    #[error("{0}")]
    Config(String),
    /// A problem at run time, e.g. the store cannot be opened (exit code 1).
    #[error("{0}")]
    Runtime(String),
}

fn policy(config: &Config) -> TokenPolicy {
    TokenPolicy {
        issuer: config.tokens.issuer.clone(),
        audience: config.tokens.audience.clone(),
        leeway: config.tokens.leeway,
        lifetime: config.tokens.lifetime,
    }
}

/// The local key set of `config`, generating the pair in the data directory on first start.
/// `None` for a verify-only node (its keys come from a URL).
fn local_keys(config: &Config) -> Result<Option<KeySet>, SetupError> {
    if config.tokens.remote.is_some() {
        return Ok(None);
    }
    if config.tokens.private_key.is_none() && config.tokens.public_key.is_none() {
        crate::atomic_file::create_private_dir(&config.data_dir).map_err(|e| {
            SetupError::Runtime(format!("data_dir {}: {e}", config.data_dir.display()))
        })?;
    }
    let (keys, origin) = KeySet::load(
        config.tokens.private_key.as_ref(),
        config.tokens.public_key.as_ref(),
        &config.data_dir,
    )
    .map_err(|e| SetupError::Config(format!("keys: {e}")))?;
    if let KeyOrigin::Generated { private_key, kid } = origin {
        tracing::info!(path = %private_key.display(), kid, "generated a new RS256 key pair");
    }
    Ok(Some(keys))
}

/// The token service for `config`: local keys, or an (empty, not yet fetched) remote key set.
pub fn token_service(config: &Config) -> Result<TokenService, SetupError> {
    match (local_keys(config)?, &config.tokens.remote) {
        (Some(keys), _) => Ok(TokenService::new(keys, policy(config))),
        (None, Some(r)) => {
            let source = RemoteKeySource::new(
                r.url.clone(),
                if r.jwks {
                    RemoteFormat::Jwks
                } else {
                    RemoteFormat::Pem
                },
                r.refresh,
                r.refetch_min_interval,
                r.max_stale,
            )
            .map_err(|e| SetupError::Config(format!("tokens: {e}")))?;
            Ok(TokenService::new(KeySet::empty(), policy(config)).with_remote(source))
        }
        (None, None) => unreachable!("local_keys returns keys unless a remote is configured"),
    }
}

/// `previous`'s value of `part` while the setting it is built from is unchanged (a rate
/// limiter keeps its counts across a reload), else a new one.
fn kept<T, K: PartialEq>(
    config: &Config,
    previous: Option<&ApiSettings>,
    setting: impl Fn(&LimitSettings) -> K,
    part: impl Fn(&ApiSettings) -> &Arc<T>,
    build: impl FnOnce() -> T,
) -> Arc<T> {
    match previous {
        Some(p) if setting(&p.limits) == setting(&config.limits) => part(p).clone(),
        _ => Arc::new(build()),
    }
}

fn api_settings(
    config: &Config,
    previous: Option<&ApiSettings>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiSettings {
    let l = &config.limits;
    let token_limiter = kept(
        config,
        previous,
        |l| (l.token_per_minute, l.token_burst),
        |p| &p.token_limiter,
        || RateLimiter::new(l.token_per_minute, l.token_burst),
    );
    // A member may use the whole hour's (minute's) allowance at once, then waits for it to
    // refill.
    let create_limiter = kept(
        config,
        previous,
        |l| l.create_per_hour,
        |p| &p.create_limiter,
        || {
            RateLimiter::per(
                Duration::from_secs(3600),
                l.create_per_hour,
                l.create_per_hour,
            )
        },
    );
    let ticket_limiter = kept(
        config,
        previous,
        |l| l.tickets_per_minute,
        |p| &p.ticket_limiter,
        || RateLimiter::new(l.tickets_per_minute, l.tickets_per_minute),
    );
    let revoke_limiter = kept(
        config,
        previous,
        |l| l.revoke_per_minute,
        |p| &p.revoke_limiter,
        || RateLimiter::new(l.revoke_per_minute, l.revoke_per_minute),
    );
    let list_slots = kept(
        config,
        previous,
        |l| l.max_concurrent_lists,
        |p| &p.list_slots,
        || tokio::sync::Semaphore::new(l.max_concurrent_lists),
    );
    ApiSettings {
        event_lifetime: config.events.lifetime,
        limits: config.limits.clone(),
        token_limiter,
        known_logins: previous.map_or_else(
            || {
                let file = config.data_dir.join(crate::rate_limit::KNOWN_LOGINS_FILE);
                Arc::new(KnownLogins::open(&file, now))
            },
            |p| p.known_logins.clone(),
        ),
        create_limiter,
        ticket_limiter,
        revoke_limiter,
        list_slots,
        ui: config.ui.clone(),
    }
}

/// Builds the shared state for `config`, on the system clock.
pub async fn app_state(config: &Config) -> Result<AppState, SetupError> {
    app_state_on(config, crate::clock::system()).await
}

/// Builds the shared state for `config`; every decision reads `now` from `clock`.
pub async fn app_state_on(config: &Config, clock: SharedClock) -> Result<AppState, SetupError> {
    let metrics = Arc::new(Metrics::new());
    for action in crate::http::api::DECIDED_ACTIONS {
        metrics.decisions_start_at_zero(action, &crate::http::ApiError::REASON_LABELS);
    }
    let tokens = Arc::new(
        token_service(config)?
            .with_clock(clock.clone())
            .with_metrics(metrics.clone()),
    );
    let identity = Identity::from_settings(&config.identity)
        .map_err(|e| SetupError::Config(format!("identity: {e}")))?
        .recheck_on(clock.clone());
    // A node that issues tokens must be able to tell who still has rights; only a verify-only
    // node trusts tokens without a users file.
    identity
        .serve(tokens.can_sign())
        .map_err(|e| SetupError::Runtime(format!("identity: {e}")))?;
    // PostgreSQL being down at start-up is not fatal: the store recovers by itself, and Icecast
    // decisions it cannot make are denied meanwhile.
    let opened = crate::store::open_with_sanctions_for_serve(&config.store)
        .await
        .map_err(|e| SetupError::Runtime(e.to_string()))?;
    let store: Arc<dyn crate::store::EventStore> = Arc::new(CachedStore::new(
        Arc::new(MeteredStore::new(opened.events, metrics.clone())),
        config.store_cache.ttl,
        config.store_cache.negative_ttl,
    ));
    if config.listen_as_original {
        tracing::info!(
            listen = %config.listen,
            "listening on all interfaces, as the original JARS did: the config file is its \
             config.json and neither --listen nor JARS_LISTEN is set"
        );
    }
    if config.icecast.username.is_none() {
        // Any process on the host (and on allowed_from) can then fake callbacks.
        tracing::warn!(
            listen = %config.listen,
            "[icecast] username/password are unset: Icecast callbacks are obeyed from any \
             process on loopback and [icecast] allowed_from (browsers' requests are refused); \
             set them, and the same in Icecast's <authentication> options"
        );
    }
    if tokens.remote().is_some() {
        start_key_refresher(tokens.clone()).await;
    }
    let identity = Arc::new(identity);
    let sessions = Arc::new(session_writer(config, &metrics, &clock).await?);
    let live = Arc::new(LiveState::new());
    let sanctions = Arc::new(Sanctions::new(
        opened.sanctions,
        live.clone(),
        store.clone(),
        identity.clone(),
        clock.clone(),
    ));
    sanctions.start().await;
    let caps = Arc::new(Caps::new(
        node_name(config),
        config.limits.max_listeners,
        opened.counts,
        live.clone(),
        clock.clone(),
        metrics.clone(),
    ));
    Caps::start(&caps);
    let placement = Arc::new(Placement::new(
        config.icecast.servers.clone(),
        config.icecast.health_interval,
        live.clone(),
        caps.clone(),
        clock.clone(),
    ));
    let hooks = Arc::new(Hooks {
        tokens: tokens.clone(),
        identity: identity.clone(),
        store: store.clone(),
        live,
        settings: ArcSwap::from_pointee(config.icecast.clone()),
        clock: clock.clone(),
        sessions: sessions.clone(),
        sanctions: sanctions.clone(),
        caps,
    });
    let icecast_admin = Arc::new(IcecastAdmin::new(
        config.icecast.servers.clone(),
        metrics.clone(),
    ));
    if config.icecast.servers.is_empty() {
        tracing::info!(
            "no [[icecast.servers]]: live state starts empty (sources and listeners already on \
             Icecast are unknown until they reconnect) and live sessions cannot be dropped"
        );
    }
    crate::icecast::admin::resync::start(&icecast_admin, &hooks);
    crate::icecast::admin::health::start(&icecast_admin, &hooks, &placement);
    if sessions.store().is_some() {
        spawn_maintenance(
            Arc::downgrade(&sessions),
            Arc::downgrade(&hooks.live),
            clock.clone(),
        );
    }
    let webcast = Arc::new(crate::webcast::Webcast::new(
        crate::webcast::Approver {
            tokens: tokens.clone(),
            identity: identity.clone(),
            store: store.clone(),
            sanctions: sanctions.clone(),
            live: hooks.live.clone(),
            clock: clock.clone(),
        },
        config.webcast.clone(),
        metrics.clone(),
    ));
    // Sanctions end a webcast show themselves (its DJ told why), then ask Icecast.
    let kicker: Arc<dyn crate::live::Kicker> = Arc::new(crate::webcast::registry::WebcastKicker {
        registry: webcast.registry.clone(),
        inner: icecast_admin.clone(),
    });
    sanctions.set_kicker(kicker.clone());
    Ok(AppState {
        hooks,
        tokens,
        identity,
        store,
        api: Arc::new(ArcSwap::from_pointee(api_settings(
            config,
            None,
            clock.now(),
        ))),
        metrics,
        signing: Arc::new(SigningSlots::per_core()),
        clock,
        sanctions,
        kicker,
        icecast_admin,
        webcast,
        placement,
    })
}

/// This node's name in the listener counts nodes share: `[limits] node_name`, else its host
/// name and listening port.
fn node_name(config: &Config) -> String {
    config
        .limits
        .node_name
        .clone()
        .unwrap_or_else(|| crate::placement::caps::default_node_name(config.listen))
}

/// The listener session writer of `config` (`[sessions]`), its table opened (PostgreSQL:
/// prepared on first contact, so a database down at start-up is not fatal).
async fn session_writer(
    config: &Config,
    metrics: &Metrics,
    clock: &SharedClock,
) -> Result<SessionWriter, SetupError> {
    if !config.sessions.enabled {
        return Ok(SessionWriter::disabled(config.sessions.clone(), metrics));
    }
    let store = crate::store::sessions::open(&config.store)
        .await
        .map_err(|e| SetupError::Runtime(e.to_string()))?;
    Ok(SessionWriter::start(
        store,
        config.sessions.clone(),
        metrics,
        clock.clone(),
    ))
}

/// Fetches a verify-only node's key set once now, then keeps it fresh in the background: every
/// `refresh`, or every `refetch_min_interval` while the node has no usable set.
async fn start_key_refresher(tokens: Arc<TokenService>) {
    let Some(remote) = tokens.remote() else {
        return;
    };
    let url = remote.url.clone();
    match tokens.refresh().await {
        Ok(()) => tracing::info!(url, "fetched the key set"),
        Err(e) => {
            tracing::error!(error = %e, "could not fetch the key set; not ready until it can")
        }
    }
    // The task holds only a weak reference, so it ends when the server's state is dropped.
    let weak = Arc::downgrade(&tokens);
    tokio::spawn(async move {
        loop {
            let Some(tokens) = weak.upgrade() else { return };
            let Some(remote) = tokens.remote() else {
                return;
            };
            let wait = if tokens.is_ready() {
                remote.refresh
            } else {
                remote.refetch_min_interval
            };
            drop(tokens);
            tokio::time::sleep(wait).await;
            let Some(tokens) = weak.upgrade() else { return };
            let _ = tokens.refresh().await;
        }
    });
}

/// The settings that differ between `running` and `new` but only take effect on a restart.
/// Compared by value: secrets (the MyRadio API key, the store URL's password) count too.
fn needs_restart(new: &Config, running: &Config) -> Vec<&'static str> {
    [
        ("listen", new.listen != running.listen),
        (
            "metrics_listen",
            new.metrics_listen != running.metrics_listen,
        ),
        ("data_dir", new.data_dir != running.data_dir),
        ("store", new.store != running.store),
        ("sessions", new.sessions != running.sessions),
        ("webcast", new.webcast != running.webcast),
        ("identity", new.identity != running.identity),
        (
            "tokens.jwks_url/public_key_url",
            new.tokens.remote != running.tokens.remote,
        ),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Re-reads the config file and applies it: token policy and key set, Icecast settings
/// (static mounts, trusted sources, callback credentials, `[[icecast.servers]]`), limits, event lifetime and the log
/// level. Everything is built first and swapped in only if all of it is valid, so a broken
/// config leaves the old one in force. Settings that need a restart (listen, data_dir, store,
/// identity backend, verify-only source) are reported and left as they are.
pub fn reload(
    state: &AppState,
    running: &Config,
    overrides: &Overrides,
    set_log_level: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Config, String> {
    let new = Config::load(overrides).map_err(|e| format!("config: {e}"))?;
    new.refuse_placeholder_secrets()
        .map_err(|e| format!("config: {e}"))?;
    let keys = local_keys(&new).map_err(|e| e.to_string())?;
    let restart_needed = needs_restart(&new, running);
    if !restart_needed.is_empty() {
        tracing::warn!(
            settings = restart_needed.join(", "),
            "changed settings need a restart; the running values stay"
        );
    }
    set_log_level(&new.log_level).map_err(|e| format!("log_level: {e}"))?;
    // From here on nothing can fail: swap everything in.
    match keys {
        Some(keys) => state.tokens.replace(keys, policy(&new)),
        None => state.tokens.replace_policy(policy(&new)),
    }
    if let Err(e) = state.identity.serve(state.tokens.can_sign()) {
        tracing::error!(error = %e, "cannot create the users file: tokens are refused until it exists");
    }
    state.hooks.settings.store(Arc::new(new.icecast.clone()));
    state.icecast_admin.set_servers(new.icecast.servers.clone());
    state
        .placement
        .set_servers(new.icecast.servers.clone(), new.icecast.health_interval);
    state.placement.caps().set_station(new.limits.max_listeners);
    let api = api_settings(&new, Some(&state.api.load()), state.clock.now());
    state.api.store(Arc::new(api));
    let signing = state
        .tokens
        .keys()
        .signing
        .as_ref()
        .map(|k| k.kid.clone())
        .unwrap_or_default();
    tracing::info!(
        signing_kid = signing,
        keys = state.tokens.keys().verifying.len(),
        "configuration reloaded"
    );
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, &Overrides::default()).unwrap()
    }

    #[test]
    fn a_changed_myradio_api_key_needs_a_restart() {
        let myradio = "[identity]\nbackend = \"myradio\"\n[identity.myradio]\n\
                       api_url = \"https://myradio.example/api\"\n";
        let running = config(&format!("{myradio}api_key = \"old-key\""));
        let new = config(&format!("{myradio}api_key = \"new-key\""));
        assert_eq!(needs_restart(&new, &running), ["identity"]);
        assert!(needs_restart(&running, &running).is_empty());
    }

    #[test]
    fn a_changed_store_password_needs_a_restart() {
        let running = config("[store]\nurl = \"postgres://jars:old@db/jars\"");
        let new = config("[store]\nurl = \"postgres://jars:new@db/jars\"");
        assert_eq!(needs_restart(&new, &running), ["store"]);
    }
}
