//! Listing a bucket folder in S3 key order, starting anywhere without reading what lies before.
//!
//! Subtrees whose keys all sort before the starting point are skipped without being opened,
//! so a page costs the folders on the path to its first key plus the ones it returns, not the
//! whole tree. A folder's sorted entries are kept while the folder is unchanged (see
//! [`DirCache`]), so the next page of a large folder costs a `stat`, not a re-read.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::layout::{SELF_NAME, decode_name, is_missing};
use super::meta::object_meta_at;
use crate::backend::{ListEntry, ListOptions, ListPage};
use crate::error::{Error, Result};

/// Folders smaller than this are cheap to read again and are not cached.
const CACHE_MIN_ENTRIES: usize = 256;
const CACHE_MAX_FOLDERS: usize = 128;
/// A folder changed more recently than this may change again within the same timestamp
/// tick, which its stamp would not show; such a folder is not cached.
const RACY_WINDOW: Duration = Duration::from_secs(1);

/// What identifies one state of a folder: any entry added, removed or renamed changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    size: u64,
}

impl Stamp {
    fn of(md: &fs::Metadata) -> Self {
        Self {
            ino: md.ino(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
            size: md.size(),
        }
    }
}

/// A folder's sorted entries, shared by the pages that walk it.
type Entries = Arc<Vec<Entry>>;

/// Sorted entries of large folders, valid while the folder's stamp is unchanged.
#[derive(Debug, Default)]
pub(crate) struct DirCache {
    folders: Mutex<HashMap<PathBuf, (Stamp, Entries)>>,
}

impl DirCache {
    fn entries(&self, dir: &Path) -> io::Result<Entries> {
        let md = match fs::symlink_metadata(dir) {
            Ok(md) if md.is_dir() => md,
            Ok(_) => return Ok(Arc::default()),
            // Removed since its parent was read: nothing in it.
            Err(e) if is_missing(&e) => return Ok(Arc::default()),
            Err(e) => return Err(e),
        };
        let stamp = Stamp::of(&md);
        let lock = || self.folders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, entries)) = lock().get(dir)
            && *cached == stamp
        {
            return Ok(entries.clone());
        }
        let entries = Arc::new(read_sorted(dir)?);
        let settled = md
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age > RACY_WINDOW);
        if settled && entries.len() >= CACHE_MIN_ENTRIES {
            let mut folders = lock();
            if folders.len() >= CACHE_MAX_FOLDERS {
                folders.clear();
            }
            folders.insert(dir.to_owned(), (stamp, entries.clone()));
        }
        Ok(entries)
    }
}

/// A folder's entries in key order.
fn read_sorted(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if is_missing(&e) => return Ok(entries),
        Err(e) => return Err(e),
    };
    for item in read {
        let item = item?;
        let name = item.file_name();
        let Some(segment) = decode_name(&name) else {
            continue;
        };
        let segment = segment.to_owned();
        let file_type = item.file_type()?;
        if file_type.is_file() {
            entries.push(Entry {
                rel: segment,
                name,
                kind: Kind::File,
            });
        } else if file_type.is_dir() {
            entries.push(Entry {
                rel: format!("{segment}/"),
                name: name.clone(),
                kind: Kind::Folder,
            });
            entries.push(Entry {
                rel: segment,
                name,
                kind: Kind::FolderSelf,
            });
        }
        // Symbolic links and special files are not part of the store.
    }
    entries.sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    Ok(entries)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file: the key is the folder's prefix plus the name.
    File,
    /// A folder's own data ([`SELF_NAME`] inside it), if it has one.
    FolderSelf,
    /// A folder: every key in it starts with the prefix plus `name/`.
    Folder,
}

#[derive(Debug)]
pub(crate) struct Entry {
    /// The key (or key prefix, for a folder) this entry stands for, relative to its parent.
    rel: String,
    /// The file name on disk.
    name: std::ffi::OsString,
    kind: Kind,
}

struct Frame {
    dir: PathBuf,
    prefix: String,
    entries: Entries,
    pos: usize,
}

/// Yields `(key, data file)` of every object whose key is `>= bound`, in byte order.
pub(crate) struct Walker<'c> {
    cache: &'c DirCache,
    stack: Vec<Frame>,
    bound: Vec<u8>,
}

impl<'c> Walker<'c> {
    pub fn new(cache: &'c DirCache, bucket_dir: &Path, bound: Vec<u8>) -> io::Result<Self> {
        let mut walker = Self {
            cache,
            stack: Vec::new(),
            bound,
        };
        walker.push(bucket_dir.to_path_buf(), String::new())?;
        Ok(walker)
    }

    fn push(&mut self, dir: PathBuf, prefix: String) -> io::Result<()> {
        let entries = self.cache.entries(&dir)?;
        let pos = entries.partition_point(|e| below_bound(&prefix, e, &self.bound));
        self.stack.push(Frame {
            dir,
            prefix,
            entries,
            pos,
        });
        Ok(())
    }

    pub fn next(&mut self) -> io::Result<Option<(String, PathBuf)>> {
        while let Some(frame) = self.stack.last_mut() {
            let Some(entry) = frame.entries.get(frame.pos) else {
                self.stack.pop();
                continue;
            };
            frame.pos += 1;
            let key = format!("{}{}", frame.prefix, entry.rel);
            let path = frame.dir.join(&entry.name);
            match entry.kind {
                Kind::File => return Ok(Some((key, path))),
                Kind::FolderSelf => {
                    let inner = path.join(SELF_NAME);
                    if fs::symlink_metadata(&inner).is_ok_and(|m| m.is_file()) {
                        return Ok(Some((key, inner)));
                    }
                }
                Kind::Folder => self.push(path, key)?,
            }
        }
        Ok(None)
    }
}

/// True when every key `entry` stands for sorts before `bound`.
fn below_bound(prefix: &str, entry: &Entry, bound: &[u8]) -> bool {
    let mut key = Vec::with_capacity(prefix.len() + entry.rel.len());
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(entry.rel.as_bytes());
    match entry.kind {
        Kind::File | Kind::FolderSelf => key.as_slice() < bound,
        Kind::Folder => key.as_slice() < bound && !bound.starts_with(&key),
    }
}

/// The smallest byte string greater than every string starting with `prefix`.
fn past_prefix(prefix: &str) -> Vec<u8> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < u8::MAX {
            bytes.push(last + 1);
            return bytes;
        }
    }
    vec![u8::MAX]
}

/// One page of a listing of the bucket at `bucket_dir`.
pub(crate) fn list_page(
    cache: &DirCache,
    bucket_dir: &Path,
    opts: &ListOptions,
) -> Result<ListPage> {
    let io_err = |e| Error::io("list", bucket_dir)(e);
    let mut page = ListPage::default();
    if opts.max_keys == 0 {
        return Ok(page);
    }
    let prefix = opts.prefix.as_str();
    let after = opts.start_after.as_deref();
    let start = match after {
        Some(after) if after > prefix => after,
        _ => prefix,
    };
    let mut walker = Walker::new(cache, bucket_dir, start.as_bytes().to_vec()).map_err(io_err)?;
    while let Some((key, path)) = walker.next().map_err(io_err)? {
        if after.is_some_and(|a| key.as_str() <= a) {
            continue;
        }
        if !key.starts_with(prefix) {
            break;
        }
        let rolled = opts.rolled_prefix(&key);
        let entry = match rolled {
            Some(common) => {
                walker = Walker::new(cache, bucket_dir, past_prefix(&common)).map_err(io_err)?;
                // A prefix at or before the marker was returned on an earlier page.
                if after.is_some_and(|a| common.as_str() <= a) {
                    continue;
                }
                ListEntry::Prefix(common)
            }
            None => {
                let meta = object_meta_at(key, &path).map_err(Error::io("read", &path))?;
                // Deleted since the folder was read.
                let Some(meta) = meta else { continue };
                ListEntry::Object(meta)
            }
        };
        if page.entries.len() == opts.max_keys {
            page.is_truncated = true;
            break;
        }
        page.entries.push(entry);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_prefix_is_the_first_string_after_the_prefix() {
        assert_eq!(past_prefix("a/"), b"a0".to_vec());
        assert!(b"a/\xf4\x8f\xbf\xbf".as_slice() < past_prefix("a/").as_slice());
    }
}
