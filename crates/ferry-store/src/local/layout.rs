//! How keys map to paths under a bucket folder, and back.
//!
//! A key is split at `/`; each segment is one path component. Two reserved names make every
//! key representable on a filesystem:
//! - an empty segment (`a//b`, the folder marker `a/`, a leading `/`) is stored as
//!   [`EMPTY_NAME`];
//! - the data of a key that is also a folder (`a` while `a/b` exists) lives in `a/`[`SELF_NAME`].
//!
//! Names starting with `.ferry` are ferry's own and never appear in keys; a key segment that
//! starts with `.ferry` is refused. Symbolic links are never followed out of the root.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::check_key;

/// The file holding an empty key segment.
pub(crate) const EMPTY_NAME: &str = ".ferry-empty";
/// The file holding the data of a key that is also a folder.
pub(crate) const SELF_NAME: &str = ".ferry-self";
const RESERVED_PREFIX: &str = ".ferry";
/// The longest file name most filesystems accept, in bytes.
const NAME_MAX: usize = 255;

/// The path a key maps to under `bucket_dir`, before looking at what exists there.
pub(crate) fn key_path(bucket_dir: &Path, key: &str) -> Result<PathBuf> {
    check_key(key)?;
    let mut path = bucket_dir.to_path_buf();
    for segment in key.split('/') {
        path.push(encode_segment(key, segment)?);
    }
    Ok(path)
}

fn encode_segment<'a>(key: &str, segment: &'a str) -> Result<&'a str> {
    let fail = |reason| {
        Err(Error::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if segment.is_empty() {
        return Ok(EMPTY_NAME);
    }
    if segment.starts_with(RESERVED_PREFIX) {
        return fail("path segments starting with '.ferry' are reserved");
    }
    if segment.len() > NAME_MAX {
        return fail("a path segment is longer than 255 bytes");
    }
    Ok(segment)
}

/// The key segment a directory entry stands for; `None` for ferry's own files and for names
/// that are not UTF-8 (they cannot be S3 keys).
pub(crate) fn decode_name(name: &OsStr) -> Option<&str> {
    let name = name.to_str()?;
    if name == EMPTY_NAME {
        return Some("");
    }
    (!name.starts_with(RESERVED_PREFIX)).then_some(name)
}

/// Fails if a folder between `bucket_dir` and `path` is a symbolic link, so no key reaches
/// outside the root through a link someone placed in the folder.
pub(crate) fn check_no_links(bucket_dir: &Path, path: &Path, key: &str) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let Ok(relative) = parent.strip_prefix(bucket_dir) else {
        return Ok(());
    };
    let mut dir = bucket_dir.to_path_buf();
    for component in relative.components() {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(md) if md.file_type().is_symlink() => {
                return Err(Error::InvalidKey {
                    key: key.to_owned(),
                    reason: "the path goes through a symbolic link, which ferry does not follow",
                });
            }
            Ok(_) => {}
            // Nothing further exists, so nothing further can be a link.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Opens the data file of the object at `path`, not following a symbolic link.
/// `Ok(None)` when there is no such object.
pub(crate) fn open_object(path: &Path) -> io::Result<Option<(fs::File, PathBuf)>> {
    match open_nofollow(path) {
        Ok(file) if file.metadata()?.is_dir() => {
            let inner = path.join(SELF_NAME);
            match open_nofollow(&inner) {
                Ok(file) if file.metadata()?.is_file() => Ok(Some((file, inner))),
                Ok(_) => Ok(None),
                Err(e) if is_missing(&e) => Ok(None),
                Err(e) => Err(e),
            }
        }
        Ok(file) if file.metadata()?.is_file() => Ok(Some((file, path.to_path_buf()))),
        Ok(_) => Ok(None),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn open_nofollow(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Errors that mean "nothing there": missing, an ancestor that is a file, or a symlink.
pub(crate) fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP))
}

/// Creates the folders above `path` inside `bucket_dir`. A file standing where a folder is
/// needed is moved into that folder as its [`SELF_NAME`], so both keys stay readable.
pub(crate) fn make_parents(bucket_dir: &Path, path: &Path, tmp_dir: &Path) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let Ok(relative) = parent.strip_prefix(bucket_dir) else {
        return Err(io::Error::other("object path outside its bucket"));
    };
    let mut dir = bucket_dir.to_path_buf();
    for component in relative.components() {
        dir.push(component);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let md = fs::symlink_metadata(&dir)?;
                if md.is_file() {
                    file_to_folder(&dir, tmp_dir)?;
                } else if !md.is_dir() {
                    return Err(io::Error::other(format!(
                        "{} is not a regular file or folder",
                        dir.display()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Turns the file at `path` into a folder holding the file's data as [`SELF_NAME`].
fn file_to_folder(path: &Path, tmp_dir: &Path) -> io::Result<()> {
    let parked = tmp_dir.join(format!("move-{}", uuid::Uuid::new_v4()));
    fs::rename(path, &parked)?;
    match fs::create_dir(path) {
        Ok(()) => {}
        // Another writer made the folder first: keep going with theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            let _ = fs::rename(&parked, path);
            return Err(e);
        }
    }
    fs::rename(&parked, path.join(SELF_NAME))
}

/// Removes the now empty folders from `dir` up to, not including, `bucket_dir`.
pub(crate) fn prune_empty(bucket_dir: &Path, mut dir: &Path) {
    while dir != bucket_dir && dir.starts_with(bucket_dir) {
        if fs::remove_dir(dir).is_err() {
            return;
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return,
        }
    }
}

/// Fsyncs a folder so that a rename or unlink in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_key(bucket_dir: &Path, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(bucket_dir).ok()?;
        let segments: Option<Vec<&str>> = relative.iter().map(decode_name).collect();
        Some(segments?.join("/"))
    }

    proptest! {
        #[test]
        fn keys_round_trip_and_stay_inside(key in "[a-zA-Z0-9 ._%+=&/\u{e9}\u{4e2d}-]{1,60}") {
            let bucket = Path::new("/root/bucket");
            match key_path(bucket, &key) {
                Ok(path) => {
                    prop_assert!(path.starts_with(bucket));
                    prop_assert!(path.components().all(|c| matches!(c,
                        std::path::Component::Normal(_) | std::path::Component::RootDir)));
                    prop_assert_eq!(decode_key(bucket, &path), Some(key.clone()));
                }
                Err(_) => {
                    // The rules, restated: dot segments as written or percent-decoded (at `/`
                    // or `\\`), NUL after decoding, and ferry's reserved segment names.
                    let decoded = percent_encoding::percent_decode_str(&key).decode_utf8_lossy();
                    let dots = |k: &str| k.split(['/', '\\']).any(|s| s == "." || s == "..");
                    let bad = dots(&key)
                        || dots(&decoded)
                        || decoded.contains('\0')
                        || key.split('/').any(|s| s.starts_with(".ferry"));
                    prop_assert!(bad, "rejected a good key {key:?}");
                }
            }
        }
    }

    /// Found by the property above in CI: a percent-encoded NUL is refused on purpose.
    #[test]
    fn percent_encoded_nul_is_refused() {
        assert!(key_path(Path::new("/b"), "%00").is_err());
        assert!(key_path(Path::new("/b"), "a%5c..%5cb").is_err());
    }

    #[test]
    fn empty_segments_and_markers_have_names() {
        let bucket = Path::new("/b");
        assert_eq!(
            key_path(bucket, "a/").unwrap(),
            Path::new("/b/a/.ferry-empty")
        );
        assert_eq!(
            key_path(bucket, "/a//b").unwrap(),
            Path::new("/b/.ferry-empty/a/.ferry-empty/b")
        );
        assert!(key_path(bucket, "a/.ferry-self").is_err());
        assert!(key_path(bucket, &"x".repeat(256)).is_err());
    }
}
