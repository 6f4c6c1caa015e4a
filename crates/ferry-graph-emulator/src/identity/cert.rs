//! App certificates: the public key and thumbprints used to check client assertions.

use sha1::Digest as _;

use crate::util::{b64_decode, b64url};

#[derive(Debug, Clone)]
pub struct Certificate {
    /// RSA public key as PKCS#1 `RSAPublicKey` DER, the form ring verifies with.
    pub public_key: Vec<u8>,
    /// base64url SHA-1 of the DER certificate (the `x5t` header).
    pub x5t: String,
    /// base64url SHA-256 of the DER certificate (the `x5t#S256` header).
    pub x5t_s256: String,
}

const RSA_OID: &str = "1.2.840.113549.1.1.1";

impl Certificate {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let der = pem_body(pem, "CERTIFICATE").ok_or("no PEM CERTIFICATE block")?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert.public_key();
        if spki.algorithm.algorithm.to_id_string() != RSA_OID {
            return Err("only RSA certificates can sign client assertions".into());
        }
        Ok(Certificate {
            public_key: spki.subject_public_key.data.to_vec(),
            x5t: b64url(&sha1::Sha1::digest(&der)),
            x5t_s256: b64url(&sha2::Sha256::digest(&der)),
        })
    }
}

/// Decodes the first `-----BEGIN {label}-----` block of a PEM text.
pub fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    b64_decode(&b64)
}
