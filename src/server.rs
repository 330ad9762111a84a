//! Turns a validated [`Config`] into a running server: keys, identity backend and store are
//! loaded before the listener is bound, so a bad setup fails without ever accepting a request.

use std::sync::Arc;

use crate::config::Config;
use crate::hooks::Hooks;
use crate::http::AppState;
use crate::identity::Identity;
use crate::keys::{KeyOrigin, KeySet};
use crate::limits::RateLimiter;
use crate::live::LiveState;
use crate::store::cache::CachedStore;
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

/// The token service for `config`, generating the key pair on first start.
pub fn token_service(config: &Config) -> Result<TokenService, SetupError> {
    if config.tokens.private_key.is_none() && config.tokens.public_key.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
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
    Ok(TokenService::new(
        keys,
        TokenPolicy {
            issuer: config.tokens.issuer.clone(),
            audience: config.tokens.audience.clone(),
            leeway: config.tokens.leeway,
            lifetime: config.tokens.lifetime,
        },
    ))
}

/// Builds the shared state for `config`.
pub async fn app_state(config: &Config) -> Result<AppState, SetupError> {
    let tokens = token_service(config)?;
    let identity = Identity::from_settings(&config.identity)
        .map_err(|e| SetupError::Config(format!("identity: {e}")))?;
    // PostgreSQL being down at start-up is not fatal: the store recovers by itself, and Icecast
    // decisions it cannot make are denied meanwhile.
    let store = crate::store::open_for_serve(&config.store)
        .await
        .map_err(|e| SetupError::Runtime(e.to_string()))?;
    let store: Arc<dyn crate::store::EventStore> = Arc::new(CachedStore::new(
        store,
        config.store_cache.ttl,
        config.store_cache.negative_ttl,
    ));
    let tokens = Arc::new(tokens);
    if config.icecast.username.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "[icecast] username/password are unset and jars listens beyond loopback: \
             anybody who reaches it can send Icecast callbacks"
        );
    }
    let hooks = Arc::new(Hooks {
        tokens: tokens.clone(),
        store: store.clone(),
        live: Arc::new(LiveState::new()),
        settings: Arc::new(config.icecast.clone()),
    });
    Ok(AppState {
        hooks,
        tokens,
        identity: Arc::new(identity),
        store,
        event_lifetime: config.events.lifetime,
        token_limiter: Arc::new(RateLimiter::new(
            config.limits.token_per_minute,
            config.limits.token_burst,
        )),
    })
}
