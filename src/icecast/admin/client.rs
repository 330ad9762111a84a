//! HTTP calls to one Icecast 2.4 admin API (Basic auth, bounded timeouts): `listmounts`,
//! `listclients`, `killclient`, `killsource`. Errors never carry the admin password.

use std::time::Duration;

use super::xml::{self, ListedClient, ListedMount, ListenerStream};
use crate::config::IcecastServer;

/// How long one admin request may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Icecast's answers other than `listclients` are a few kilobytes; a larger one is not read
/// beyond this, whatever its framing.
pub const MAX_BODY: usize = 4 << 20;
/// How long a whole `listclients` answer may take to read: a large audience is megabytes.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

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
    #[error("more than {0} listeners listed: raise max_listeners of this server")]
    TooManyListeners(u32),
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    /// The answer was longer than [`MAX_BODY`] (or could not be read whole).
    #[error("answer unread: {0}")]
    Body(#[from] crate::upstream::ReadError),
}

fn unreachable(e: reqwest::Error) -> AdminError {
    AdminError::Unreachable(e.without_url().to_string())
}

/// Connections kept open to one Icecast: as many as kicks run at once there.
pub const CONNECTIONS_PER_SERVER: usize = 16;

/// The HTTP client all admin requests share: keep-alive, at most
/// [`CONNECTIONS_PER_SERVER`] idle connections kept per server. Each request is bounded by
/// [`REQUEST_TIMEOUT`], but for `listclients`, bounded as a whole by its own timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .read_timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(CONNECTIONS_PER_SERVER)
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
    /// GETs `/admin/<page>` with `query`.
    async fn request(
        &self,
        page: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, AdminError> {
        let base = self.server.admin_url.trim_end_matches('/');
        let resp = self
            .http
            .get(format!("{base}/admin/{page}"))
            .query(query)
            .basic_auth(&self.server.admin_user, Some(&self.server.admin_password))
            .send()
            .await
            .map_err(unreachable)?;
        match resp.status().as_u16() {
            status @ (401 | 403) => Err(AdminError::Refused(status)),
            _ => Ok(resp),
        }
    }

    /// GETs `/admin/<page>` with `query`; the status and the body, read up to [`MAX_BODY`]
    /// whatever the framing, all within [`REQUEST_TIMEOUT`].
    async fn get(&self, page: &str, query: &[(&str, &str)]) -> Result<(u16, String), AdminError> {
        let whole = async { read_body(self.request(page, query).await?).await };
        tokio::time::timeout(REQUEST_TIMEOUT, whole)
            .await
            .map_err(|_| AdminError::Unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }

    /// The mounts that have a source.
    pub async fn list_mounts(&self) -> Result<Vec<ListedMount>, AdminError> {
        match self.get("listmounts", &[]).await? {
            (200, body) => Ok(xml::list_mounts(&body)?),
            (status, _) => Err(AdminError::Status(status)),
        }
    }

    /// The listeners of `mount`, read as they arrive (see [`ListenerStream`]); at most
    /// `max_listeners` of them, else an error. `None` when the mount has no source any more.
    pub async fn list_clients(
        &self,
        mount: &str,
        max_listeners: u32,
    ) -> Result<Option<Vec<ListedClient>>, AdminError> {
        let read = async {
            let mut resp = self.request("listclients", &[("mount", mount)]).await?;
            match resp.status().as_u16() {
                200 => {}
                400 => {
                    let (_, body) = read_body(resp).await?;
                    return if no_source(&body) {
                        Ok(None)
                    } else {
                        Err(AdminError::Status(400))
                    };
                }
                status => return Err(AdminError::Status(status)),
            }
            let mut stream = ListenerStream::default();
            let mut listed = Vec::new();
            // A chunk may end inside a character: keep its start for the next one.
            let mut carry = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
                carry.extend_from_slice(&chunk);
                let valid = match std::str::from_utf8(&carry) {
                    Ok(text) => text.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => return Err(xml::XmlError("not UTF-8").into()),
                };
                let text = std::str::from_utf8(&carry[..valid]).expect("checked above");
                listed.extend(stream.push(text)?);
                carry.drain(..valid);
                if listed.len() > max_listeners as usize {
                    return Err(AdminError::TooManyListeners(max_listeners));
                }
            }
            stream.finish()?;
            Ok(Some(listed))
        };
        tokio::time::timeout(LIST_TIMEOUT, read)
            .await
            .map_err(|_| AdminError::Unreachable("listclients took too long".into()))?
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

/// `resp`'s status and body, read up to [`MAX_BODY`] whatever the framing.
async fn read_body(resp: reqwest::Response) -> Result<(u16, String), AdminError> {
    let status = resp.status().as_u16();
    // Bounded while streaming: `Content-Length` alone says nothing of a chunked answer.
    let body = crate::upstream::read_limited_text(resp, MAX_BODY).await?;
    Ok((status, body))
}

/// Icecast 2.4.4's 400 page for a mount without a running source: "Source does not exist",
/// or "Source is not available" while it is going away.
fn no_source(body: &str) -> bool {
    body.contains("Source does not exist") || body.contains("Source is not available")
}
