//! Who a user is: credentials in, member id and access level out. Two backends: the embedded
//! users file (default) and MyRadio, as the original service used.

pub mod myradio;
pub mod users_file;

use crate::config::IdentitySettings;
use std::sync::Arc;

use crate::rules;
use crate::tokens::{AccessLevel, Claims, TokenError, TokenService};

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

/// Why a member's token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The token itself was refused.
    #[error("token refused: {0}")]
    Token(TokenError),
    /// A valid token of a member who has since been removed.
    #[error("member removed")]
    Removed,
    /// The identity backend could not say whether the member still exists.
    #[error(transparent)]
    Identity(IdentityError),
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

    /// The access level a token's member has *now*, for tokens minted earlier (`None`: the
    /// member was removed). With the users file, the file is asked; MyRadio is not asked
    /// again, nor is a users file that does not exist: such tokens keep their level until
    /// they expire.
    pub fn current_access(&self, claims: &Claims) -> Result<Option<AccessLevel>, IdentityError> {
        match self {
            // A node without a users file (e.g. a verify-only relay) has nobody to ask: it
            // trusts tokens until they expire, as with MyRadio.
            Identity::UsersFile(f) if !f.path().exists() => Ok(Some(claims.access_level)),
            Identity::UsersFile(f) => Ok(f.member_by_id(claims.sub)?.map(|m| m.access_level)),
            Identity::MyRadio(_) => Ok(Some(claims.access_level)),
        }
    }

    /// `claims` with the member's current rights ([`rules::current_claims`]).
    pub fn current(&self, claims: Arc<Claims>) -> Result<Arc<Claims>, MemberError> {
        let level = self
            .current_access(&claims)
            .map_err(MemberError::Identity)?;
        rules::current_claims(claims, level).ok_or(MemberError::Removed)
    }

    /// Verifies a member's user token and applies the member's current rights: the one way
    /// every caller (API, Icecast hooks) turns a token into a member.
    pub async fn verify_member(
        &self,
        tokens: &TokenService,
        token: &str,
    ) -> Result<Arc<Claims>, MemberError> {
        let claims = tokens.verify(token).await.map_err(MemberError::Token)?;
        self.current(claims)
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
