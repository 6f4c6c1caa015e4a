//! Where files come from. A source reports what changed since a cursor; the engine
//! decides, against what Postgres already holds, what to load.

pub mod local;

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

/// A file fetched for loading: a local path to read, and its SHA-256 once read.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    /// Removed after the load (a staging copy), or left alone (the source's own file).
    pub temporary: bool,
}
