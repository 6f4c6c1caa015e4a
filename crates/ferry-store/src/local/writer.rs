//! Writes: bytes go to a temporary file on the same filesystem, then fsync, record, rename.
//!
//! The network side and the disk side run in parallel: chunks pass through a small bounded
//! channel to a blocking task that hashes and writes them, so memory stays bounded by the
//! channel (a few chunks) whatever the object size.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::layout::{SELF_NAME, is_missing, make_parents, open_object, sync_dir};
use super::meta::{Record, mtime_ns, object_meta, write_record};
use super::{Inner, blocking};
use crate::backend::{CommitOptions, ObjectMeta, ObjectWriter, WriteCondition};
use crate::error::{Error, Result};

/// Chunks buffered between the request and the disk.
const CHANNEL_DEPTH: usize = 8;

/// Start writing a large upload to disk every this many bytes, so the fsync at the end finds
/// little left to do.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;

/// Asks the kernel to start writing `len` bytes from `offset` to disk now, without waiting.
/// `POSIX_FADV_DONTNEED` starts writeback of dirty pages (and drops only clean ones); a
/// failure here only means the final fsync does all the work.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

/// A temporary file that is removed unless it was renamed into place.
pub(crate) struct TempFile {
    pub path: PathBuf,
    pub file: File,
    kept: bool,
}

impl TempFile {
    pub fn create(tmp_dir: &Path) -> Result<Self> {
        let path = tmp_dir.join(format!("put-{}", uuid::Uuid::new_v4()));
        let file = File::create_new(&path).map_err(Error::io("create", &path))?;
        Ok(Self {
            path,
            file,
            kept: false,
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub(crate) struct LocalWriter {
    inner: Arc<Inner>,
    bucket_dir: PathBuf,
    key: String,
    path: PathBuf,
    /// Hashed here, on the request's task, while the disk side writes the previous chunk.
    md5: Option<Md5>,
    tx: Option<mpsc::Sender<Bytes>>,
    task: JoinHandle<Result<TempFile>>,
}

impl LocalWriter {
    pub fn start(
        inner: Arc<Inner>,
        bucket_dir: PathBuf,
        key: String,
        path: PathBuf,
        md5: bool,
    ) -> Result<Self> {
        let mut temp = TempFile::create(&inner.tmp_dir)?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let durable = inner.durable;
        let task = tokio::task::spawn_blocking(move || {
            let (mut written, mut flushed) = (0u64, 0u64);
            while let Some(chunk) = rx.blocking_recv() {
                temp.file
                    .write_all(&chunk)
                    .map_err(Error::io("write", &temp.path))?;
                written += chunk.len() as u64;
                if durable && written - flushed >= WRITEBACK_STEP {
                    start_writeback(&temp.file, flushed, written - flushed);
                    flushed = written;
                }
            }
            Ok(temp)
        });
        Ok(Self {
            inner,
            bucket_dir,
            key,
            path,
            md5: md5.then(Md5::new),
            tx: Some(tx),
            task,
        })
    }

    async fn finish_writing(mut self) -> Result<(Self, TempFile)> {
        drop(self.tx.take());
        let temp = (&mut self.task)
            .await
            .map_err(|e| Error::io("write", &self.path)(std::io::Error::other(e)))??;
        Ok((self, temp))
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        if let Some(md5) = &mut self.md5 {
            md5.update(&chunk);
        }
        if tx.send(chunk).await.is_err() {
            // The disk side stopped: its error says why.
            self.tx = None;
            return match (&mut self.task).await {
                Ok(Err(e)) => Err(e),
                _ => Err(Error::io("write", &self.path)(std::io::Error::other(
                    "writer stopped",
                ))),
            };
        }
        Ok(())
    }

    async fn commit(self: Box<Self>, opts: CommitOptions) -> Result<ObjectMeta> {
        let (mut this, temp) = (*self).finish_writing().await?;
        let md5: Option<[u8; 16]> = this.md5.take().map(|m| m.finalize().into());
        if let Some(expected) = opts.expected_md5
            && Some(expected) != md5
        {
            return Err(Error::BadDigest { key: this.key });
        }
        let etag = match (&opts.etag, md5) {
            (Some(etag), _) => etag.clone(),
            (None, Some(md5)) => hex::encode(md5),
            (None, None) => {
                return Err(Error::io("commit", &this.path)(std::io::Error::other(
                    "a write started without hashing needs its ETag at commit",
                )));
            }
        };
        let LocalWriter {
            inner,
            bucket_dir,
            key,
            path,
            ..
        } = this;
        blocking(move || install(&inner, &bucket_dir, key, &path, temp, etag, opts)).await
    }
}

/// Makes a finished temporary file the current version of `key`: fsync, metadata record,
/// condition check, rename, fsync of the folder.
pub(crate) fn install(
    inner: &Inner,
    bucket_dir: &Path,
    key: String,
    path: &Path,
    mut temp: TempFile,
    etag: String,
    opts: CommitOptions,
) -> Result<ObjectMeta> {
    if inner.durable {
        temp.file
            .sync_data()
            .map_err(Error::io("fsync", &temp.path))?;
    }
    let md = temp
        .file
        .metadata()
        .map_err(Error::io("stat", &temp.path))?;
    let record = Record {
        etag,
        size: md.len(),
        mtime_ns: mtime_ns(&md),
        attrs: opts.attrs,
    };
    write_record(&temp.file, &record).map_err(Error::io("set metadata on", &temp.path))?;

    let _guard = opts.condition.as_ref().map(|_| inner.key_lock(path));
    if let Some(condition) = &opts.condition {
        check_condition(condition, &key, path)?;
    }
    // Try the rename first: the folders usually exist. A missing folder, a file where a
    // folder is needed, or a concurrent delete that pruned the folder send us round again.
    let mut target = path.to_path_buf();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match fs::rename(&temp.path, &target) {
            Ok(()) => break,
            Err(e) if attempts < 5 && e.raw_os_error() == Some(libc::EISDIR) => {
                target = path.join(SELF_NAME);
            }
            Err(e) if attempts < 5 && is_missing(&e) => {
                make_parents(bucket_dir, path, &inner.tmp_dir)
                    .map_err(Error::io("create folders for", path))?;
                // The folder may have been pruned with the self file's parent: start over.
                target = path.to_path_buf();
            }
            Err(e) => return Err(Error::io("rename into", &target)(e)),
        }
    }
    temp.kept = true;
    if let Some(dir) = target.parent().filter(|_| inner.durable) {
        sync_dir(dir).map_err(Error::io("fsync", dir))?;
    }
    object_meta(key, &mut temp.file).map_err(Error::io("stat", &target))
}

fn check_condition(condition: &WriteCondition, key: &str, path: &Path) -> Result<()> {
    let current = open_object(path)
        .map_err(Error::io("open", path))?
        .map(|(mut file, _)| object_meta(key.to_owned(), &mut file))
        .transpose()
        .map_err(Error::io("read", path))?;
    let ok = match (condition, &current) {
        (WriteCondition::IfNoneExists, current) => current.is_none(),
        (WriteCondition::IfMatch(_), None) => false,
        (WriteCondition::IfMatch(want), Some(meta)) => want == "*" || *want == meta.etag,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::PreconditionFailed {
            key: key.to_owned(),
        })
    }
}
