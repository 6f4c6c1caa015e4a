//! Reconciles a drive's tree with its folder on disk, so files added, changed or removed
//! outside the API show up in Graph (and in delta) like changes from another client.

use std::path::Path;
use std::time::UNIX_EPOCH;

use super::tree::{Node, Tree};
use super::{Drive, names};
use crate::state::SIDECAR;

pub fn mtime_of(meta: &std::fs::Metadata) -> (i64, u32) {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| (d.as_secs() as i64, d.subsec_nanos()))
        .unwrap_or((0, 0))
}

pub fn reconcile(drive: &Drive, tree: &mut Tree) {
    let root = tree.root.clone();
    visit(drive, tree, &root, &drive.dir, true);
}

fn visit(drive: &Drive, tree: &mut Tree, folder_id: &str, dir: &Path, at_root: bool) {
    let now = crate::util::now_secs();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    let mut subfolders = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if at_root && name == SIDECAR {
            continue;
        }
        // Names Graph could never show (and symlinks, which could leave the root) are
        // invisible to clients.
        if names::check_name(&name).is_err() {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let is_dir = meta.is_dir();
        if !is_dir && !meta.is_file() {
            continue;
        }
        let existing = tree
            .children
            .get(folder_id)
            .and_then(|kids| {
                kids.iter()
                    .find(|k| tree.nodes.get(*k).is_some_and(|n| n.name == name))
            })
            .cloned();
        let mtime = mtime_of(&meta);
        let id = match existing {
            Some(id) if tree.nodes.get(&id).is_some_and(|n| n.folder == is_dir) => {
                let changed = tree
                    .nodes
                    .get(&id)
                    .is_some_and(|n| !n.folder && (n.size != meta.len() || n.disk_mtime != mtime));
                if changed {
                    if let Some(n) = tree.nodes.get_mut(&id) {
                        n.size = meta.len();
                        n.disk_mtime = mtime;
                        n.modified = now;
                        n.fs_modified = mtime.0;
                        n.version += 1;
                        n.ctag += 1;
                        n.hashes = None;
                    }
                    tree.bump(&id);
                    tree.touch_folder(folder_id, now);
                }
                id
            }
            other => {
                if let Some(stale) = other {
                    tree.remove(&stale, drive.report_deleted_descendants);
                }
                let id = super::ids::item_id(drive.drive_type, &drive.id, tree.next_id);
                tree.next_id += 1;
                let seq = tree.next_seq();
                tree.insert(Node {
                    id: id.clone(),
                    parent: Some(folder_id.to_string()),
                    name: name.clone(),
                    folder: is_dir,
                    size: if is_dir { 0 } else { meta.len() },
                    disk_mtime: mtime,
                    created: now,
                    modified: now,
                    fs_created: mtime.0,
                    fs_modified: mtime.0,
                    guid: crate::util::new_guid().to_uppercase(),
                    version: 1,
                    ctag: 1,
                    seq,
                    hashes: None,
                });
                tree.touch_folder(folder_id, now);
                id
            }
        };
        seen.insert(id.clone());
        if is_dir {
            subfolders.push((id, entry.path()));
        }
    }
    let gone: Vec<String> = tree
        .children
        .get(folder_id)
        .map(|kids| {
            kids.iter()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for id in gone {
        tree.remove(&id, drive.report_deleted_descendants);
        tree.touch_folder(folder_id, now);
    }
    for (id, path) in subfolders {
        visit(drive, tree, &id, &path, false);
    }
}
