//! Pre-authenticated download links: signed, short-lived tokens naming a drive item, so
//! the URL works without a bearer token, like SharePoint's `tempauth` links.

use ring::hmac;
use serde_json::{Value, json};

use crate::util::{b64url, b64url_decode, now_secs};

pub fn sign(key: &hmac::Key, drive_id: &str, item_id: &str, ttl_secs: i64) -> String {
    let payload = b64url(
        json!({"d": drive_id, "i": item_id, "e": now_secs() + ttl_secs})
            .to_string()
            .as_bytes(),
    );
    let tag = hmac::sign(key, payload.as_bytes());
    format!("{payload}.{}", b64url(tag.as_ref()))
}

#[derive(Debug, PartialEq)]
pub enum LinkError {
    Invalid,
    Expired,
}

/// Returns (drive id, item id).
pub fn verify(key: &hmac::Key, token: &str) -> Result<(String, String), LinkError> {
    let (payload, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let tag = b64url_decode(tag).ok_or(LinkError::Invalid)?;
    hmac::verify(key, payload.as_bytes(), &tag).map_err(|_| LinkError::Invalid)?;
    let v: Value = serde_json::from_slice(&b64url_decode(payload).ok_or(LinkError::Invalid)?)
        .map_err(|_| LinkError::Invalid)?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let exp = v
        .get("e")
        .and_then(Value::as_i64)
        .ok_or(LinkError::Invalid)?;
    if exp <= now_secs() {
        return Err(LinkError::Expired);
    }
    Ok((
        s("d").ok_or(LinkError::Invalid)?,
        s("i").ok_or(LinkError::Invalid)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let t = sign(&key, "d", "i", 60);
        assert_eq!(verify(&key, &t), Ok(("d".into(), "i".into())));
        assert_eq!(
            verify(&key, &sign(&key, "d", "i", -1)),
            Err(LinkError::Expired)
        );
        assert_eq!(verify(&key, &format!("{t}x")), Err(LinkError::Invalid));
    }
}
