//! The embedded identity backend: a TOML file of users with numeric ids and argon2id password
//! hashes, managed by `jars user …` and re-read whenever it changes on disk, so users added while
//! `jars serve` runs can log in without a restart.
//!
//! # Security
//! The file holds password hashes: it is written with mode 0600, atomically (write + rename).
//! Unknown users cost the same argon2 verification as known ones, so timing does not tell
//! whether a name exists.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::{IdentityError, Member};
use crate::tokens::AccessLevel;

/// One user as stored in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The member id, used as the token's `sub`.
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub admin: bool,
    /// PHC string of an argon2id hash.
    pub password: String,
}

impl UserRecord {
    pub fn member(&self) -> Member {
        Member {
            id: self.id,
            access_level: if self.admin {
                AccessLevel::Admin
            } else {
                AccessLevel::Standard
            },
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    #[serde(default, rename = "user")]
    users: Vec<UserRecord>,
}

/// Identifies a version of the file on disk; a change in any part means "read it again".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// The users file.
pub struct UsersFile {
    path: PathBuf,
    loaded: Mutex<Option<(Stamp, Arc<Vec<UserRecord>>)>>,
    /// Password checks running at once. Each argon2id check holds 19 MiB: unbounded, a burst of
    /// logins would take memory in proportion (measured by the soak: ~700 MiB at 32
    /// connections); bounded, the burst waits its turn.
    checks: tokio::sync::Semaphore,
}

impl UsersFile {
    pub fn new(path: &Path) -> UsersFile {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        UsersFile {
            path: path.to_path_buf(),
            loaded: Mutex::new(None),
            checks: tokio::sync::Semaphore::new(cores),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current users, re-read if the file changed since the last call. A missing file is an
    /// empty list.
    pub fn users(&self) -> Result<Arc<Vec<UserRecord>>, IdentityError> {
        let current = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::default()),
            Err(e) => return Err(self.backend_error(e)),
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, users)) = loaded.as_ref() {
            if *s == current {
                return Ok(users.clone());
            }
        }
        let users = Arc::new(self.read()?);
        *loaded = Some((current, users.clone()));
        Ok(users)
    }

    fn read(&self) -> Result<Vec<UserRecord>, IdentityError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.backend_error(e)),
        };
        let doc: Document = toml::from_str(&text).map_err(|e| {
            IdentityError::UsersFile(format!("{}: {}", self.path.display(), e.message()))
        })?;
        Ok(doc.users)
    }

    fn backend_error(&self, e: impl std::fmt::Display) -> IdentityError {
        IdentityError::UsersFile(format!("{}: {e}", self.path.display()))
    }

    fn write(&self, users: &[UserRecord]) -> Result<(), IdentityError> {
        let doc = Document {
            users: users.to_vec(),
        };
        let body = toml::to_string(&doc).map_err(|e| self.backend_error(e))?;
        let text = format!(
            "# jars users. Managed by `jars user add|passwd|remove`; hand edits are picked up \
             without a restart.\n# Passwords are argon2id hashes; `id` is the member id in tokens.\n\n{body}"
        );
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::atomic_file::create_private_dir(dir).map_err(|e| self.backend_error(e))?;
        }
        crate::atomic_file::write_atomically(&self.path, text.as_bytes(), 0o600)
            .map_err(|e| self.backend_error(e))
    }

    /// Finds a user by name, for operator commands.
    pub fn member_by_name(&self, name: &str) -> Result<Member, IdentityError> {
        self.users()?
            .iter()
            .find(|u| u.name == name)
            .map(UserRecord::member)
            .ok_or(IdentityError::NoUser)
    }

    /// The user with member id `id`, as the file says now.
    pub fn member_by_id(&self, id: i64) -> Result<Option<Member>, IdentityError> {
        Ok(self
            .users()?
            .iter()
            .find(|u| u.id == id)
            .map(UserRecord::member))
    }

    /// Checks a password; the argon2 work runs off the async runtime.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<Member, IdentityError> {
        let users = self.users()?;
        let record = users.iter().find(|u| u.name == name).cloned();
        let password = password.to_owned();
        let hash = record.as_ref().map(|r| r.password.clone());
        let _slot = self
            .checks
            .acquire()
            .await
            .map_err(|e| IdentityError::UsersFile(format!("password check: {e}")))?;
        let ok = tokio::task::spawn_blocking(move || {
            verify_password(hash.as_deref().unwrap_or_else(|| dummy_hash()), &password)
        })
        .await
        .map_err(|e| IdentityError::UsersFile(format!("password check: {e}")))?;
        match (record, ok) {
            (Some(r), true) => Ok(r.member()),
            _ => Err(IdentityError::NoUser),
        }
    }

    /// Adds a user with the next free id.
    pub fn add(
        &self,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<UserRecord, UserEditError> {
        validate_name(name)?;
        let mut users = self.read()?;
        if users.iter().any(|u| u.name == name) {
            return Err(UserEditError::Exists(name.into()));
        }
        let record = UserRecord {
            id: users.iter().map(|u| u.id).max().unwrap_or(0) + 1,
            name: name.into(),
            admin,
            password: hash_password(password)?,
        };
        users.push(record.clone());
        self.write(&users)?;
        Ok(record)
    }

    /// Replaces a user's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UserEditError> {
        let mut users = self.read()?;
        let user = users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserEditError::NotFound(name.into()))?;
        user.password = hash_password(password)?;
        Ok(self.write(&users)?)
    }

    /// Grants or withdraws the admin access level. Tokens minted before lose admin rights at
    /// once when withdrawn (see `Identity::current_access`).
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<(), UserEditError> {
        let mut users = self.read()?;
        let user = users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserEditError::NotFound(name.into()))?;
        user.admin = admin;
        Ok(self.write(&users)?)
    }

    /// Removes a user.
    pub fn remove(&self, name: &str) -> Result<UserRecord, UserEditError> {
        let mut users = self.read()?;
        let pos = users
            .iter()
            .position(|u| u.name == name)
            .ok_or_else(|| UserEditError::NotFound(name.into()))?;
        let removed = users.remove(pos);
        self.write(&users)?;
        Ok(removed)
    }
}

/// Why `jars user …` could not change the file.
#[derive(Debug, thiserror::Error)]
pub enum UserEditError {
    #[error("user \"{0}\" already exists")]
    Exists(String),
    #[error("no user named \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

fn validate_name(name: &str) -> Result<(), UserEditError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(UserEditError::Invalid(format!(
            "\"{name}\" is not a valid user name (1-64 of letters, digits, . _ - @)"
        )))
    }
}

/// Hashes a password with argon2id and the crate's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String, UserEditError> {
    if password.is_empty() {
        return Err(UserEditError::Invalid(
            "the password must not be empty".into(),
        ));
    }
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| UserEditError::Invalid(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserEditError::Invalid(e.to_string()))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password, checked against for unknown users so they cost the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn add_authenticate_edit_remove() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(&dir.path().join("users.toml"));
        let alice = file.add("alice", "pw-a", false).unwrap();
        let bob = file.add("bob", "pw-b", true).unwrap();
        assert_eq!((alice.id, bob.id), (1, 2));
        assert!(matches!(
            file.add("alice", "x", false),
            Err(UserEditError::Exists(_))
        ));
        let m = file.authenticate("bob", "pw-b").await.unwrap();
        assert_eq!(m.access_level, AccessLevel::Admin);
        assert!(matches!(
            file.authenticate("bob", "pw-a").await,
            Err(IdentityError::NoUser)
        ));
        assert!(matches!(
            file.authenticate("carol", "pw-a").await,
            Err(IdentityError::NoUser)
        ));
        file.set_password("alice", "new").unwrap();
        assert!(file.authenticate("alice", "new").await.is_ok());
        file.remove("alice").unwrap();
        assert!(file.authenticate("alice", "new").await.is_err());
        // Ids are never reused while a higher one exists.
        assert_eq!(file.add("carol", "c", false).unwrap().id, 3);
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("$argon2id$"));
        assert!(!text.contains("pw-b"));
    }

    #[tokio::test]
    async fn sees_changes_made_by_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let server = UsersFile::new(&path);
        assert!(server.authenticate("dave", "d").await.is_err());
        // Another process (the CLI) adds a user.
        UsersFile::new(&path).add("dave", "d", false).unwrap();
        assert!(server.authenticate("dave", "d").await.is_ok());
    }

    #[test]
    fn rejects_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(&dir.path().join("users.toml"));
        assert!(matches!(
            file.add("a b", "x", false),
            Err(UserEditError::Invalid(_))
        ));
        assert!(matches!(
            file.add("", "x", false),
            Err(UserEditError::Invalid(_))
        ));
    }
}
