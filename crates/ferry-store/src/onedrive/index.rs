//! A drive folder's items by key, kept current from Graph delta: what listings and HEADs are
//! answered from, so that listing 10,000 keys costs one delta round, not a walk of folders.
//!
//! Files are held under their key below the root (`bucket/key`, decoded, see
//! [`super::keys`]), in byte order, which is the order S3 lists keys in; folders apart, as
//! they are not objects. Delta describes items by id; the [`DeltaTree`] turns that into
//! paths.

use std::collections::{BTreeMap, HashMap};

use ferry_graph::model::DriveItem;
use ferry_graph::{Change, Delta, DeltaTree};

use super::keys::{SELF_NAME, decode_path};

/// The items under one drive folder.
#[derive(Debug, Default)]
pub struct DriveIndex {
    /// The folder's drive path (`DynamicCapital/ai-training`), without slashes at the ends.
    root: String,
    tree: DeltaTree,
    files: BTreeMap<String, DriveItem>,
    folders: BTreeMap<String, DriveItem>,
    /// Items the gateway wrote and put here before delta reported them: item id -> key.
    written: HashMap<String, String>,
    cursor: Option<String>,
}

impl DriveIndex {
    pub fn new(root: &str) -> Self {
        Self {
            root: root.trim_matches('/').to_owned(),
            ..Self::default()
        }
    }

    /// Where the next delta round starts (`None` before the first).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Applies one delta round. The first round, and a resync, rebuild the index.
    pub fn apply(&mut self, delta: &Delta) {
        let fresh = delta.resynced || self.cursor.is_none();
        if fresh {
            self.tree = DeltaTree::new();
        }
        let changes = self.tree.apply(&delta.items);
        self.cursor = Some(delta.delta_link.clone());
        // A move changes the paths of everything below what moved: rebuild (moves are rare).
        if fresh || changes.iter().any(|c| matches!(c, Change::Moved { .. })) {
            self.written.clear();
            self.rebuild();
            return;
        }
        // What the gateway wrote is now reported by delta, which knows where it is since (it
        // may have been moved or deleted in OneDrive meanwhile): drop the early entry, and
        // let the changes below place the item.
        let mut forgotten = Vec::new();
        for item in &delta.items {
            if let Some(key) = self.written.remove(&item.id) {
                self.forget(&key, item);
                forgotten.push(item.id.as_str());
            }
        }
        for change in changes {
            match change {
                Change::Upserted { path, item } => self.insert(&path, *item),
                Change::Deleted { path } => {
                    if let Some(key) = self.key_of(&path) {
                        self.remove_tree(&key);
                    }
                }
                // Moves rebuilt the index above.
                Change::Moved { .. } => {}
            }
        }
        // One the tree already knew, reported again unchanged, got no change above: put it
        // back where the tree has it.
        for id in forgotten {
            let last = delta.items.iter().rev().find(|i| i.id == id);
            if let (Some(item), Some(path)) = (last, self.tree.path(id))
                && !item.is_deleted()
            {
                self.insert(&path, item.clone());
            }
        }
    }

    /// The file holding `bucket/key`.
    pub fn get(&self, key: &str) -> Option<&DriveItem> {
        self.files.get(key)
    }

    /// The folder at `bucket/key` (`bucket` for the bucket itself).
    pub fn folder(&self, key: &str) -> Option<&DriveItem> {
        self.folders.get(key)
    }

    /// The folders directly below the root: the buckets.
    pub fn top_folders(&self) -> impl Iterator<Item = (&str, &DriveItem)> {
        self.folders
            .iter()
            .filter(|(k, _)| !k.contains('/'))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Files whose key starts with `prefix` and sorts after `after`, in key order.
    pub fn range<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a DriveItem)> + 'a {
        let start = match after {
            Some(a) if a >= prefix => std::ops::Bound::Excluded(a.to_owned()),
            _ => std::ops::Bound::Included(prefix.to_owned()),
        };
        self.files
            .range((start, std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Records an item written through the gateway at its drive path (below the root), so
    /// that its writer sees it before the next delta round reports it.
    pub fn put(&mut self, path: &str, item: DriveItem) {
        if let Some(key) = self.key_of(path) {
            self.written.insert(item.id.clone(), key);
        }
        self.insert(path, item);
    }

    fn insert(&mut self, path: &str, item: DriveItem) {
        let Some(key) = self.key_of(path) else {
            return;
        };
        if item.is_folder() {
            self.folders.insert(key, item);
        } else {
            self.files.insert(key, item);
        }
    }

    /// Drops the entry at `key` if it is still `item` (deleted: with all below it).
    fn forget(&mut self, key: &str, item: &DriveItem) {
        let holds =
            |map: &BTreeMap<String, DriveItem>| map.get(key).is_some_and(|i| i.id == item.id);
        if item.is_deleted() {
            if holds(&self.files) || holds(&self.folders) {
                self.remove_tree(key);
            }
        } else if holds(&self.files) {
            self.files.remove(key);
        } else if holds(&self.folders) {
            self.folders.remove(key);
        }
    }

    /// Forgets the file holding `bucket/key` (deleted through the gateway).
    pub fn remove_file(&mut self, key: &str) {
        self.files.remove(key);
    }

    /// Forgets what is at `bucket/key`, and everything below it.
    pub fn remove_tree(&mut self, key: &str) {
        let below = format!("{key}/");
        for map in [&mut self.files, &mut self.folders] {
            map.remove(key);
            let doomed: Vec<String> = map
                .range(below.clone()..)
                .take_while(|(k, _)| k.starts_with(&below))
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                map.remove(&k);
            }
        }
    }

    /// The key for a drive path (with the root, as delta gives it), if it is below the
    /// root. A folder's own data (`‛self`) is the key of the folder.
    fn key_of(&self, path: &str) -> Option<String> {
        let rest = if self.root.is_empty() {
            path
        } else {
            path.strip_prefix(&self.root)?.strip_prefix('/')?
        };
        // A file set aside while its name becomes a folder is not an object.
        if rest
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(SELF_NAME) && name != SELF_NAME)
        {
            return None;
        }
        let rest = rest
            .strip_suffix(SELF_NAME)
            .and_then(|r| r.strip_suffix('/'))
            .unwrap_or(rest);
        (!rest.is_empty()).then(|| decode_path(rest))
    }

    fn rebuild(&mut self) {
        self.files.clear();
        self.folders.clear();
        let all: Vec<(String, DriveItem)> = self
            .tree
            .paths()
            .into_iter()
            .map(|(p, i)| (p, i.clone()))
            .collect();
        for (path, item) in all {
            self.insert(&path, item);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferry_graph::model::{DeletedFacet, FileFacet, FolderFacet, ItemReference};

    fn item(id: &str, name: &str, parent: &str, folder: bool, ctag: &str) -> DriveItem {
        DriveItem {
            id: id.into(),
            name: name.into(),
            c_tag: Some(ctag.into()),
            parent_reference: Some(ItemReference {
                id: Some(parent.into()),
                ..ItemReference::default()
            }),
            folder: folder.then(FolderFacet::default),
            file: (!folder).then(FileFacet::default),
            ..DriveItem::default()
        }
    }

    fn delta(items: Vec<DriveItem>, link: &str) -> Delta {
        Delta {
            items,
            delta_link: link.into(),
            resynced: false,
        }
    }

    fn keys(index: &DriveIndex, prefix: &str, after: Option<&str>) -> Vec<String> {
        index
            .range(prefix, after)
            .map(|(k, _)| k.to_owned())
            .collect()
    }

    fn drive() -> Vec<DriveItem> {
        vec![
            DriveItem {
                id: "root".into(),
                root: Some(serde_json::json!({})),
                ..DriveItem::default()
            },
            item("top", "ai", "root", true, "c0"),
            item("other", "elsewhere.txt", "root", false, "c0"),
            item("ds", "datasets", "top", true, "c0"),
            item("a", "a：b.csv", "ds", false, "c1"),
            item("sub", "sub", "ds", true, "c0"),
            item("b", "b.csv", "sub", false, "c1"),
            item("c", "a-b.csv", "ds", false, "c1"),
        ]
    }

    #[test]
    fn items_below_the_root_are_listed_by_decoded_key_in_byte_order() {
        let mut index = DriveIndex::new("/ai/");
        index.apply(&delta(drive(), "d1"));
        assert_eq!(index.cursor(), Some("d1"));
        assert_eq!(
            keys(&index, "datasets/", None),
            ["datasets/a-b.csv", "datasets/a:b.csv", "datasets/sub/b.csv"]
        );
        assert_eq!(
            keys(&index, "datasets/", Some("datasets/a:b.csv")),
            ["datasets/sub/b.csv"]
        );
        assert!(index.get("elsewhere.txt").is_none(), "outside the root");
        assert_eq!(index.get("datasets/sub/b.csv").unwrap().id, "b");
        assert!(index.folder("datasets/sub").is_some());
        let buckets: Vec<&str> = index.top_folders().map(|(k, _)| k).collect();
        assert_eq!(buckets, ["datasets"]);
    }

    #[test]
    fn edits_moves_and_deletions_follow_delta() {
        let mut index = DriveIndex::new("ai");
        index.apply(&delta(drive(), "d1"));
        // A file edited and renamed, a folder moved, a file deleted.
        index.apply(&delta(
            vec![
                item("c", "renamed.csv", "ds", false, "c2"),
                item("sub", "moved", "top", true, "c0"),
                DriveItem {
                    id: "a".into(),
                    deleted: Some(DeletedFacet::default()),
                    ..DriveItem::default()
                },
            ],
            "d2",
        ));
        assert_eq!(
            keys(&index, "", None),
            ["datasets/renamed.csv", "moved/b.csv"]
        );
        assert_eq!(
            index.get("datasets/renamed.csv").unwrap().c_tag.as_deref(),
            Some("c2")
        );
        // A single file moved between folders.
        index.apply(&delta(vec![item("b", "b.csv", "ds", false, "c1")], "d3"));
        assert_eq!(
            keys(&index, "", None),
            ["datasets/b.csv", "datasets/renamed.csv"]
        );
        // The folder deleted: everything below it goes.
        index.apply(&delta(
            vec![DriveItem {
                id: "ds".into(),
                deleted: Some(DeletedFacet::default()),
                ..DriveItem::default()
            }],
            "d4",
        ));
        assert!(keys(&index, "", None).is_empty());
        assert!(index.folder("moved").is_some());
        // Writes through the gateway show at once; a folder's own data is the folder's key.
        index.put("ai/moved/new.bin", item("n", "new.bin", "sub", false, "c9"));
        index.put(
            "ai/moved/x/\u{201B}self",
            item("s", "\u{201B}self", "x", false, "c9"),
        );
        assert_eq!(keys(&index, "", None), ["moved/new.bin", "moved/x"]);
        index.remove_tree("moved");
        assert!(keys(&index, "", None).is_empty());
        assert!(index.folder("moved").is_none());
    }

    #[test]
    fn what_the_gateway_wrote_follows_delta_even_when_changed_before_delta_saw_it() {
        let mut index = DriveIndex::new("ai");
        index.apply(&delta(drive(), "d1"));
        let deleted = |id: &str| DriveItem {
            id: id.into(),
            deleted: Some(DeletedFacet::default()),
            ..DriveItem::default()
        };
        // Written through the gateway, then deleted (or moved) in OneDrive before the next
        // round: delta reports ids the tree never saw.
        index.put(
            "ai/datasets/w1.csv",
            item("w1", "w1.csv", "ds", false, "c1"),
        );
        index.put(
            "ai/datasets/w2.csv",
            item("w2", "w2.csv", "ds", false, "c1"),
        );
        index.put(
            "ai/datasets/w3.csv",
            item("w3", "w3.csv", "ds", false, "c1"),
        );
        index.put("ai/new", item("nf", "new", "top", true, "c1"));
        index.put("ai/new/x.csv", item("x", "x.csv", "nf", false, "c1"));
        index.apply(&delta(
            vec![
                deleted("w1"),
                item("w2", "w2.csv", "sub", false, "c1"),
                item("w3", "w3.csv", "ds", false, "c2"),
                deleted("nf"),
            ],
            "d2",
        ));
        assert_eq!(
            keys(&index, "", None),
            [
                "datasets/a-b.csv",
                "datasets/a:b.csv",
                "datasets/sub/b.csv",
                "datasets/sub/w2.csv",
                "datasets/w3.csv",
            ]
        );
        assert_eq!(
            index.get("datasets/w3.csv").unwrap().c_tag.as_deref(),
            Some("c2")
        );
        assert!(index.folder("new").is_none());

        // Delta saw the write before the gateway recorded it, then reports it again
        // unchanged (no change for the tree): it stays listed.
        let w4 = item("w4", "w4.csv", "ds", false, "c1");
        index.apply(&delta(vec![w4.clone()], "d3"));
        index.put("ai/datasets/w4.csv", w4.clone());
        index.apply(&delta(vec![w4], "d4"));
        assert_eq!(index.get("datasets/w4.csv").unwrap().id, "w4");
    }
}
