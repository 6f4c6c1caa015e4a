use aws_sdk_s3::primitives::ByteStream;

use crate::common::{body, client, code, gateway, md5_hex};

#[tokio::test]
async fn put_get_head_delete_round_trip_with_metadata() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let data = b"id,label\n1,up\n".to_vec();
    let put = s3
        .put_object()
        .bucket("data")
        .key("train/2024/part 1+ü.csv")
        .content_type("text/csv")
        .metadata("origin", "onedrive")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );

    let head = s3
        .head_object()
        .bucket("data")
        .key("train/2024/part 1+ü.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/csv"));
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("onedrive")
    );
    let got = s3
        .get_object()
        .bucket("data")
        .key("train/2024/part 1+ü.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(body(got).await, data);
    // The object is a plain file in the served folder.
    assert_eq!(
        std::fs::read(gw.root.join("data/train/2024/part 1+ü.csv")).unwrap(),
        data
    );

    s3.delete_object()
        .bucket("data")
        .key("train/2024/part 1+ü.csv")
        .send()
        .await
        .unwrap();
    let err = s3
        .head_object()
        .bucket("data")
        .key("train/2024/part 1+ü.csv")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}

#[tokio::test]
async fn ranged_get_and_unsatisfiable_range() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    s3.put_object()
        .bucket("data")
        .key("r")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
    for (range, expected) in [
        ("bytes=2-4", "234"),
        ("bytes=-3", "789"),
        ("bytes=7-", "789"),
    ] {
        let got = s3
            .get_object()
            .bucket("data")
            .key("r")
            .range(range)
            .send()
            .await
            .unwrap();
        assert!(got.content_range().is_some(), "{range}");
        assert_eq!(body(got).await, expected.as_bytes(), "{range}");
    }
    let err = s3
        .get_object()
        .bucket("data")
        .key("r")
        .range("bytes=10-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidRange");
}

#[tokio::test]
async fn conditional_put_and_get() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let first = s3
        .put_object()
        .bucket("data")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"v1"))
        .send()
        .await
        .unwrap();
    let err = s3
        .put_object()
        .bucket("data")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"v2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "PreconditionFailed");
    let etag = first.e_tag().unwrap();
    let err = s3
        .get_object()
        .bucket("data")
        .key("k")
        .if_none_match(etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(304));
    let got = s3
        .get_object()
        .bucket("data")
        .key("k")
        .if_match(etag)
        .send()
        .await
        .unwrap();
    assert_eq!(body(got).await, b"v1");
}

#[tokio::test]
async fn copy_object_keeps_or_replaces_metadata() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    s3.put_object()
        .bucket("data")
        .key("src")
        .metadata("a", "1")
        .body(ByteStream::from_static(b"payload"))
        .send()
        .await
        .unwrap();
    s3.copy_object()
        .bucket("data")
        .key("kept")
        .copy_source("data/src")
        .send()
        .await
        .unwrap();
    s3.copy_object()
        .bucket("data")
        .key("replaced")
        .copy_source("data/src")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("b", "2")
        .send()
        .await
        .unwrap();
    let kept = s3
        .head_object()
        .bucket("data")
        .key("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.metadata().unwrap().get("a").unwrap(), "1");
    let replaced = s3
        .head_object()
        .bucket("data")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert!(replaced.metadata().unwrap().get("a").is_none());
    assert_eq!(replaced.metadata().unwrap().get("b").unwrap(), "2");
}

#[tokio::test]
async fn list_objects_v2_pages_cover_every_key_once() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let mut expected = Vec::new();
    for i in 0..120 {
        let key = format!("d{}/f{i:03}", i % 4);
        s3.put_object()
            .bucket("data")
            .key(&key)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .unwrap();
        expected.push(key);
    }
    expected.sort();
    let mut seen = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket("data")
        .max_keys(7)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.contents().len() <= 7);
        seen.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
    }
    assert_eq!(seen, expected);

    let top = s3
        .list_objects_v2()
        .bucket("data")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["d0/", "d1/", "d2/", "d3/"]);
    assert!(top.contents().is_empty());
}

#[tokio::test]
async fn bucket_lifecycle() {
    let gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("one").send().await.unwrap();
    let err = s3.create_bucket().bucket("one").send().await.unwrap_err();
    assert_eq!(code(&err), "BucketAlreadyOwnedByYou");
    s3.put_object()
        .bucket("one")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let err = s3.delete_bucket().bucket("one").send().await.unwrap_err();
    assert_eq!(code(&err), "BucketNotEmpty");
    s3.delete_object()
        .bucket("one")
        .key("x")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("one").send().await.unwrap();
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty());
    let err = s3.head_bucket().bucket("one").send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}
