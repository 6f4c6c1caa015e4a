//! A OneDrive (or SharePoint document library) folder as a source, through Graph delta.
//!
//! Delta describes items by id without paths, and an incremental round only mentions what
//! changed, so the source keeps a compact tree of the drive (id -> name, parent, version)
//! between runs; it is saved with the cursor, in the same transaction. Each run applies the
//! new delta items to it and lists every file under `<root>/datasets/`; the engine compares
//! that listing with what Postgres holds. A file's version is its cTag (content), so a
//! rename or a metadata change does not reload it. Files are downloaded into a private
//! staging folder (0700), checked against OneDrive's quickXorHash, and removed after the
//! load.

use std::collections::HashMap;
use std::path::PathBuf;

use ferry_graph::GraphClient;
use ferry_graph::model::{DriveItem, FileFacet, Hashes};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{Changes, Fetched, SourceFile};
use crate::error::{Error, Result};
use crate::staging::{EncryptedWriter, StagingKey};

#[derive(Debug, Clone)]
pub struct OneDriveSource {
    graph: GraphClient,
    /// The folder holding `datasets/`, like `/DynamicCapital/ai-training`.
    root: String,
    staging: PathBuf,
    drive: String,
    /// Staging files are encrypted with this key (None: plain, still 0700).
    key: Option<StagingKey>,
}

/// One item of the saved tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    name: String,
    parent: Option<String>,
    folder: bool,
    /// cTag, else eTag.
    version: String,
    size: u64,
    qxh: Option<String>,
}

/// The drive as delta described it, saved between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tree {
    root: Option<String>,
    items: HashMap<String, Item>,
}

impl Tree {
    fn apply(&mut self, items: &[DriveItem]) {
        for it in items {
            if it.is_deleted() {
                self.remove(&it.id);
                continue;
            }
            if it.root.is_some() {
                self.root = Some(it.id.clone());
            }
            let version = it
                .c_tag
                .clone()
                .or_else(|| it.e_tag.clone())
                .unwrap_or_default();
            self.items.insert(
                it.id.clone(),
                Item {
                    name: it.name.clone(),
                    parent: it.parent_id().map(str::to_owned),
                    folder: it.is_folder(),
                    version,
                    size: it.size.unwrap_or(0),
                    qxh: it.quick_xor_hash().map(str::to_owned),
                },
            );
        }
    }

    /// Removes an item and, for a folder, everything below it.
    fn remove(&mut self, id: &str) {
        let mut gone = vec![id.to_owned()];
        while let Some(next) = gone.pop() {
            self.items.remove(&next);
            gone.extend(
                self.items
                    .iter()
                    .filter(|(_, it)| it.parent.as_deref() == Some(&next))
                    .map(|(id, _)| id.clone()),
            );
        }
    }

    /// `a/b/c` from the drive root, if the item's ancestry is known.
    fn path(&self, id: &str) -> Option<String> {
        let mut names = Vec::new();
        let mut cur = id;
        loop {
            if Some(cur) == self.root.as_deref() {
                break;
            }
            let item = self.items.get(cur)?;
            names.push(item.name.as_str());
            cur = item.parent.as_deref()?;
            if names.len() > 10_000 {
                return None; // a cycle would be a Graph bug; do not spin
            }
        }
        names.reverse();
        Some(names.join("/"))
    }
}

impl OneDriveSource {
    /// A source over `root` in `drive`; its staging files go in a folder of its own under
    /// `staging`.
    pub fn new(
        graph: GraphClient,
        drive: &str,
        root: &str,
        staging: PathBuf,
        key: Option<StagingKey>,
    ) -> Self {
        let mut source = Self {
            graph,
            root: root.trim_matches('/').to_owned(),
            staging,
            drive: drive.to_owned(),
            key,
        };
        let id = hex::encode(&sha2::Sha256::digest(source.name().as_bytes())[..8]);
        source.staging.push(id);
        source
    }

    /// The folder this source stages its downloads in.
    pub fn staging(&self) -> &std::path::Path {
        &self.staging
    }

    /// Removes what an earlier run left in staging (a crash, a cut download). Only called
    /// by a run holding the source's lock.
    pub fn clear_staging(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &self.staging)(e))
            }
            _ => Ok(()),
        }
    }

    pub fn name(&self) -> String {
        format!("onedrive:{}:/{}", self.drive, self.root)
    }

    /// Applies the delta since `cursor` to the saved tree `state` and lists the files under
    /// `<root>/<prefix>/`; returns the listing and the tree to save.
    pub async fn changes(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        state: Option<serde_json::Value>,
    ) -> Result<(Changes, serde_json::Value)> {
        let mut tree: Tree = match (cursor, state) {
            (Some(_), Some(state)) => serde_json::from_value(state).unwrap_or_default(),
            _ => Tree::default(),
        };
        // Without a saved tree an old cursor is useless: enumerate everything.
        let cursor = cursor.filter(|_| tree.root.is_some());
        let delta = self.graph.delta(cursor).await.map_err(graph_error)?;
        if delta.resynced {
            tree = Tree::default();
        }
        tree.apply(&delta.items);
        let base = if self.root.is_empty() {
            prefix.to_owned()
        } else {
            format!("{}/{prefix}", self.root)
        };
        let base_lower = format!("{}/", base.to_lowercase());
        let mut files: Vec<SourceFile> = tree
            .items
            .iter()
            .filter(|(_, it)| !it.folder)
            .filter_map(|(id, it)| {
                let path = tree.path(id)?;
                // OneDrive names are case-insensitive.
                if !path.to_lowercase().starts_with(&base_lower) {
                    return None;
                }
                let rel = path
                    .get(self.root.len()..)?
                    .trim_start_matches('/')
                    .to_owned();
                Some(SourceFile {
                    item_id: id.clone(),
                    path: rel,
                    etag: it.version.clone(),
                    size: it.size,
                    quick_xor_hash: it.qxh.clone(),
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let state = serde_json::to_value(&tree).map_err(|e| Error::File(e.to_string()))?;
        Ok((
            Changes {
                files,
                deleted: Vec::new(),
                complete: true,
                cursor: delta.delta_link,
            },
            state,
        ))
    }

    pub fn throttled(&self) -> u64 {
        self.graph.throttled()
    }

    /// Uploads `body` to `path` under the root folder (replacing what is there).
    pub async fn publish(&self, path: &str, body: &[u8]) -> Result<()> {
        create_private_dir(&self.staging)?;
        let local = self
            .staging
            .join(format!("{}.upload", uuid::Uuid::new_v4().simple()));
        std::fs::write(&local, body).map_err(Error::io("write", &local))?;
        let remote = format!("{}/{path}", self.root);
        let sent = self
            .graph
            .upload_file(&local, &remote, ferry_graph::Conflict::Replace)
            .await;
        let _ = std::fs::remove_file(&local);
        sent.map(drop)
            .map_err(|e| Error::Source(format!("uploading {remote}: {e}")))
    }

    /// A small UTF-8 file under the root, if it is there (read into memory, not staged).
    pub async fn read_text(&self, path: &str) -> Result<Option<String>> {
        use futures::StreamExt as _;
        let remote = format!("{}/{path}", self.root);
        let fail = |e: ferry_graph::Error| Error::Source(format!("reading {remote}: {e}"));
        let item = match self.graph.item_by_path(&remote).await {
            Err(e) if e.graph_code() == Some("itemNotFound") => return Ok(None),
            other => other.map_err(fail)?,
        };
        let too_large = || {
            Error::Source(format!(
                "{remote} is larger than {} bytes",
                super::MAX_TEXT_BYTES
            ))
        };
        if item.size.unwrap_or(0) > super::MAX_TEXT_BYTES {
            return Err(too_large());
        }
        let stream = self
            .graph
            .download_range(&item.id, None)
            .await
            .map_err(fail)?;
        let mut stream = std::pin::pin!(stream);
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(fail)?);
            if body.len() as u64 > super::MAX_TEXT_BYTES {
                return Err(too_large());
            }
        }
        String::from_utf8(body)
            .map(Some)
            .map_err(|_| Error::Source(format!("{remote} is not UTF-8 text")))
    }

    /// Downloads the file into staging (encrypted when there is a key), checked against
    /// its quickXorHash.
    pub async fn fetch(&self, file: &SourceFile) -> Result<Fetched> {
        create_private_dir(&self.staging)?;
        let dest = self
            .staging
            .join(format!("{}.download", uuid::Uuid::new_v4().simple()));
        if let Some(key) = &self.key {
            let result = self.download_encrypted(file, &dest, key).await;
            if result.is_err() {
                let _ = std::fs::remove_file(&dest);
            }
            result?;
            return Ok(Fetched {
                path: dest,
                temporary: true,
                key: Some(key.clone()),
            });
        }
        let item = DriveItem {
            id: file.item_id.clone(),
            name: file.path.clone(),
            size: Some(file.size),
            file: Some(FileFacet {
                mime_type: None,
                hashes: Some(Hashes {
                    quick_xor_hash: file.quick_xor_hash.clone(),
                    ..Hashes::default()
                }),
            }),
            ..DriveItem::default()
        };
        self.graph
            .download_file(&item, &dest)
            .await
            .map_err(|e| Error::Fetch(e.to_string()))?;
        Ok(Fetched {
            path: dest,
            temporary: true,
            key: None,
        })
    }

    /// Streams the file through the hash and the cipher to disk; a dropped connection
    /// starts the download over (a few times).
    async fn download_encrypted(
        &self,
        file: &SourceFile,
        dest: &std::path::Path,
        key: &StagingKey,
    ) -> Result<()> {
        use futures::StreamExt as _;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |op| Error::io(op, dest);
        let mut last_error = String::new();
        for _ in 0..3 {
            let stream = self
                .graph
                .download_range(&file.item_id, None)
                .await
                .map_err(|e| Error::Fetch(e.to_string()))?;
            let mut stream = std::pin::pin!(stream);
            let out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(dest)
                .map_err(io("create"))?;
            let mut writer =
                EncryptedWriter::new(std::io::BufWriter::new(out), key).map_err(io("write"))?;
            let mut hash = ferry_graph::QuickXorHash::new();
            let mut received = 0u64;
            let mut cut = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        hash.update(&bytes);
                        received += bytes.len() as u64;
                        writer.write_all(&bytes).map_err(io("write"))?;
                    }
                    Err(e) => {
                        cut = Some(e.to_string());
                        break;
                    }
                }
            }
            if let Some(e) = cut {
                tracing::info!(path = %file.path, error = %e, "download interrupted; starting over");
                last_error = e;
                continue;
            }
            let out = writer.finish().map_err(io("write"))?;
            out.into_inner()
                .map_err(|e| Error::io("write", dest)(e.into_error()))?
                .sync_all()
                .map_err(io("fsync"))?;
            if received != file.size {
                return Err(Error::Fetch(format!(
                    "got {received} bytes of {}",
                    file.size
                )));
            }
            if let Some(expected) = &file.quick_xor_hash
                && hash.finish_base64() != *expected
            {
                return Err(Error::Fetch(
                    "the bytes do not match OneDrive's quickXorHash; they were discarded".into(),
                ));
            }
            return Ok(());
        }
        Err(Error::Fetch(format!(
            "the download kept failing: {last_error}"
        )))
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(Error::io("chmod", dir))
}

fn graph_error(e: ferry_graph::Error) -> Error {
    Error::Source(e.to_string())
}
