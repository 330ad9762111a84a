//! The MyRadio identity backend, as the original service used it:
//! `POST {api_url}/auth/testcredentials?api_key=…` (form `user`, `pass`) → `payload.memberid` or
//! `false`, then `GET {api_url}/user/{id}/permissions?api_key=…` → `payload`, a list of ints.
//!
//! # Security
//! The API key travels in the query string, as MyRadio requires; it is never logged (errors are
//! reported without the URL). Answers are read up to [`MAX_ANSWER_BYTES`], whatever their
//! framing ([`crate::upstream`]).

use std::time::Duration;

use serde::Deserialize;

use super::{IdentityError, Member};
use crate::config::MyRadioSettings;
use crate::tokens::AccessLevel;

/// The longest MyRadio answer read (its answers are a few hundred bytes); a longer one, in
/// whatever framing, is a backend failure.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

pub struct MyRadio {
    settings: MyRadioSettings,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Envelope<T> {
    payload: T,
}

/// `payload` of testcredentials: a member object, or `false`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Credentials {
    Member { memberid: i64 },
    Rejected(bool),
}

fn failure(what: &str, e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Backend(format!("MyRadio {what}: {e}"))
}

/// reqwest errors carry the URL, which carries the API key: report only the kind of failure.
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "malformed response"
    } else if e.is_status() {
        "error status"
    } else {
        "request failed"
    }
}

impl MyRadio {
    pub fn new(settings: MyRadioSettings) -> Result<MyRadio, IdentityError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("JARS/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| failure("client", describe(&e)))?;
        Ok(MyRadio { settings, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.settings.api_url, path)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, IdentityError> {
        let resp = req
            .query(&[("api_key", self.settings.api_key.as_str())])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| failure(what, describe(&e)))?;
        let bytes = crate::upstream::read_limited(resp, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e.transport() {
                Some(t) => failure(what, describe(t)),
                None => failure(what, e),
            })?;
        serde_json::from_slice::<Envelope<T>>(&bytes)
            .map(|e| e.payload)
            .map_err(|e| failure(what, format!("malformed response ({e})")))
    }

    pub async fn authenticate(&self, user: &str, password: &str) -> Result<Member, IdentityError> {
        let req = self
            .http
            .post(self.url("/auth/testcredentials"))
            .form(&[("user", user), ("pass", password)]);
        match self.get_json::<Credentials>("testcredentials", req).await? {
            Credentials::Member { memberid } => self.member(memberid).await,
            Credentials::Rejected(false) => Err(IdentityError::NoUser),
            Credentials::Rejected(true) => Err(failure("testcredentials", "payload was `true`")),
        }
    }

    /// The member's access level from their MyRadio permissions.
    pub async fn member(&self, id: i64) -> Result<Member, IdentityError> {
        let req = self.http.get(self.url(&format!("/user/{id}/permissions")));
        let permissions: Vec<i64> = self.get_json("permissions", req).await?;
        let access_level = if permissions.contains(&self.settings.super_user_permission) {
            AccessLevel::Admin
        } else if permissions.contains(&self.settings.standard_user_permission) {
            AccessLevel::Standard
        } else {
            return Err(IdentityError::NoPermission);
        };
        Ok(Member { id, access_level })
    }
}
