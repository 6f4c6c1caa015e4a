//! Minimal JWS compact serialization: HS256 for the tokens the emulator issues (only the
//! emulator verifies them), and RS256/PS256 verification for client assertions.

use ring::hmac;
use serde_json::Value;

use crate::util::{b64url, b64url_decode};

/// Signs `claims` as an HS256 JWT.
pub fn sign_hs256(key: &hmac::Key, claims: &Value) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "HS256", "kid": "ferry-emulator"});
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = hmac::sign(key, input.as_bytes());
    format!("{input}.{}", b64url(sig.as_ref()))
}

/// Verifies an HS256 JWT signed by [`sign_hs256`] and returns its claims.
pub fn verify_hs256(key: &hmac::Key, token: &str) -> Option<Value> {
    let parts = Parts::split(token)?;
    if parts.header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    hmac::verify(key, parts.signing_input.as_bytes(), &parts.signature).ok()?;
    Some(parts.claims)
}

/// A decoded but not yet verified JWT.
#[derive(Debug)]
pub struct Parts<'a> {
    pub header: Value,
    pub claims: Value,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

impl<'a> Parts<'a> {
    pub fn split(token: &'a str) -> Option<Self> {
        let (signing_input, sig) = token.rsplit_once('.')?;
        let (h, c) = signing_input.split_once('.')?;
        let header = serde_json::from_slice(&b64url_decode(h)?).ok()?;
        let claims = serde_json::from_slice(&b64url_decode(c)?).ok()?;
        let signature = b64url_decode(sig)?;
        Some(Parts {
            header,
            claims,
            signing_input,
            signature,
        })
    }

    /// Verifies an RS256 or PS256 signature with an RSA public key (PKCS#1 DER).
    pub fn verify_rsa(&self, public_key_pkcs1: &[u8]) -> bool {
        use ring::signature::{
            RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
        };
        let alg = match self.header.get("alg").and_then(Value::as_str) {
            Some("RS256") => &RSA_PKCS1_2048_8192_SHA256,
            Some("PS256") => &RSA_PSS_2048_8192_SHA256,
            _ => return false,
        };
        UnparsedPublicKey::new(alg, public_key_pkcs1)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_round_trip_and_tamper() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let t = sign_hs256(&key, &serde_json::json!({"a": 1}));
        assert_eq!(verify_hs256(&key, &t), Some(serde_json::json!({"a": 1})));
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"x");
        assert_eq!(verify_hs256(&other, &t), None);
        assert_eq!(verify_hs256(&key, "a.b.c"), None);
    }
}
