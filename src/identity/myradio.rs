//! The MyRadio identity backend, as the original service used it:
//! `POST {api_url}/auth/testcredentials?api_key=…` (form `user`, `pass`) → `payload.memberid` or
//! `false`, then `GET {api_url}/user/{id}/permissions?api_key=…` → `payload`, a list of ints.
//! Read as the original read it: any payload Python finds false (`false`, `null`, `0`, `""`,
//! `{}`, `[]`) is "no such user", and `memberid` may be a number or a numeric string. The two
//! calls of a login get `timeout` together (the original waited without bound).
//!
//! # Security
//! The API key travels in the query string, as MyRadio requires; it is never logged (errors are
//! reported without the URL). Answers are read up to [`MAX_ANSWER_BYTES`], whatever their
//! framing ([`crate::upstream`]).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

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

/// The member id in testcredentials' `payload`: `None` when the payload is one Python finds
/// false (the original's `if not data["payload"]`), `Err` when it names no member.
fn member_id(payload: &Value) -> Result<Option<i64>, &'static str> {
    match payload {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::Array(a) if a.is_empty() => Ok(None),
        Value::Object(o) if o.is_empty() => Ok(None),
        Value::Object(o) => match o.get("memberid") {
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or("memberid is not an integer"),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| "memberid is not an integer"),
            Some(_) => Err("memberid is not an integer"),
            None => Err("payload has no memberid"),
        },
        _ => Err("payload is neither a member nor false"),
    }
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

    /// Checks credentials, then the member's permissions: both calls within `timeout`.
    pub async fn authenticate(&self, user: &str, password: &str) -> Result<Member, IdentityError> {
        let login = async {
            let req = self
                .http
                .post(self.url("/auth/testcredentials"))
                .form(&[("user", user), ("pass", password)]);
            let payload: Value = self.get_json("testcredentials", req).await?;
            match member_id(&payload).map_err(|e| failure("testcredentials", e))? {
                Some(id) => self.member(id).await,
                None => Err(IdentityError::NoUser),
            }
        };
        tokio::time::timeout(self.settings.timeout, login)
            .await
            .unwrap_or_else(|_| Err(failure("login", "timed out")))
    }

    /// How long a login may wait on MyRadio (`timeout`).
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_read_as_the_original_read_them() {
        for falsy in [
            json!(false),
            json!(null),
            json!(0),
            json!(""),
            json!({}),
            json!([]),
        ] {
            assert_eq!(member_id(&falsy), Ok(None), "{falsy}");
        }
        assert_eq!(member_id(&json!({"memberid": 101})), Ok(Some(101)));
        assert_eq!(member_id(&json!({"memberid": "101"})), Ok(Some(101)));
        for bad in [
            json!(true),
            json!("yes"),
            json!({"memberid": "alice"}),
            json!({"memberid": 1.5}),
            json!({"memberid": null}),
            json!({"fname": "Alice"}),
        ] {
            assert!(member_id(&bad).is_err(), "{bad}");
        }
    }
}
