//! Flexible checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256): which ones to compute for an
//! upload, and whether the client's values match.

use std::collections::BTreeMap;

use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm};
use s3s::{S3Result, s3_error};

/// The checksum values a client sent for a body, by algorithm name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expected(BTreeMap<&'static str, String>);

const HEADERS: [(&str, &str); 5] = [
    ("CRC32", "x-amz-checksum-crc32"),
    ("CRC32C", "x-amz-checksum-crc32c"),
    ("CRC64NVME", "x-amz-checksum-crc64nvme"),
    ("SHA1", "x-amz-checksum-sha1"),
    ("SHA256", "x-amz-checksum-sha256"),
];

impl Expected {
    /// Values from the request's headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut this = Self::default();
        this.merge(headers);
        this
    }

    /// Adds values from a header map (the request's headers or its trailers).
    pub fn merge(&mut self, headers: &HeaderMap) {
        for (name, header) in HEADERS {
            if let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) {
                self.0.insert(name, value.to_owned());
            }
        }
    }
}

/// A hasher for every algorithm the client named: in a value header, in `x-amz-trailer`, or
/// as the algorithm it wants stored.
pub(crate) fn hasher_for(
    headers: &HeaderMap,
    expected: &Expected,
    algorithm: Option<&ChecksumAlgorithm>,
) -> ChecksumHasher {
    let mut wanted: Vec<String> = expected.0.keys().map(|k| (*k).to_owned()).collect();
    if let Some(algorithm) = algorithm {
        wanted.push(algorithm.as_str().to_ascii_uppercase());
    }
    if let Some(trailer) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        for (name, header) in HEADERS {
            if trailer
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(header))
            {
                wanted.push(name.to_owned());
            }
        }
    }
    let mut hasher = ChecksumHasher::default();
    for name in wanted {
        match name.as_str() {
            "CRC32" => hasher.crc32 = Some(Default::default()),
            "CRC32C" => hasher.crc32c = Some(Default::default()),
            "CRC64NVME" => hasher.crc64nvme = Some(Default::default()),
            "SHA1" => hasher.sha1 = Some(Default::default()),
            "SHA256" => hasher.sha256 = Some(Default::default()),
            _ => {}
        }
    }
    hasher
}

/// Compares what was computed with what the client sent; returns the values to store.
pub(crate) fn verify(
    computed: Checksum,
    expected: &Expected,
) -> S3Result<BTreeMap<String, String>> {
    let computed = [
        ("CRC32", computed.checksum_crc32),
        ("CRC32C", computed.checksum_crc32c),
        ("CRC64NVME", computed.checksum_crc64nvme),
        ("SHA1", computed.checksum_sha1),
        ("SHA256", computed.checksum_sha256),
    ];
    let mut stored = BTreeMap::new();
    for (name, value) in computed {
        let Some(value) = value else { continue };
        if let Some(sent) = expected.0.get(name)
            && *sent != value
        {
            return Err(s3_error!(
                BadDigest,
                "the {name} checksum you sent does not match the body; nothing was stored"
            ));
        }
        stored.insert(name.to_owned(), value);
    }
    Ok(stored)
}

/// Fills the checksum fields of an output from stored values.
pub(crate) fn to_dto(stored: &BTreeMap<String, String>) -> Checksum {
    let get = |name: &str| stored.get(name).cloned();
    Checksum {
        checksum_crc32: get("CRC32"),
        checksum_crc32c: get("CRC32C"),
        checksum_crc64nvme: get("CRC64NVME"),
        checksum_sha1: get("SHA1"),
        checksum_sha256: get("SHA256"),
        ..Default::default()
    }
}
