//! The local-folder backend: each bucket is a top-level folder, each object a file.
//!
//! Layout under the root:
//! - `<bucket>/<key>`: object data, as plain files any other program can read (see
//!   [`layout`] for the two reserved names that make every key storable);
//! - the `user.ferry.meta` extended attribute of each file: ETag, content type, user metadata
//!   and checksums (see [`meta`]);
//! - `.ferry/tmp/`: writes in progress, renamed into place when complete.

mod layout;
mod meta;
mod walk;
mod writer;

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use self::layout::{is_missing, key_path, open_object, prune_empty};
use self::meta::object_meta;
use self::writer::{LocalWriter, TempFile, install};
use crate::backend::{
    Backend, BucketInfo, Capabilities, CommitOptions, GetResult, ListOptions, ListPage,
    ObjectAttrs, ObjectMeta, ObjectWriter, PutOptions, RangeRequest,
};
use crate::error::{Error, Result};
use crate::names::check_bucket_name;

/// Temporary files older than this are left over from a crash and removed at start.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);
/// Read size when streaming an object.
const READ_CHUNK: usize = 256 * 1024;
const KEY_LOCKS: usize = 64;

/// A folder on a local or network filesystem, served as buckets of objects.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    root: PathBuf,
    tmp_dir: PathBuf,
    /// Serialises conditional writes to the same key within this process.
    key_locks: Vec<Mutex<()>>,
    dir_cache: walk::DirCache,
    /// Fsync objects and their folders before a write or delete reports success.
    durable: bool,
}

impl Inner {
    fn key_lock(&self, path: &Path) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        path.hash(&mut hasher);
        let slot = (hasher.finish() % KEY_LOCKS as u64) as usize;
        self.key_locks[slot]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LocalBackend {
    /// Opens (creating if needed) the folder `root`. Fails when the filesystem cannot keep
    /// extended attributes, which hold each object's metadata.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(Error::io("create", root))?;
        let root = root.canonicalize().map_err(Error::io("resolve", root))?;
        let tmp_dir = root.join(".ferry").join("tmp");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp_dir)
            .map_err(Error::io("create", &tmp_dir))?;
        meta::probe_xattr(&tmp_dir).map_err(|source| Error::Io {
            op: "store metadata in extended attributes (user.*) under",
            path: tmp_dir.clone(),
            source,
        })?;
        remove_stale_temps(&tmp_dir);
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                tmp_dir,
                key_locks: (0..KEY_LOCKS).map(|_| Mutex::new(())).collect(),
                dir_cache: walk::DirCache::default(),
                durable: true,
            }),
        })
    }

    /// Whether writes and deletes are fsynced before they succeed (the default). Without it
    /// a crash can lose the last seconds of acknowledged writes, as with most file servers.
    pub fn with_durability(mut self, durable: bool) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.durable = durable;
        }
        self
    }

    /// The folder this backend serves.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf> {
        check_bucket_name(bucket).map_err(|_| Error::NoSuchBucket {
            bucket: bucket.to_owned(),
        })?;
        let dir = self.inner.root.join(bucket);
        match fs::symlink_metadata(&dir) {
            Ok(md) if md.is_dir() => Ok(dir),
            Ok(_) => Err(Error::NoSuchBucket {
                bucket: bucket.to_owned(),
            }),
            Err(e) if is_missing(&e) => Err(Error::NoSuchBucket {
                bucket: bucket.to_owned(),
            }),
            Err(e) => Err(Error::io("stat", dir)(e)),
        }
    }

    /// The bucket folder and the path of `key` in it.
    fn object_path(&self, bucket: &str, key: &str) -> Result<(PathBuf, PathBuf)> {
        let dir = self.bucket_dir(bucket)?;
        let path = key_path(&dir, key)?;
        layout::check_no_links(&dir, &path, key)?;
        Ok((dir, path))
    }
}

fn remove_stale_temps(tmp_dir: &Path) {
    let Ok(entries) = fs::read_dir(tmp_dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP_AGE);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Runs filesystem work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn no_such_key(bucket: &str, key: &str) -> Error {
    Error::NoSuchKey {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
}

fn bucket_info(name: String, md: &fs::Metadata) -> BucketInfo {
    let created = md
        .created()
        .or_else(|_| md.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    BucketInfo { name, created }
}

#[async_trait]
impl Backend for LocalBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            file_and_folder_with_same_name: true,
        }
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let root = self.inner.root.clone();
        blocking(move || {
            let mut buckets = Vec::new();
            for entry in fs::read_dir(&root).map_err(Error::io("list", &root))? {
                let entry = entry.map_err(Error::io("list", &root))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let Ok(md) = entry.metadata() else { continue };
                if md.is_dir() && check_bucket_name(&name).is_ok() {
                    buckets.push(bucket_info(name, &md));
                }
            }
            buckets.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(buckets)
        })
        .await
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        check_bucket_name(bucket)?;
        let dir = self.inner.root.join(bucket);
        let bucket = bucket.to_owned();
        blocking(move || match fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::BucketExists { bucket })
            }
            Err(e) => Err(Error::io("create", dir)(e)),
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        let dir = self.bucket_dir(bucket)?;
        let bucket = bucket.to_owned();
        blocking(move || {
            // Only folders are removed, deepest first; any file left means "not empty",
            // so an object written meanwhile is never lost.
            remove_empty_tree(&dir).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTEMPTY | libc::EEXIST) => Error::BucketNotEmpty { bucket },
                _ => Error::io("remove", &dir)(e),
            })
        })
        .await
    }

    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo> {
        let dir = self.bucket_dir(bucket)?;
        let md = fs::metadata(&dir).map_err(Error::io("stat", &dir))?;
        Ok(bucket_info(bucket.to_owned(), &md))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let (_, path) = self.object_path(bucket, key)?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        blocking(move || {
            let (mut file, data) = open_object(&path)
                .map_err(Error::io("open", &path))?
                .ok_or_else(|| no_such_key(&bucket, &key))?;
            object_meta(key, &mut file).map_err(Error::io("read", data))
        })
        .await
    }

    async fn get(&self, bucket: &str, key: &str, range: Option<RangeRequest>) -> Result<GetResult> {
        let (_, path) = self.object_path(bucket, key)?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let (file, data, meta) = blocking(move || {
            let (mut file, data) = open_object(&path)
                .map_err(Error::io("open", &path))?
                .ok_or_else(|| no_such_key(&bucket, &key))?;
            let meta = object_meta(key, &mut file).map_err(Error::io("read", &data))?;
            Ok((file, data, meta))
        })
        .await?;
        let range = match range {
            None => 0..meta.size,
            Some(r) => r
                .resolve(meta.size)
                .ok_or(Error::RangeNotSatisfiable { size: meta.size })?,
        };
        let mut file = tokio::fs::File::from_std(file);
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(Error::io("seek", &data))?;
        let body = ReaderStream::with_capacity(file.take(range.end - range.start), READ_CHUNK);
        Ok(GetResult {
            meta,
            range,
            body: body.boxed(),
        })
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
    ) -> Result<Box<dyn ObjectWriter>> {
        let (dir, path) = self.object_path(bucket, key)?;
        let writer = LocalWriter::start(
            self.inner.clone(),
            dir,
            key.to_owned(),
            path,
            !opts.etag_given,
        )?;
        Ok(Box::new(writer))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let (dir, path) = self.object_path(bucket, key)?;
        let inner = self.inner.clone();
        blocking(move || {
            let Some((_, data)) = open_object(&path).map_err(Error::io("open", &path))? else {
                return Ok(());
            };
            match fs::remove_file(&data) {
                Ok(()) => {}
                Err(e) if is_missing(&e) => return Ok(()),
                Err(e) => return Err(Error::io("remove", &data)(e)),
            }
            if let Some(parent) = data.parent() {
                if inner.durable {
                    layout::sync_dir(parent).map_err(Error::io("fsync", parent))?;
                }
                prune_empty(&dir, parent);
            }
            Ok(())
        })
        .await
    }

    async fn copy(
        &self,
        src: (&str, &str),
        dst: (&str, &str),
        attrs: Option<ObjectAttrs>,
    ) -> Result<ObjectMeta> {
        let (_, src_path) = self.object_path(src.0, src.1)?;
        let (dst_dir, dst_path) = self.object_path(dst.0, dst.1)?;
        let (src_bucket, src_key) = (src.0.to_owned(), src.1.to_owned());
        let dst_key = dst.1.to_owned();
        let inner = self.inner.clone();
        blocking(move || {
            let (mut file, data) = open_object(&src_path)
                .map_err(Error::io("open", &src_path))?
                .ok_or_else(|| no_such_key(&src_bucket, &src_key))?;
            let meta = object_meta(src_key, &mut file).map_err(Error::io("read", &data))?;
            let mut temp = TempFile::create(&inner.tmp_dir)?;
            // Seek back: computing a missing ETag may have read the file.
            std::io::Seek::rewind(&mut file).map_err(Error::io("read", &data))?;
            std::io::copy(&mut file, &mut temp.file).map_err(Error::io("copy", &data))?;
            let opts = CommitOptions {
                attrs: attrs.unwrap_or(meta.attrs),
                ..CommitOptions::default()
            };
            install(&inner, &dst_dir, dst_key, &dst_path, temp, meta.etag, opts)
        })
        .await
    }

    async fn list(&self, bucket: &str, opts: &ListOptions) -> Result<ListPage> {
        let dir = self.bucket_dir(bucket)?;
        let opts = opts.clone();
        let inner = self.inner.clone();
        blocking(move || walk::list_page(&inner.dir_cache, &dir, &opts)).await
    }
}

/// Removes a folder tree that holds only folders; fails with `ENOTEMPTY` on the first file.
fn remove_empty_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_empty_tree(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}
