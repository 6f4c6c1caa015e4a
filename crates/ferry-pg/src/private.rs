//! Files only their owner may read (the managed cluster's password).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `body` to `path` with mode 0600 (temp file, fsync, rename).
pub fn write(path: &Path, body: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(Error::io("write", path))
}

/// Reads a file that must not be readable by group or others.
pub fn read(path: &Path) -> Result<String> {
    let md = std::fs::metadata(path).map_err(Error::io("read", path))?;
    if md.permissions().mode() & 0o077 != 0 {
        return Err(Error::Cluster(format!(
            "{} is readable by others; run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(Error::io("read", path))
}
