//! Multipart uploads in progress, spooled to local disk until completed or aborted.
//!
//! The spool is itself a [`LocalBackend`] (bucket `uploads`, keys `<id>/manifest` and
//! `<id>/part-NNNNN`), so parts get the same atomic, fsynced writes and MD5 ETags as
//! objects. Any backend can then receive the finished object as one stream, which is what a
//! backend that needs the total size up front (a OneDrive upload session) requires.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_store::{
    Backend, BackendExt, ByteStream, ListEntry, ListOptions, LocalBackend, ObjectAttrs, ObjectMeta,
    ObjectWriter, PutOptions,
};
use serde::{Deserialize, Serialize};

use s3s::{S3Result, s3_error};

use crate::error::to_s3;

const BUCKET: &str = "uploads";
const MANIFEST: &str = "manifest";

/// What CreateMultipartUpload said, kept until the upload ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub bucket: String,
    pub key: String,
    pub attrs: ObjectAttrs,
    pub checksum_algorithm: Option<String>,
    /// Seconds since the epoch.
    pub initiated: u64,
}

impl Manifest {
    pub fn initiated_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.initiated)
    }
}

/// The multipart spool.
#[derive(Debug, Clone)]
pub struct Uploads {
    spool: Arc<LocalBackend>,
    max_age: Duration,
}

fn part_key(id: &str, part: i32) -> String {
    format!("{id}/part-{part:05}")
}

fn check_id(id: &str) -> S3Result<()> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(s3_error!(NoSuchUpload, "upload {id:?} does not exist"))
    }
}

impl Uploads {
    /// Opens the spool in `dir`; uploads not completed within `max_age` are removed by
    /// [`Uploads::sweep`].
    pub async fn open(
        dir: &std::path::Path,
        max_age: Duration,
        durable: bool,
    ) -> ferry_store::Result<Self> {
        let spool = LocalBackend::open(dir)?.with_durability(durable);
        match spool.create_bucket(BUCKET).await {
            Ok(()) | Err(ferry_store::Error::BucketExists { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            spool: Arc::new(spool),
            max_age,
        })
    }

    pub(crate) async fn create(&self, manifest: &Manifest) -> S3Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let body = serde_json::to_vec(manifest).map_err(|e| s3_error!(InternalError, "{e}"))?;
        self.spool
            .put_bytes(
                BUCKET,
                &format!("{id}/{MANIFEST}"),
                body,
                ObjectAttrs::default(),
            )
            .await
            .map_err(to_s3)?;
        Ok(id)
    }

    pub(crate) async fn manifest(&self, id: &str) -> S3Result<Manifest> {
        check_id(id)?;
        let raw = match self
            .spool
            .get_bytes(BUCKET, &format!("{id}/{MANIFEST}"))
            .await
        {
            Ok(raw) => raw,
            Err(ferry_store::Error::NoSuchKey { .. }) => {
                return Err(s3_error!(NoSuchUpload, "upload {id:?} does not exist"));
            }
            Err(e) => return Err(to_s3(e)),
        };
        serde_json::from_slice(&raw).map_err(|e| s3_error!(InternalError, "bad manifest: {e}"))
    }

    pub(crate) async fn part_writer(
        &self,
        id: &str,
        part: i32,
        size_hint: Option<u64>,
    ) -> S3Result<Box<dyn ObjectWriter>> {
        self.spool
            .put(
                BUCKET,
                &part_key(id, part),
                PutOptions {
                    size_hint,
                    ..PutOptions::default()
                },
            )
            .await
            .map_err(to_s3)
    }

    /// The stored parts of an upload, by part number.
    pub(crate) async fn parts(&self, id: &str) -> S3Result<Vec<(i32, ObjectMeta)>> {
        let opts = ListOptions {
            prefix: format!("{id}/part-"),
            ..ListOptions::default()
        };
        let entries = self.spool.list_all(BUCKET, &opts).await.map_err(to_s3)?;
        Ok(entries
            .into_iter()
            .filter_map(|e| match e {
                ListEntry::Object(meta) => {
                    let number = meta.key.rsplit('-').next()?.parse().ok()?;
                    Some((number, meta))
                }
                ListEntry::Prefix(_) => None,
            })
            .collect())
    }

    pub(crate) async fn part_body(&self, id: &str, part: i32) -> S3Result<ByteStream> {
        let got = self
            .spool
            .get(BUCKET, &part_key(id, part), None)
            .await
            .map_err(to_s3)?;
        Ok(got.body)
    }

    /// Removes an upload and its parts.
    pub(crate) async fn remove(&self, id: &str) -> S3Result<()> {
        for (part, _) in self.parts(id).await? {
            self.spool
                .delete(BUCKET, &part_key(id, part))
                .await
                .map_err(to_s3)?;
        }
        self.spool
            .delete(BUCKET, &format!("{id}/{MANIFEST}"))
            .await
            .map_err(to_s3)
    }

    /// Every upload in progress, ordered by id.
    pub(crate) async fn list(&self) -> S3Result<Vec<(String, Manifest)>> {
        let opts = ListOptions {
            delimiter: Some("/".into()),
            ..ListOptions::default()
        };
        let mut uploads = Vec::new();
        for entry in self.spool.list_all(BUCKET, &opts).await.map_err(to_s3)? {
            let ListEntry::Prefix(prefix) = entry else {
                continue;
            };
            let id = prefix.trim_end_matches('/');
            // An upload being created or removed right now has no manifest: skip it.
            if let Ok(manifest) = self.manifest(id).await {
                uploads.push((id.to_owned(), manifest));
            }
        }
        Ok(uploads)
    }

    /// Removes uploads older than the configured maximum age; returns how many.
    pub async fn sweep(&self) -> usize {
        let Ok(uploads) = self.list().await else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for (id, manifest) in uploads {
            let age = now
                .duration_since(manifest.initiated_time())
                .unwrap_or_default();
            if age > self.max_age && self.remove(&id).await.is_ok() {
                tracing::info!(upload_id = %id, bucket = %manifest.bucket, key = %manifest.key,
                    age_secs = age.as_secs(), "removed abandoned multipart upload");
                removed += 1;
            }
        }
        removed
    }

    /// How long an upload may stay unfinished.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}
