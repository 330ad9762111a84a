//! What the commands need of the data directory besides its files: its absolute path for
//! messages, and the checks that a read-only command reads an existing one (and its users file,
//! store and key pair) instead of quietly creating a new, empty one beside the working directory.

use std::path::{Path, PathBuf};

use crate::config::{Config, StoreSettings};

/// `path` made absolute against the working directory (not resolving symlinks), so a message
/// says which directory a relative `./jars-data` meant; `path` itself if that fails.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `Ok` if `path` (the `what` of a read-only command) exists; else a message naming its
/// absolute path, the likely causes and the command (`maker`) that creates it.
pub fn require_existing(path: &Path, what: &str, maker: &str) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    Err(format!(
        "{what} {} does not exist: wrong --data-dir (JARS_DATA_DIR), --config or working \
         directory? ({maker} creates it)",
        absolute(path).display()
    ))
}

/// `path`, which a read-only command reads, must exist: run from the wrong directory it would
/// otherwise read (or create) an empty store or users file. Names the data directory itself
/// when that is what is missing.
fn must_exist(config: &Config, path: &Path, what: &str, maker: &str) -> Result<(), String> {
    let (path, what, maker) = if path.starts_with(&config.data_dir) && !config.data_dir.exists() {
        (config.data_dir.as_path(), "data directory", "`jars serve`")
    } else {
        (path, what, maker)
    };
    require_existing(path, what, maker)
}

/// The users file a read-only command reads (users-file backend only).
pub fn existing_users_file(config: &Config) -> Result<(), String> {
    match config.users_file() {
        Some(path) => must_exist(
            config,
            path,
            "users file",
            "`jars serve` or `jars user add`",
        ),
        None => Ok(()),
    }
}

/// The SQLite store a read-only command reads (PostgreSQL is not in the data directory).
pub fn existing_store(config: &Config) -> Result<(), String> {
    match &config.store {
        StoreSettings::Sqlite { path } => must_exist(config, path, "event store", "`jars serve`"),
        StoreSettings::Postgres(_) => Ok(()),
    }
}

/// The key pair jars generates in the data directory (`token` and `ticket` must not make one).
pub fn existing_signing_key(config: &Config) -> Result<(), String> {
    let t = &config.tokens;
    if t.private_key.is_some() || t.public_key.is_some() || t.remote.is_some() {
        return Ok(());
    }
    let key = config.data_dir.join(crate::keys::PRIVATE_KEY_FILE);
    must_exist(config, &key, "signing key", "`jars keygen` or `jars serve`")
}
