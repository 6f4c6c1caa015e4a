//! Small helpers shared by the identity and Graph halves: clocks, randomness, encodings.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// ISO 8601 UTC with second precision and a `Z`, the way OneDrive for Business prints times.
pub fn iso(secs: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// ISO 8601 with milliseconds, as Graph prints `innerError.date`-style timestamps.
pub fn iso_now_precise() -> String {
    let t = OffsetDateTime::now_utc();
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Parses an ISO 8601 / RFC 3339 date into Unix seconds (fractions are dropped, like
/// OneDrive for Business which keeps second precision).
pub fn parse_iso(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Cryptographically random bytes; uuid's v4 generator is the OS RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(16) {
        let r = uuid::Uuid::new_v4().into_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    out
}

/// A random float in [0, 1), for fault rates.
pub fn random_f64() -> f64 {
    let b = random_bytes::<8>();
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// A random opaque token, URL safe.
pub fn random_token() -> String {
    b64url(&random_bytes::<24>())
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let s = iso(1_700_000_000);
        assert_eq!(s, "2023-11-14T22:13:20Z");
        assert_eq!(parse_iso(&s), Some(1_700_000_000));
        assert_eq!(parse_iso("2023-11-14T22:13:20.123Z"), Some(1_700_000_000));
    }

    #[test]
    fn random_f64_in_range() {
        for _ in 0..100 {
            let x = random_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
