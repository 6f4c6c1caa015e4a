//! The storage trait every backend implements, and the types it speaks.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A stream of object bytes. Errors end the stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// What a client sets on an object and gets back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectAttrs {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names lower-cased.
    pub user_metadata: BTreeMap<String, String>,
    /// Full-object checksums by algorithm name (`CRC32`, `CRC32C`, `SHA1`, `SHA256`), as sent
    /// on the wire (base64).
    pub checksums: BTreeMap<String, String>,
}

/// One stored object as a listing or a HEAD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The entity tag without quotes: the hex MD5 of the bytes, or `md5-of-md5s-N` for an
    /// object assembled from N parts.
    pub etag: String,
    pub last_modified: SystemTime,
    pub attrs: ObjectAttrs,
}

/// A bucket as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created: SystemTime,
}

/// A byte range as a client asks for it, before the object size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    FromTo { first: u64, last: Option<u64> },
    /// `bytes=-length`: the last `length` bytes.
    Suffix { length: u64 },
}

impl RangeRequest {
    /// Resolves the range against an object of `size` bytes; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            Self::FromTo { first, last } => {
                if first >= size || last.is_some_and(|l| l < first) {
                    return None;
                }
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                Some(first..end)
            }
            Self::Suffix { length } => {
                if length == 0 || size == 0 {
                    return None;
                }
                Some(size.saturating_sub(length)..size)
            }
        }
    }
}

/// The body of a GET: what was stored and the part of it that is streamed.
pub struct GetResult {
    pub meta: ObjectMeta,
    /// The bytes of the object that `body` yields.
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// A condition a write must meet at the moment it becomes visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Succeed only if the current object has this entity tag (`*` = any existing object).
    IfMatch(String),
    /// Succeed only if no object exists under the key (`If-None-Match: *`).
    IfNoneExists,
}

/// Options for starting a write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// The final size, when the caller knows it (some backends need it up front).
    pub size_hint: Option<u64>,
    /// The caller will give the entity tag at commit (an assembled multipart object), so the
    /// backend need not hash the bytes.
    pub etag_given: bool,
}

/// What `ObjectWriter::commit` needs to make a write visible.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub attrs: ObjectAttrs,
    /// Use this entity tag instead of the MD5 of the bytes (multipart objects).
    pub etag: Option<String>,
    /// Fail with `BadDigest` unless the bytes have this MD5 (`Content-MD5`).
    pub expected_md5: Option<[u8; 16]>,
    pub condition: Option<WriteCondition>,
}

/// Listing options; keys come back in byte-wise lexicographic order.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Return only entries strictly after this key.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// One entry of a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // built once per listed key, never copied around
pub enum ListEntry {
    Object(ObjectMeta),
    /// A common prefix (ends with the delimiter).
    Prefix(String),
}

impl ListOptions {
    /// The common prefix `key` rolls up into: the prefix, then the key up to and with the
    /// first delimiter after it (`None` without a delimiter, or when there is none after).
    pub fn rolled_prefix(&self, key: &str) -> Option<String> {
        let delimiter = self.delimiter.as_deref().filter(|d| !d.is_empty())?;
        let rest = key.get(self.prefix.len()..)?;
        rest.find(delimiter)
            .map(|i| key[..self.prefix.len() + i + delimiter.len()].to_owned())
    }
}

impl ListEntry {
    /// The key or prefix, which is also the marker to continue after.
    pub fn name(&self) -> &str {
        match self {
            Self::Object(o) => &o.key,
            Self::Prefix(p) => p,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    /// More entries follow the last one.
    pub is_truncated: bool,
}

/// What a backend can do; the conformance suite skips what a backend declares it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `a` and `a/b` can both be objects.
    pub file_and_folder_with_same_name: bool,
}

/// A storage backend: buckets of objects addressed by key.
///
/// Writes go through an [`ObjectWriter`] and become visible, whole and at once, only at
/// `commit`; a writer dropped before that leaves nothing behind.
#[async_trait]
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    fn capabilities(&self) -> Capabilities;

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>>;
    async fn create_bucket(&self, bucket: &str) -> Result<()>;
    /// Deletes a bucket that holds no object.
    async fn delete_bucket(&self, bucket: &str) -> Result<()>;
    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo>;

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta>;
    async fn get(&self, bucket: &str, key: &str, range: Option<RangeRequest>) -> Result<GetResult>;
    async fn put(&self, bucket: &str, key: &str, opts: PutOptions)
    -> Result<Box<dyn ObjectWriter>>;
    /// Deletes an object; deleting a missing key succeeds.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;
    /// Copies an object server-side; `attrs` replaces the source's attributes when given.
    async fn copy(
        &self,
        src: (&str, &str),
        dst: (&str, &str),
        attrs: Option<ObjectAttrs>,
    ) -> Result<ObjectMeta>;
    async fn list(&self, bucket: &str, opts: &ListOptions) -> Result<ListPage>;
}

/// An object being written. Dropping it without `commit` discards everything written.
#[async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Makes the object visible atomically, replacing any previous version.
    async fn commit(self: Box<Self>, opts: CommitOptions) -> Result<ObjectMeta>;
}

#[cfg(test)]
mod tests {
    use super::RangeRequest;
    use proptest::prelude::*;

    /// The bytes a range selects, by brute force over every offset.
    fn model(range: RangeRequest, size: u64) -> Option<std::ops::Range<u64>> {
        let selected: Vec<u64> = (0..size)
            .filter(|&i| match range {
                RangeRequest::FromTo { first, last } => i >= first && last.is_none_or(|l| i <= l),
                RangeRequest::Suffix { length } => i + length >= size,
            })
            .collect();
        let (first, last) = (*selected.first()?, *selected.last()?);
        Some(first..last + 1)
    }

    proptest! {
        #[test]
        fn resolve_matches_the_model(
            first in 0u64..40, last in proptest::option::of(0u64..40),
            length in 0u64..40, size in 0u64..30, suffix in any::<bool>(),
        ) {
            let range = if suffix {
                RangeRequest::Suffix { length }
            } else {
                RangeRequest::FromTo { first, last }
            };
            let expected = match range {
                // An inverted range is invalid, not empty.
                RangeRequest::FromTo { first, last: Some(l) } if l < first => None,
                _ => model(range, size),
            };
            prop_assert_eq!(range.resolve(size), expected);
        }
    }
}
