//! Object metadata kept in an extended attribute of the data file.
//!
//! The record is written to the temporary file before it is renamed into place, so bytes and
//! metadata become visible together. It also stores the size and modification time it was
//! made for: a file changed behind ferry's back no longer matches, and its ETag is computed
//! again from its bytes.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use xattr::FileExt;

use crate::backend::{ObjectAttrs, ObjectMeta};

/// The extended attribute holding the record.
pub(crate) const XATTR_NAME: &str = "user.ferry.meta";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub etag: String,
    pub size: u64,
    pub mtime_ns: i128,
    #[serde(default)]
    pub attrs: ObjectAttrs,
}

pub(crate) fn mtime_ns(md: &Metadata) -> i128 {
    i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec())
}

/// Reads the record of `file` if it still describes the file as it is now.
pub(crate) fn read_record(file: &File, md: &Metadata) -> Option<Record> {
    let raw = file.get_xattr(XATTR_NAME).ok()??;
    let record: Record = serde_json::from_slice(&raw).ok()?;
    (record.size == md.len() && record.mtime_ns == mtime_ns(md)).then_some(record)
}

pub(crate) fn write_record(file: &File, record: &Record) -> io::Result<()> {
    let raw = serde_json::to_vec(record).map_err(io::Error::other)?;
    file.set_xattr(XATTR_NAME, &raw)
}

/// The metadata of the object stored in `file` under `key`. A file without a valid record
/// (written by someone else) gets its MD5 computed now and, where permitted, remembered.
pub(crate) fn object_meta(key: String, file: &mut File) -> io::Result<ObjectMeta> {
    let md = file.metadata()?;
    let record = match read_record(file, &md) {
        Some(record) => record,
        None => {
            let record = Record {
                etag: hex::encode(md5_of(file)?),
                size: md.len(),
                mtime_ns: mtime_ns(&md),
                attrs: ObjectAttrs::default(),
            };
            // Best effort: a read-only file still serves, it is just hashed again next time.
            let _ = write_record(file, &record);
            record
        }
    };
    Ok(ObjectMeta {
        key,
        size: md.len(),
        etag: record.etag,
        last_modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        attrs: record.attrs,
    })
}

fn md5_of(file: &mut File) -> io::Result<[u8; 16]> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// The metadata of the object whose data file is `path`, from one `lstat` and one extended
/// attribute read by path, without opening the file; `None` if there is no such file. A
/// missing or stale record falls back to [`object_meta`], which hashes the file.
pub(crate) fn object_meta_at(
    key: String,
    path: &std::path::Path,
) -> io::Result<Option<ObjectMeta>> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_file() => md,
        Ok(_) => return Ok(None),
        Err(e) if super::layout::is_missing(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 4096];
    // A record larger than the buffer (much user metadata) takes the slow path below.
    let record = rustix::fs::lgetxattr(path, XATTR_NAME, &mut buf)
        .ok()
        .and_then(|n| serde_json::from_slice::<Record>(&buf[..n]).ok())
        .filter(|r| r.size == md.len() && r.mtime_ns == mtime_ns(&md));
    if let Some(record) = record {
        return Ok(Some(ObjectMeta {
            key,
            size: md.len(),
            etag: record.etag,
            last_modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            attrs: record.attrs,
        }));
    }
    match File::open(path) {
        Ok(mut file) => object_meta(key, &mut file).map(Some),
        Err(e) if super::layout::is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Probes whether the filesystem under `dir` keeps user extended attributes.
pub(crate) fn probe_xattr(dir: &std::path::Path) -> io::Result<()> {
    let probe = dir.join(format!("xattr-probe-{}", uuid::Uuid::new_v4()));
    let file = File::create(&probe)?;
    let result = file.set_xattr(XATTR_NAME, b"{}");
    drop(file);
    let _ = std::fs::remove_file(&probe);
    result
}
