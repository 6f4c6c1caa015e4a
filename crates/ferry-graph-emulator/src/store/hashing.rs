//! Content hashes: computed while uploads stream in, or lazily for files changed on disk.

use std::io::Read;
use std::path::Path;

use sha1::Digest as _;

use super::tree::{Hashes, Tree};
use crate::quickxor::QuickXor;

/// Accumulates all hashes Graph may report, fed as bytes stream by.
#[derive(Debug, Default, Clone)]
pub struct Hasher {
    quick: QuickXor,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.quick.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
    }

    pub fn finish(self, size: u64, mtime: (i64, u32)) -> Hashes {
        Hashes {
            quick_xor: self.quick.finish(),
            sha1: self.sha1.finalize().into(),
            sha256: self.sha256.finalize().into(),
            size,
            mtime,
        }
    }
}

/// A file's hashes, computing and caching them when the file changed since.
pub fn ensure(tree: &mut Tree, id: &str, path: &Path) -> Option<Hashes> {
    let node = tree.nodes.get(id)?;
    if let Some(h) = &node.hashes
        && h.size == node.size
        && h.mtime == node.disk_mtime
    {
        return Some(**h);
    }
    let (size, mtime) = (node.size, node.disk_mtime);
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let h = hasher.finish(size, mtime);
    tree.nodes.get_mut(id)?.hashes = Some(Box::new(h));
    tree.hashes_dirty = true;
    Some(h)
}
