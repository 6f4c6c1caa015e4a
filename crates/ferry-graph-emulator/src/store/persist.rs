//! Saving and loading a drive's tree in the sidecar folder, so item ids, eTags and delta
//! tokens survive restarts.

use std::io::{BufReader, BufWriter, Write as _};
use std::path::Path;

use super::tree::Tree;
use crate::error::Error;

pub fn load(path: &Path) -> Result<Option<Tree>, Error> {
    // Streamed: a large drive's state is tens of MiB, not worth holding twice.
    match std::fs::File::open(path) {
        Ok(file) => match serde_json::from_reader::<_, Tree>(BufReader::new(file)) {
            Ok(mut tree) => {
                tree.rebuild_index();
                Ok(Some(tree))
            }
            Err(e) => {
                // A corrupt state file is replaced; clients see new ids and must resync.
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable drive state");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::State {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes atomically (temp file + rename) so a crash never leaves a torn state file.
pub fn save(path: &Path, tree: &Tree) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
    serde_json::to_writer(&mut out, tree).map_err(std::io::Error::other)?;
    out.flush()?;
    std::fs::rename(&tmp, path)
}
