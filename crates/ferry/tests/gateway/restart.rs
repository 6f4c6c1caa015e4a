//! The gateway killed mid-upload and started again, over a folder and over OneDrive: nothing
//! half-written shows, a multipart upload keeps the parts it had, and the client's retry
//! completes.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use ferry_testkit::Gateway;
use ferry_testkit::graph::{app_client, start_emulator};
use futures::channel::mpsc;

use crate::common::{
    body, builder, client, code, completed, md5_hex, pattern, put_part, start_upload,
};

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "datasets";

/// Sends `len` bytes to `key` (a PUT, or part 2 of `upload`), of which only the first
/// `sent` arrive; the request then hangs until the gateway dies.
fn stalled_upload(
    s3: &Client,
    key: &str,
    upload: Option<&str>,
    bytes: &[u8],
    sent: usize,
) -> tokio::task::JoinHandle<bool> {
    let (tx, rx) = mpsc::unbounded::<Bytes>();
    for chunk in bytes[..sent].chunks(MIB) {
        tx.unbounded_send(Bytes::copy_from_slice(chunk)).unwrap();
    }
    let frames = futures::StreamExt::map(rx, |b| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))
    });
    let stream = ByteStream::from_body_1_x(http_body_util::StreamBody::new(frames));
    let (s3, key, upload, len) = (
        s3.clone(),
        key.to_owned(),
        upload.map(str::to_owned),
        bytes.len(),
    );
    tokio::spawn(async move {
        // Held by the request, so the body never ends on its own.
        let _tx = tx;
        match upload {
            None => s3
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .content_length(len as i64)
                .body(stream)
                .send()
                .await
                .is_ok(),
            Some(id) => s3
                .upload_part()
                .bucket(BUCKET)
                .key(key)
                .upload_id(id)
                .part_number(2)
                .content_length(len as i64)
                .body(stream)
                .send()
                .await
                .is_ok(),
        }
    })
}

/// Nothing of `key` is visible through the gateway.
async fn absent(s3: &Client, key: &str) {
    let err = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.raw_response()
            .is_some_and(|r| r.status().as_u16() == 404),
        "{err:?}"
    );
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(!keys.contains(&key), "{keys:?}");
}

/// A 64 MiB PUT killed at 30 MiB, and a multipart upload killed in its second part.
async fn killed_mid_upload(mut gw: Gateway) -> Gateway {
    let s3 = client(&gw);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    let object = pattern(64 * MIB, 1);
    let put = stalled_upload(&s3, "big.bin", None, &object, 30 * MIB);
    // Long enough for the gateway to pass most of what arrived on to its store.
    tokio::time::sleep(Duration::from_secs(2)).await;
    gw.restart();
    assert!(!put.await.unwrap(), "the cut PUT cannot have succeeded");
    absent(&s3, "big.bin").await;
    // The client's retry.
    let done = s3
        .put_object()
        .bucket(BUCKET)
        .key("big.bin")
        .body(ByteStream::from(object.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(format!("\"{}\"", md5_hex(&object)).as_str())
    );
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert!(body(got).await == object, "the bytes came back changed");

    let first = pattern(5 * MIB, 2);
    let second = pattern(6 * MIB, 3);
    let id = start_upload(&s3, BUCKET, "parts.bin").await;
    let part1 = put_part(&s3, BUCKET, "parts.bin", &id, 1, first.clone()).await;
    let cut = stalled_upload(&s3, "parts.bin", Some(&id), &second, 3 * MIB);
    tokio::time::sleep(Duration::from_secs(1)).await;
    gw.restart();
    assert!(!cut.await.unwrap(), "the cut part cannot have succeeded");
    absent(&s3, "parts.bin").await;
    let listed = s3
        .list_parts()
        .bucket(BUCKET)
        .key("parts.bin")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let numbers: Vec<i32> = listed
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(numbers, [1], "the finished part stays, the cut one is gone");
    let part2 = put_part(&s3, BUCKET, "parts.bin", &id, 2, second.clone()).await;
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("parts.bin")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, part1), (2, part2)]))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("parts.bin")
        .send()
        .await
        .unwrap();
    assert!(
        body(got).await == [first, second].concat(),
        "the bytes came back changed"
    );
    let err = s3
        .list_parts()
        .bucket(BUCKET)
        .key("parts.bin")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchUpload");
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_upload_over_a_folder_shows_nothing_half_written() {
    let gw = killed_mid_upload(builder().start()).await;
    // On disk: the two objects and no leftovers beside them.
    let mut names: Vec<String> = std::fs::read_dir(gw.root.join(BUCKET))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["big.bin", "parts.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_upload_over_onedrive_shows_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    killed_mid_upload(builder().onedrive(&emu).start()).await;
    // In the drive: the two objects, whole.
    let graph = app_client(&emu);
    let folder = graph
        .item_by_path("DynamicCapital/ai-training/datasets")
        .await
        .unwrap();
    let children = graph.children(&folder.id).await.unwrap();
    let mut names: Vec<(String, Option<u64>)> =
        children.into_iter().map(|i| (i.name, i.size)).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("big.bin".to_owned(), Some(64 * MIB as u64)),
            ("parts.bin".to_owned(), Some(11 * MIB as u64)),
        ]
    );
}
