//! Files only their owner may read: keys, tokens, passwords, saved sessions. They are written
//! with mode 0600 into a temp file, synced, then renamed over the old one (a crash leaves
//! the old or the new), and read only when no one else could have read them.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why a private file could not be read. Never holds the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is readable by others (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
}

impl ReadError {
    /// The file is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Writes `body` to `path` (and its folder, if missing), replacing it atomically.
pub fn write(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = write_temp(path, body)?;
    let renamed = fs::rename(&tmp, path);
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// Creates `path` holding `body`, whole or not at all; fails with `AlreadyExists` if it is
/// there (of two processes generating a key at once, the first one's stays).
pub fn create_new(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = write_temp(path, body)?;
    // A hard link, unlike a rename, never replaces what is there.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        // Filesystems without hard links (vfat, some network mounts): an exclusive create.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            let mut file = open_exclusive(path)?;
            file.write_all(body)?;
            file.sync_all()
        }
        other => other,
    }
}

/// `body` in a new, synced, private file beside `path`, under a name no one else uses.
fn write_temp(path: &Path, body: &[u8]) -> std::io::Result<PathBuf> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let unique = format!(
        "{}.tmp-{}-{nanos}-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id(),
        SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let tmp = path.with_file_name(unique);
    let written = (|| {
        let mut file = open_exclusive(&tmp)?;
        file.write_all(body)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Creates `path` 0600; fails if anything (a file, a link) is there.
fn open_exclusive(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Reads a file that group and others cannot read.
pub fn read(path: &Path) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ReadError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read_to_string(path).map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_files_are_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap(), "two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        let err = create_new(&path, b"three").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(read(&path).unwrap(), "two");
        let fresh = dir.path().join("sub/fresh");
        create_new(&fresh, b"four").unwrap();
        assert_eq!(read(&fresh).unwrap(), "four");
        let files = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(files, 2, "no temp file left");
    }

    #[test]
    fn a_file_others_can_read_is_refused_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, "hunter2").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(!err.contains("hunter2"));
        assert!(
            read(&dir.path().join("missing"))
                .unwrap_err()
                .is_not_found()
        );
    }
}
