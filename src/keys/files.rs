//! Keys on disk: the configured PEM files, or the pair in the data directory (generated on
//! first start, rotated by `jars keygen --rotate`, retired public halves kept verifying).
//!
//! # Security
//! The private key file is written with mode 0600, atomically ([`crate::atomic_file`]).

use std::fs;
use std::path::{Path, PathBuf};

use jsonwebtoken::EncodingKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use crate::atomic_file::create_private_dir;

use super::{invalid, thumbprint, KeyError, KeySet, SigningKey, VerifyingKey};
use crate::config::KeyRef;

/// File names of the generated pair inside the data directory.
pub const PRIVATE_KEY_FILE: &str = "jwt-private.pem";
pub const PUBLIC_KEY_FILE: &str = "jwt-public.pem";
/// Directory (inside the data directory) of public keys retired by `jars keygen --rotate`:
/// tokens they signed keep verifying until the file is removed.
pub const RETIRED_KEYS_DIR: &str = "retired-keys";

/// Key size of generated keys; the original service's keys are 2048-bit too.
const GENERATED_BITS: usize = 2048;

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
}

/// Maps an I/O error to a [`KeyError`] naming `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a key file atomically with `mode`.
fn write_key(path: &Path, pem: &str, mode: u32) -> Result<(), KeyError> {
    crate::atomic_file::write_atomically(path, pem.as_bytes(), mode).map_err(io_at(path))
}

fn read_ref(r: &KeyRef) -> Result<String, KeyError> {
    match r {
        KeyRef::Inline(pem) => Ok(pem.clone()),
        KeyRef::File(path) => fs::read_to_string(path).map_err(io_at(path)),
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
            let pem = fs::read_to_string(p).map_err(io_at(p))?;
            VerifyingKey::from_pem(&pem, &p.display().to_string())
        })
        .collect()
}

/// `jars keygen --rotate`: retires the current pair (its public half moves to
/// `retired-keys/<kid>.pem`, so tokens it signed keep verifying; its private half is deleted)
/// and writes a new one. Returns (retired kid, new kid).
pub fn rotate_pair(dir: &Path) -> Result<(String, String), KeyError> {
    let public_path = dir.join(PUBLIC_KEY_FILE);
    let pem = fs::read_to_string(&public_path).map_err(io_at(&public_path))?;
    let old = VerifyingKey::from_pem(&pem, &public_path.display().to_string())?;
    let retired_dir = dir.join(RETIRED_KEYS_DIR);
    create_private_dir(&retired_dir).map_err(io_at(&retired_dir))?;
    write_key(
        &retired_dir.join(format!("{}.pem", old.kid)),
        &old.public_pem,
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
    create_private_dir(dir).map_err(io_at(dir))?;
    let private = rsa::PrivateKey::new(&mut getrandom::SysRng, GENERATED_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let public = private.to_public_key();
    let public_pem = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    write_key(&private_path, &private_pem, 0o600)?;
    write_key(&public_path, &public_pem, 0o644)?;
    Ok(thumbprint(&public))
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
