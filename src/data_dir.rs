//! What the commands need of the data directory besides its files: its absolute path for
//! messages, and the checks that a read-only command reads an existing one (and its users file,
//! store and key pair) instead of quietly creating a new, empty one beside the working directory;
//! and the lock that keeps a second `serve` off a data directory in use.

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

/// The file in the data directory whose lock one `serve` holds for its whole life.
pub const LOCK_FILE: &str = "jars.lock";

/// An exclusive lock on a data directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Whether `serve` keeps anything in `config`'s data directory: the generated key pair, the
/// SQLite store or the users file. A verify-only node on PostgreSQL and MyRadio does not.
pub fn used_by_serve(config: &Config) -> bool {
    let t = &config.tokens;
    let inside = |p: &Path| p.starts_with(&config.data_dir);
    let local_keys = t.private_key.is_none() && t.public_key.is_none() && t.remote.is_none();
    let sqlite = matches!(&config.store, StoreSettings::Sqlite { path } if inside(path));
    local_keys || sqlite || config.users_file().is_some_and(inside)
}

/// Creates `data_dir` (mode 0700) if needed and takes its exclusive lock, so two `serve`s never
/// share one SQLite store and users file. The holder writes its pid into the lock file, so the
/// refusal can say who holds it.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, String> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = absolute(data_dir);
    crate::atomic_file::create_private_dir(data_dir)
        .map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let io_err = |e: std::io::Error| format!("lock file {}: {e}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    use rustix::fs::{flock, FlockOperation};
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            return Err(format!(
                "data directory {} is in use by another jars serve{holder}; stop it, or give \
                 this one its own --data-dir",
                dir.display()
            ));
        }
        Err(e) => return Err(io_err(e.into())),
    }
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    writeln!(file, "{}", std::process::id()).map_err(io_err)?;
    Ok(DataDirLock { _file: file })
}
