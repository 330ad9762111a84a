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
    /// The users file is there but is not valid: `PATH:LINE:COLUMN: what is wrong`. The text
    /// is for the log and the operator's terminal only.
    #[error("users file does not parse: {0}")]
    UsersFileSyntax(String),
}

/// Why a member's token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The token itself was refused.
    #[error("token refused: {0}")]
    Token(TokenError),
    /// A valid token of a member who has since been removed, or issued before the member's
    /// record was created.
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

    /// In `serve`: the per-token check looks at a users file on disk at most once per
    /// [`users_file::RECHECK`] of `clock`.
    pub fn recheck_on(self, clock: crate::clock::SharedClock) -> Identity {
        match self {
            Identity::UsersFile(f) => {
                Identity::UsersFile(f.with_recheck(clock, users_file::RECHECK))
            }
            other => other,
        }
    }

    /// Checks a user name and password.
    pub async fn authenticate(&self, user: &str, password: &str) -> Result<Member, IdentityError> {
        match self {
            Identity::UsersFile(f) => f.authenticate(user, password).await,
            Identity::MyRadio(m) => m.authenticate(user, password).await,
        }
    }

    /// How long a login may wait on the backend, when it is a remote service (MyRadio).
    pub fn login_timeout(&self) -> Option<std::time::Duration> {
        match self {
            Identity::UsersFile(_) => None,
            Identity::MyRadio(m) => Some(m.timeout()),
        }
    }

    /// Prepares the backend to serve on a node that issues tokens (`issuing`) or only verifies
    /// them. An issuing node's users file is the record of who still has rights: it is created
    /// empty if it does not exist yet and required from then on ([`UsersFile::require`]).
    pub fn serve(&self, issuing: bool) -> Result<(), IdentityError> {
        match self {
            Identity::UsersFile(f) if issuing => f.require(),
            _ => Ok(()),
        }
    }

    /// What the backend says now of member `id` ([`rules::Standing`]), for tokens minted
    /// earlier. The users file is asked; MyRadio is not asked again, nor is an optional users
    /// file that does not exist (a verify-only relay has nobody to ask): such tokens keep
    /// their level until they expire. A required file that is gone is an error.
    pub fn standing(&self, id: i64) -> Result<rules::Standing, IdentityError> {
        match self {
            Identity::UsersFile(f) if f.is_absent_and_optional() => Ok(rules::Standing::Unasked),
            Identity::UsersFile(f) => Ok(f.user_by_id(id)?.map_or(rules::Standing::Removed, |u| {
                rules::Standing::Present {
                    access_level: u.member().access_level,
                    created: u.created,
                }
            })),
            Identity::MyRadio(_) => Ok(rules::Standing::Unasked),
        }
    }

    /// Whether the backend can answer [`Identity::standing`]: the users file, when it is
    /// required or exists, must be readable. MyRadio is not asked (it is asked per login).
    pub fn check(&self) -> Result<(), IdentityError> {
        match self {
            Identity::UsersFile(f) if f.is_absent_and_optional() => Ok(()),
            Identity::UsersFile(f) => f.users().map(drop),
            Identity::MyRadio(_) => Ok(()),
        }
    }

    /// Member `id`'s user name, where the backend keeps names (the users file; MyRadio is not
    /// asked). Only shown, never decided on: `None` when unknown or unreadable.
    pub fn name_of(&self, id: i64) -> Option<String> {
        match self {
            Identity::UsersFile(f) => f.user_by_id(id).ok().flatten().map(|u| u.name),
            Identity::MyRadio(_) => None,
        }
    }

    /// `claims` with the member's current rights ([`rules::current_claims`]).
    pub fn current(&self, claims: Arc<Claims>) -> Result<Arc<Claims>, MemberError> {
        let standing = self.standing(claims.sub).map_err(MemberError::Identity)?;
        rules::current_claims(claims, standing).ok_or(MemberError::Removed)
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
