//! Mutations of a drive: they change the folder on disk and the tree together, under the
//! drive's lock, and record what delta must report.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::tree::{Hashes, Node, Tree};
use super::{Drive, ids, names, scan};
use crate::util::now_secs;

#[derive(Debug)]
pub enum OpError {
    NotFound(String),
    Conflict(String),
    Invalid(String),
    Denied(String),
    Quota,
    Io(std::io::Error),
}

impl From<std::io::Error> for OpError {
    fn from(e: std::io::Error) -> Self {
        OpError::Io(e)
    }
}

/// `@microsoft.graph.conflictBehavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Fail,
    Replace,
    Rename,
}

impl Conflict {
    pub fn parse(value: Option<&str>, default: Conflict) -> Result<Conflict, OpError> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("fail") => Ok(Conflict::Fail),
            Some("replace") => Ok(Conflict::Replace),
            Some("rename") => Ok(Conflict::Rename),
            Some(other) => Err(OpError::Invalid(format!(
                "Invalid value '{other}' for @microsoft.graph.conflictBehavior; expected fail, replace or rename."
            ))),
        }
    }
}

/// Client-supplied `fileSystemInfo` times (Unix seconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct FsInfo {
    pub created: Option<i64>,
    pub modified: Option<i64>,
}

fn folder(tree: &Tree, id: &str) -> Result<(), OpError> {
    match tree.get(id) {
        Some(n) if n.folder => Ok(()),
        Some(_) => Err(OpError::Invalid("The parent item is not a folder.".into())),
        None => Err(OpError::NotFound("The parent item was not found.".into())),
    }
}

/// Validates `name` under `parent` and applies the conflict behaviour. Returns the name
/// to use and the id of an existing item to replace.
fn place(
    tree: &Tree,
    parent: &str,
    name: &str,
    behavior: Conflict,
    this: Option<&str>,
) -> Result<(String, Option<String>), OpError> {
    names::check_name(name).map_err(OpError::Invalid)?;
    names::check_path_len(&format!("{}/{name}", tree.path_of(parent))).map_err(OpError::Invalid)?;
    let existing = tree
        .child_by_name(parent, name)
        .filter(|n| Some(n.id.as_str()) != this);
    match (existing, behavior) {
        (None, _) => Ok((name.to_string(), None)),
        (Some(_), Conflict::Fail) => Err(OpError::Conflict(format!(
            "The specified item name already exists. An item named '{name}' already exists in this folder."
        ))),
        (Some(e), Conflict::Replace) => Ok((name.to_string(), Some(e.id.clone()))),
        (Some(_), Conflict::Rename) => Ok((unique_name(tree, parent, name), None)),
    }
}

/// OneDrive's rename-on-conflict: `name 1.ext`, `name 2.ext`, ...
pub fn unique_name(tree: &Tree, parent: &str, name: &str) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1..)
        .map(|i| format!("{stem} {i}{ext}"))
        .find(|n| tree.child_by_name(parent, n).is_none())
        .unwrap_or_else(|| format!("{stem} {}{ext}", crate::util::random_token()))
}

fn new_node(drive: &Drive, tree: &mut Tree, parent: &str, name: &str, is_folder: bool) -> Node {
    let now = now_secs();
    let id = ids::item_id(drive.drive_type, &drive.id, tree.next_id);
    tree.next_id += 1;
    Node {
        id,
        parent: Some(parent.to_string()),
        name: name.to_string(),
        folder: is_folder,
        size: 0,
        disk_mtime: (0, 0),
        created: now,
        modified: now,
        fs_created: now,
        fs_modified: now,
        guid: crate::util::new_guid().to_uppercase(),
        version: 1,
        ctag: 1,
        seq: 0,
        hashes: None,
    }
}

pub fn set_mtime(path: &Path, secs: i64) -> std::io::Result<(i64, u32)> {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    let f = std::fs::File::options().write(true).open(path)?;
    f.set_modified(t)?;
    Ok(scan::mtime_of(&f.metadata()?))
}

pub fn create_folder(
    drive: &Drive,
    tree: &mut Tree,
    parent: &str,
    name: &str,
    behavior: Conflict,
    fs: FsInfo,
) -> Result<(String, bool), OpError> {
    folder(tree, parent)?;
    let (name, replace) = place(tree, parent, name, behavior, None)?;
    if let Some(old) = replace {
        delete(drive, tree, &old)?;
    }
    let mut node = new_node(drive, tree, parent, &name, true);
    std::fs::create_dir(tree.disk_path(&drive.dir, parent).join(&name))?;
    node.fs_created = fs.created.unwrap_or(node.created);
    node.fs_modified = fs.modified.unwrap_or(node.modified);
    node.seq = tree.next_seq();
    let id = node.id.clone();
    tree.insert(node);
    tree.touch_folder(parent, now_secs());
    Ok((id, true))
}

/// Where uploaded content goes: an existing item by id, or a name in a folder.
#[derive(Debug, Clone)]
pub enum Target {
    Item(String),
    Child { parent: String, name: String },
}

/// Moves a fully received temp file into place as the item's content.
/// Returns the item id and whether it was newly created.
#[allow(clippy::too_many_arguments)]
pub fn commit_file(
    drive: &Drive,
    tree: &mut Tree,
    target: &Target,
    tmp: &Path,
    hashes: Hashes,
    behavior: Conflict,
    fs: FsInfo,
) -> Result<(String, bool), OpError> {
    let now = now_secs();
    let (existing, parent, name) = match target {
        Target::Item(id) => {
            let n = tree
                .get(id)
                .ok_or_else(|| OpError::NotFound("The resource could not be found.".into()))?;
            if n.folder {
                return Err(OpError::Invalid(
                    "Cannot upload content to a folder.".into(),
                ));
            }
            let parent = n.parent.clone().unwrap_or_default();
            (Some(id.clone()), parent, n.name.clone())
        }
        Target::Child { parent, name } => {
            folder(tree, parent)?;
            let (name, replace) = place(tree, parent, name, behavior, None)?;
            if let Some(r) = &replace
                && tree.get(r).is_some_and(|n| n.folder)
            {
                return Err(OpError::Conflict(format!(
                    "The specified item name already exists. A folder named '{name}' already exists."
                )));
            }
            (replace, parent.clone(), name)
        }
    };
    let old_size = existing
        .as_deref()
        .and_then(|e| tree.get(e))
        .map_or(0, |n| n.size);
    if tree.used_bytes() - old_size + hashes.size > drive.quota_total {
        return Err(OpError::Quota);
    }
    let dest = tree.disk_path(&drive.dir, &parent).join(&name);
    std::fs::rename(tmp, &dest)?;
    let mtime = set_mtime(&dest, fs.modified.unwrap_or(now))?;
    let size = std::fs::metadata(&dest)?.len();
    let hashes = Hashes {
        mtime,
        size,
        ..hashes
    };
    let (id, created) = match existing {
        Some(id) => (id, false),
        None => {
            let node = new_node(drive, tree, &parent, &name, false);
            let id = node.id.clone();
            tree.insert(node);
            (id, true)
        }
    };
    if let Some(n) = tree.get_mut(&id) {
        if !created {
            n.version += 1;
            n.ctag += 1;
        }
        n.size = size;
        n.disk_mtime = mtime;
        n.modified = now;
        n.fs_modified = fs.modified.unwrap_or(now);
        if created {
            n.fs_created = fs.created.unwrap_or(now);
        } else if let Some(c) = fs.created {
            n.fs_created = c;
        }
        n.hashes = Some(Box::new(hashes));
    }
    tree.bump(&id);
    tree.touch_folder(&parent, now);
    Ok((id, created))
}

pub fn delete(drive: &Drive, tree: &mut Tree, id: &str) -> Result<(), OpError> {
    let node = tree
        .get(id)
        .ok_or_else(|| OpError::NotFound("The resource could not be found.".into()))?;
    let Some(parent) = node.parent.clone() else {
        return Err(OpError::Denied("The root folder cannot be deleted.".into()));
    };
    let path = tree.disk_path(&drive.dir, id);
    let res = if node.folder {
        std::fs::remove_dir_all(&path)
    } else {
        std::fs::remove_file(&path)
    };
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    tree.remove(id, drive.report_deleted_descendants);
    tree.touch_folder(&parent, now_secs());
    Ok(())
}

/// Rename and/or move (within the drive) and/or set `fileSystemInfo`.
pub fn update(
    drive: &Drive,
    tree: &mut Tree,
    id: &str,
    new_name: Option<&str>,
    new_parent: Option<&str>,
    behavior: Conflict,
    fs: FsInfo,
) -> Result<(), OpError> {
    let node = tree
        .get(id)
        .ok_or_else(|| OpError::NotFound("The resource could not be found.".into()))?
        .clone();
    let now = now_secs();
    let Some(old_parent) = node.parent.clone() else {
        if new_name.is_some() || new_parent.is_some() {
            return Err(OpError::Invalid(
                "The root folder cannot be renamed or moved.".into(),
            ));
        }
        return Ok(());
    };
    let parent = new_parent.unwrap_or(&old_parent).to_string();
    let name = new_name.unwrap_or(&node.name).to_string();
    if parent != old_parent || name != node.name {
        folder(tree, &parent)?;
        if tree.is_within(&parent, id) {
            return Err(OpError::Invalid(
                "Cannot move a folder into itself or one of its subfolders.".into(),
            ));
        }
        let (name, replace) = place(tree, &parent, &name, behavior, Some(id))?;
        if let Some(r) = replace {
            delete(drive, tree, &r)?;
        }
        let from = tree.disk_path(&drive.dir, id);
        let to = tree.disk_path(&drive.dir, &parent).join(&name);
        std::fs::rename(&from, &to)?;
        tree.reparent(id, &parent, &name);
        tree.touch_folder(&old_parent, now);
        if parent != old_parent {
            tree.touch_folder(&parent, now);
        }
    }
    let path = tree.disk_path(&drive.dir, id);
    let mut disk_mtime = None;
    if let (Some(m), false) = (fs.modified, node.folder) {
        disk_mtime = Some(set_mtime(&path, m)?);
    }
    if let Some(n) = tree.get_mut(id) {
        n.version += 1;
        n.modified = now;
        if let Some(c) = fs.created {
            n.fs_created = c;
        }
        if let Some(m) = fs.modified {
            n.fs_modified = m;
        }
        if let Some(dm) = disk_mtime {
            n.disk_mtime = dm;
            if let Some(h) = &mut n.hashes {
                h.mtime = dm;
            }
        }
    }
    tree.bump(id);
    Ok(())
}
