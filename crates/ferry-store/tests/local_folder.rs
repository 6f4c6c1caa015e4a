//! What only the local-folder backend can be asked: files and links placed in the folder by
//! other programs, restarts, leftovers of crashes.

use std::os::unix::fs::symlink;
use std::sync::Arc;

use ferry_store::{Backend, BackendExt, Error, ListOptions, LocalBackend, ObjectAttrs, PutOptions};

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[tokio::test]
async fn symbolic_links_never_lead_out_of_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "outside").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::open(dir.path()).unwrap();
    backend.create_bucket("data").await.unwrap();
    symlink(outside.path(), dir.path().join("data/link")).unwrap();
    symlink(
        outside.path().join("secret"),
        dir.path().join("data/file-link"),
    )
    .unwrap();
    symlink(outside.path(), dir.path().join("linked-bucket")).unwrap();

    for key in ["link/secret", "file-link"] {
        assert!(backend.get_bytes("data", key).await.is_err(), "{key}");
    }
    assert!(matches!(
        backend.put("data", "link/new", PutOptions::default()).await,
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        backend.head("linked-bucket", "secret").await,
        Err(Error::NoSuchBucket { .. })
    ));
    let listed = backend
        .list_all("data", &ListOptions::default())
        .await
        .unwrap();
    assert!(listed.is_empty(), "links are not objects: {listed:?}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn files_from_other_programs_are_served_and_edits_get_new_etags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/reports")).unwrap();
    std::fs::write(dir.path().join("data/reports/q1.csv"), "a,b\n").unwrap();
    let backend = LocalBackend::open(dir.path()).unwrap();
    let meta = backend.head("data", "reports/q1.csv").await.unwrap();
    assert_eq!(meta.etag, md5_hex(b"a,b\n"));
    // Edited behind ferry's back: same name, new bytes, new ETag.
    std::fs::write(dir.path().join("data/reports/q1.csv"), "a,b\n1,2\n").unwrap();
    let meta = backend.head("data", "reports/q1.csv").await.unwrap();
    assert_eq!(meta.etag, md5_hex(b"a,b\n1,2\n"));
    assert_eq!(
        backend.get_bytes("data", "reports/q1.csv").await.unwrap(),
        "a,b\n1,2\n"
    );
}

#[tokio::test]
async fn metadata_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let attrs = ObjectAttrs {
        content_type: Some("application/x-parquet".into()),
        user_metadata: [("schema".to_owned(), "v2".to_owned())].into(),
        ..ObjectAttrs::default()
    };
    {
        let backend = LocalBackend::open(dir.path()).unwrap();
        backend.create_bucket("data").await.unwrap();
        backend
            .put_bytes("data", "t.parquet", "PAR1", attrs.clone())
            .await
            .unwrap();
    }
    let backend = LocalBackend::open(dir.path()).unwrap();
    let meta = backend.head("data", "t.parquet").await.unwrap();
    assert_eq!(meta.attrs, attrs);
    assert_eq!(meta.etag, md5_hex(b"PAR1"));
}

#[tokio::test]
async fn leftover_temp_files_are_not_objects_and_old_ones_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::open(dir.path()).unwrap();
    backend.create_bucket("data").await.unwrap();
    let tmp = dir.path().join(".ferry/tmp");
    let stale = tmp.join("put-crashed");
    std::fs::write(&stale, "half").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = tmp.join("put-in-progress");
    std::fs::write(&fresh, "writing").unwrap();
    drop(backend);
    let backend = LocalBackend::open(dir.path()).unwrap();
    assert!(!stale.exists(), "a day-old temp file is a crash leftover");
    assert!(fresh.exists(), "a fresh one may belong to another process");
    assert!(
        backend
            .list_all("data", &ListOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        backend.list_buckets().await.unwrap().len(),
        1,
        "ferry's own folder is not a bucket"
    );
}

#[tokio::test]
async fn readers_see_whole_versions_while_writers_race() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(LocalBackend::open(dir.path()).unwrap());
    backend.create_bucket("data").await.unwrap();
    const SIZE: usize = 64 * 1024;
    backend
        .put_bytes("data", "k", vec![0u8; SIZE], ObjectAttrs::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for version in 1..=30u8 {
        let backend = backend.clone();
        tasks.push(tokio::spawn(async move {
            backend
                .put_bytes("data", "k", vec![version; SIZE], ObjectAttrs::default())
                .await
                .unwrap();
        }));
    }
    for _ in 0..60 {
        let got = backend.get_bytes("data", "k").await.unwrap();
        assert_eq!(got.len(), SIZE);
        assert!(
            got.iter().all(|b| *b == got[0]),
            "a read mixed two versions"
        );
        let meta = backend.head("data", "k").await.unwrap();
        assert_eq!(meta.size, SIZE as u64);
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_cached_large_folder_still_shows_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("data/many");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..300 {
        std::fs::write(folder.join(format!("k{i:03}")), "x").unwrap();
    }
    // Old enough to be cached.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
    std::fs::File::open(&folder)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let backend = LocalBackend::open(dir.path()).unwrap();
    let opts = ListOptions {
        prefix: "many/".into(),
        ..ListOptions::default()
    };
    assert_eq!(backend.list_all("data", &opts).await.unwrap().len(), 300);
    assert_eq!(backend.list_all("data", &opts).await.unwrap().len(), 300);
    backend
        .put_bytes("data", "many/k999", "y", ObjectAttrs::default())
        .await
        .unwrap();
    backend.delete("data", "many/k000").await.unwrap();
    let listed = backend.list_all("data", &opts).await.unwrap();
    assert_eq!(listed.len(), 300);
    assert_eq!(listed.last().unwrap().name(), "many/k999");
    assert_eq!(listed.first().unwrap().name(), "many/k001");
}
