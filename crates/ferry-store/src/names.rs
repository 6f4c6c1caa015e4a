//! Bucket name and object key rules shared by every backend.

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Checks a bucket name against S3's rules for new buckets (3-63 characters of lower-case
/// letters, digits, `-` and `.`, starting and ending with a letter or digit, not an IP address).
pub fn check_bucket_name(bucket: &str) -> Result<()> {
    let fail = |reason| {
        Err(Error::InvalidBucketName {
            bucket: bucket.to_owned(),
            reason,
        })
    };
    if !(3..=63).contains(&bucket.len()) {
        return fail("must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return fail("only lower-case letters, digits, '-' and '.' are allowed");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(bucket.as_bytes()[0]) || !edge_ok(bucket.as_bytes()[bucket.len() - 1]) {
        return fail("must start and end with a letter or digit");
    }
    if bucket.contains("..") {
        return fail("must not contain '..'");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return fail("must not look like an IP address");
    }
    Ok(())
}

/// Checks an object key: 1 to 1024 bytes, no NUL, and no `.` or `..` segment, neither as
/// written nor after percent-decoding, so no key can name a path outside its bucket.
pub fn check_key(key: &str) -> Result<()> {
    let fail = |reason| {
        Err(Error::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return fail("must not be empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLong { len: key.len() });
    }
    if key.contains('\0') {
        return fail("must not contain NUL");
    }
    let decoded = percent_decode_str(key).decode_utf8_lossy();
    for candidate in [key, decoded.as_ref()] {
        if candidate.contains('\0') {
            return fail("must not contain NUL");
        }
        if candidate
            .split(['/', '\\'])
            .any(|segment| segment == "." || segment == "..")
        {
            return fail("must not contain '.' or '..' path segments");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_keys_are_rejected() {
        for key in [
            "../x",
            "a/../../b",
            "%2e%2e/x",
            "a/%2E%2e/b",
            "./a",
            "a/.",
            "..",
            "a\\..\\b",
        ] {
            assert!(check_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "a",
            "a/b",
            "a/",
            "/a",
            "a//b",
            "..a",
            "a..",
            "a b+c%d=e&f",
            "ünï/cødé",
        ] {
            check_key(key).unwrap();
        }
    }

    #[test]
    fn long_and_nul_keys_are_rejected() {
        assert!(matches!(
            check_key(&"k".repeat(1025)),
            Err(Error::KeyTooLong { len: 1025 })
        ));
        check_key(&"k".repeat(1024)).unwrap();
        assert!(check_key("a\0b").is_err());
        assert!(check_key("a%00b").is_err());
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.v2", "datasets", "0ab"] {
            check_bucket_name(ok).unwrap();
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            ".ferry",
            "a/b",
            "192.168.1.1",
            &"a".repeat(64),
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
