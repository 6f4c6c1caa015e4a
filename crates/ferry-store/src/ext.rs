//! Conveniences over [`Backend`] for callers that hold small objects in memory or want a
//! whole listing: tests, fixtures, tools. The gateway streams instead.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;

use crate::backend::{
    Backend, ByteStream, CommitOptions, ListEntry, ListOptions, ObjectAttrs, ObjectMeta, PutOptions,
};
use crate::error::{Error, Result};

#[async_trait]
pub trait BackendExt: Backend {
    /// Writes `data` under `key` in one go.
    async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes> + Send,
        attrs: ObjectAttrs,
    ) -> Result<ObjectMeta> {
        let data = data.into();
        let opts = PutOptions {
            size_hint: Some(data.len() as u64),
            ..PutOptions::default()
        };
        let mut writer = self.put(bucket, key, opts).await?;
        writer.write(data).await?;
        writer
            .commit(CommitOptions {
                attrs,
                ..CommitOptions::default()
            })
            .await
    }

    /// Reads a whole object into memory.
    async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Bytes> {
        let got = self.get(bucket, key, None).await?;
        collect(got.body, key).await
    }

    /// Every entry under `opts.prefix`, following pages of `opts.max_keys`.
    async fn list_all(&self, bucket: &str, opts: &ListOptions) -> Result<Vec<ListEntry>> {
        let mut opts = opts.clone();
        if opts.max_keys == 0 {
            opts.max_keys = 1000;
        }
        let mut all = Vec::new();
        loop {
            let page = self.list(bucket, &opts).await?;
            let last = page.entries.last().map(|e| e.name().to_owned());
            all.extend(page.entries);
            match last {
                Some(last) if page.is_truncated => opts.start_after = Some(last),
                _ => return Ok(all),
            }
        }
    }
}

impl<B: Backend + ?Sized> BackendExt for B {}

/// Reads a whole body into memory.
pub(crate) async fn collect(body: ByteStream, key: &str) -> Result<Bytes> {
    let body: BytesMut = body
        .map_err(|source| Error::Io {
            op: "read",
            path: key.into(),
            source,
        })
        .try_fold(BytesMut::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await?;
    Ok(body.freeze())
}
