//! Key material: the RS256 signing key and the set of keys tokens are verified with, parsed
//! from PEM and JWK and served as PEM and JWKS. Where keys come from: [`files`] (the data
//! directory or configured PEM files) and [`remote`] (another issuer's JWKS or PEM).
//!
//! # Security
//! Only public halves leave this module as text; the private key is never logged or served.

pub mod files;
pub mod remote;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use std::path::PathBuf;

pub use files::{
    generate_pair, rotate_pair, KeyOrigin, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, RETIRED_KEYS_DIR,
};
pub use remote::{RemoteFormat, RemoteKeySource};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: not a usable RSA key ({why})")]
    Invalid { what: String, why: String },
    #[error("{0} already exists; pass --force to replace it (tokens signed with the old key stop verifying)")]
    Exists(PathBuf),
    #[error("key generation failed: {0}")]
    Generate(String),
}

pub(crate) fn invalid(what: impl ToString, why: impl ToString) -> KeyError {
    KeyError::Invalid {
        what: what.to_string(),
        why: why.to_string(),
    }
}

/// A public key tokens may be verified with.
pub struct VerifyingKey {
    /// RFC 7638 thumbprint of the key, used as the JWT `kid`.
    pub kid: String,
    pub decoding: DecodingKey,
    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as the original `/jars/pubkey` served.
    pub public_pem: String,
    /// The key as a JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`).
    pub jwk: serde_json::Value,
}

/// The private key tokens are signed with.
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// Everything needed to sign and verify: at most one signing key, one or more verifying keys.
pub struct KeySet {
    pub signing: Option<SigningKey>,
    pub verifying: Vec<VerifyingKey>,
}

impl KeySet {
    /// A set that only verifies, from one PEM public key (tests, verify-only nodes).
    pub fn from_public_pem(pem: &str) -> Result<KeySet, KeyError> {
        Ok(KeySet {
            signing: None,
            verifying: vec![VerifyingKey::from_pem(pem, "public key")?],
        })
    }

    /// The PEM served at `/jars/pubkey`: the signing key's public half, else the first key.
    pub fn public_pem(&self) -> &str {
        let signing_kid = self.signing.as_ref().map(|s| s.kid.as_str());
        self.verifying
            .iter()
            .find(|k| Some(k.kid.as_str()) == signing_kid)
            .or(self.verifying.first())
            .map(|k| k.public_pem.as_str())
            .unwrap_or("")
    }

    /// The JWKS served at `/jars/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.verifying.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// Keys a token with this `kid` header may be verified with. Tokens of the original service
    /// carry no `kid`: every key is a candidate then.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a VerifyingKey> {
        self.verifying
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid == kid))
    }
}

impl VerifyingKey {
    /// Parses an SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`) PEM.
    pub fn from_pem(pem: &str, what: &str) -> Result<VerifyingKey, KeyError> {
        let public = rsa::PublicKey::from_public_key_pem(pem.trim())
            .or_else(|_| {
                use rsa::pkcs1::DecodeRsaPublicKey;
                rsa::PublicKey::from_pkcs1_pem(pem.trim())
            })
            .map_err(|e| invalid(what, e))?;
        Self::from_public(&public, None, what)
    }

    /// One RSA key of a JWKS document (`kty` = `RSA`, base64url `n` and `e`, optional `kid`).
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<VerifyingKey, KeyError> {
        let field = |name: &str| -> Result<Vec<u8>, KeyError> {
            let text = jwk[name]
                .as_str()
                .ok_or_else(|| invalid("JWK", format!("no \"{name}\"")))?;
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|e| invalid("JWK", e))
        };
        if jwk["kty"] != "RSA" {
            return Err(invalid("JWK", "not an RSA key"));
        }
        if jwk["alg"].as_str().is_some_and(|alg| alg != "RS256") {
            return Err(invalid("JWK", "not an RS256 key"));
        }
        let n = rsa::BoxedUint::from_be_slice_vartime(&field("n")?);
        let e = rsa::BoxedUint::from_be_slice_vartime(&field("e")?);
        let public = rsa::PublicKey::new(n, e).map_err(|e| invalid("JWK", e))?;
        Self::from_public(&public, jwk["kid"].as_str(), "JWK")
    }

    fn from_public(
        public: &rsa::PublicKey,
        kid: Option<&str>,
        what: &str,
    ) -> Result<VerifyingKey, KeyError> {
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| invalid(what, e))?;
        let decoding =
            DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(|e| invalid(what, e))?;
        let kid = kid
            .map(str::to_string)
            .unwrap_or_else(|| thumbprint(public));
        let jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
        });
        Ok(VerifyingKey {
            kid,
            decoding,
            public_pem,
            jwk,
        })
    }
}

impl KeySet {
    /// A verify-only set from a JWKS document (`{"keys": [...]}`); keys that are not RS256
    /// RSA keys are skipped, and a document without any usable key is an error.
    pub fn from_jwks(doc: &serde_json::Value) -> Result<KeySet, KeyError> {
        let keys = doc["keys"]
            .as_array()
            .ok_or_else(|| invalid("JWKS", "no \"keys\" list"))?;
        let verifying: Vec<VerifyingKey> = keys
            .iter()
            .filter_map(|k| VerifyingKey::from_jwk(k).ok())
            .collect();
        if verifying.is_empty() {
            return Err(invalid("JWKS", "no usable RS256 key"));
        }
        Ok(KeySet {
            signing: None,
            verifying,
        })
    }

    /// An empty set: verifies nothing (a verify-only node before its first fetch).
    pub fn empty() -> KeySet {
        KeySet {
            signing: None,
            verifying: Vec::new(),
        }
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): a stable `kid` derived from the key itself.
pub(crate) fn thumbprint(public: &rsa::PublicKey) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public.e_bytes()),
        URL_SAFE_NO_PAD.encode(public.n_bytes())
    );
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_carries_kid_and_components() {
        let dir = tempfile::tempdir().unwrap();
        let (set, _) = KeySet::load(None, None, dir.path()).unwrap();
        let jwks = set.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["e"], "AQAB");
        assert_eq!(key["kid"], set.verifying[0].kid.as_str());
        assert!(key["n"].as_str().unwrap().len() > 300);
    }
}
