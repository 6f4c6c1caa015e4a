//! A local folder (or a mounted NAS) as a source. Every run lists the folder; files are
//! identified by device and inode, so a rename is a rename and not a delete plus a new
//! file (hard links to one inode: the first path by name keeps that id, the others are
//! told apart by path), and their version is size plus modification time.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::{Changes, Fetched, SourceFile};

#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The name runs, cursors and ingest rows are recorded under.
    pub fn name(&self) -> String {
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        format!("local:{}", root.display())
    }

    /// Lists the files under `prefix` (e.g. `datasets`). Symlinks are not followed.
    pub fn changes(&self, prefix: &str) -> std::io::Result<Changes> {
        let mut files = Vec::new();
        let start = self.root.join(prefix);
        if start.is_dir() {
            walk(&self.root, &start, &mut files)?;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // Hard links share an inode: the first path keeps the id, the others get their own.
        let mut seen = std::collections::HashSet::new();
        for f in &mut files {
            if !seen.insert(f.item_id.clone()) {
                f.item_id = format!("{}:{}", f.item_id, f.path);
            }
        }
        // The cursor of a listing source is only informational: a digest of what it saw.
        let mut digest = sha2::Sha256::new();
        for f in &files {
            digest.update(f.item_id.as_bytes());
            digest.update(f.etag.as_bytes());
            digest.update(f.path.as_bytes());
        }
        Ok(Changes {
            cursor: format!(
                "local:{}:{}",
                files.len(),
                &hex::encode(digest.finalize())[..16]
            ),
            files,
            deleted: Vec::new(),
            complete: true,
        })
    }

    /// The file to read: the source's own, read in place.
    pub fn fetch(&self, file: &SourceFile) -> Fetched {
        Fetched {
            path: self.root.join(&file.path),
            temporary: false,
            key: None,
        }
    }

    /// A small UTF-8 file under the root, if it is there.
    pub fn read_text(&self, path: &str) -> crate::Result<Option<String>> {
        let full = self.root.join(path);
        use std::io::Read as _;
        // Like the listing, never through a symbolic link, and only a regular file.
        match std::fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::Error::io("stat", &full)(e)),
            Ok(md) if !md.is_file() => {
                return Err(crate::Error::Source(format!(
                    "{path} is not a regular file"
                )));
            }
            Ok(_) => {}
        }
        let file = std::fs::File::open(&full).map_err(crate::Error::io("open", &full))?;
        let mut body = String::new();
        file.take(super::MAX_TEXT_BYTES + 1)
            .read_to_string(&mut body)
            .map_err(crate::Error::io("read", &full))?;
        if body.len() as u64 > super::MAX_TEXT_BYTES {
            return Err(crate::Error::Source(format!(
                "{path} is larger than {} bytes",
                super::MAX_TEXT_BYTES
            )));
        }
        Ok(Some(body))
    }

    /// Writes `body` at `path` under the root, atomically (temp file, then rename).
    pub fn publish(&self, path: &str, body: &[u8]) -> crate::Result<()> {
        let dest = self.root.join(path);
        let io = |op| crate::Error::io(op, &dest);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io("create"))?;
        }
        let tmp = dest.with_extension("ferry-tmp");
        std::fs::write(&tmp, body).map_err(io("write"))?;
        std::fs::rename(&tmp, &dest).map_err(io("rename"))
    }

    /// Whether the file still has the version that was listed (it was not edited while
    /// being loaded).
    pub fn unchanged(&self, file: &SourceFile) -> bool {
        std::fs::symlink_metadata(self.root.join(&file.path))
            .is_ok_and(|md| version(&md) == file.etag)
    }
}

fn version(md: &std::fs::Metadata) -> String {
    format!("{}-{}.{:09}", md.size(), md.mtime(), md.mtime_nsec())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(path = %entry.path().display(), "skipping a name that is not UTF-8");
            continue;
        };
        if name.starts_with('.') {
            continue; // hidden files, ferry's own `.ferry*`, editors' temp files
        }
        let md = entry.path().symlink_metadata()?;
        if md.is_dir() {
            walk(root, &entry.path(), out)?;
        } else if md.is_file() {
            let rel = entry
                .path()
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(SourceFile {
                item_id: format!("{}:{}", md.dev(), md.ino()),
                path: rel,
                etag: version(&md),
                size: md.size(),
                quick_xor_hash: None,
            });
        }
    }
    Ok(())
}
