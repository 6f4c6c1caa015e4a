//! `ferry serve s3 --onedrive` over the Graph emulator, through the AWS SDK: objects, a
//! multipart upload visible to the HEAD right after it completes, a slow completion kept
//! alive, listings, and a file edited in OneDrive itself.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedMultipartUpload;
use ferry_graph::Conflict;
use ferry_testkit::graph::{app_client, signed_in_user, start_emulator};

use crate::common::{body, builder, client, code, completed, md5_hex, put_part, start_upload};

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_multipart_uploads_land_in_onedrive() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let gw = builder().onedrive(&emu).start();
    let s3 = client(&gw);
    s3.create_bucket().bucket("datasets").send().await.unwrap();
    let put = s3
        .put_object()
        .bucket("datasets")
        .key("market/2024-06-01/a:b.csv")
        .content_type("text/csv")
        .body(ByteStream::from_static(b"id\n1\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"id\n1\n")).as_str())
    );

    // 12 MiB in three parts, then HEAD and GET at once.
    let data: Vec<u8> = (0..12 * MIB).map(|i| (i % 251) as u8).collect();
    let id = start_upload(&s3, "datasets", "big.bin").await;
    let mut parts = Vec::new();
    for (n, chunk) in (1..).zip(data.chunks(5 * MIB)) {
        let etag = put_part(&s3, "datasets", "big.bin", &id, n, chunk.to_vec()).await;
        parts.push((n, etag));
    }
    let done = s3
        .complete_multipart_upload()
        .bucket("datasets")
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(completed(&parts))
        .send()
        .await
        .unwrap();
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    let head = s3
        .head_object()
        .bucket("datasets")
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), done.e_tag());
    let got = s3
        .get_object()
        .bucket("datasets")
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert!(body(got).await == data, "the bytes came back changed");

    let listed = s3
        .list_objects_v2()
        .bucket("datasets")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["big.bin", "market/2024-06-01/a:b.csv"]);

    // In the drive: the folder layout, with the colon as its full-width look-alike.
    let graph = app_client(&emu);
    let item = graph
        .item_by_path("DynamicCapital/ai-training/datasets/market/2024-06-01/a：b.csv")
        .await
        .unwrap();
    assert_eq!(item.size, Some(5));

    // Edited in OneDrive itself: the next GET has the new bytes and a new ETag.
    let local = dir.path().join("edit.csv");
    std::fs::write(&local, b"id\n1\n2\n").unwrap();
    graph
        .upload_file(
            &local,
            "DynamicCapital/ai-training/datasets/market/2024-06-01/a：b.csv",
            Conflict::Replace,
        )
        .await
        .unwrap();
    let mut fresh = None;
    for _ in 0..100 {
        let got = s3
            .get_object()
            .bucket("datasets")
            .key("market/2024-06-01/a:b.csv")
            .send()
            .await
            .unwrap();
        if got.e_tag() != put.e_tag() {
            fresh = Some(got);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let fresh = fresh.expect("a new ETag within the freshness bound");
    assert_eq!(body(fresh).await, b"id\n1\n2\n");
}

/// Signed in as a person (device code, refresh token in the token cache): the gateway works
/// until the refresh token expires, then `/health` and the log say so and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_when_the_saved_sign_in_expired() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |c| {
        c.token_lifetime = std::time::Duration::from_secs(1);
        // Long enough for a slow machine to start the gateway on the first one.
        c.refresh_token_lifetime = std::time::Duration::from_secs(20);
    })
    .await;
    let graph = signed_in_user(&emu, &dir.path().join("token-cache.json")).await;
    let gw = builder().onedrive_as(graph).start();
    let (status, text) = gw.get_unsigned("/health");
    assert_eq!(status, 200, "{text}");

    // Idle past the refresh token's life (the health check above took a fresh one).
    tokio::time::sleep(std::time::Duration::from_secs(21)).await;
    let (status, text) = gw.get_unsigned("/health");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("AADSTS700082") && text.contains("run `ferry onedrive login`"),
        "Microsoft's code and what to do: {text}"
    );
    let err = client(&gw)
        .list_objects_v2()
        .bucket("datasets")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ServiceUnavailable");
    let log = gw.service.log();
    assert!(log.contains("ferry onedrive login"), "{log}");
    assert!(!log.contains("refresh_token="), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_when_onedrive_refuses_the_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let good = builder().onedrive(&emu).start();
    let (status, text) = good.get_unsigned("/health");
    assert_eq!(status, 200, "{text}");

    let bad = builder()
        .onedrive(&emu)
        .env("FERRY_GRAPH_CLIENT_SECRET", "not-the-secret")
        .start();
    let (status, text) = bad.get_unsigned("/health");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("AADSTS"),
        "the identity platform's code: {text}"
    );
    assert!(!text.contains("not-the-secret"), "{text}");
    let log = bad.service.log();
    assert!(
        log.contains("health check failed") && log.contains("AADSTS"),
        "{log}"
    );
}

/// Uploads a 6 MiB object's two parts to `key` and returns the upload id and the parts.
async fn two_parts(s3: &aws_sdk_s3::Client, key: &str) -> (String, CompletedMultipartUpload) {
    let id = start_upload(s3, "model-checkpoints", key).await;
    let mut parts = Vec::new();
    for (n, size) in [(1, 5 * MIB), (2, MIB)] {
        let etag = put_part(s3, "model-checkpoints", key, &id, n, vec![n as u8; size]).await;
        parts.push((n, etag));
    }
    (id, completed(&parts))
}

/// Graph throttles the completion for 6 s: the gateway answers 200 at once, keeps the
/// connection alive with whitespace and ends with the result, or with an error the client
/// reads as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_multipart_completion_is_kept_alive_to_its_result_or_error() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    // Every request reads the drive afresh, so every completion talks to Graph.
    let gw = builder()
        .onedrive(&emu)
        .arg("--freshness")
        .arg("0s")
        .start();
    let s3 = client(&gw);
    s3.create_bucket()
        .bucket("model-checkpoints")
        .send()
        .await
        .unwrap();
    let slow_graph = || {
        emu.faults().update(|f| {
            f.throttle_next = 1;
            f.retry_after_secs = 6;
        })
    };

    let (id, parts) = two_parts(&s3, "run-1/model.pt").await;
    slow_graph();
    let started = std::time::Instant::now();
    let done = s3
        .complete_multipart_upload()
        .bucket("model-checkpoints")
        .key("run-1/model.pt")
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed().as_secs() >= 5, "{:?}", started.elapsed());
    assert!(
        done.e_tag().unwrap().ends_with("-2\""),
        "{:?}",
        done.e_tag()
    );
    let head = s3
        .head_object()
        .bucket("model-checkpoints")
        .key("run-1/model.pt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(6 * MIB as i64));

    // The object exists, so `If-None-Match: *` fails, but only once Graph answers.
    let (id, parts) = two_parts(&s3, "run-1/model.pt").await;
    slow_graph();
    let started = std::time::Instant::now();
    let err = s3
        .complete_multipart_upload()
        .bucket("model-checkpoints")
        .key("run-1/model.pt")
        .upload_id(&id)
        .multipart_upload(parts)
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert!(started.elapsed().as_secs() >= 5, "{:?}", started.elapsed());
    assert_eq!(code(&err), "PreconditionFailed");
    let head_after = s3
        .head_object()
        .bucket("model-checkpoints")
        .key("run-1/model.pt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head_after.e_tag(),
        done.e_tag(),
        "the first object is untouched"
    );
}

/// Two gateways over one drive, each with its own state folder, keep S3's metadata in one
/// Postgres: what one writes, the other serves with the same MD5 ETag, content type and
/// user metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_postgres_metadata_agree() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let db = ferry_testkit::pg::start().await;
    let replica = || {
        builder()
            .onedrive(&emu)
            .arg("--metadata")
            .arg("postgres")
            .arg("--freshness")
            .arg("0s")
            .env("DATABASE_URL", db.url_with_password())
            .start()
    };
    let (one, two) = (replica(), replica());
    let (a, b) = (client(&one), client(&two));
    a.create_bucket().bucket("datasets").send().await.unwrap();
    let put = a
        .put_object()
        .bucket("datasets")
        .key("market/prices.csv")
        .content_type("text/csv")
        .metadata("source", "vendor-a")
        .body(ByteStream::from_static(b"id,price\n1,10\n"))
        .send()
        .await
        .unwrap();
    let head = b
        .head_object()
        .bucket("datasets")
        .key("market/prices.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), put.e_tag());
    assert_eq!(head.content_type(), Some("text/csv"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("source"))
            .map(String::as_str),
        Some("vendor-a")
    );
    let listed = b.list_objects_v2().bucket("datasets").send().await.unwrap();
    assert_eq!(listed.contents()[0].e_tag(), put.e_tag());

    // Deleted through the second: gone for the first, record and all.
    b.delete_object()
        .bucket("datasets")
        .key("market/prices.csv")
        .send()
        .await
        .unwrap();
    let records: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM ferry.s3_object_meta", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(records, 0);
    let err = a
        .head_object()
        .bucket("datasets")
        .key("market/prices.csv")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}
