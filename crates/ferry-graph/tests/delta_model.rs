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
async fn delta_from_any_cursor_rebuilds_the_drive() {
    for seed in [1u64, 7, 42, 99, 2024] {
        let dir = tempfile::tempdir().unwrap();
        let emu = start_emulator(dir.path(), |_| {}).await;
        let mut config = GraphConfig::new(TENANT, APP);
        config.authority = emu.authority();
        config.graph_url = emu.graph_url();
        config.credential = Credential::Secret(Secret::new(APP_SECRET));
        config.drive = DriveSelector::User(USER.into());
        let graph = GraphClient::new(&config).unwrap();
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
