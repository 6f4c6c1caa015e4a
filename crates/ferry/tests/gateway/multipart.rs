use aws_sdk_s3::primitives::ByteStream;
use md5::Digest;

use crate::common::{
    body, client, code, completed, gateway, md5_hex, pattern, put_part, start_upload,
};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn multipart_upload_assembles_parts_with_s3_etag() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let upload = s3
        .create_multipart_upload()
        .bucket("data")
        .key("model.bin")
        .content_type("application/octet-stream")
        .metadata("run", "42")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let parts_data = [pattern(5 * MIB, 1), pattern(MIB + 17, 2)];
    let mut parts = Vec::new();
    for (i, data) in parts_data.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("data")
            .key("model.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        parts.push((n, out.e_tag().unwrap().to_owned()));
    }
    let listed = s3
        .list_parts()
        .bucket("data")
        .key("model.bin")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 2);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("data")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);

    let done = s3
        .complete_multipart_upload()
        .bucket("data")
        .key("model.bin")
        .upload_id(id)
        .multipart_upload(completed(&parts))
        .send()
        .await
        .unwrap();
    let mut md5s = md5::Md5::new();
    for data in &parts_data {
        md5s.update(md5::Md5::digest(data));
    }
    let expected_etag = format!("\"{}-2\"", hex::encode(md5s.finalize()));
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));

    let got = s3
        .get_object()
        .bucket("data")
        .key("model.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(got.metadata().unwrap().get("run").unwrap(), "42");
    assert_eq!(body(got).await, parts_data.concat());
    let uploads = s3
        .list_multipart_uploads()
        .bucket("data")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "a completed upload is gone");
}

#[tokio::test]
async fn multipart_rejects_small_parts_bad_order_and_unknown_ids() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let id = start_upload(&s3, "data", "k").await;
    let mut parts = Vec::new();
    for n in 1..=2 {
        parts.push((
            n,
            put_part(&s3, "data", "k", &id, n, pattern(1024, n as u8)).await,
        ));
    }
    let complete = |parts: Vec<(i32, String)>| {
        s3.complete_multipart_upload()
            .bucket("data")
            .key("k")
            .upload_id(&id)
            .multipart_upload(completed(&parts))
            .send()
    };
    let err = complete(parts.clone()).await.unwrap_err();
    assert_eq!(code(&err), "EntityTooSmall");
    let err = complete(vec![parts[1].clone(), parts[0].clone()])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidPartOrder");
    let err = complete(vec![(1, "\"00000000000000000000000000000000\"".into())])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidPart");
    let err = s3
        .upload_part()
        .bucket("data")
        .key("k")
        .upload_id("0123456789abcdef0123456789abcdef")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchUpload");
    // Nothing became visible, and abort removes the upload.
    assert!(
        s3.head_object()
            .bucket("data")
            .key("k")
            .send()
            .await
            .is_err()
    );
    s3.abort_multipart_upload()
        .bucket("data")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let err = s3
        .list_parts()
        .bucket("data")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchUpload");
}

#[tokio::test]
async fn upload_part_copy_takes_a_range_of_another_object() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let source = pattern(6 * MIB, 9);
    s3.put_object()
        .bucket("data")
        .key("src")
        .body(ByteStream::from(source.clone()))
        .send()
        .await
        .unwrap();
    let id = start_upload(&s3, "data", "dst").await;
    let mut parts = Vec::new();
    for (n, range) in [
        (1, format!("bytes=0-{}", 5 * MIB - 1)),
        (2, format!("bytes={}-{}", 5 * MIB, 6 * MIB - 1)),
    ] {
        let out = s3
            .upload_part_copy()
            .bucket("data")
            .key("dst")
            .upload_id(&id)
            .part_number(n)
            .copy_source("data/src")
            .copy_source_range(range)
            .send()
            .await
            .unwrap();
        let etag = out.copy_part_result().unwrap().e_tag().unwrap().to_owned();
        parts.push((n, etag));
    }
    assert_eq!(parts[1].1, format!("\"{}\"", md5_hex(&source[5 * MIB..])));
    s3.complete_multipart_upload()
        .bucket("data")
        .key("dst")
        .upload_id(&id)
        .multipart_upload(completed(&parts))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("data")
        .key("dst")
        .send()
        .await
        .unwrap();
    assert_eq!(body(got).await, source);
}

#[tokio::test]
async fn complete_with_if_none_match_refuses_to_overwrite() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    s3.put_object()
        .bucket("data")
        .key("k")
        .body(ByteStream::from_static(b"first"))
        .send()
        .await
        .unwrap();
    let id = start_upload(&s3, "data", "k").await;
    let etag = put_part(&s3, "data", "k", &id, 1, b"second".to_vec()).await;
    let err = s3
        .complete_multipart_upload()
        .bucket("data")
        .key("k")
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(completed(&[(1, etag)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "PreconditionFailed");
    let got = s3
        .get_object()
        .bucket("data")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(body(got).await, b"first");
}
