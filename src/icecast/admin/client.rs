//! HTTP calls to one Icecast 2.4 admin API (Basic auth, bounded timeouts): `listmounts`,
//! `listclients`, `killclient`, `killsource`. Errors never carry the admin password.

use std::time::Duration;

use super::xml::{self, ListedClient, ListedMount};
use crate::config::IcecastServer;

/// How long one admin request may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Icecast's answers are a few kilobytes; a larger one is not read beyond this, whatever its
/// framing.
pub const MAX_BODY: usize = 4 << 20;

/// What a kill request achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// Icecast dropped it.
    Dropped,
    /// Icecast has no such client or source (already gone).
    Gone,
}

/// Why an admin request failed. Display is fit for logs: no credentials.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("admin credentials refused (HTTP {0})")]
    Refused(u16),
    #[error("unexpected answer: HTTP {0}")]
    Status(u16),
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    /// The answer was longer than [`MAX_BODY`] (or could not be read whole).
    #[error("answer unread: {0}")]
    Body(#[from] crate::upstream::ReadError),
}

/// The HTTP client all admin requests share.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jars/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain HTTP client builds")
}

/// One admin API, as one `[[icecast.servers]]` entry describes it.
pub struct AdminApi<'a> {
    pub http: &'a reqwest::Client,
    pub server: &'a IcecastServer,
}

impl AdminApi<'_> {
    /// GETs `/admin/<page>` with `query`; the status and the body.
    async fn get(&self, page: &str, query: &[(&str, &str)]) -> Result<(u16, String), AdminError> {
        let base = self.server.admin_url.trim_end_matches('/');
        let resp = self
            .http
            .get(format!("{base}/admin/{page}"))
            .query(query)
            .basic_auth(&self.server.admin_user, Some(&self.server.admin_password))
            .send()
            .await
            .map_err(|e| AdminError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(AdminError::Refused(status));
        }
        // Bounded while streaming: `Content-Length` alone says nothing of a chunked answer.
        let body = crate::upstream::read_limited_text(resp, MAX_BODY).await?;
        Ok((status, body))
    }

    /// The mounts that have a source.
    pub async fn list_mounts(&self) -> Result<Vec<ListedMount>, AdminError> {
        match self.get("listmounts", &[]).await? {
            (200, body) => Ok(xml::list_mounts(&body)?),
            (status, _) => Err(AdminError::Status(status)),
        }
    }

    /// The listeners of `mount`; `None` when the mount has no source any more.
    pub async fn list_clients(&self, mount: &str) -> Result<Option<Vec<ListedClient>>, AdminError> {
        match self.get("listclients", &[("mount", mount)]).await? {
            (200, body) => Ok(Some(xml::list_clients(&body)?)),
            (400, body) if no_source(&body) => Ok(None),
            (status, _) => Err(AdminError::Status(status)),
        }
    }

    /// Drops listener `id` of `mount`.
    pub async fn kill_client(&self, mount: &str, id: &str) -> Result<KillOutcome, AdminError> {
        self.kill(
            self.get("killclient", &[("mount", mount), ("id", id)])
                .await?,
        )
    }

    /// Drops the source of `mount`.
    pub async fn kill_source(&self, mount: &str) -> Result<KillOutcome, AdminError> {
        self.kill(self.get("killsource", &[("mount", mount)]).await?)
    }

    fn kill(&self, (status, body): (u16, String)) -> Result<KillOutcome, AdminError> {
        match status {
            200 if xml::ice_response(&body)? => Ok(KillOutcome::Dropped),
            // "Client 9 not found".
            200 => Ok(KillOutcome::Gone),
            400 if no_source(&body) => Ok(KillOutcome::Gone),
            status => Err(AdminError::Status(status)),
        }
    }
}

/// Icecast 2.4.4's 400 page for a mount without a running source: "Source does not exist",
/// or "Source is not available" while it is going away.
fn no_source(body: &str) -> bool {
    body.contains("Source does not exist") || body.contains("Source is not available")
}
