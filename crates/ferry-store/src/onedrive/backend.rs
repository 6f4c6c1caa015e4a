//! A OneDrive folder as a [`Backend`]: its child folders are buckets, keys map to drive
//! paths ([`super::keys`]), listings and HEADs are answered from a delta-maintained index
//! ([`super::index`]) and S3's own metadata lives in a [`MetaStore`] (embedded, or Postgres
//! for several replicas).
//!
//! OneDrive cannot hold a file and a folder of one name: the data of a key that is also a
//! folder (`a` while `a/b` exists) lives in `a/‛self`; writing `a/b` while the file `a`
//! exists moves that file there first.
//!
//! Writes are spooled to a private folder on disk (never held in memory) and sent to Graph
//! at commit, so an object becomes visible whole and at once, or not at all.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use ferry_graph::model::DriveItem;
use ferry_graph::{Conflict, GraphClient, SIMPLE_UPLOAD_MAX, StreamingUpload};
use futures::StreamExt as _;
use md5::{Digest as _, Md5};
use tokio::io::AsyncWriteExt as _;

use super::index::DriveIndex;
use super::keys::{KeyError, SELF_NAME, encode_key};
pub use super::meta::MetaStore;
use super::meta::Record;
use crate::backend::{
    Backend, BucketInfo, Capabilities, CommitOptions, GetResult, ListEntry, ListOptions, ListPage,
    ObjectAttrs, ObjectMeta, ObjectWriter, PutOptions, RangeRequest, WriteCondition,
};
use crate::error::{Error, Result};
use crate::names::{check_bucket_name, check_key};

/// How long a listing may trail changes made in OneDrive itself, by default.
pub const DEFAULT_FRESHNESS: Duration = Duration::from_secs(5);

/// The backend; clones share one index, metadata store and spool.
#[derive(Debug, Clone)]
pub struct OneDriveBackend(Arc<Shared>);

impl std::ops::Deref for OneDriveBackend {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug)]
pub struct Shared {
    graph: GraphClient,
    /// The drive folder whose child folders are the buckets, without slashes at the ends.
    root: String,
    index: Mutex<DriveIndex>,
    /// One delta round at a time; when it last ran.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    freshness: Duration,
    meta: MetaStore,
    spool: PathBuf,
}

impl OneDriveBackend {
    /// A backend over `root` in the client's drive, keeping an embedded metadata store and
    /// spooled writes under `state` (created 0700).
    pub fn open(graph: GraphClient, root: &str, state: &Path) -> Result<Self> {
        let meta = MetaStore::embedded(&state.join("meta.redb"))?;
        Self::open_with(graph, root, state, DEFAULT_FRESHNESS, meta)
    }

    /// [`open`](Self::open), with how long a listing may trail changes made in OneDrive
    /// itself (writes through this backend show at once) and where metadata is kept.
    pub fn open_with(
        graph: GraphClient,
        root: &str,
        state: &Path,
        freshness: Duration,
        meta: MetaStore,
    ) -> Result<Self> {
        let spool = state.join("spool");
        make_private_dir(&spool)?;
        let root = root.trim_matches('/').to_owned();
        Ok(Self(Arc::new(Shared {
            graph,
            index: Mutex::new(DriveIndex::new(&root)),
            root,
            refreshed: tokio::sync::Mutex::new(None),
            freshness,
            meta,
            spool,
        })))
    }
}

impl Shared {
    /// Brings the index up to date with one delta round if it is older than the bound.
    async fn fresh(&self) -> Result<()> {
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_some_and(|at| at.elapsed() < self.freshness) {
            return Ok(());
        }
        let cursor = self.index().cursor().map(str::to_owned);
        let delta = self.graph.delta(cursor.as_deref()).await.map_err(graph)?;
        self.index().apply(&delta);
        *refreshed = Some(Instant::now());
        Ok(())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, DriveIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The drive path of a bucket or of a path below it.
    fn drive_path(&self, bucket_path: &str) -> String {
        if self.root.is_empty() {
            bucket_path.to_owned()
        } else {
            format!("{}/{bucket_path}", self.root)
        }
    }

    async fn bucket(&self, bucket: &str) -> Result<DriveItem> {
        self.fresh().await?;
        self.index()
            .folder(bucket)
            .cloned()
            .ok_or_else(|| Error::NoSuchBucket {
                bucket: bucket.to_owned(),
            })
    }

    /// The file holding `bucket/key`, after checking both.
    async fn file(&self, bucket: &str, key: &str) -> Result<DriveItem> {
        check_key(key)?;
        self.bucket(bucket).await?;
        self.index()
            .get(&format!("{bucket}/{key}"))
            .cloned()
            .ok_or_else(|| no_such_key(bucket, key))
    }

    async fn object_meta(&self, key: &str, item: &DriveItem) -> Result<ObjectMeta> {
        let record = self.meta.get(&item.id, &version_of(item)).await?;
        Ok(object_meta(key, item, record))
    }

    /// Makes room for `bucket/key`: each of its ancestors that is a file becomes a folder
    /// holding that file as `‛self`. Returns the bucket path to write the key's data to and
    /// the index key of the folder it goes into.
    async fn prepare(&self, bucket: &str, key: &str) -> Result<(String, String)> {
        let encoded = encode(key)?;
        let segments: Vec<&str> = key.split('/').collect();
        let mut parent = bucket.to_owned();
        for segment in &segments[..segments.len() - 1] {
            let path = format!("{parent}/{segment}");
            let blocking = self.index().get(&path).cloned();
            if let Some(file) = blocking
                && self.index().folder(&path).is_none()
            {
                self.make_folder_of(&path, &file).await?;
            }
            parent = path;
        }
        let target = format!("{bucket}/{encoded}");
        let own = format!("{bucket}/{key}");
        Ok(if self.index().folder(&own).is_some() {
            (format!("{target}/{SELF_NAME}"), own)
        } else {
            (target, parent)
        })
    }

    /// Turns the file at `bucket/path` into a folder holding it as `‛self`.
    async fn make_folder_of(&self, key_path: &str, file: &DriveItem) -> Result<()> {
        let (bucket, key) = key_path.split_once('/').unwrap_or((key_path, ""));
        let drive = self.drive_path(&format!("{bucket}/{}", encode(key)?));
        // Out of the way under a name no key encodes to, then into the new folder.
        let aside = format!("{SELF_NAME}-{}", uuid::Uuid::new_v4().simple());
        self.graph
            .move_item(&file.id, None, Some(&aside))
            .await
            .map_err(graph)?;
        let folder = self.graph.create_folders(&drive).await.map_err(graph)?;
        let moved = self
            .graph
            .move_item(&file.id, Some(&folder.id), Some(SELF_NAME))
            .await
            .map_err(graph)?;
        let mut index = self.index();
        index.put(&drive, folder);
        index.put(&format!("{drive}/{SELF_NAME}"), moved);
        Ok(())
    }

    /// Fails unless `condition` holds for what is at `bucket/key` now.
    async fn check_condition(
        &self,
        bucket: &str,
        key: &str,
        condition: Option<&WriteCondition>,
    ) -> Result<()> {
        let Some(condition) = condition else {
            return Ok(());
        };
        let current = match self.file(bucket, key).await {
            Ok(item) => Some(self.object_meta(key, &item).await?.etag),
            Err(Error::NoSuchKey { .. }) => None,
            Err(e) => return Err(e),
        };
        let met = match (condition, &current) {
            (WriteCondition::IfNoneExists, None) => true,
            (WriteCondition::IfMatch(want), Some(etag)) => want == "*" || want == etag,
            _ => false,
        };
        if met {
            Ok(())
        } else {
            Err(Error::PreconditionFailed {
                key: key.to_owned(),
            })
        }
    }

    /// Uploads a spooled object to `bucket/key`; returns its drive path and item.
    async fn commit_spooled(
        &self,
        bucket: &str,
        key: &str,
        spool: &Path,
    ) -> Result<(String, DriveItem)> {
        let target = self.drive_path(&self.prepare(bucket, key).await?.0);
        let item = self
            .graph
            .upload_file(spool, &target, Conflict::Replace)
            .await
            .map_err(graph)?;
        Ok((target, item))
    }

    /// Opens an upload session for `bucket/key` that its bytes stream into.
    async fn open_stream(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
    ) -> Result<(String, StreamingUpload)> {
        let (target, folder) = self.prepare(bucket, key).await?;
        let target = self.drive_path(&target);
        // An upload session needs its folder; one the index knows is there already.
        if self.index().folder(&folder).is_none()
            && let Some((parent, _)) = target.rsplit_once('/')
        {
            let folder = self.graph.create_folders(parent).await.map_err(graph)?;
            self.index().put(parent, folder);
        }
        // Should the folder have gone away in OneDrive since, the client makes it again.
        let upload = self
            .graph
            .upload_stream(&target, size, Conflict::Replace)
            .await
            .map_err(graph)?;
        Ok((target, upload))
    }

    /// Records a committed object: its metadata, and the index entry that makes it visible
    /// to listings at once.
    async fn record(
        &self,
        key: &str,
        target: &str,
        item: DriveItem,
        etag: String,
        attrs: ObjectAttrs,
    ) -> Result<ObjectMeta> {
        let record = Record {
            version: version_of(&item),
            etag,
            attrs,
        };
        self.meta.put(&item.id, &record).await?;
        let meta = object_meta(key, &item, Some(record));
        self.index().put(target, item);
        Ok(meta)
    }
}

#[async_trait]
impl Backend for OneDriveBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            file_and_folder_with_same_name: true,
        }
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        self.fresh().await?;
        Ok(self
            .index()
            .top_folders()
            .map(|(name, item)| BucketInfo {
                name: name.to_owned(),
                created: created(item),
            })
            .collect())
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        check_bucket_name(bucket)?;
        if self.bucket(bucket).await.is_ok() {
            return Err(Error::BucketExists {
                bucket: bucket.to_owned(),
            });
        }
        let drive = self.drive_path(bucket);
        let folder = self.graph.create_folders(&drive).await.map_err(graph)?;
        self.index().put(&drive, folder);
        Ok(())
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        let folder = self.bucket(bucket).await?;
        if self
            .index()
            .range(&format!("{bucket}/"), None)
            .next()
            .is_some()
        {
            return Err(Error::BucketNotEmpty {
                bucket: bucket.to_owned(),
            });
        }
        self.graph.delete(&folder.id).await.map_err(graph)?;
        self.index().remove_tree(bucket);
        Ok(())
    }

    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo> {
        let folder = self.bucket(bucket).await?;
        Ok(BucketInfo {
            name: bucket.to_owned(),
            created: created(&folder),
        })
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let item = self.file(bucket, key).await?;
        self.object_meta(key, &item).await
    }

    async fn get(&self, bucket: &str, key: &str, range: Option<RangeRequest>) -> Result<GetResult> {
        let item = self.file(bucket, key).await?;
        let meta = self.object_meta(key, &item).await?;
        let range = match range {
            Some(r) => r
                .resolve(meta.size)
                .ok_or(Error::RangeNotSatisfiable { size: meta.size })?,
            None => 0..meta.size,
        };
        let body = if range.is_empty() {
            futures::stream::empty().boxed()
        } else {
            let asked = (range != (0..meta.size)).then(|| range.clone());
            self.graph
                .download_version_range(&item, asked)
                .await
                .map_err(graph)?
                .map(|chunk| chunk.map_err(std::io::Error::other))
                .boxed()
        };
        Ok(GetResult { meta, range, body })
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
    ) -> Result<Box<dyn ObjectWriter>> {
        check_key(key)?;
        encode(key)?;
        self.bucket(bucket).await?;
        // A large object of known size streams straight into an upload session; others
        // (small ones go up in one request) wait in the spool.
        let sink = match opts.size_hint {
            Some(size) if size > SIMPLE_UPLOAD_MAX => {
                let (target, upload) = self.open_stream(bucket, key, size).await?;
                Sink::Stream { target, upload }
            }
            _ => Sink::Spool(Spool::create(&self.spool).await?),
        };
        Ok(Box::new(Writer {
            backend: self.0.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            sink: Some(sink),
            md5: Md5::new(),
        }))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let item = match self.file(bucket, key).await {
            Ok(item) => item,
            Err(Error::NoSuchKey { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.graph.delete(&item.id).await {
            Ok(()) => {}
            Err(e) if e.graph_code() == Some("itemNotFound") => {}
            Err(e) => return Err(graph(e)),
        }
        self.meta.remove(&item.id).await?;
        self.index().remove_file(&format!("{bucket}/{key}"));
        Ok(())
    }

    async fn copy(
        &self,
        src: (&str, &str),
        dst: (&str, &str),
        attrs: Option<ObjectAttrs>,
    ) -> Result<ObjectMeta> {
        let item = self.file(src.0, src.1).await?;
        let source = self.object_meta(src.1, &item).await?;
        let attrs = attrs.unwrap_or(source.attrs);
        if src == dst {
            let record = Record {
                version: version_of(&item),
                etag: source.etag,
                attrs,
            };
            self.meta.put(&item.id, &record).await?;
            return Ok(object_meta(dst.1, &item, Some(record)));
        }
        check_key(dst.1)?;
        self.bucket(dst.0).await?;
        // Through the gateway's spool: Graph's copy cannot replace an existing file.
        let mut spool = Spool::create(&self.spool).await?;
        let mut body = self.get(src.0, src.1, None).await?.body;
        while let Some(chunk) = body.next().await {
            spool
                .write(&chunk.map_err(Error::io("read", &spool.path))?)
                .await?;
        }
        spool.flush().await?;
        let (target, item) = self.commit_spooled(dst.0, dst.1, &spool.path).await?;
        self.record(dst.1, &target, item, source.etag, attrs).await
    }

    async fn list(&self, bucket: &str, opts: &ListOptions) -> Result<ListPage> {
        self.bucket(bucket).await?;
        let base = format!("{bucket}/");
        let prefix = format!("{base}{}", opts.prefix);
        let after = opts.start_after.as_ref().map(|a| format!("{base}{a}"));
        let mut page = ListPage::default();
        if opts.max_keys == 0 {
            return Ok(page);
        }
        let items: Vec<(String, DriveItem)> = {
            let index = self.index();
            let mut found = Vec::new();
            let mut skip_under: Option<String> = None;
            for (path, item) in index.range(&prefix, after.as_deref()) {
                let key = &path[base.len()..];
                if let Some(common) = &skip_under
                    && key.starts_with(common.as_str())
                {
                    continue;
                }
                if let Some(common) = opts.rolled_prefix(key) {
                    skip_under = Some(common.clone());
                    // A prefix at or before the marker was returned on an earlier page.
                    if opts
                        .start_after
                        .as_deref()
                        .is_some_and(|a| common.as_str() <= a)
                    {
                        continue;
                    }
                    found.push((common, DriveItem::default()));
                } else {
                    found.push((key.to_owned(), item.clone()));
                }
                if found.len() > opts.max_keys {
                    break;
                }
            }
            found
        };
        page.is_truncated = items.len() > opts.max_keys;
        let items = &items[..items.len().min(opts.max_keys)];
        // One metadata lookup for the whole page.
        let wanted: Vec<(&str, String)> = items
            .iter()
            .filter(|(_, item)| !item.id.is_empty())
            .map(|(_, item)| (item.id.as_str(), version_of(item)))
            .collect();
        let wanted: Vec<(&str, &str)> = wanted.iter().map(|(id, v)| (*id, v.as_str())).collect();
        let mut records = self.meta.get_many(&wanted).await?.into_iter();
        for (name, item) in items {
            let entry = if item.id.is_empty() {
                ListEntry::Prefix(name.clone())
            } else {
                ListEntry::Object(object_meta(name, item, records.next().flatten()))
            };
            page.entries.push(entry);
        }
        Ok(page)
    }
}

/// A spooled write's file, removed when dropped.
struct Spool {
    path: PathBuf,
    file: tokio::fs::File,
}

impl Spool {
    async fn create(dir: &Path) -> Result<Self> {
        let path = dir.join(format!("put-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create_new(&path)
            .await
            .map_err(Error::io("create", &path))?;
        Ok(Self { path, file })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.file
            .write_all(chunk)
            .await
            .map_err(Error::io("write", &self.path))
    }

    async fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .await
            .map_err(Error::io("write", &self.path))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where a write's bytes go until its commit.
enum Sink {
    Spool(Spool),
    /// A `deferCommit` upload session: nothing shows until it is committed.
    Stream {
        target: String,
        upload: StreamingUpload,
    },
}

struct Writer {
    backend: Arc<Shared>,
    bucket: String,
    key: String,
    /// Taken by the commit; a writer dropped with it still here gives its session back.
    sink: Option<Sink>,
    md5: Md5,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(Sink::Stream { upload, .. }) = self.sink.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = upload.cancel().await;
            });
        }
    }
}

#[async_trait]
impl ObjectWriter for Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.md5.update(&chunk);
        match &mut self.sink {
            Some(Sink::Spool(spool)) => spool.write(&chunk).await,
            Some(Sink::Stream { upload, .. }) => upload.write(&chunk).await.map_err(graph),
            None => Err(Error::Graph("the write was already committed".into())),
        }
    }

    async fn commit(mut self: Box<Self>, opts: CommitOptions) -> Result<ObjectMeta> {
        let md5: [u8; 16] = self.md5.finalize_reset().into();
        if opts.expected_md5.is_some_and(|want| want != md5) {
            return Err(Error::BadDigest {
                key: self.key.clone(),
            });
        }
        let etag = opts.etag.unwrap_or_else(|| hex::encode(md5));
        let backend = self.backend.clone();
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        backend
            .check_condition(&bucket, &key, opts.condition.as_ref())
            .await?;
        let (target, item) = match self.sink.take() {
            Some(Sink::Spool(mut spool)) => {
                spool.flush().await?;
                backend.commit_spooled(&bucket, &key, &spool.path).await?
            }
            Some(Sink::Stream { target, upload }) => {
                let pending = upload.finish().await.map_err(graph)?;
                let item = pending.commit().await.map_err(graph)?;
                (target, item)
            }
            None => return Err(Error::Graph("the write was already committed".into())),
        };
        backend.record(&key, &target, item, etag, opts.attrs).await
    }
}

fn encode(key: &str) -> Result<String> {
    encode_key(key).map_err(|e| match e {
        KeyError::NameTooLong { .. } => Error::InvalidKey {
            key: key.to_owned(),
            reason: "a path segment is longer than OneDrive's 255 characters",
        },
        KeyError::PathTooLong { .. } => Error::InvalidKey {
            key: key.to_owned(),
            reason: "the drive path is longer than OneDrive's 400 characters",
        },
    })
}

/// An object's S3 view: from its record if it has one for this version; else (written in
/// OneDrive itself, or changed there since) with an entity tag of its own.
fn object_meta(key: &str, item: &DriveItem, record: Option<Record>) -> ObjectMeta {
    let (etag, attrs) = match record {
        Some(record) => (record.etag, record.attrs),
        None => (foreign_etag(item), ObjectAttrs::default()),
    };
    ObjectMeta {
        key: key.to_owned(),
        size: item.size.unwrap_or(0),
        etag,
        last_modified: modified(item),
        attrs,
    }
}

/// The content version a metadata record is kept for.
fn version_of(item: &DriveItem) -> String {
    item.c_tag
        .clone()
        .or_else(|| item.e_tag.clone())
        .unwrap_or_default()
}

/// An entity tag for a file the gateway did not write: its quickXorHash in hex (40
/// characters, so no client takes it for an MD5), else a digest of its content version.
fn foreign_etag(item: &DriveItem) -> String {
    item.quick_xor_hash()
        .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        .map(hex::encode)
        .unwrap_or_else(|| hex::encode(Md5::digest(version_of(item).as_bytes())))
}

fn modified(item: &DriveItem) -> SystemTime {
    parse_time(item.last_modified_date_time.as_deref())
}

fn created(item: &DriveItem) -> SystemTime {
    parse_time(item.created_date_time.as_deref())
}

fn parse_time(text: Option<&str>) -> SystemTime {
    text.and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn no_such_key(bucket: &str, key: &str) -> Error {
    Error::NoSuchKey {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
}

/// Graph's errors as storage errors: throttling that outlasted the client's retry budget
/// reaches S3 clients as `503 SlowDown`, so they back off and retry; a refused sign-in as
/// `503 ServiceUnavailable`.
fn graph(e: ferry_graph::Error) -> Error {
    match e {
        ferry_graph::Error::Throttled { retry_after, .. } => Error::SlowDown { retry_after },
        e @ (ferry_graph::Error::Identity { .. } | ferry_graph::Error::SignInExpired { .. }) => {
            Error::SignIn(e.to_string())
        }
        other => Error::Graph(other.to_string()),
    }
}

fn make_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("create", dir))
}
