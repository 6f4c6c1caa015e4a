//! Streaming uploads into a `deferCommit` session, against the emulator: bytes in odd-sized
//! pieces, a lost fragment acknowledgement, a short body, and nothing visible before commit.

#![allow(clippy::unwrap_used)]

use ferry_graph::{Conflict, quick_xor_hash};
use ferry_testkit::graph::{app_client, start_emulator};

#[tokio::test]
async fn a_stream_becomes_a_file_only_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), |_| {}).await;
    let graph = app_client(&emu);
    graph.create_folders("up").await.unwrap();
    let data: Vec<u8> = (0..25 * 1024 * 1024 + 11)
        .map(|i| (i % 241) as u8)
        .collect();
    // The second fragment's acknowledgement is lost: its bytes are stored, the answer is a
    // 500, and the upload must go on from where the session stands.
    emu.faults().update(|f| f.lose_fragment_acks_next = 0);
    let mut upload = graph
        .upload_stream("up/big.bin", data.len() as u64, Conflict::Replace)
        .await
        .unwrap();
    for (i, piece) in data.chunks(1024 * 1024 + 7).enumerate() {
        if i == 12 {
            emu.faults().update(|f| f.lose_fragment_acks_next = 1);
        }
        upload.write(piece).await.unwrap();
    }
    assert_eq!(
        emu.faults().get().lose_fragment_acks_next,
        0,
        "the fault happened"
    );
    let pending = upload.finish().await.unwrap();
    assert!(
        graph.item_by_path("up/big.bin").await.is_err(),
        "nothing before the commit"
    );
    let item = pending.commit().await.unwrap();
    assert_eq!(item.size, Some(data.len() as u64));
    assert_eq!(item.quick_xor_hash(), Some(quick_xor_hash(&data).as_str()));

    // Fewer bytes than announced: an error, and no file.
    let mut short = graph
        .upload_stream("up/short.bin", 1000, Conflict::Replace)
        .await
        .unwrap();
    short.write(&[1; 10]).await.unwrap();
    let err = short.finish().await.unwrap_err();
    assert!(err.to_string().contains("10 bytes of the 1000"), "{err}");
    assert!(graph.item_by_path("up/short.bin").await.is_err());
    // More bytes than announced: refused at once.
    let mut long = graph
        .upload_stream("up/long.bin", 5, Conflict::Replace)
        .await
        .unwrap();
    assert!(long.write(&[1; 6]).await.is_err());
    long.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_parent_folders_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), |_| {}).await;
    let graph = app_client(&emu);
    let mut upload = graph
        .upload_stream("new/deeper/x.bin", 5, Conflict::Replace)
        .await
        .unwrap();
    upload.write(b"hello").await.unwrap();
    let item = upload.finish().await.unwrap().commit().await.unwrap();
    assert_eq!(item.size, Some(5));
    assert!(graph.item_by_path("new/deeper").await.unwrap().is_folder());
}
