//! A verify-only node's keys: fetched over HTTP from another issuer, as a JWKS document or a
//! PEM public key, read up to [`MAX_KEY_SET_BYTES`].

use std::time::Duration;

use super::{invalid, KeyError, KeySet};

/// The longest key set answer read: a JWKS of a few RSA keys is a few KiB.
pub const MAX_KEY_SET_BYTES: usize = 1 << 20;

/// Where a verify-only node gets its keys: a JWKS document (another jars'
/// `/jars/jwks.json`) or a PEM public key (such as the original's `/jars/pubkey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFormat {
    Jwks,
    Pem,
}

/// A remote key set and how it is kept fresh.
pub struct RemoteKeySource {
    pub url: String,
    pub format: RemoteFormat,
    /// Background refresh period.
    pub refresh: Duration,
    /// Unknown-`kid` refetches happen at most this often.
    pub refetch_min_interval: Duration,
    /// Past this age without a successful fetch, verification fails closed.
    pub max_stale: Duration,
    http: reqwest::Client,
}

impl RemoteKeySource {
    pub fn new(
        url: String,
        format: RemoteFormat,
        refresh: Duration,
        refetch_min_interval: Duration,
        max_stale: Duration,
    ) -> Result<RemoteKeySource, KeyError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("jars/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| invalid("key set client", e))?;
        Ok(RemoteKeySource {
            url,
            format,
            refresh,
            refetch_min_interval,
            max_stale,
            http,
        })
    }

    /// Fetches and parses the key set.
    pub async fn fetch(&self) -> Result<KeySet, KeyError> {
        let fail = |why: String| invalid(&self.url, why);
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| fail(e.without_url().to_string()))?;
        // Bounded while streaming: a chunked answer carries no length to check first.
        let body = crate::upstream::read_limited(resp, MAX_KEY_SET_BYTES)
            .await
            .map_err(|e| fail(e.to_string()))?;
        match self.format {
            RemoteFormat::Jwks => {
                let doc: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
                KeySet::from_jwks(&doc)
            }
            RemoteFormat::Pem => {
                let pem = std::str::from_utf8(&body).map_err(|e| fail(e.to_string()))?;
                KeySet::from_public_pem(pem)
            }
        }
    }
}
