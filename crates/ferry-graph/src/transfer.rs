//! Moving bytes: downloads that follow the pre-authenticated redirect without the token and
//! resume after a dropped connection; simple uploads; resumable upload sessions.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::client::{GraphClient, json};
use crate::error::{Error, Result};
use crate::http::Auth;
use crate::model::{DriveItem, UploadSession};
use crate::names::check_path;
use crate::quickxor::QuickXorHash;
use crate::resume::{Saved, Sessions};

/// Upload fragments must be multiples of 320 KiB; 32 of them make 10 MiB.
pub const FRAGMENT_UNIT: u64 = 327_680;
pub(crate) const FRAGMENT_SIZE: u64 = FRAGMENT_UNIT * 32;
/// Files up to this size go in one PUT; larger ones through an upload session.
pub const SIMPLE_UPLOAD_MAX: u64 = 4 * 1024 * 1024;
/// How often a broken download is resumed before giving up.
const DOWNLOAD_RESUMES: u32 = 5;

/// What to do when the target name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Fail,
    Replace,
    Rename,
}

impl Conflict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Replace => "replace",
            Self::Rename => "rename",
        }
    }
}

impl GraphClient {
    /// Resolves an item's `/content` to its pre-authenticated download URL.
    async fn download_url(&self, id: &str) -> Result<String> {
        let url = self.drive_url(&format!("/items/{id}/content"));
        let response = self
            .inner
            .transport
            .send("download", Auth::Bearer, |http| http.get(&url))
            .await?;
        match response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
        {
            Some(location) => Ok(location.to_owned()),
            None => Err(Error::protocol(format!(
                "{url} answered {} without a Location",
                response.status()
            ))),
        }
    }

    /// Opens the bytes `range` of an item (all of it for `None`). The token never goes to the
    /// pre-authenticated URL. A server that ignores the range (200 for a ranged request) is
    /// handled by skipping and truncating here.
    pub async fn download_range(
        &self,
        id: &str,
        range: Option<Range<u64>>,
    ) -> Result<impl futures::Stream<Item = Result<bytes::Bytes>> + Send + use<>> {
        let location = self.download_url(id).await?;
        self.open_download(location, range).await
    }

    /// [`download_range`](Self::download_range) for a known version of an item (its cTag):
    /// the download URL Graph gave for that version is reused for a few minutes, so a
    /// reader fetching many ranges of one file costs one Graph request, not one per range.
    pub async fn download_version_range(
        &self,
        item: &DriveItem,
        range: Option<Range<u64>>,
    ) -> Result<impl futures::Stream<Item = Result<bytes::Bytes>> + Send + use<>> {
        let key = item
            .c_tag
            .as_deref()
            .map(|version| format!("{}\n{version}", item.id));
        if let Some(key) = &key
            && let Some(url) = self.inner.download_urls.get(key)
        {
            match self.open_download(url, range.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    tracing::info!(error = %e, "a saved download URL failed; asking Graph for a new one");
                    self.inner.download_urls.forget(key);
                }
            }
        }
        let url = self.download_url(&item.id).await?;
        if let Some(key) = key {
            self.inner.download_urls.put(key, url.clone());
        }
        self.open_download(url, range).await
    }

    async fn open_download(
        &self,
        location: String,
        range: Option<Range<u64>>,
    ) -> Result<impl futures::Stream<Item = Result<bytes::Bytes>> + Send + use<>> {
        let response = self
            .inner
            .transport
            .send(crate::http::DOWNLOAD, Auth::PreAuthenticated, |http| {
                let request = http.get(&location);
                match &range {
                    Some(r) => request.header(
                        "range",
                        format!("bytes={}-{}", r.start, r.end.saturating_sub(1)),
                    ),
                    None => request,
                }
            })
            .await?;
        let (mut skip, mut take) = match (&range, response.status().as_u16()) {
            (Some(r), 200) => (r.start, r.end - r.start),
            (Some(r), _) => (0, r.end - r.start),
            (None, _) => (0, u64::MAX),
        };
        Ok(response.bytes_stream().filter_map(move |chunk| {
            let out = match chunk {
                Err(source) => Some(Err(Error::http(&location, source))),
                Ok(mut bytes) => {
                    let drop = skip.min(bytes.len() as u64) as usize;
                    skip -= drop as u64;
                    let _ = bytes.split_to(drop);
                    bytes.truncate(take.min(bytes.len() as u64) as usize);
                    take -= bytes.len() as u64;
                    (!bytes.is_empty()).then_some(Ok(bytes))
                }
            };
            std::future::ready(out)
        }))
    }

    /// Downloads a whole file to `dest`: resumes after a dropped connection, checks the bytes
    /// against OneDrive's quickXorHash, and only then renames the result into place.
    pub async fn download_file(&self, item: &DriveItem, dest: &Path) -> Result<u64> {
        let size = item.size.unwrap_or(0);
        let tmp = dest.with_extension(format!("ferry-part-{}", uuid::Uuid::new_v4().simple()));
        let io = |op| Error::io(op, tmp.display());
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io("create"))?;
        let mut hasher = QuickXorHash::new();
        let mut received = 0u64;
        let mut resumes = 0;
        let result = loop {
            let range = (received > 0).then_some(received..size);
            let mut stream = match self.download_range(&item.id, range).await {
                Ok(stream) => Box::pin(stream),
                Err(e) => break Err(e),
            };
            let mut failure = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        hasher.update(&bytes);
                        received += bytes.len() as u64;
                        if let Err(e) = file.write_all(&bytes).await {
                            failure = Some(io("write")(e));
                            break;
                        }
                        self.report(bytes.len() as u64);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            match failure {
                None if received >= size => break Ok(()),
                Some(e @ Error::Io { .. }) => break Err(e),
                _ if resumes < DOWNLOAD_RESUMES => {
                    resumes += 1;
                    tracing::info!(item = %item.id, received, size, "download interrupted; resuming");
                }
                Some(e) => break Err(e),
                None => break Err(Error::protocol("the download ended early, repeatedly")),
            }
        };
        let verified = result.and_then(|()| match item.quick_xor_hash() {
            Some(expected) if expected != hasher.finish_base64() => Err(Error::HashMismatch {
                path: item.name.clone(),
            }),
            _ => Ok(()),
        });
        let finished = async {
            verified?;
            file.sync_all().await.map_err(io("fsync"))?;
            tokio::fs::rename(&tmp, dest).await.map_err(io("rename"))
        }
        .await;
        if finished.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        finished.map(|()| received)
    }

    /// After a write to `path` failed with `itemNotFound` (`refused`): creates its parent
    /// folders, or gives `refused` back if `path` has no parent.
    pub(crate) async fn create_parent(&self, path: &str, refused: Error) -> Result<()> {
        match path.trim_matches('/').rsplit_once('/') {
            Some((parent, _)) => self.create_folders(parent).await.map(drop),
            None => Err(refused),
        }
    }

    /// Creates every missing folder of `path`; returns the last one. Looks for the deepest
    /// existing folder first, so a path that exists costs one request.
    pub async fn create_folders(&self, path: &str) -> Result<DriveItem> {
        let path = path.trim_matches('/');
        check_path(path)?;
        let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
        let mut existing = names.len();
        let mut parent = loop {
            match self.item_by_path(&names[..existing].join("/")).await {
                Ok(item) => break item,
                Err(e) if e.graph_code() == Some("itemNotFound") && existing > 0 => existing -= 1,
                Err(e) => return Err(e),
            }
        };
        for depth in existing..names.len() {
            let url = self.drive_url(&format!("/items/{}/children", parent.id));
            let body = json!({"name": names[depth], "folder": {}, "@microsoft.graph.conflictBehavior": "fail"});
            parent = match self
                .post_json::<DriveItem>("create folder", &url, &body)
                .await
            {
                Ok(item) => item,
                // Made by someone else meanwhile: use theirs.
                Err(e) if e.graph_code() == Some("nameAlreadyExists") => {
                    self.item_by_path(&names[..=depth].join("/")).await?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(parent)
    }

    pub(crate) async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        let response = self
            .inner
            .transport
            .send(what, Auth::Bearer, |http| http.post(url).json(body))
            .await?;
        json(url, response).await
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let url = self.drive_url(&format!("/items/{id}"));
        self.inner
            .transport
            .send("delete", Auth::Bearer, |http| http.delete(&url))
            .await?;
        Ok(())
    }

    /// Moves and/or renames an item.
    pub async fn move_item(
        &self,
        id: &str,
        new_parent_id: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<DriveItem> {
        if let Some(name) = new_name {
            crate::names::check_name(name)?;
        }
        let mut body = serde_json::Map::new();
        if let Some(name) = new_name {
            body.insert("name".into(), json!(name));
        }
        if let Some(parent) = new_parent_id {
            body.insert("parentReference".into(), json!({"id": parent}));
        }
        let url = self.drive_url(&format!("/items/{id}"));
        let body = serde_json::Value::Object(body);
        let response = self
            .inner
            .transport
            .send("move", Auth::Bearer, |http| http.patch(&url).json(&body))
            .await?;
        json(&url, response).await
    }

    /// Copies an item into the folder `parent_id` (under `name`, or its own name), waiting on
    /// Graph's 202 monitor until the copy exists; returns the new item.
    pub async fn copy_item(
        &self,
        id: &str,
        parent_id: &str,
        name: Option<&str>,
    ) -> Result<DriveItem> {
        if let Some(name) = name {
            crate::names::check_name(name)?;
        }
        let url = self.drive_url(&format!("/items/{id}/copy"));
        let mut body = json!({"parentReference": {"id": parent_id}});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let response = self
            .inner
            .transport
            .send("copy", Auth::Bearer, |http| http.post(&url).json(&body))
            .await?;
        let monitor = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::protocol("a copy was accepted without a monitor URL"))?;
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            // The monitor URL is pre-authenticated.
            let status: serde_json::Value = self
                .get_json_pre_authenticated("copy status", &monitor)
                .await?;
            match status["status"].as_str() {
                Some("completed") => {
                    let new_id = status["resourceId"]
                        .as_str()
                        .ok_or_else(|| Error::protocol("a completed copy named no resourceId"))?;
                    return self.item(new_id).await;
                }
                Some("failed") => {
                    return Err(Error::protocol(format!(
                        "the copy failed: {}",
                        status["error"]
                    )));
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    /// Uploads a local file to `path`, in one request when small, else through a resumable
    /// upload session; missing parent folders are created. The result's quickXorHash is
    /// checked against the bytes sent.
    pub async fn upload_file(
        &self,
        local: &Path,
        path: &str,
        conflict: Conflict,
    ) -> Result<DriveItem> {
        check_path(path.trim_matches('/'))?;
        match self.upload_file_once(local, path, conflict).await {
            Err(e) if e.graph_code() == Some("itemNotFound") => {
                self.create_parent(path, e).await?;
                self.upload_file_once(local, path, conflict).await
            }
            result => result,
        }
    }

    /// Sends a local file into an upload session with `deferCommit`: the bytes are all with
    /// OneDrive, but no file appears at `path` until [`PendingUpload::commit`], which makes
    /// it appear at once (or [`PendingUpload::cancel`] discards it). The parent folder must
    /// exist.
    pub async fn upload_file_deferred(
        &self,
        local: &Path,
        path: &str,
        conflict: Conflict,
    ) -> Result<PendingUpload> {
        check_path(path.trim_matches('/'))?;
        let io = |op| Error::io(op, local.display());
        let mut file = tokio::fs::File::open(local).await.map_err(io("open"))?;
        let meta = file.metadata().await.map_err(io("stat"))?;
        if meta.len() == 0 {
            return Err(Error::protocol("an upload session needs at least one byte"));
        }
        let session = self
            .create_session(path, conflict, meta.modified().ok(), true)
            .await?;
        let pending = PendingUpload {
            client: self.clone(),
            upload_url: session.upload_url.clone(),
            path: path.to_owned(),
            sent_hash: String::new(),
        };
        match self
            .send_fragments(&mut file, meta.len(), path, &session)
            .await
        {
            Ok((None, sent_hash)) => Ok(PendingUpload {
                sent_hash,
                ..pending
            }),
            Ok((Some(_), _)) => Err(Error::protocol(
                "the upload session committed without waiting for the commit",
            )),
            Err(e) => {
                let _ = pending.cancel().await;
                Err(e)
            }
        }
    }

    async fn upload_file_once(
        &self,
        local: &Path,
        path: &str,
        conflict: Conflict,
    ) -> Result<DriveItem> {
        let io = |op| Error::io(op, local.display());
        let mut file = tokio::fs::File::open(local).await.map_err(io("open"))?;
        let size = file.metadata().await.map_err(io("stat"))?.len();
        let (item, sent_hash) = if size <= SIMPLE_UPLOAD_MAX {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).await.map_err(io("read"))?;
            let mut hasher = QuickXorHash::new();
            hasher.update(&data);
            let url = format!(
                "{}?@microsoft.graph.conflictBehavior={}",
                self.path_url(path, "/content"),
                conflict.as_str()
            );
            let data = bytes::Bytes::from(data);
            let response = self
                .inner
                .transport
                .send("upload", Auth::Bearer, |http| {
                    http.put(&url).body(data.clone())
                })
                .await?;
            let item = json::<DriveItem>(&url, response).await?;
            self.report(size);
            (item, hasher.finish_base64())
        } else {
            self.upload_session(&mut file, local, size, path, conflict)
                .await?
        };
        match item.quick_xor_hash() {
            Some(got) if got != sent_hash => Err(Error::HashMismatch {
                path: path.to_owned(),
            }),
            _ => Ok(item),
        }
    }

    async fn upload_session(
        &self,
        file: &mut tokio::fs::File,
        local: &Path,
        size: u64,
        path: &str,
        conflict: Conflict,
    ) -> Result<(DriveItem, String)> {
        let modified = file.metadata().await.ok().and_then(|m| m.modified().ok());
        let saved = self.inner.sessions.as_ref().map(|sessions| {
            let key = Sessions::key(
                &self.inner.drive_path,
                path,
                local,
                size,
                modified.unwrap_or(std::time::UNIX_EPOCH),
            );
            (sessions, key)
        });
        let session = match &saved {
            Some((sessions, key)) => match self.saved_session(sessions, key, path).await {
                Some(session) => session,
                None => {
                    let session = self.create_session(path, conflict, modified, false).await?;
                    let record = Saved {
                        upload_url: session.upload_url.clone(),
                        expiration: session.expiration_date_time.clone(),
                    };
                    sessions.save(key, &record);
                    session
                }
            },
            None => self.create_session(path, conflict, modified, false).await?,
        };
        let result = match self.send_fragments(file, size, path, &session).await {
            Ok((Some(item), hash)) => Ok((item, hash)),
            Ok((None, _)) => Err(Error::protocol("the upload session ended without a file")),
            Err(e) => Err(e),
        };
        match (&result, &saved) {
            (Err(e), Some(_)) if e.is_transient() => {
                tracing::info!(path, error = %e, "upload interrupted; running it again resumes from the saved session");
            }
            (Err(_), _) => {
                // Give the session back rather than leave it to expire.
                let _ = self.cancel_session(&session.upload_url).await;
                if let Some((sessions, key)) = &saved {
                    sessions.remove(key);
                }
            }
            (Ok(_), Some((sessions, key))) => sessions.remove(key),
            (Ok(_), None) => {}
        }
        result
    }

    pub(crate) async fn create_session(
        &self,
        path: &str,
        conflict: Conflict,
        modified: Option<std::time::SystemTime>,
        defer_commit: bool,
    ) -> Result<UploadSession> {
        let url = self.path_url(path, "/createUploadSession");
        let mut item = json!({"@microsoft.graph.conflictBehavior": conflict.as_str()});
        // The local modification time travels with the upload, so OneDrive shows when the
        // file changed rather than when it was uploaded.
        if let Some(modified) = modified.and_then(rfc3339) {
            item["fileSystemInfo"] = json!({"lastModifiedDateTime": modified});
        }
        let mut body = json!({"item": item});
        if defer_commit {
            body["deferCommit"] = json!(true);
        }
        self.post_json("create upload session", &url, &body).await
    }

    pub(crate) async fn cancel_session(&self, upload_url: &str) -> Result<()> {
        self.inner
            .transport
            .send("cancel upload session", Auth::PreAuthenticated, |http| {
                http.delete(upload_url)
            })
            .await
            .map(drop)
    }

    /// A session saved by an earlier, interrupted run of this upload, if Graph still has it.
    async fn saved_session(
        &self,
        sessions: &Sessions,
        key: &str,
        path: &str,
    ) -> Option<UploadSession> {
        let saved = sessions.load(key)?;
        let status = self
            .get_json_pre_authenticated::<UploadSession>("upload session status", &saved.upload_url)
            .await;
        match status {
            Ok(mut status) => {
                tracing::info!(
                    path,
                    offset = next_offset(&status, 0),
                    "resuming an interrupted upload from its saved session"
                );
                status.upload_url = saved.upload_url;
                Some(status)
            }
            Err(e) => {
                tracing::info!(path, error = %e, "the saved upload session is gone; starting over");
                sessions.remove(key);
                None
            }
        }
    }

    /// Sends a file's fragments to a session, resuming where the session says it stands.
    async fn send_fragments(
        &self,
        file: &mut tokio::fs::File,
        size: u64,
        path: &str,
        session: &UploadSession,
    ) -> Result<(Option<DriveItem>, String)> {
        let io = |op| Error::io(op, path);
        let mut hasher = QuickXorHash::new();
        let mut hashed = 0u64;
        // A resumed session already holds the start of the file.
        let mut offset = next_offset(session, 0).min(size);
        let mut acknowledged = offset;
        self.report(offset);
        let mut buf = vec![0u8; FRAGMENT_SIZE as usize];
        // Fragments that failed in a row even after the transport's retries.
        let mut failures = 0;
        loop {
            // The hash covers the whole file: catch up on bytes an earlier run sent.
            while hashed < offset {
                let n = (offset - hashed).min(FRAGMENT_SIZE) as usize;
                file.seek(std::io::SeekFrom::Start(hashed))
                    .await
                    .map_err(io("seek"))?;
                file.read_exact(&mut buf[..n]).await.map_err(io("read"))?;
                hasher.update(&buf[..n]);
                hashed += n as u64;
            }
            let len = (size - offset).min(FRAGMENT_SIZE) as usize;
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(io("seek"))?;
            file.read_exact(&mut buf[..len]).await.map_err(io("read"))?;
            // Hash each byte once, in order, even when the session sends us back a little.
            let end = offset + len as u64;
            if offset <= hashed && end > hashed {
                hasher.update(&buf[(hashed - offset) as usize..len]);
                hashed = end;
            }
            let fragment = bytes::Bytes::copy_from_slice(&buf[..len]);
            let range = format!("bytes {offset}-{}/{size}", offset + len as u64 - 1);
            let sent = self
                .inner
                .transport
                .send("upload fragment", Auth::PreAuthenticated, |http| {
                    http.put(&session.upload_url)
                        .header("content-range", &range)
                        .body(fragment.clone())
                })
                .await;
            match sent {
                Ok(response) if response.status().as_u16() == 202 => {
                    failures = 0;
                    let status: UploadSession = json(&session.upload_url, response).await?;
                    offset = next_offset(&status, offset + len as u64);
                    if offset > acknowledged {
                        self.report(offset - acknowledged);
                        acknowledged = offset;
                    }
                    if offset >= size {
                        // All bytes are in a `deferCommit` session, waiting for the commit.
                        return Ok((None, hasher.finish_base64()));
                    }
                }
                Ok(response) => {
                    let item: DriveItem = json(&session.upload_url, response).await?;
                    self.report(size.saturating_sub(acknowledged));
                    return Ok((Some(item), hasher.finish_base64()));
                }
                Err(e)
                    if failures < MAX_FRAGMENT_FAILURES
                        && (e.status() == Some(416) || e.is_transient()) =>
                {
                    failures += 1;
                    // Ask the session where to go on.
                    let status: UploadSession = self
                        .get_json_pre_authenticated("upload session status", &session.upload_url)
                        .await?;
                    tracing::info!(
                        path,
                        offset,
                        "upload fragment failed; resuming from the session's next expected range"
                    );
                    offset = next_offset(&status, offset);
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) async fn get_json_pre_authenticated<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
    ) -> Result<T> {
        let response = self
            .inner
            .transport
            .send(what, Auth::PreAuthenticated, |http| http.get(url))
            .await?;
        json(url, response).await
    }
}

/// After this many fragments in a row fail (each after the transport's own retries), the
/// upload gives up; with saved sessions, running it again resumes.
pub(crate) const MAX_FRAGMENT_FAILURES: u32 = 3;

/// A time as RFC 3339 (`2024-06-01T09:15:31Z`), as Graph writes them.
fn rfc3339(t: std::time::SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The offset a session expects next: the start of its first expected range.
pub(crate) fn next_offset(status: &UploadSession, fallback: u64) -> u64 {
    status
        .next_expected_ranges
        .first()
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(fallback)
}

/// An upload sent with `deferCommit`, waiting to become a file.
#[derive(Debug)]
pub struct PendingUpload {
    pub(crate) client: GraphClient,
    pub(crate) upload_url: String,
    pub(crate) path: String,
    pub(crate) sent_hash: String,
}

impl PendingUpload {
    /// Makes the file appear at its path; its quickXorHash is checked against the bytes sent.
    pub async fn commit(self) -> Result<DriveItem> {
        let response = self
            .client
            .inner
            .transport
            .send("commit upload session", Auth::PreAuthenticated, |http| {
                http.post(&self.upload_url).header("content-length", "0")
            })
            .await?;
        let item: DriveItem = json(&self.upload_url, response).await?;
        match item.quick_xor_hash() {
            Some(got) if got != self.sent_hash => Err(Error::HashMismatch { path: self.path }),
            _ => Ok(item),
        }
    }

    /// Discards the uploaded bytes.
    pub async fn cancel(self) -> Result<()> {
        self.client.cancel_session(&self.upload_url).await
    }
}

/// Download URLs Graph handed out, by item id and version, with when: reused for
/// [`DownloadUrls::REUSE`] (Graph's pre-authenticated URLs stay valid for about an hour).
#[derive(Debug, Default)]
pub(crate) struct DownloadUrls(std::sync::Mutex<HashMap<String, (String, Instant)>>);

impl DownloadUrls {
    const REUSE: Duration = Duration::from_secs(300);
    /// Past this many, expired entries are dropped (and all of them if none has).
    const MAX: usize = 10_000;

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &str) -> Option<String> {
        self.map()
            .get(key)
            .filter(|(_, at)| at.elapsed() < Self::REUSE)
            .map(|(url, _)| url.clone())
    }

    fn put(&self, key: String, url: String) {
        let mut map = self.map();
        if map.len() >= Self::MAX {
            map.retain(|_, (_, at)| at.elapsed() < Self::REUSE);
            if map.len() >= Self::MAX {
                map.clear();
            }
        }
        map.insert(key, (url, Instant::now()));
    }

    fn forget(&self, key: &str) {
        self.map().remove(key);
    }
}
