//! Who a user is: credentials in, member id and access level out. Two backends: the embedded
//! users file (default) and MyRadio, as the original service used.

pub mod myradio;
pub mod users_file;

use crate::config::IdentitySettings;
use std::sync::Arc;

use crate::tokens::{AccessLevel, Claims};

pub use myradio::MyRadio;
pub use users_file::UsersFile;

/// An authenticated member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub access_level: AccessLevel,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Unknown user or wrong password; callers must not learn which.
    #[error("no such user or wrong password")]
    NoUser,
    /// Known user without the standard or the admin permission.
    #[error("user has no permission")]
    NoPermission,
    /// MyRadio failed: unreachable, slow or malformed. The text is for the log only.
    #[error("identity backend failed: {0}")]
    Backend(String),
    /// The users file cannot be read or parsed. The text is for the log only.
    #[error("users file unusable: {0}")]
    UsersFile(String),
}

/// The configured identity backend.
pub enum Identity {
    UsersFile(UsersFile),
    MyRadio(MyRadio),
}

impl Identity {
    pub fn from_settings(settings: &IdentitySettings) -> Result<Identity, IdentityError> {
        Ok(match settings {
            IdentitySettings::UsersFile { path } => Identity::UsersFile(UsersFile::new(path)),
            IdentitySettings::MyRadio(m) => Identity::MyRadio(MyRadio::new(m.clone())?),
        })
    }

    /// Checks a user name and password.
    pub async fn authenticate(&self, user: &str, password: &str) -> Result<Member, IdentityError> {
        match self {
            Identity::UsersFile(f) => f.authenticate(user, password).await,
            Identity::MyRadio(m) => m.authenticate(user, password).await,
        }
    }

    /// The access level a token's member has *now*, for tokens minted earlier: with the users
    /// file, a removed user has none (`None`) and a demoted admin is a standard user at once;
    /// the level is never raised above the token's. MyRadio is not asked again, nor is a users
    /// file that does not exist: such tokens keep their level until they expire.
    pub fn current_access(&self, claims: &Claims) -> Result<Option<AccessLevel>, IdentityError> {
        match self {
            // A node without a users file (e.g. a verify-only relay) has nobody to ask: it
            // trusts tokens until they expire, as with MyRadio.
            Identity::UsersFile(f) if !f.path().exists() => Ok(Some(claims.access_level)),
            Identity::UsersFile(f) => Ok(f.member_by_id(claims.sub)?.map(|m| {
                if m.access_level == AccessLevel::Admin {
                    claims.access_level
                } else {
                    AccessLevel::Standard
                }
            })),
            Identity::MyRadio(_) => Ok(Some(claims.access_level)),
        }
    }

    /// `claims` as the identity backend stands now (see [`Identity::current_access`]):
    /// `None` if the member no longer exists.
    pub fn effective(&self, claims: Arc<Claims>) -> Result<Option<Arc<Claims>>, IdentityError> {
        Ok(match self.current_access(&claims)? {
            None => None,
            Some(level) if level == claims.access_level => Some(claims),
            Some(level) => Some(Arc::new(Claims {
                access_level: level,
                ..(*claims).clone()
            })),
        })
    }

    /// Resolves a member for operator commands (`jars token NAME`, `jars event create --owner`):
    /// a user name in the users file, or a numeric member id in MyRadio.
    pub async fn member(&self, name: &str) -> Result<Member, IdentityError> {
        match self {
            Identity::UsersFile(f) => f.member_by_name(name),
            Identity::MyRadio(m) => {
                let id: i64 = name.parse().map_err(|_| {
                    IdentityError::Backend(format!(
                        "with the myradio backend, name a member by its numeric id, not \"{name}\""
                    ))
                })?;
                m.member(id).await
            }
        }
    }
}
