//! `ferry serve s3 --onedrive` over the Graph emulator, through the AWS SDK: objects, a
//! multipart upload visible to the HEAD right after it completes, listings, and a file
//! edited in OneDrive itself.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use ferry_graph::Conflict;
use ferry_testkit::graph::{app_client, start_emulator};

use crate::common::{body, builder, client, md5_hex};

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
    let id = s3
        .create_multipart_upload()
        .bucket("datasets")
        .key("big.bin")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let mut parts = Vec::new();
    for (n, chunk) in data.chunks(5 * MIB).enumerate() {
        let n = n as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("datasets")
            .key("big.bin")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let done = s3
        .complete_multipart_upload()
        .bucket("datasets")
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
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
