//! Delta: what changed in a drive since a cursor, and a tree that turns delta items (which
//! carry ids and parents, not paths) into changes by path.

use std::collections::HashMap;

use crate::client::GraphClient;
use crate::error::Result;
use crate::model::{DriveItem, Page};

/// One delta run: every item page until the delta link.
#[derive(Debug, Clone)]
pub struct Delta {
    pub items: Vec<DriveItem>,
    /// The cursor for next time.
    pub delta_link: String,
    /// The cursor was rejected (410) and this is a full enumeration: reconcile everything.
    pub resynced: bool,
}

impl GraphClient {
    /// Changes since `cursor` (a stored delta link), or a full enumeration from the root.
    /// An expired cursor is answered with a full enumeration and `resynced` set.
    pub async fn delta(&self, cursor: Option<&str>) -> Result<Delta> {
        let start = cursor
            .map(str::to_owned)
            .unwrap_or_else(|| self.drive_url("/root/delta"));
        let mut url = start;
        let mut items = Vec::new();
        let mut resynced = false;
        loop {
            let page: Page<DriveItem> = match self.get_json("delta", &url).await {
                Ok(page) => page,
                Err(e) if e.status() == Some(410) && !resynced => {
                    tracing::info!(code = ?e.graph_code(), "delta cursor expired; enumerating again");
                    resynced = true;
                    items.clear();
                    url = e
                        .location()
                        .map(str::to_owned)
                        .unwrap_or_else(|| self.drive_url("/root/delta"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            items.extend(page.value);
            match (page.next_link, page.delta_link) {
                (Some(next), _) => url = next,
                (None, Some(delta_link)) => {
                    return Ok(Delta {
                        items,
                        delta_link,
                        resynced,
                    });
                }
                (None, None) => {
                    return Err(crate::error::Error::protocol(
                        "a delta page had neither a next link nor a delta link",
                    ));
                }
            }
        }
    }
}

/// A change by path, derived from delta items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new file or folder, or one whose content changed (a new cTag).
    Upserted {
        path: String,
        item: Box<DriveItem>,
    },
    Moved {
        from: String,
        to: String,
    },
    Deleted {
        path: String,
    },
}

/// The changes that concern the folder `scope` (`a/b`), with paths relative to it: how a
/// client follows a subfolder on any drive type, from a delta of the whole drive. A move
/// into the folder is a new item there; a move out of it, a deletion; the folder's own
/// deletion is `Deleted { path: "" }`.
pub fn scoped(changes: Vec<Change>, scope: &str) -> Vec<Change> {
    let scope = scope.trim_matches('/');
    let inside = |path: &str| -> Option<String> {
        if scope.is_empty() {
            return Some(path.to_owned());
        }
        // The folder itself is "": its deletion means everything under it is gone.
        match path.strip_prefix(scope)? {
            "" => Some(String::new()),
            rest => rest.strip_prefix('/').map(str::to_owned),
        }
    };
    changes
        .into_iter()
        .filter_map(|change| match change {
            Change::Upserted { path, item } => {
                inside(&path).map(|path| Change::Upserted { path, item })
            }
            Change::Deleted { path } => inside(&path).map(|path| Change::Deleted { path }),
            Change::Moved { from, to } => match (inside(&from), inside(&to)) {
                (Some(from), Some(to)) => Some(Change::Moved { from, to }),
                (Some(path), None) => Some(Change::Deleted { path }),
                (None, Some(path)) => Some(Change::Upserted {
                    path,
                    item: Box::default(),
                }),
                (None, None) => None,
            },
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    parent: Option<String>,
    item: DriveItem,
}

/// The drive as delta has described it so far: items by id, paths derived from parents.
#[derive(Debug, Clone, Default)]
pub struct DeltaTree {
    nodes: HashMap<String, Node>,
    root: Option<String>,
}

impl DeltaTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The path of an item (`""` for the root), if its ancestry is known.
    pub fn path(&self, id: &str) -> Option<String> {
        let mut names = Vec::new();
        let mut current = id;
        for _ in 0..10_000 {
            if Some(current) == self.root.as_deref() {
                names.reverse();
                return Some(names.join("/"));
            }
            let node = self.nodes.get(current)?;
            names.push(node.name.as_str());
            current = node.parent.as_deref()?;
        }
        None
    }

    /// Every known item with its path, files and folders, sorted by path.
    pub fn paths(&self) -> Vec<(String, &DriveItem)> {
        let mut all: Vec<_> = self
            .nodes
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != self.root.as_deref())
            .filter_map(|(id, node)| Some((self.path(id)?, &node.item)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Applies a run's items in order (the last mention of an id wins) and returns the
    /// changes by path. A moved folder is one change; its children move with it.
    pub fn apply(&mut self, items: &[DriveItem]) -> Vec<Change> {
        let mut changes = Vec::new();
        for item in items {
            if item.root.is_some() {
                self.root = Some(item.id.clone());
                self.nodes.insert(
                    item.id.clone(),
                    Node {
                        name: String::new(),
                        parent: None,
                        item: item.clone(),
                    },
                );
                continue;
            }
            let before = self.path(&item.id);
            if item.is_deleted() {
                if let Some(path) = before {
                    changes.push(Change::Deleted { path });
                }
                self.remove(&item.id);
                continue;
            }
            let previous_ctag = self.nodes.get(&item.id).and_then(|n| n.item.c_tag.clone());
            self.nodes.insert(
                item.id.clone(),
                Node {
                    name: item.name.clone(),
                    parent: item.parent_id().map(str::to_owned),
                    item: item.clone(),
                },
            );
            let Some(after) = self.path(&item.id) else {
                continue;
            };
            match before {
                Some(from) if from != after => {
                    changes.push(Change::Moved {
                        from,
                        to: after.clone(),
                    });
                    if !item.is_folder() && previous_ctag != item.c_tag {
                        changes.push(Change::Upserted {
                            path: after,
                            item: Box::new(item.clone()),
                        });
                    }
                }
                Some(_) if previous_ctag == item.c_tag && item.c_tag.is_some() => {}
                _ => changes.push(Change::Upserted {
                    path: after,
                    item: Box::new(item.clone()),
                }),
            }
        }
        changes
    }

    fn remove(&mut self, id: &str) {
        self.nodes.remove(id);
        let children: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.parent.as_deref() == Some(id))
            .map(|(child, _)| child.clone())
            .collect();
        for child in children {
            self.remove(&child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeletedFacet, FolderFacet, ItemReference};

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
            ..DriveItem::default()
        }
    }

    fn root() -> DriveItem {
        DriveItem {
            id: "root".into(),
            root: Some(serde_json::json!({})),
            ..DriveItem::default()
        }
    }

    #[test]
    fn scoping_keeps_the_subfolder_and_turns_moves_across_its_edge_into_upserts_and_deletes() {
        let up = |p: &str| Change::Upserted {
            path: p.into(),
            item: Box::default(),
        };
        let changes = vec![
            up("datasets/a.csv"),
            up("reports/x.pdf"),
            Change::Moved {
                from: "datasets/a.csv".into(),
                to: "datasets/b.csv".into(),
            },
            Change::Moved {
                from: "datasets/b.csv".into(),
                to: "archive/b.csv".into(),
            },
            Change::Moved {
                from: "inbox/c.csv".into(),
                to: "datasets/c.csv".into(),
            },
            Change::Deleted {
                path: "datasets".into(),
            },
            Change::Deleted {
                path: "datasets-old/z".into(),
            },
        ];
        assert_eq!(
            scoped(changes, "/datasets/"),
            [
                up("a.csv"),
                Change::Moved {
                    from: "a.csv".into(),
                    to: "b.csv".into()
                },
                Change::Deleted {
                    path: "b.csv".into()
                },
                up("c.csv"),
                Change::Deleted { path: "".into() },
            ]
        );
    }

    #[test]
    fn paths_come_from_parents_and_the_last_mention_wins() {
        let mut tree = DeltaTree::new();
        // Children may come before their parent within a run.
        let changes = tree.apply(&[
            root(),
            item("f", "a.csv", "d", false, "c1"),
            item("d", "data", "root", true, "c1"),
            item("f", "a.csv", "d", false, "c2"),
        ]);
        assert_eq!(tree.path("f").as_deref(), Some("data/a.csv"));
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, Change::Upserted { path, .. } if path == "data"))
        );
        // A renamed folder's children are not resent, yet their paths follow it.
        let changes = tree.apply(&[item("d", "renamed", "root", true, "c1")]);
        assert_eq!(
            changes,
            [Change::Moved {
                from: "data".into(),
                to: "renamed".into()
            }]
        );
        assert_eq!(tree.path("f").as_deref(), Some("renamed/a.csv"));
        // An unchanged item (same cTag) is no change.
        assert!(
            tree.apply(&[item("f", "a.csv", "d", false, "c2")])
                .is_empty()
        );
        let deleted = DriveItem {
            id: "d".into(),
            deleted: Some(DeletedFacet {
                state: Some("deleted".into()),
            }),
            ..DriveItem::default()
        };
        assert_eq!(
            tree.apply(&[deleted]),
            [Change::Deleted {
                path: "renamed".into()
            }]
        );
        assert!(tree.path("f").is_none(), "children go with their folder");
    }
}
