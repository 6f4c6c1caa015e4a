//! Content hashes: computed while uploads stream in, or lazily for files changed on disk.

use std::io::Read;
use std::path::Path;

use sha1::Digest as _;

use super::tree::{Hashes, Node};
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
            quick_xor: self.quick.finish_base64(),
            sha1: hex::encode_upper(self.sha1.finalize()),
            sha256: hex::encode_upper(self.sha256.finalize()),
            size,
            mtime,
        }
    }
}

/// The node's hashes, computing and caching them when the file changed since.
pub fn ensure(node: &mut Node, path: &Path) -> Option<Hashes> {
    if let Some(h) = &node.hashes
        && h.size == node.size
        && h.mtime == node.disk_mtime
    {
        return Some(h.clone());
    }
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
    let h = hasher.finish(node.size, node.disk_mtime);
    node.hashes = Some(h.clone());
    Some(h)
}
