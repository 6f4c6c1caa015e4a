//! What the OneDrive backend does beyond the conformance suite: files changed in OneDrive
//! itself, keys OneDrive forbids, throttling.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_graph::Conflict;
use ferry_store::onedrive::backend::MetaStore;
use ferry_store::{Backend as _, BackendExt as _, ObjectAttrs, OneDriveBackend};
use ferry_testkit::graph::{app_client, start_emulator};
use md5::Digest as _;

const ROOT: &str = "DynamicCapital/ai-training";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_in_onedrive_is_served_new_with_a_new_etag() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let graph = app_client(&emu);
    let state = dir.path().join("state");
    let meta = MetaStore::embedded(&state.join("meta.redb")).unwrap();
    let backend =
        OneDriveBackend::open_with(graph.clone(), ROOT, &state, Duration::ZERO, meta).unwrap();
    backend.create_bucket("datasets").await.unwrap();
    let attrs = ObjectAttrs {
        content_type: Some("text/csv".into()),
        ..ObjectAttrs::default()
    };
    let put = backend
        .put_bytes("datasets", "train.csv", "id\n1\n", attrs.clone())
        .await
        .unwrap();
    assert_eq!(
        backend.head("datasets", "train.csv").await.unwrap().attrs,
        attrs
    );

    // Someone edits it in OneDrive, and adds a file with a name S3 keys encode.
    let local = dir.path().join("edit");
    std::fs::write(&local, "id\n1\n2\n").unwrap();
    graph
        .upload_file(
            &local,
            &format!("{ROOT}/datasets/train.csv"),
            Conflict::Replace,
        )
        .await
        .unwrap();
    graph
        .upload_file(
            &local,
            &format!("{ROOT}/datasets/q：a.csv"),
            Conflict::Replace,
        )
        .await
        .unwrap();

    let head = backend.head("datasets", "train.csv").await.unwrap();
    assert_ne!(head.etag, put.etag, "a new version, a new entity tag");
    assert_eq!(head.etag.len(), 40, "no client takes it for an MD5");
    assert_eq!(
        head.attrs,
        ObjectAttrs::default(),
        "the old attributes were for the old bytes"
    );
    assert_eq!(
        backend.get_bytes("datasets", "train.csv").await.unwrap(),
        "id\n1\n2\n"
    );
    let keys: Vec<String> = backend
        .list_all("datasets", &Default::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    assert_eq!(keys, ["q:a.csv", "train.csv"]);
    assert_eq!(
        backend.get_bytes("datasets", "q:a.csv").await.unwrap(),
        "id\n1\n2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_onedrive_forbids_round_trip_and_throttling_is_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let backend = OneDriveBackend::open(app_client(&emu), ROOT, &dir.path().join("state")).unwrap();
    backend.create_bucket("odd").await.unwrap();
    let keys = [
        "CON",
        "a:b|c?.txt",
        "~$lock.docx",
        "x_vti_y/ trailing. ",
        "tab\there",
        "‛self",
        "self",
    ];
    emu.faults().update(|f| {
        f.throttle_next = 3;
        f.retry_after_secs = 1;
    });
    for key in keys {
        backend
            .put_bytes("odd", key, key.to_owned(), ObjectAttrs::default())
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
    }
    assert_eq!(
        emu.faults().get().throttle_next,
        0,
        "the throttling happened"
    );
    for key in keys {
        assert_eq!(backend.get_bytes("odd", key).await.unwrap(), key, "{key:?}");
    }
    let mut sorted = keys.map(str::to_owned).to_vec();
    sorted.sort();
    let listed: Vec<String> = backend
        .list_all("odd", &Default::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    assert_eq!(listed, sorted);
    // Longer than OneDrive allows: a clear error, nothing written.
    let long = "k".repeat(300);
    let err = backend
        .put("odd", &long, Default::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("255"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_past_the_retry_budget_is_slow_down() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let mut config = ferry_testkit::graph::app_config(&emu);
    config.retry.budget = Duration::from_secs(2);
    let graph = ferry_graph::GraphClient::new(&config).unwrap();
    let backend = OneDriveBackend::open(graph, ROOT, &dir.path().join("state")).unwrap();
    emu.faults().update(|f| {
        f.throttle_rate = 1.0;
        f.retry_after_secs = 1;
    });
    let err = backend.list_buckets().await.unwrap_err();
    assert!(
        matches!(
            err,
            ferry_store::Error::SlowDown {
                retry_after: Some(_)
            }
        ),
        "{err:?}"
    );
    emu.faults().update(|f| f.throttle_rate = 0.0);
    backend.list_buckets().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_stream_into_an_upload_session_and_appear_only_at_commit() {
    use bytes::Bytes;
    use ferry_store::{CommitOptions, PutOptions};
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let backend = OneDriveBackend::open(app_client(&emu), ROOT, &dir.path().join("state")).unwrap();
    backend.create_bucket("models").await.unwrap();
    let data: Vec<u8> = (0..14 * 1024 * 1024 + 3).map(|i| (i % 239) as u8).collect();
    let put = backend
        .put_bytes(
            "models",
            "run-1/weights.bin",
            data.clone(),
            ObjectAttrs::default(),
        )
        .await
        .unwrap();
    assert_eq!(put.etag, hex::encode(md5::Md5::digest(&data)));
    assert_eq!(
        backend
            .get_bytes("models", "run-1/weights.bin")
            .await
            .unwrap(),
        data
    );
    // Into a folder the index knows: the upload session is the only Graph request (and a
    // delta round, should the index have aged past the freshness bound meanwhile); walking
    // and re-creating the folder path took six.
    let before = emu.graph_requests();
    backend
        .put_bytes(
            "models",
            "run-1/optimizer.bin",
            data.clone(),
            ObjectAttrs::default(),
        )
        .await
        .unwrap();
    assert!(emu.graph_requests() - before <= 2);
    // The folder deleted in OneDrive before the index heard of it: made again.
    let graph = app_client(&emu);
    let folder = graph
        .item_by_path(&format!("{ROOT}/models/run-1"))
        .await
        .unwrap();
    graph.delete(&folder.id).await.unwrap();
    backend
        .put_bytes(
            "models",
            "run-1/again.bin",
            data.clone(),
            ObjectAttrs::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        graph
            .item_by_path(&format!("{ROOT}/models/run-1/again.bin"))
            .await
            .unwrap()
            .size,
        Some(data.len() as u64)
    );
    let spooled = std::fs::read_dir(dir.path().join("state/spool"))
        .unwrap()
        .count();
    assert_eq!(spooled, 0, "nothing went through the spool");

    // Dropped half way, or with the wrong MD5: nothing appears, in S3 or in the drive.
    let size = Some(6 * 1024 * 1024);
    let mut dropped = backend
        .put(
            "models",
            "dropped.bin",
            PutOptions {
                size_hint: size,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    dropped
        .write(Bytes::from(vec![1; 1024 * 1024]))
        .await
        .unwrap();
    drop(dropped);
    let mut bad = backend
        .put(
            "models",
            "bad.bin",
            PutOptions {
                size_hint: size,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    bad.write(Bytes::from(vec![2; 6 * 1024 * 1024]))
        .await
        .unwrap();
    let err = bad
        .commit(CommitOptions {
            expected_md5: Some([0; 16]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ferry_store::Error::BadDigest { .. }),
        "{err:?}"
    );
    for key in ["dropped.bin", "bad.bin"] {
        assert!(backend.head("models", key).await.is_err(), "{key}");
        assert!(
            graph
                .item_by_path(&format!("{ROOT}/models/{key}"))
                .await
                .is_err(),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_session_expiring_mid_write_fails_cleanly_and_a_retry_succeeds() {
    use bytes::Bytes;
    use ferry_store::PutOptions;
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let backend = OneDriveBackend::open(app_client(&emu), ROOT, &dir.path().join("state")).unwrap();
    backend.create_bucket("models").await.unwrap();
    let size = 24 * 1024 * 1024;
    let opts = || PutOptions {
        size_hint: Some(size as u64),
        ..Default::default()
    };
    emu.faults()
        .update(|f| f.upload_session_expiry_secs = Some(3));
    let mut writer = backend.put("models", "w.bin", opts()).await.unwrap();
    writer
        .write(Bytes::from(vec![7; 12 * 1024 * 1024]))
        .await
        .unwrap();
    // The first fragment went out well within the session's life; now it expires.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let failed = writer.write(Bytes::from(vec![7; 12 * 1024 * 1024])).await;
    assert!(failed.is_err(), "the expired session refuses the rest");
    drop(writer);
    assert!(
        backend.head("models", "w.bin").await.is_err(),
        "nothing half-written"
    );

    emu.faults().update(|f| f.upload_session_expiry_secs = None);
    let data = vec![7u8; size];
    backend
        .put_bytes("models", "w.bin", data.clone(), ObjectAttrs::default())
        .await
        .unwrap();
    assert_eq!(backend.get_bytes("models", "w.bin").await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_of_one_version_share_one_download_url() {
    use ferry_store::RangeRequest;
    let dir = tempfile::tempdir().unwrap();
    // Download URLs that expire after 5 s.
    let emu = start_emulator(&dir.path().join("emulator"), |c| {
        c.download_url_lifetime = Duration::from_secs(5);
    })
    .await;
    let state = dir.path().join("state");
    let meta = MetaStore::embedded(&state.join("meta.redb")).unwrap();
    // A long freshness bound: no delta round between the reads.
    let backend = OneDriveBackend::open_with(
        app_client(&emu),
        ROOT,
        &state,
        Duration::from_secs(600),
        meta,
    )
    .unwrap();
    backend.create_bucket("datasets").await.unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    backend
        .put_bytes(
            "datasets",
            "shard.bin",
            data.clone(),
            ObjectAttrs::default(),
        )
        .await
        .unwrap();
    let read = |first: u64, last: u64| {
        let backend = backend.clone();
        async move {
            let range = RangeRequest::FromTo {
                first,
                last: Some(last),
            };
            let got = backend
                .get("datasets", "shard.bin", Some(range))
                .await
                .unwrap();
            let mut body = got.body;
            let mut out = Vec::new();
            while let Some(chunk) = futures::StreamExt::next(&mut body).await {
                out.extend_from_slice(&chunk.unwrap());
            }
            out
        }
    };
    let before = emu.graph_requests();
    for (first, last) in [(0, 9_999), (10_000, 49_999), (50_000, 99_999)] {
        assert_eq!(
            read(first, last).await,
            data[first as usize..=last as usize]
        );
    }
    assert_eq!(
        emu.graph_requests() - before,
        1,
        "one download URL for three ranges"
    );
    // Expired: refused, and a new one is asked for.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(read(5, 9).await, data[5..=9]);
    assert_eq!(emu.graph_requests() - before, 2);

    // A new version gets a URL of its own, and its own bytes.
    let newer: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
    backend
        .put_bytes(
            "datasets",
            "shard.bin",
            newer.clone(),
            ObjectAttrs::default(),
        )
        .await
        .unwrap();
    assert_eq!(read(0, 99).await, newer[..100]);
}
