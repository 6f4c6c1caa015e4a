//! The drive's item tree: ids, names, versions and change sequence numbers. The files
//! themselves live on disk; this is the metadata Graph needs on top of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A file's digests, kept as bytes (a drive can hold 100,000s of files) and saved as hex.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Hashes {
    #[serde(with = "hex_bytes")]
    pub quick_xor: [u8; 20],
    #[serde(with = "hex_bytes")]
    pub sha1: [u8; 20],
    #[serde(with = "hex_bytes")]
    pub sha256: [u8; 32],
    /// The (size, mtime) the hashes were computed for.
    pub size: u64,
    pub mtime: (i64, u32),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub parent: Option<String>,
    pub name: String,
    pub folder: bool,
    pub size: u64,
    /// mtime on disk (secs, nanos), to notice edits made outside the API.
    pub disk_mtime: (i64, u32),
    pub created: i64,
    pub modified: i64,
    pub fs_created: i64,
    pub fs_modified: i64,
    /// eTag is `"{guid},version"`, cTag `"c:{guid},ctag"`.
    pub guid: String,
    pub version: u64,
    pub ctag: u64,
    /// Change sequence number of the last change to this item (for delta).
    pub seq: u64,
    /// Boxed: most of a large drive's nodes are looked up far more often than hashed.
    pub hashes: Option<Box<Hashes>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    pub id: String,
    pub parent: Option<String>,
    pub folder: bool,
    pub seq: u64,
    /// For an item deleted with its folder: its last change before that. Delta reports it
    /// to clients whose cursor predates that change (they may know it elsewhere, or not at
    /// all); the others learn of it through the folder's deletion.
    #[serde(default)]
    pub last_change: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Tree {
    /// Changes when the state is recreated, invalidating old delta tokens.
    pub epoch: String,
    pub seq: u64,
    pub next_id: u64,
    pub root: String,
    pub nodes: HashMap<String, Node>,
    pub tombstones: Vec<Tombstone>,
    /// Delta tokens older than this can no longer be answered (410).
    pub min_seq: u64,
    #[serde(skip)]
    pub children: HashMap<String, Vec<String>>,
    #[serde(skip)]
    pub dirty: bool,
    /// Hashes were computed since the last save (a cache: saving can wait).
    #[serde(skip)]
    pub hashes_dirty: bool,
}

const MAX_TOMBSTONES: usize = 20_000;

impl Tree {
    pub fn new(root_id: String, now: i64) -> Self {
        let root = Node {
            id: root_id.clone(),
            parent: None,
            name: "root".into(),
            folder: true,
            size: 0,
            disk_mtime: (0, 0),
            created: now,
            modified: now,
            fs_created: now,
            fs_modified: now,
            guid: crate::util::new_guid().to_uppercase(),
            version: 1,
            ctag: 1,
            seq: 1,
            hashes: None,
        };
        let mut tree = Tree {
            epoch: crate::util::random_token(),
            seq: 1,
            next_id: 102,
            root: root_id.clone(),
            nodes: HashMap::from([(root_id, root)]),
            tombstones: Vec::new(),
            min_seq: 0,
            children: HashMap::new(),
            dirty: true,
            hashes_dirty: false,
        };
        tree.rebuild_index();
        tree
    }

    pub fn rebuild_index(&mut self) {
        self.children.clear();
        for n in self.nodes.values() {
            if let Some(p) = &n.parent {
                self.children
                    .entry(p.clone())
                    .or_default()
                    .push(n.id.clone());
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Node> {
        self.nodes.get_mut(id)
    }

    /// Children sorted by name, case-insensitively, for stable paging.
    pub fn children_of(&self, id: &str) -> Vec<&Node> {
        let mut v: Vec<&Node> = self
            .children
            .get(id)
            .map(|c| c.iter().filter_map(|i| self.nodes.get(i)).collect())
            .unwrap_or_default();
        v.sort_by_cached_key(|n| (n.name.to_lowercase(), n.name.clone()));
        v
    }

    /// OneDrive names are case-insensitive.
    pub fn child_by_name(&self, parent: &str, name: &str) -> Option<&Node> {
        let lower = name.to_lowercase();
        let kids = self.children.get(parent)?;
        let mut fallback = None;
        for id in kids {
            let Some(n) = self.nodes.get(id) else {
                continue;
            };
            if n.name == name {
                return Some(n);
            }
            if fallback.is_none() && n.name.to_lowercase() == lower {
                fallback = Some(n);
            }
        }
        fallback
    }

    /// Names from the root down to `id` (empty for the root).
    pub fn names_of(&self, id: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut cur = self.nodes.get(id);
        while let Some(n) = cur {
            let Some(p) = &n.parent else { break };
            names.push(n.name.clone());
            cur = self.nodes.get(p);
        }
        names.reverse();
        names
    }

    /// `/a/b` for an item (`""` for the root).
    pub fn path_of(&self, id: &str) -> String {
        self.names_of(id).iter().map(|n| format!("/{n}")).collect()
    }

    pub fn disk_path(&self, dir: &Path, id: &str) -> PathBuf {
        let mut p = dir.to_path_buf();
        for n in self.names_of(id) {
            p.push(n);
        }
        p
    }

    /// Whether `ancestor` is `id` or one of its ancestors.
    pub fn is_within(&self, id: &str, ancestor: &str) -> bool {
        let mut cur = Some(id.to_string());
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.nodes.get(&c).and_then(|n| n.parent.clone());
        }
        false
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.dirty = true;
        self.seq
    }

    /// Marks an item changed for delta.
    pub fn bump(&mut self, id: &str) {
        let seq = self.next_seq();
        if let Some(n) = self.nodes.get_mut(id) {
            n.seq = seq;
        }
    }

    /// A child was added, removed or renamed: the folder's eTag/cTag and
    /// lastModifiedDateTime change and it shows up in delta.
    pub fn touch_folder(&mut self, id: &str, now: i64) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.version += 1;
            n.ctag += 1;
            n.modified = now;
        }
        self.bump(id);
    }

    pub fn insert(&mut self, node: Node) {
        if let Some(p) = &node.parent {
            self.children
                .entry(p.clone())
                .or_default()
                .push(node.id.clone());
        }
        self.nodes.insert(node.id.clone(), node);
        self.dirty = true;
    }

    /// All ids in the subtree, parents before children.
    pub fn subtree(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_string()];
        let mut i = 0;
        while i < out.len() {
            if let Some(kids) = self.children.get(&out[i]) {
                out.extend(kids.iter().cloned());
            }
            i += 1;
        }
        out
    }

    /// Removes an item and its descendants, recording tombstones for delta.
    pub fn remove(&mut self, id: &str, tombstone_descendants: bool) -> Vec<Node> {
        let ids = self.subtree(id);
        if let Some(parent) = self.nodes.get(id).and_then(|n| n.parent.clone())
            && let Some(kids) = self.children.get_mut(&parent)
        {
            kids.retain(|k| k != id);
        }
        let mut removed = Vec::new();
        for (i, rid) in ids.iter().enumerate() {
            self.children.remove(rid);
            if let Some(n) = self.nodes.remove(rid) {
                let explicit = i == 0 || tombstone_descendants;
                let seq = self.next_seq();
                self.tombstones.push(Tombstone {
                    id: n.id.clone(),
                    parent: n.parent.clone(),
                    folder: n.folder,
                    seq,
                    last_change: (!explicit).then_some(n.seq),
                });
                removed.push(n);
            }
        }
        self.compact();
        self.dirty = true;
        removed
    }

    pub fn reparent(&mut self, id: &str, new_parent: &str, new_name: &str) {
        let old_parent = self.nodes.get(id).and_then(|n| n.parent.clone());
        if let Some(op) = old_parent
            && let Some(kids) = self.children.get_mut(&op)
        {
            kids.retain(|k| k != id);
        }
        self.children
            .entry(new_parent.to_string())
            .or_default()
            .push(id.to_string());
        if let Some(n) = self.nodes.get_mut(id) {
            n.parent = Some(new_parent.to_string());
            n.name = new_name.to_string();
        }
        self.dirty = true;
    }

    /// Total size of each folder (Graph reports a folder's size as its contents').
    pub fn size_of(&self, id: &str) -> u64 {
        match self.nodes.get(id) {
            Some(n) if !n.folder => n.size,
            Some(_) => self
                .subtree(id)
                .iter()
                .filter_map(|i| self.nodes.get(i))
                .filter(|n| !n.folder)
                .map(|n| n.size)
                .sum(),
            None => 0,
        }
    }

    pub fn used_bytes(&self) -> u64 {
        self.nodes
            .values()
            .filter(|n| !n.folder)
            .map(|n| n.size)
            .sum()
    }

    fn compact(&mut self) {
        if self.tombstones.len() > MAX_TOMBSTONES {
            let drop = self.tombstones.len() / 2;
            if let Some(last) = self.tombstones.get(drop - 1) {
                self.min_seq = self.min_seq.max(last.seq);
            }
            self.tombstones.drain(..drop);
        }
    }
}

/// Fixed-size digests as hex strings in the saved state.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
