//! Client assertions: the JWT an application signs with its certificate's key instead of
//! sending a secret (RFC 7523; Microsoft's `client_assertion` with `x5t` thumbprints).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::json;
use sha1::Digest;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How long an assertion is valid; Microsoft accepts up to ten minutes.
const LIFETIME_SECS: u64 = 600;

/// A certificate and its key, parsed once.
#[derive(Debug)]
pub(crate) struct Signer {
    key: KeyPair,
    x5t: String,
    x5t_s256: String,
}

struct KeyPair(RsaKeyPair);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<RSA key>")
    }
}

impl Signer {
    pub fn new(cert_pem: &str, key_pem: &Secret) -> Result<Self> {
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| Error::protocol(format!("the client certificate is not PEM: {e}")))?;
        let key =
            PrivatePkcs8KeyDer::from_pem_slice(key_pem.expose().as_bytes()).map_err(|_| {
                Error::protocol("the client certificate's key must be an unencrypted PKCS#8 PEM")
            })?;
        let key = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).map_err(|e| {
            Error::protocol(format!("the client certificate's key is not RSA: {e}"))
        })?;
        Ok(Self {
            key: KeyPair(key),
            x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert.as_ref())),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert.as_ref())),
        })
    }

    /// A signed assertion for `client_id` at `token_url`.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<Secret> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header =
            json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256});
        let claims = json!({
            "aud": token_url, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now, "iat": now, "exp": now + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.0.public().modulus_len()];
        self.key
            .0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::protocol("signing the client assertion failed"))?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}
