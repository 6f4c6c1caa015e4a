//! The OneDrive index against the Graph emulator: real delta JSON in, keys out, through a
//! full enumeration, incremental rounds (edit, move, delete) and a forced resync.

#![allow(clippy::unwrap_used)]

use ferry_graph::{Conflict, GraphClient};
use ferry_store::onedrive::index::DriveIndex;
use ferry_store::onedrive::keys::encode_key;
use ferry_testkit::graph::{app_client, start_emulator};

const ROOT: &str = "DynamicCapital/ai-training";

async fn put(graph: &GraphClient, dir: &std::path::Path, key: &str, body: &str) {
    let local = dir.join("upload");
    std::fs::write(&local, body).unwrap();
    let path = format!("{ROOT}/{}", encode_key(key).unwrap());
    graph
        .upload_file(&local, &path, Conflict::Replace)
        .await
        .unwrap();
}

async fn round(graph: &GraphClient, index: &mut DriveIndex) {
    let delta = graph.delta(index.cursor()).await.unwrap();
    index.apply(&delta);
}

fn files(index: &DriveIndex, prefix: &str) -> Vec<String> {
    index
        .range(prefix, None)
        .filter(|(_, item)| !item.is_folder())
        .map(|(k, _)| k.to_owned())
        .collect()
}

#[tokio::test]
async fn the_index_follows_the_drive_through_delta() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let graph = app_client(&emu);
    put(&graph, dir.path(), "datasets/a/v1/x.csv", "1").await;
    put(&graph, dir.path(), "datasets/a/v1/what?.csv", "2").await;
    put(&graph, dir.path(), "reports/CON", "3").await;
    let local = dir.path().join("outside");
    std::fs::write(&local, "no").unwrap();
    graph
        .upload_file(&local, "elsewhere/file.txt", Conflict::Replace)
        .await
        .unwrap();

    let mut index = DriveIndex::new(ROOT);
    round(&graph, &mut index).await;
    assert_eq!(
        files(&index, ""),
        [
            "datasets/a/v1/what?.csv",
            "datasets/a/v1/x.csv",
            "reports/CON"
        ]
    );
    let x = index.get("datasets/a/v1/x.csv").unwrap().clone();
    assert_eq!(x.size, Some(1));

    // An edit, a folder renamed, a file deleted: one incremental round.
    put(&graph, dir.path(), "datasets/a/v1/x.csv", "edited").await;
    let v1 = graph
        .item_by_path(&format!("{ROOT}/datasets/a/v1"))
        .await
        .unwrap();
    graph.move_item(&v1.id, None, Some("v2")).await.unwrap();
    let con = index.get("reports/CON").unwrap().id.clone();
    graph.delete(&con).await.unwrap();
    round(&graph, &mut index).await;
    assert_eq!(
        files(&index, ""),
        ["datasets/a/v2/what?.csv", "datasets/a/v2/x.csv"]
    );
    let edited = index.get("datasets/a/v2/x.csv").unwrap();
    assert_eq!((edited.id.as_str(), edited.size), (x.id.as_str(), Some(6)));
    assert_ne!(edited.c_tag, x.c_tag);

    // A resync (410) rebuilds it to the same keys.
    emu.faults()
        .update(|f| f.delta_resync = Some("resyncRequired".into()));
    put(&graph, dir.path(), "reports/r.md", "4").await;
    round(&graph, &mut index).await;
    assert!(
        emu.faults().get().delta_resync.is_none(),
        "the 410 happened"
    );
    assert_eq!(
        files(&index, ""),
        [
            "datasets/a/v2/what?.csv",
            "datasets/a/v2/x.csv",
            "reports/r.md"
        ]
    );
}
