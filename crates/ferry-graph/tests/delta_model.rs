//! Model test: random creates, writes, renames, moves and deletes on the emulator; replaying
//! delta from any earlier cursor must reconstruct exactly the drive's tree (its folder on disk).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use ferry_graph::{
    Conflict, Credential, DeltaTree, DriveSelector, GraphClient, GraphConfig, Secret,
};
use ferry_testkit::graph::{APP, APP_SECRET, TENANT, USER, start_emulator};

/// A small deterministic generator, so a failing seed can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn disk_tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.starts_with('.') {
                continue;
            }
            out.insert(rel);
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn tree_paths(tree: &DeltaTree) -> BTreeSet<String> {
    tree.paths().into_iter().map(|(p, _)| p).collect()
}

/// Paths with file sizes, to compare contents as well as names.
fn disk_sizes(root: &Path) -> BTreeSet<(String, u64)> {
    disk_tree(root)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(root.join(&p)).unwrap();
            let size = if meta.is_dir() { 0 } else { meta.len() };
            (p, size)
        })
        .collect()
}

fn tree_sizes(tree: &DeltaTree) -> BTreeSet<(String, u64)> {
    tree.paths()
        .into_iter()
        .map(|(p, i)| (p, if i.is_folder() { 0 } else { i.size.unwrap() }))
        .collect()
}

/// Edits the drive's folder directly, as another program would: the emulator must report
/// these in delta like changes from another client. Returns the file edited in place, if
/// that was the edit.
fn random_disk_op(root: &Path, rng: &mut Lcg, outside: &Path) -> Option<String> {
    let mut existing: Vec<String> = disk_tree(root).into_iter().collect();
    existing.sort();
    let folders: Vec<String> = std::iter::once(String::new())
        .chain(existing.iter().filter(|p| root.join(p).is_dir()).cloned())
        .collect();
    let files: Vec<&String> = existing.iter().filter(|p| root.join(p).is_file()).collect();
    let pick = |rng: &mut Lcg, list: &[String]| root.join(&list[rng.below(list.len())]);
    let name = format!("d{}", rng.below(6));
    match rng.below(7) {
        0 => {
            let dir = pick(rng, &folders);
            std::fs::write(dir.join(format!("{name}.txt")), "x".repeat(rng.below(50))).unwrap();
        }
        1 => {
            // A new folder with a file inside, made in one go.
            let dir = pick(rng, &folders).join(&name).join("inner");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("f.bin"), [7u8; 3]);
        }
        2 if !files.is_empty() => {
            // Same size, new bytes and a new mtime: an in-place edit.
            let rel = files[rng.below(files.len())].clone();
            let path = root.join(&rel);
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            std::fs::write(&path, "y".repeat(len)).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            let when = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_600_000_000 + rng.below(1 << 20) as u64);
            f.set_modified(when).unwrap();
            return Some(rel);
        }
        3 if folders.len() > 2 => {
            // Swap two sibling-or-not folders through a temporary name.
            let a = pick(rng, &folders[1..]);
            let b = pick(rng, &folders[1..]);
            if !a.starts_with(&b) && !b.starts_with(&a) {
                let tmp = root.join("swap-tmp");
                std::fs::rename(&a, &tmp).unwrap();
                std::fs::rename(&b, &a).unwrap();
                std::fs::rename(&tmp, &b).unwrap();
            }
        }
        4 if !existing.is_empty() => {
            let from = pick(rng, &existing);
            let to = pick(rng, &folders).join(format!("{name}-m"));
            if !to.starts_with(&from) && !to.exists() {
                std::fs::rename(&from, &to).unwrap();
            }
        }
        5 if folders.len() > 1 => {
            let dir = pick(rng, &folders[1..]);
            // Moved out of the drive, then changed there: the drive must not notice.
            let away = outside.join(format!("away{}", rng.below(1 << 30)));
            std::fs::rename(&dir, &away).unwrap();
            std::fs::write(away.join("late.txt"), b"late").unwrap();
        }
        6 if !existing.is_empty() => {
            let path = pick(rng, &existing);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
        _ => {}
    }
    None
}

async fn random_op(graph: &GraphClient, rng: &mut Lcg, scratch: &Path) {
    let all = graph.delta(None).await.unwrap();
    let mut tree = DeltaTree::new();
    tree.apply(&all.items);
    let existing = tree.paths();
    let folders: Vec<String> = std::iter::once(String::new())
        .chain(
            existing
                .iter()
                .filter(|(_, i)| i.is_folder())
                .map(|(p, _)| p.clone()),
        )
        .collect();
    let join = |dir: &str, name: &str| {
        if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        }
    };
    let name = format!("n{}", rng.below(6));
    match rng.below(6) {
        0 | 1 => {
            let dir = &folders[rng.below(folders.len())];
            std::fs::write(
                scratch,
                format!("{}", rng.below(1000)).repeat(1 + rng.below(20)),
            )
            .unwrap();
            let _ = graph
                .upload_file(
                    scratch,
                    &join(dir, &format!("{name}.csv")),
                    Conflict::Replace,
                )
                .await;
        }
        2 => {
            let dir = &folders[rng.below(folders.len())];
            let _ = graph.create_folders(&join(dir, &name)).await;
        }
        _ if existing.is_empty() => {}
        3 => {
            let (_, item) = &existing[rng.below(existing.len())];
            let _ = graph
                .move_item(&item.id, None, Some(&format!("{name}-r")))
                .await;
        }
        4 => {
            let (path, item) = &existing[rng.below(existing.len())];
            let target = &folders[rng.below(folders.len())];
            // Never into itself or its own subtree.
            if !target.starts_with(path.as_str()) {
                let parent = graph.item_by_path(target).await.unwrap();
                let _ = graph.move_item(&item.id, Some(&parent.id), None).await;
            }
        }
        _ => {
            let (_, item) = &existing[rng.below(existing.len())];
            let _ = graph.delete(&item.id).await;
        }
    }
}

#[tokio::test]
async fn delta_follows_edits_made_on_disk() {
    for seed in 1u64..=16 {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let emu = start_emulator(dir.path(), |_| {}).await;
        let graph = client(&emu);
        let drive_root = emu.drive_folder(&emu.drive_ids()[0]).unwrap();
        let scratch = dir.path().join("scratch");
        let mut rng = Lcg(seed);
        let first = graph.delta(None).await.unwrap();
        let mut tree = DeltaTree::new();
        tree.apply(&first.items);
        let mut cursor = first.delta_link;
        for step in 0..40 {
            let mut edited = None;
            if rng.below(3) == 0 {
                random_op(&graph, &mut rng, &scratch).await;
            } else {
                edited = random_disk_op(&drive_root, &mut rng, outside.path());
            }
            let etag = |tree: &DeltaTree, path: &str| {
                let found = tree.paths().into_iter().find(|(p, _)| p == path);
                found.map(|(_, i)| i.e_tag.clone())
            };
            let before = edited.as_deref().map(|p| etag(&tree, p));
            // Incremental delta right after the edit sees it (no polling, no delay).
            let delta = graph.delta(Some(&cursor)).await.unwrap();
            tree.apply(&delta.items);
            cursor = delta.delta_link;
            if let (Some(path), Some(before)) = (edited.as_deref(), before) {
                assert_ne!(
                    etag(&tree, path),
                    before,
                    "seed {seed}: in-place edit of {path}"
                );
            }
            assert_eq!(
                tree_sizes(&tree),
                disk_sizes(&drive_root),
                "seed {seed}, step {step}"
            );
        }
        // And a full enumeration agrees.
        let mut fresh = DeltaTree::new();
        fresh.apply(&graph.delta(None).await.unwrap().items);
        assert_eq!(tree_sizes(&fresh), disk_sizes(&drive_root), "seed {seed}");
    }
}

fn client(emu: &ferry_graph_emulator::Emulator) -> GraphClient {
    let mut config = GraphConfig::new(TENANT, APP);
    config.authority = emu.authority();
    config.graph_url = emu.graph_url();
    config.credential = Credential::Secret(Secret::new(APP_SECRET));
    config.drive = DriveSelector::User(USER.into());
    GraphClient::new(&config).unwrap()
}

#[tokio::test]
async fn delta_from_any_cursor_rebuilds_the_drive() {
    for seed in [1u64, 7, 42, 99, 2024] {
        let dir = tempfile::tempdir().unwrap();
        let emu = start_emulator(dir.path(), |_| {}).await;
        let graph = client(&emu);
        let drive_root = emu.drive_folder(&emu.drive_ids()[0]).unwrap();
        let scratch = dir.path().join("scratch");
        let mut rng = Lcg(seed);
        let mut checkpoints: Vec<(String, DeltaTree)> = Vec::new();
        for step in 0..30 {
            random_op(&graph, &mut rng, &scratch).await;
            if step % 5 == 4 {
                let cursor = match checkpoints.last() {
                    Some((cursor, tree)) => {
                        let mut tree = tree.clone();
                        let delta = graph.delta(Some(cursor)).await.unwrap();
                        tree.apply(&delta.items);
                        (delta.delta_link, tree)
                    }
                    None => {
                        let delta = graph.delta(None).await.unwrap();
                        let mut tree = DeltaTree::new();
                        tree.apply(&delta.items);
                        (delta.delta_link, tree)
                    }
                };
                checkpoints.push(cursor);
            }
        }
        let truth = disk_tree(&drive_root);
        for (i, (cursor, tree)) in checkpoints.iter().enumerate() {
            let mut replayed = tree.clone();
            let delta = graph.delta(Some(cursor)).await.unwrap();
            replayed.apply(&delta.items);
            assert_eq!(
                tree_paths(&replayed),
                truth,
                "seed {seed}, replay from checkpoint {i}"
            );
        }
    }
}
