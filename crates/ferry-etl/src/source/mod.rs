//! Where files come from. A source reports what changed since a cursor; the engine
//! decides, against what Postgres already holds, what to load.

pub mod local;
pub mod onedrive;

use std::path::PathBuf;

/// One file as the source sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Stable across renames and moves (a drive item id; a local file's device and inode).
    pub item_id: String,
    /// Relative to the source root, `/`-separated.
    pub path: String,
    /// Changes whenever the bytes do.
    pub etag: String,
    pub size: u64,
    /// OneDrive's content hash, when the source has one.
    pub quick_xor_hash: Option<String>,
}

/// What changed: files new or (possibly) changed, and items gone.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub files: Vec<SourceFile>,
    /// Item ids no longer in the source. A source that lists everything may leave this
    /// empty and set `complete`: the engine then treats every known item not listed as gone.
    pub deleted: Vec<String>,
    pub complete: bool,
    /// Where the next run starts.
    pub cursor: String,
}

/// The largest small text file ([`Source::read_text`]) read.
pub const MAX_TEXT_BYTES: u64 = 1024 * 1024;

/// A file fetched for loading: a local path to read.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub path: PathBuf,
    /// Removed after the load (a staging copy), or left alone (the source's own file).
    pub temporary: bool,
    /// Set when the file is an encrypted staging file.
    pub key: Option<crate::staging::StagingKey>,
}

/// Readable and seekable plaintext.
pub trait ReadSeek: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

impl Fetched {
    /// The file's bytes (decrypted, for a staging file).
    pub fn open(&self) -> crate::Result<Box<dyn ReadSeek>> {
        let io = crate::Error::io("open", &self.path);
        Ok(match &self.key {
            Some(key) => {
                Box::new(crate::staging::EncryptedReader::open(&self.path, key).map_err(io)?)
            }
            None => Box::new(std::fs::File::open(&self.path).map_err(io)?),
        })
    }
}

/// Every kind of source the engine can run.
#[derive(Debug, Clone)]
pub enum Source {
    Local(local::LocalSource),
    OneDrive(onedrive::OneDriveSource),
}

impl Source {
    /// The name runs, cursors and ingest rows are recorded under.
    pub fn name(&self) -> String {
        match self {
            Source::Local(s) => s.name(),
            Source::OneDrive(s) => s.name(),
        }
    }

    /// What is under `prefix` now, given the last run's cursor and saved state; returns
    /// the state to save with the new cursor.
    pub async fn changes(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        state: Option<serde_json::Value>,
    ) -> crate::Result<(Changes, Option<serde_json::Value>)> {
        match self {
            Source::Local(s) => {
                let (s, prefix) = (s.clone(), prefix.to_owned());
                let listing = tokio::task::spawn_blocking(move || s.changes(&prefix))
                    .await
                    .map_err(|e| crate::Error::Source(e.to_string()))?
                    .map_err(|e| crate::Error::Source(format!("listing the folder: {e}")))?;
                Ok((listing, None))
            }
            Source::OneDrive(s) => {
                let (listing, state) = s.changes(prefix, cursor, state).await?;
                Ok((listing, Some(state)))
            }
        }
    }

    /// Removes staging files an earlier run left behind (a run holding the lock only).
    pub fn clear_staging(&self) -> crate::Result<()> {
        match self {
            Source::Local(_) => Ok(()),
            Source::OneDrive(s) => s.clear_staging(),
        }
    }

    /// A local path holding the file's bytes.
    pub async fn fetch(&self, file: &SourceFile) -> crate::Result<Fetched> {
        match self {
            Source::Local(s) => Ok(s.fetch(file)),
            Source::OneDrive(s) => s.fetch(file).await,
        }
    }

    /// A small UTF-8 file under the root (a dataset's README), or `None` if there is none.
    pub async fn read_text(&self, path: &str) -> crate::Result<Option<String>> {
        match self {
            Source::Local(s) => s.read_text(path),
            Source::OneDrive(s) => s.read_text(path).await,
        }
    }

    /// Requests the source's service throttled so far (OneDrive; 0 for a folder).
    pub fn throttled(&self) -> u64 {
        match self {
            Source::Local(_) => 0,
            Source::OneDrive(s) => s.throttled(),
        }
    }

    /// Writes a small file (a run's manifest) at `path` under the source's root.
    pub async fn publish(&self, path: &str, body: &[u8]) -> crate::Result<()> {
        match self {
            Source::Local(s) => s.publish(path, body),
            Source::OneDrive(s) => s.publish(path, body).await,
        }
    }

    /// Whether the file still has the listed version after it was read (a staging copy
    /// cannot change).
    pub fn unchanged(&self, file: &SourceFile) -> bool {
        match self {
            Source::Local(s) => s.unchanged(file),
            Source::OneDrive(_) => true,
        }
    }
}
