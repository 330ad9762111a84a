//! The cryptography behind `jsonwebtoken`: RustCrypto for everything, except that RS256
//! signatures are verified with `ring`.
//!
//! Why: verifying a listener's ticket is the one RSA operation on the callback path, once per
//! new ticket. The `rsa` crate (constant-time big integers, rebuilt from the key on every call)
//! takes about 3× as long as `ring` for the same public-key check; public-key operations have
//! no secret to protect with constant time. `ring` is already built for rustls.
//!
//! `ring` accepts RS256 keys of 2048 to 8192 bits only, as RFC 7518 section 3.3 requires ("a
//! key of size 2048 bits or larger MUST be used"); jars has only ever generated 2048-bit keys.
//! Validation of the claims and of the header stays `jsonwebtoken`'s.

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::signature::{RsaPublicKeyComponents, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

/// RustCrypto's provider with RS256 verification by `ring`.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: rust_crypto::DEFAULT_PROVIDER.signer_factory,
    verifier_factory: new_verifier,
    key_utils: {
        let k = &rust_crypto::DEFAULT_PROVIDER.key_utils;
        KeyUtils {
            rsa_pub_components_from_private_key: k.rsa_pub_components_from_private_key,
            rsa_pub_components_from_public_key: k.rsa_pub_components_from_public_key,
            ec_pub_components_from_private_key: k.ec_pub_components_from_private_key,
            ed_pub_components_from_private_key: k.ed_pub_components_from_private_key,
            compute_digest: k.compute_digest,
        }
    },
};

/// Makes `PROVIDER` (ring for RS256) the process's `jsonwebtoken` provider. Idempotent; call it before the
/// first token is signed or verified (the [`crate::tokens::TokenService`] constructor does).
pub fn install() {
    // Fails only if a provider is already installed: ours, by an earlier call.
    let _ = PROVIDER.install_default();
}

/// Whether RS256 signatures are verified by `ring` in this process (false if something used
/// `jsonwebtoken` before [`install`] and so fixed the default provider first).
pub fn ring_verifies_rs256() -> bool {
    CryptoProvider::try_get_default().is_some_and(|p| std::ptr::eq(p, &PROVIDER))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::RS256 {
        return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key);
    }
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingRs256Verifier(key.clone())))
}

/// Verifies RS256 (RSASSA-PKCS1-v1_5 with SHA-256) with `ring`.
struct RingRs256Verifier(DecodingKey);

impl Verifier<Vec<u8>> for RingRs256Verifier {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let checked = match self.0.kind() {
            // A PKCS#1 `RSAPublicKey`, as `DecodingKey::from_rsa_pem` holds it.
            DecodingKeyKind::SecretOrDer(der) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).verify(message, sig)
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingRs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    /// A key pair of `bits`, as PEM (private PKCS#8, public SPKI).
    fn pair(bits: usize) -> (EncodingKey, DecodingKey) {
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).unwrap();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (
            EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
            DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap(),
        )
    }

    fn sign(key: &EncodingKey, message: &[u8]) -> Vec<u8> {
        let signer = (PROVIDER.signer_factory)(&Algorithm::RS256, key).unwrap();
        jsonwebtoken::signature::Signer::try_sign(&*signer, message).unwrap()
    }

    fn verifies(key: &DecodingKey, message: &[u8], sig: &[u8]) -> bool {
        let verifier = (PROVIDER.verifier_factory)(&Algorithm::RS256, key).unwrap();
        verifier.verify(message, &sig.to_vec()).is_ok()
    }

    #[test]
    fn ring_verifies_what_rustcrypto_signs_and_nothing_else() {
        let (encoding, decoding) = pair(2048);
        let message = b"header.payload";
        let sig = sign(&encoding, message);
        assert!(verifies(&decoding, message, &sig));
        assert!(!verifies(&decoding, b"header.payloaD", &sig));
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert!(!verifies(&decoding, message, &flipped));
        assert!(!verifies(&decoding, message, &sig[1..]));
        // The same key given as JWK components.
        let DecodingKeyKind::SecretOrDer(der) = decoding.kind() else {
            panic!("PEM keys are DER")
        };
        let public =
            <rsa::PublicKey as rsa::pkcs1::DecodeRsaPublicKey>::from_pkcs1_der(der).unwrap();
        use rsa::traits::PublicKeyParts;
        let components = DecodingKey::from_rsa_raw_components(&public.n_bytes(), &public.e_bytes());
        assert!(verifies(&components, message, &sig));
        // Another key's signature.
        let (other, _) = pair(2048);
        assert!(!verifies(&decoding, message, &sign(&other, message)));
    }

    #[test]
    fn keys_below_2048_bits_are_refused() {
        let (encoding, decoding) = pair(1024);
        let message = b"header.payload";
        assert!(!verifies(&decoding, message, &sign(&encoding, message)));
    }

    #[test]
    fn other_algorithms_keep_rustcrypto() {
        let hmac = DecodingKey::from_secret(b"secret").unwrap();
        assert!((PROVIDER.verifier_factory)(&Algorithm::HS256, &hmac).is_ok());
        assert!((PROVIDER.verifier_factory)(&Algorithm::RS256, &hmac).is_err());
    }
}
