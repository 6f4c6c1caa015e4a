//! Listing a bucket folder in S3 key order, starting anywhere without reading what lies before.
//!
//! Each folder is read and sorted once per page; subtrees whose keys all sort before the
//! starting point are skipped without being opened, so a page costs the folders on the path
//! to its first key plus the ones it returns, not the whole tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::{SELF_NAME, decode_name, is_missing, open_object};
use super::meta::object_meta;
use crate::backend::{ListEntry, ListOptions, ListPage};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file: the key is the folder's prefix plus the name.
    File,
    /// A folder's own data ([`SELF_NAME`] inside it), if it has one.
    FolderSelf,
    /// A folder: every key in it starts with the prefix plus `name/`.
    Folder,
}

struct Entry {
    /// The key (or key prefix, for a folder) this entry stands for, relative to its parent.
    rel: String,
    /// The file name on disk.
    name: std::ffi::OsString,
    kind: Kind,
}

struct Frame {
    dir: PathBuf,
    prefix: String,
    entries: Vec<Entry>,
    pos: usize,
}

/// Yields `(key, path)` of every object whose key is `>= bound`, in byte order.
pub(crate) struct Walker {
    stack: Vec<Frame>,
    bound: Vec<u8>,
}

impl Walker {
    pub fn new(bucket_dir: &Path, bound: Vec<u8>) -> io::Result<Self> {
        let mut walker = Self {
            stack: Vec::new(),
            bound,
        };
        walker.push(bucket_dir.to_path_buf(), String::new())?;
        Ok(walker)
    }

    fn push(&mut self, dir: PathBuf, prefix: String) -> io::Result<()> {
        let mut entries = Vec::new();
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            // Removed since its parent was read: nothing in it.
            Err(e) if is_missing(&e) => return Ok(()),
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
                        return Ok(Some((key, path)));
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
pub(crate) fn list_page(bucket_dir: &Path, opts: &ListOptions) -> Result<ListPage> {
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
    let mut walker = Walker::new(bucket_dir, start.as_bytes().to_vec()).map_err(io_err)?;
    while let Some((key, path)) = walker.next().map_err(io_err)? {
        if after.is_some_and(|a| key.as_str() <= a) {
            continue;
        }
        if !key.starts_with(prefix) {
            break;
        }
        let rolled = opts
            .delimiter
            .as_deref()
            .filter(|d| !d.is_empty())
            .and_then(|d| {
                let rest = &key[prefix.len()..];
                rest.find(d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_owned())
            });
        let entry = match rolled {
            Some(common) => {
                walker = Walker::new(bucket_dir, past_prefix(&common)).map_err(io_err)?;
                // A prefix at or before the marker was returned on an earlier page.
                if after.is_some_and(|a| common.as_str() <= a) {
                    continue;
                }
                ListEntry::Prefix(common)
            }
            None => {
                let opened = open_object(&path).map_err(io_err)?;
                // Deleted since the folder was read.
                let Some((mut file, data_path)) = opened else {
                    continue;
                };
                let meta = object_meta(key, &mut file).map_err(Error::io("read", data_path))?;
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
