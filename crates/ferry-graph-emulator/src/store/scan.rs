//! Reconciles a drive's tree with its folder on disk, so files added, changed or removed
//! outside the API show up in Graph (and in delta) like changes from another client.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::tree::{Node, Tree};
use super::watch::{Changes, Watcher};
use super::{Drive, names};
use crate::state::SIDECAR;

pub fn mtime_of(meta: &std::fs::Metadata) -> (i64, u32) {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| (d.as_secs() as i64, d.subsec_nanos()))
        .unwrap_or((0, 0))
}

/// Rescans the whole drive (at start, and when change events were lost).
pub fn reconcile(drive: &Drive, tree: &mut Tree, mut watcher: Option<&mut Watcher>) {
    let root = tree.root.clone();
    if let Some(w) = watcher.as_deref_mut() {
        w.watch(&root, &drive.dir);
    }
    visit(drive, tree, watcher, &root, &drive.dir, Depth::All);
}

/// Rescans what changed since the last request: everything without a watcher, else the
/// folders inotify reported (and any folder new to the watcher below them).
pub fn refresh(drive: &Drive, tree: &mut Tree, watcher: Option<&mut Watcher>) {
    let Some(w) = watcher else {
        return reconcile(drive, tree, None);
    };
    let folders = match w.drain(|id| tree.nodes.get(id).is_some_and(|n| n.folder)) {
        Changes::All => return reconcile(drive, tree, Some(w)),
        Changes::Folders(f) => f,
    };
    for (id, names) in folders {
        // An earlier folder's rescan may have removed this one.
        if tree.nodes.get(&id).is_some_and(|n| n.folder) {
            let dir = tree.disk_path(&drive.dir, &id);
            match names {
                Some(names) => visit_names(drive, tree, Some(w), &id, &dir, names),
                None => visit(drive, tree, Some(w), &id, &dir, Depth::Changed),
            }
        }
    }
}

/// Rescans one folder, and the subfolders that are new in it (after the emulator itself
/// moved a tree into place). The watcher learns of them with the next request.
pub fn folder(drive: &Drive, tree: &mut Tree, id: &str) {
    let dir = tree.disk_path(&drive.dir, id);
    visit(drive, tree, None, id, &dir, Depth::Changed);
}

#[derive(Clone, Copy, PartialEq)]
enum Depth {
    /// Every folder below.
    All,
    /// Only subfolders that are new to the tree or to the watcher (replaced on disk).
    Changed,
}

fn visit(
    drive: &Drive,
    tree: &mut Tree,
    watcher: Option<&mut Watcher>,
    folder_id: &str,
    dir: &Path,
    depth: Depth,
) {
    let now = crate::util::now_secs();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // Name -> id of the children the tree knows, so each entry is one lookup.
    let mut known: HashMap<String, String> = tree
        .children
        .get(folder_id)
        .map(|kids| {
            kids.iter()
                .filter_map(|k| tree.nodes.get(k).map(|n| (n.name.clone(), k.clone())))
                .collect()
        })
        .unwrap_or_default();
    let mut subfolders = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let existing = known.remove(&name);
        if let Some(sub) = entry_of(drive, tree, folder_id, &name, &entry.path(), existing, now) {
            subfolders.push(sub);
        }
    }
    // What the tree knows and the folder no longer has.
    for id in known.into_values() {
        tree.remove(&id, drive.report_deleted_descendants);
        tree.touch_folder(folder_id, now);
    }
    visit_subfolders(drive, tree, watcher, subfolders, depth);
}

fn visit_subfolders(
    drive: &Drive,
    tree: &mut Tree,
    mut watcher: Option<&mut Watcher>,
    subfolders: Vec<(String, PathBuf, bool)>,
    depth: Depth,
) {
    for (id, path, created) in subfolders {
        // Watch before reading, so a change in between is still reported.
        let fresh = watcher.as_deref_mut().is_some_and(|w| w.watch(&id, &path));
        if depth == Depth::All || created || fresh {
            visit(drive, tree, watcher.as_deref_mut(), &id, &path, depth);
        }
    }
}

/// Looks at just the entries `names` of a folder (what inotify reported), so a write into a
/// folder of 10,000 files costs one `lstat`, not a rescan of the folder.
fn visit_names(
    drive: &Drive,
    tree: &mut Tree,
    watcher: Option<&mut Watcher>,
    folder_id: &str,
    dir: &Path,
    names: HashSet<String>,
) {
    let now = crate::util::now_secs();
    let by_name: HashMap<&str, &str> = tree
        .children
        .get(folder_id)
        .map(|kids| {
            kids.iter()
                .filter_map(|k| tree.nodes.get(k).map(|n| (n.name.as_str(), k.as_str())))
                .filter(|(name, _)| names.contains(*name))
                .collect()
        })
        .unwrap_or_default();
    let known: Vec<(String, Option<String>)> = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                by_name.get(name.as_str()).map(|id| id.to_string()),
            )
        })
        .collect();
    let mut subfolders = Vec::new();
    for (name, existing) in known {
        let path = dir.join(&name);
        if let Some(sub) = entry_of(drive, tree, folder_id, &name, &path, existing, now) {
            subfolders.push(sub);
        }
    }
    visit_subfolders(drive, tree, watcher, subfolders, Depth::Changed);
}

/// Brings the tree in line with one name of a folder on disk (which may be gone): `existing`
/// is the id the tree has under that name. Returns a folder entry as (id, path, newly
/// created) for the caller to descend into.
fn entry_of(
    drive: &Drive,
    tree: &mut Tree,
    folder_id: &str,
    name: &str,
    path: &Path,
    existing: Option<String>,
    now: i64,
) -> Option<(String, PathBuf, bool)> {
    // Names Graph could never show (and symlinks, which could leave the root) are
    // invisible to clients; so is the emulator's own folder.
    let visible = !(folder_id == tree.root && name == SIDECAR) && names::check_name(name).is_ok();
    let meta = visible
        .then(|| path.symlink_metadata().ok())
        .flatten()
        .filter(|m| m.is_dir() || m.is_file());
    let Some(meta) = meta else {
        // Gone (deleted, moved away), or nothing a client may see.
        if let Some(id) = existing {
            tree.remove(&id, drive.report_deleted_descendants);
            tree.touch_folder(folder_id, now);
        }
        return None;
    };
    let is_dir = meta.is_dir();
    let mtime = mtime_of(&meta);
    let mut created = false;
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
                name: name.to_owned(),
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
            created = true;
            id
        }
    };
    is_dir.then(|| (id, path.to_owned(), created))
}
