//! Key material: the RS256 signing key, the set of keys tokens are verified with, and how they
//! are loaded from PEM files, generated on first start, and served as PEM and JWKS.
//!
//! # Security
//! The private key file is written with mode 0600 and never logged or served; only public halves
//! leave this module as text.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;

use crate::config::KeyRef;

/// File names of the generated pair inside the data directory.
pub const PRIVATE_KEY_FILE: &str = "jwt-private.pem";
pub const PUBLIC_KEY_FILE: &str = "jwt-public.pem";
/// Directory (inside the data directory) of public keys retired by `jars keygen --rotate`:
/// tokens they signed keep verifying until the file is removed.
pub const RETIRED_KEYS_DIR: &str = "retired-keys";

/// Key size of generated keys; the original service's keys are 2048-bit too.
const GENERATED_BITS: usize = 2048;

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

fn invalid(what: impl ToString, why: impl ToString) -> KeyError {
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

/// What [`KeySet::load`] did, so the caller can log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Generated { private_key: PathBuf, kid: String },
}

impl KeySet {
    /// Loads the configured keys, or the pair in `data_dir`, generating that pair on first start.
    pub fn load(
        private: Option<&KeyRef>,
        public: Option<&KeyRef>,
        data_dir: &Path,
    ) -> Result<(KeySet, KeyOrigin), KeyError> {
        let mut origin = KeyOrigin::Loaded;
        let private_pem = match private {
            Some(r) => Some(read_ref(r)?),
            // A configured public key alone means a verify-only node.
            None if public.is_some() => None,
            None => {
                let path = data_dir.join(PRIVATE_KEY_FILE);
                if !path.exists() {
                    let kid = generate_pair(data_dir, false)?;
                    origin = KeyOrigin::Generated {
                        private_key: path.clone(),
                        kid,
                    };
                }
                Some(read_ref(&KeyRef::File(path))?)
            }
        };
        let (signing, derived_public) = match &private_pem {
            Some(pem) => {
                let private = parse_private(pem, private)?;
                let public = private.to_public_key();
                let public_pem = public
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| invalid("derived public key", e))?;
                let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| invalid("private key", e))?;
                (Some((encoding, thumbprint(&public))), Some(public_pem))
            }
            None => (None, None),
        };
        let public_pem = match public {
            Some(r) => read_ref(r)?,
            None => {
                derived_public.expect("a private key is present when no public key is configured")
            }
        };
        let verifying = VerifyingKey::from_pem(
            &public_pem,
            &public
                .map(|r| r.to_string())
                .unwrap_or_else(|| "public key".into()),
        )?;
        let signing = match signing {
            Some((encoding, kid)) => {
                if kid != verifying.kid {
                    return Err(invalid(
                        "public key",
                        "it is not the public half of the configured private key",
                    ));
                }
                Some(SigningKey { kid, encoding })
            }
            None => None,
        };
        let mut verifying = vec![verifying];
        if private.is_none() && public.is_none() {
            for key in load_retired(data_dir)? {
                if verifying.iter().all(|k| k.kid != key.kid) {
                    verifying.push(key);
                }
            }
        }
        Ok((KeySet { signing, verifying }, origin))
    }

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
    pub refresh: std::time::Duration,
    /// Unknown-`kid` refetches happen at most this often.
    pub refetch_min_interval: std::time::Duration,
    /// Past this age without a successful fetch, verification fails closed.
    pub max_stale: std::time::Duration,
    http: reqwest::Client,
}

impl RemoteKeySource {
    pub fn new(
        url: String,
        format: RemoteFormat,
        refresh: std::time::Duration,
        refetch_min_interval: std::time::Duration,
        max_stale: std::time::Duration,
    ) -> Result<RemoteKeySource, KeyError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("jars/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(5))
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
        let body = resp
            .bytes()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
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

/// RFC 7638 JWK thumbprint (SHA-256, base64url): a stable `kid` derived from the key itself.
fn thumbprint(public: &rsa::PublicKey) -> String {
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

fn read_ref(r: &KeyRef) -> Result<String, KeyError> {
    match r {
        KeyRef::Inline(pem) => Ok(pem.clone()),
        KeyRef::File(path) => fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        }),
    }
}

fn parse_private(pem: &str, r: Option<&KeyRef>) -> Result<rsa::PrivateKey, KeyError> {
    let what = r
        .map(|r| r.to_string())
        .unwrap_or_else(|| "private key".into());
    rsa::PrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| invalid(what, e))
}

/// The public keys in `data_dir/retired-keys/*.pem`, in name order.
fn load_retired(data_dir: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let dir = data_dir.join(RETIRED_KEYS_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(KeyError::Io { path: dir, source }),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let pem = fs::read_to_string(p).map_err(|source| KeyError::Io {
                path: p.clone(),
                source,
            })?;
            VerifyingKey::from_pem(&pem, &p.display().to_string())
        })
        .collect()
}

/// `jars keygen --rotate`: retires the current pair (its public half moves to
/// `retired-keys/<kid>.pem`, so tokens it signed keep verifying; its private half is deleted)
/// and writes a new one. Returns (retired kid, new kid).
pub fn rotate_pair(dir: &Path) -> Result<(String, String), KeyError> {
    let public_path = dir.join(PUBLIC_KEY_FILE);
    let pem = fs::read_to_string(&public_path).map_err(|source| KeyError::Io {
        path: public_path.clone(),
        source,
    })?;
    let old = VerifyingKey::from_pem(&pem, &public_path.display().to_string())?;
    let retired_dir = dir.join(RETIRED_KEYS_DIR);
    fs::create_dir_all(&retired_dir).map_err(|source| KeyError::Io {
        path: retired_dir.clone(),
        source,
    })?;
    write_atomically(
        &retired_dir.join(format!("{}.pem", old.kid)),
        old.public_pem.as_bytes(),
        0o644,
    )?;
    let new_kid = generate_pair(dir, true)?;
    Ok((old.kid, new_kid))
}

/// Writes a new key pair into `dir` (`jars keygen`). Refuses to replace one unless `force`.
/// Returns the new key's `kid`.
pub fn generate_pair(dir: &Path, force: bool) -> Result<String, KeyError> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !force && private_path.exists() {
        return Err(KeyError::Exists(private_path));
    }
    fs::create_dir_all(dir).map_err(|source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let private = rsa::PrivateKey::new(&mut getrandom::SysRng, GENERATED_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let public = private.to_public_key();
    let public_pem = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    write_atomically(&private_path, private_pem.as_bytes(), 0o600)?;
    write_atomically(&public_path, public_pem.as_bytes(), 0o644)?;
    Ok(thumbprint(&public))
}

/// Writes `bytes` to a temporary file created with `mode`, then renames it over `path`, so a
/// reader never sees half a key and the private key is never world-readable, even briefly.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let (first, origin) = KeySet::load(None, None, dir.path()).unwrap();
        assert!(matches!(origin, KeyOrigin::Generated { .. }));
        let mode = fs::metadata(dir.path().join(PRIVATE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, origin) = KeySet::load(None, None, dir.path()).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(first.verifying[0].kid, second.verifying[0].kid);
        assert!(first.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(matches!(
            generate_pair(dir.path(), false),
            Err(KeyError::Exists(_))
        ));
        let new_kid = generate_pair(dir.path(), true).unwrap();
        assert_ne!(new_kid, first.verifying[0].kid);
    }

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

    #[test]
    fn rotation_keeps_old_tokens_verifiable() {
        let dir = tempfile::tempdir().unwrap();
        let (before, _) = KeySet::load(None, None, dir.path()).unwrap();
        let old_kid = before.verifying[0].kid.clone();
        let (retired, new_kid) = rotate_pair(dir.path()).unwrap();
        assert_eq!(retired, old_kid);
        let (after, origin) = KeySet::load(None, None, dir.path()).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(after.signing.as_ref().unwrap().kid, new_kid);
        let kids: Vec<&str> = after.verifying.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
        assert_eq!(after.jwks()["keys"].as_array().unwrap().len(), 2);
        // JWKS round trip: a verify-only set made from the served document has both keys.
        let remote = KeySet::from_jwks(&after.jwks()).unwrap();
        assert_eq!(remote.verifying.len(), 2);
        assert_eq!(remote.verifying[1].kid, old_kid);
        assert!(remote.signing.is_none());
        assert!(KeySet::from_jwks(&serde_json::json!({"keys": []})).is_err());
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate_pair(a.path(), false).unwrap();
        generate_pair(b.path(), false).unwrap();
        let err = KeySet::load(
            Some(&KeyRef::File(a.path().join(PRIVATE_KEY_FILE))),
            Some(&KeyRef::File(b.path().join(PUBLIC_KEY_FILE))),
            a.path(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("not the public half"), "{err}");
    }
}
