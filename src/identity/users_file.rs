//! The embedded identity backend: a TOML file of users with numeric ids and argon2id password
//! hashes, managed by `jars user …` and re-read whenever it changes on disk, so users added while
//! `jars serve` runs can log in without a restart. In `serve`, the check every token makes
//! ([`UsersFile::user_by_id`]) looks at the file on disk at most once per [`RECHECK`] of the
//! clock handed in; logins and readiness checks always look.
//!
//! # Security
//! The file holds password hashes: it is written with mode 0600, atomically (write + rename).
//! Unknown users cost the same argon2 verification as known ones, so timing does not tell
//! whether a name exists.
//!
//! Member ids are never reused: the file keeps `next_id`, which only grows, so a new member
//! never inherits a removed one's tokens or events. Each record also says when it was
//! `created`, and tokens issued before that are refused ([`crate::rules::current_claims`]).
//! On a node that issues tokens the file is required: once [`UsersFile::require`] is called,
//! a missing file is an error, not an empty list, so deleting it cannot restore the rights of
//! removed or demoted members.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::{IdentityError, Member};
use crate::clock::SharedClock;
use crate::tokens::AccessLevel;

/// How long a look at the users file on disk is trusted by the per-request token check: a
/// removed or demoted member loses their rights within this time.
pub const RECHECK: Duration = Duration::from_secs(1);

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
    /// The Unix second the record was created; tokens issued before it are refused. Records
    /// written before jars kept it read as 0: created before any token.
    #[serde(default)]
    pub created: i64,
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
    /// The id the next added member gets; never decreased. Files written before jars kept it
    /// start at one more than the highest id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_id: Option<i64>,
    #[serde(default, rename = "user")]
    users: Vec<UserRecord>,
}

impl Document {
    /// The id the next member gets: never one in the file, nor one handed out before.
    fn next_id(&self) -> i64 {
        let above_all = self.users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
        self.next_id.unwrap_or(0).max(above_all)
    }
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

/// The users as last read, the file's stamp then, and when it was last looked at (on the
/// recheck clock; `None` without one).
struct Loaded {
    stamp: Stamp,
    users: Arc<Vec<UserRecord>>,
    looked: Option<DateTime<Utc>>,
}

/// The users file.
pub struct UsersFile {
    path: PathBuf,
    loaded: Mutex<Option<Loaded>>,
    /// The clock that times [`RECHECK`], and the interval; `None`: look on every call.
    recheck: Option<(SharedClock, Duration)>,
    /// Whether a missing file is an error ([`UsersFile::require`]) rather than no users.
    required: AtomicBool,
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
            recheck: None,
            required: AtomicBool::new(false),
            checks: tokio::sync::Semaphore::new(cores),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the file required, for a node that issues tokens: it is created empty (0600) if
    /// it does not exist yet, and from now on its absence is an error rather than "no users".
    /// The flag is set first, so a file that cannot be created fails closed.
    pub fn require(&self) -> Result<(), IdentityError> {
        self.required.store(true, Ordering::Relaxed);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::atomic_file::create_private_dir(dir).map_err(|e| self.backend_error(e))?;
        }
        // Never replaces a file another writer (`jars user add`) created meanwhile.
        crate::atomic_file::create_private_file(&self.path).map_err(|e| self.backend_error(e))
    }

    /// Whether the file must exist ([`UsersFile::require`]).
    pub fn is_required(&self) -> bool {
        self.required.load(Ordering::Relaxed)
    }

    /// Whether there is nobody to ask: the file is not required and does not exist.
    pub fn is_absent_and_optional(&self) -> bool {
        !self.is_required() && !self.path.exists()
    }

    /// Looks at the file on disk at most once per `every` on `clock` for
    /// [`UsersFile::user_by_id`] (`serve`); without, it looks on every call.
    pub fn with_recheck(mut self, clock: SharedClock, every: Duration) -> UsersFile {
        self.recheck = Some((clock, every));
        self
    }

    /// The current users, re-read if the file changed since the last look. A missing file is an
    /// empty list, unless it is required. Looks at the file on disk every time.
    pub fn users(&self) -> Result<Arc<Vec<UserRecord>>, IdentityError> {
        self.look(None)
    }

    /// [`UsersFile::users`], but what was read within the recheck interval is answered
    /// without looking at the disk.
    fn recent_users(&self) -> Result<Arc<Vec<UserRecord>>, IdentityError> {
        let Some((clock, every)) = &self.recheck else {
            return self.look(None);
        };
        let now = clock.now();
        {
            let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = loaded.as_ref() {
                let fresh = l.looked.is_some_and(|at| {
                    // A clock set back makes it stale, not fresh for longer.
                    at <= now && (now - at).to_std().is_ok_and(|age| age < *every)
                });
                if fresh {
                    return Ok(l.users.clone());
                }
            }
        }
        self.look(Some(now))
    }

    /// Looks at the file on disk (re-reading it if it changed), at `now` on the recheck clock.
    fn look(&self, now: Option<DateTime<Utc>>) -> Result<Arc<Vec<UserRecord>>, IdentityError> {
        let now = now.or_else(|| self.recheck.as_ref().map(|(clock, _)| clock.now()));
        let current = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.is_required() => {
                return Ok(Arc::default())
            }
            Err(e) => return Err(self.backend_error(e)),
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = loaded.as_mut().filter(|l| l.stamp == current) {
            l.looked = now;
            return Ok(l.users.clone());
        }
        let users = Arc::new(self.read()?.users);
        *loaded = Some(Loaded {
            stamp: current,
            users: users.clone(),
            looked: now,
        });
        Ok(users)
    }

    /// The file as it is on disk, with `next_id` filled in; a missing file is an empty one
    /// (`jars user add` on a fresh data directory creates it).
    fn read(&self) -> Result<Document, IdentityError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(self.backend_error(e)),
        };
        let mut doc: Document = toml::from_str(&text).map_err(|e| {
            let at = e.span().map_or_else(String::new, |s| {
                let (line, column) = line_column(&text, s.start);
                format!(":{line}:{column}")
            });
            IdentityError::UsersFileSyntax(format!(
                "{}{at}: {}",
                self.path.display(),
                // One line, as every other CLI error and log field.
                e.message().trim_end().replace('\n', "; ")
            ))
        })?;
        // Written back on the next change, so removing the highest id cannot lower it.
        doc.next_id = Some(doc.next_id());
        Ok(doc)
    }

    fn backend_error(&self, e: impl std::fmt::Display) -> IdentityError {
        IdentityError::UsersFile(format!("{}: {e}", self.path.display()))
    }

    fn write(&self, doc: &Document) -> Result<(), IdentityError> {
        let body = toml::to_string(doc).map_err(|e| self.backend_error(e))?;
        let text = format!(
            "# jars users. Managed by `jars user add|passwd|remove`; hand edits are picked up \
             without a restart.\n# Passwords are argon2id hashes; `id` is the member id in tokens, never \
             reused:\n# `next_id` only grows. `created` is a Unix time: older tokens are refused.\n\n{body}"
        );
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::atomic_file::create_private_dir(dir).map_err(|e| self.backend_error(e))?;
        }
        let written = crate::atomic_file::write_atomically(&self.path, text.as_bytes(), 0o600)
            .map_err(|e| self.backend_error(e));
        // This process's own change is seen at once.
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = None;
        written
    }

    /// Finds a user by name, for operator commands.
    pub fn member_by_name(&self, name: &str) -> Result<Member, IdentityError> {
        self.users()?
            .iter()
            .find(|u| u.name == name)
            .map(UserRecord::member)
            .ok_or(IdentityError::NoUser)
    }

    /// The user with member id `id`, as the file says now (with a recheck clock: as it said at
    /// most [`RECHECK`] ago).
    pub fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>, IdentityError> {
        Ok(self.recent_users()?.iter().find(|u| u.id == id).cloned())
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

    /// Adds a user with an id no member ever had, created at Unix second `created` (now, on
    /// the clock that stamps tokens' `iat`).
    pub fn add(
        &self,
        name: &str,
        password: &str,
        admin: bool,
        created: i64,
    ) -> Result<UserRecord, UserEditError> {
        validate_name(name)?;
        let mut doc = self.read()?;
        if doc.users.iter().any(|u| u.name == name) {
            return Err(UserEditError::Exists(name.into()));
        }
        let id = doc.next_id();
        let record = UserRecord {
            id,
            name: name.into(),
            admin,
            password: hash_password(password)?,
            created,
        };
        doc.users.push(record.clone());
        doc.next_id = Some(id + 1);
        self.write(&doc)?;
        Ok(record)
    }

    /// Replaces a user's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UserEditError> {
        let mut doc = self.read()?;
        let user = doc
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserEditError::NotFound(name.into()))?;
        user.password = hash_password(password)?;
        Ok(self.write(&doc)?)
    }

    /// Grants or withdraws the admin access level. Tokens minted before lose admin rights at
    /// once when withdrawn (see `Identity::current_access`).
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<(), UserEditError> {
        let mut doc = self.read()?;
        let user = doc
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserEditError::NotFound(name.into()))?;
        user.admin = admin;
        Ok(self.write(&doc)?)
    }

    /// Removes a user.
    pub fn remove(&self, name: &str) -> Result<UserRecord, UserEditError> {
        let mut doc = self.read()?;
        let pos = doc
            .users
            .iter()
            .position(|u| u.name == name)
            .ok_or_else(|| UserEditError::NotFound(name.into()))?;
        let removed = doc.users.remove(pos);
        self.write(&doc)?;
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

/// The 1-based line and column (in characters) of byte `offset` in `text`, as editors count.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
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
        let alice = file.add("alice", "pw-a", false, 0).unwrap();
        let bob = file.add("bob", "pw-b", true, 0).unwrap();
        assert_eq!((alice.id, bob.id), (1, 2));
        assert!(matches!(
            file.add("alice", "x", false, 0),
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
        assert_eq!(file.add("carol", "c", false, 0).unwrap().id, 3);
        // Nor once the highest is gone.
        file.remove("carol").unwrap();
        assert_eq!(file.add("dave", "d", false, 0).unwrap().id, 4);
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
        UsersFile::new(&path).add("dave", "d", false, 0).unwrap();
        assert!(server.authenticate("dave", "d").await.is_ok());
    }

    #[test]
    fn the_token_check_looks_at_the_disk_at_most_once_per_recheck() {
        use crate::clock::Clock;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let clock = crate::clock::ManualClock::starting_now();
        let server = UsersFile::new(&path).with_recheck(clock.clone(), RECHECK);
        let cli = UsersFile::new(&path);
        let dave = cli.add("dave", "d", false, 0).unwrap().id;
        assert!(server.user_by_id(dave).unwrap().is_some());

        // Another process removes dave: within the interval the disk is not looked at.
        cli.remove("dave").unwrap();
        clock.advance(RECHECK - Duration::from_millis(1));
        assert!(
            server.user_by_id(dave).unwrap().is_some(),
            "the last look stands"
        );
        // Once the interval has passed, the removal takes effect.
        clock.advance(Duration::from_millis(1));
        assert!(server.user_by_id(dave).unwrap().is_none(), "removed");

        // A login always looks, and so the check after it sees what it saw.
        let erin = cli.add("erin", "e", false, 0).unwrap().id;
        assert!(server.users().unwrap().iter().any(|u| u.id == erin));
        assert!(server.user_by_id(erin).unwrap().is_some());
        // This process's own change is seen at once.
        server.remove("erin").unwrap();
        assert!(server.user_by_id(erin).unwrap().is_none());
        // A clock set back does not make the last look fresh for longer.
        let fred = cli.add("fred", "f", false, 0).unwrap().id;
        clock.set(clock.now() - chrono::Duration::seconds(30));
        assert!(server.user_by_id(fred).unwrap().is_some());
    }

    #[test]
    fn a_file_that_does_not_parse_names_the_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(&dir.path().join("users.toml"));
        std::fs::write(file.path(), "next_id = 2\n[[user]]\nid = = 1\n").unwrap();
        let err = file.users().unwrap_err();
        assert!(matches!(err, IdentityError::UsersFileSyntax(_)), "{err}");
        let at = format!("{}:3:6:", file.path().display());
        assert!(err.to_string().contains(&at), "{at} not in {err}");
        assert_eq!(line_column("ab\nçd", 5), (2, 2), "columns count characters");
    }

    #[test]
    fn rejects_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(&dir.path().join("users.toml"));
        assert!(matches!(
            file.add("a b", "x", false, 0),
            Err(UserEditError::Invalid(_))
        ));
        assert!(matches!(
            file.add("", "x", false, 0),
            Err(UserEditError::Invalid(_))
        ));
    }

    #[test]
    fn a_file_without_next_id_continues_above_its_highest_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(&dir.path().join("users.toml"));
        let hash = hash_password("pw").unwrap();
        let legacy = format!(
            "[[user]]\nid = 3\nname = \"a\"\npassword = \"{hash}\"\n\n\
             [[user]]\nid = 7\nname = \"b\"\npassword = \"{hash}\"\n"
        );
        std::fs::write(file.path(), legacy).unwrap();
        assert_eq!(file.user_by_id(7).unwrap().unwrap().created, 0);
        // Removing the highest id writes the counter, so 7 is not handed out again.
        file.remove("b").unwrap();
        assert!(std::fs::read_to_string(file.path())
            .unwrap()
            .contains("next_id = 8"));
        let c = file.add("c", "pw", false, 1234).unwrap();
        assert_eq!((c.id, c.created), (8, 1234));
        assert_eq!(file.user_by_id(8).unwrap().unwrap().created, 1234);
    }

    #[test]
    fn a_required_file_that_disappears_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("users.toml");
        let optional = UsersFile::new(&path);
        assert!(optional.users().unwrap().is_empty(), "optional: no users");
        assert!(optional.is_absent_and_optional());
        let required = UsersFile::new(&path);
        required.require().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "created private");
        assert!(required.users().unwrap().is_empty(), "created empty");
        // `require` never replaces a file that exists.
        required.add("a", "pw", false, 0).unwrap();
        required.require().unwrap();
        assert_eq!(required.users().unwrap().len(), 1);
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(required.users(), Err(IdentityError::UsersFile(_))));
        assert!(!required.is_absent_and_optional());
    }
}
