//! Storage errors.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("bucket {bucket:?} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("bucket {bucket:?} already exists")]
    BucketExists { bucket: String },
    #[error("bucket {bucket:?} is not empty")]
    BucketNotEmpty { bucket: String },
    #[error("invalid bucket name {bucket:?}: {reason}")]
    InvalidBucketName {
        bucket: String,
        reason: &'static str,
    },
    #[error("object {key:?} does not exist in bucket {bucket:?}")]
    NoSuchKey { bucket: String, key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("object key is {len} bytes long; at most 1024 are allowed")]
    KeyTooLong { len: usize },
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("precondition failed for {key:?}")]
    PreconditionFailed { key: String },
    #[error("the body's MD5 does not match Content-MD5 for {key:?}")]
    BadDigest { key: String },
    #[error("OneDrive: {0}")]
    Graph(String),
    /// OneDrive refuses the gateway's sign-in (a wrong secret, an expired saved sign-in).
    #[error("OneDrive: {0}")]
    SignIn(String),
    #[error("OneDrive kept throttling the gateway's requests")]
    SlowDown {
        /// How long the service last asked to wait.
        retry_after: Option<std::time::Duration>,
    },
    #[error("the metadata store {store}: {message}")]
    MetaStore { store: String, message: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    /// True when the underlying cause is a full disk or quota.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Self::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
    }
}
