//! The conformance suite: what every [`Backend`] must do, run against each implementation.
//!
//! Call [`run`] from a test with a freshly opened backend. Each check uses its own bucket and
//! panics with a message naming what broke. Checks a backend cannot pass by nature are skipped
//! according to its [`Capabilities`](crate::Capabilities), never silently otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::backend::{
    Backend, CommitOptions, ListEntry, ListOptions, ObjectAttrs, PutOptions, RangeRequest,
    WriteCondition,
};
use crate::error::Error;
use crate::ext::BackendExt;

/// Runs every check against `backend`.
pub async fn run(backend: &dyn Backend) {
    buckets(backend).await;
    round_trip(backend).await;
    ranges(backend).await;
    uncommitted_writes_leave_nothing(backend).await;
    bad_md5_stores_nothing(backend).await;
    write_conditions(backend).await;
    delete_and_missing(backend).await;
    copy(backend).await;
    hostile_keys(backend).await;
    listing_order_and_delimiters(backend).await;
    pagination_any_page_size(backend).await;
    if backend.capabilities().file_and_folder_with_same_name {
        file_and_folder_with_same_name(backend).await;
    }
}

async fn fresh_bucket(backend: &dyn Backend, name: &str) -> String {
    let bucket = format!("conf-{name}");
    backend.create_bucket(&bucket).await.expect("create bucket");
    bucket
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn keys(entries: &[ListEntry]) -> Vec<&str> {
    entries.iter().map(ListEntry::name).collect()
}

async fn list_all(backend: &dyn Backend, bucket: &str, opts: ListOptions) -> Vec<ListEntry> {
    backend.list_all(bucket, &opts).await.expect("list")
}

async fn buckets(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "buckets").await;
    assert!(matches!(
        backend.create_bucket(&bucket).await,
        Err(Error::BucketExists { .. })
    ));
    assert!(matches!(
        backend.create_bucket("Bad_Name").await,
        Err(Error::InvalidBucketName { .. })
    ));
    let names: Vec<String> = backend
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert!(names.contains(&bucket), "{names:?} lacks {bucket}");
    backend.head_bucket(&bucket).await.unwrap();

    backend
        .put_bytes(&bucket, "deep/down/x", "x", ObjectAttrs::default())
        .await
        .unwrap();
    assert!(matches!(
        backend.delete_bucket(&bucket).await,
        Err(Error::BucketNotEmpty { .. })
    ));
    backend.delete(&bucket, "deep/down/x").await.unwrap();
    backend.delete_bucket(&bucket).await.unwrap();
    assert!(matches!(
        backend.head_bucket(&bucket).await,
        Err(Error::NoSuchBucket { .. })
    ));
    assert!(matches!(
        backend.head("conf-missing-bucket", "k").await,
        Err(Error::NoSuchBucket { .. })
    ));
}

async fn round_trip(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "round-trip").await;
    let attrs = ObjectAttrs {
        content_type: Some("text/csv".into()),
        cache_control: Some("no-cache".into()),
        user_metadata: BTreeMap::from([("origin".into(), "ünïcode ✓".into())]),
        checksums: BTreeMap::from([("CRC32".into(), "AAAAAA==".into())]),
        ..ObjectAttrs::default()
    };
    let data = Bytes::from((0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let put = backend
        .put_bytes(&bucket, "dir/file.bin", data.clone(), attrs.clone())
        .await
        .unwrap();
    assert_eq!(put.etag, md5_hex(&data), "etag is the hex MD5 of the body");
    assert_eq!(put.size, data.len() as u64);
    let head = backend.head(&bucket, "dir/file.bin").await.unwrap();
    assert_eq!(head.attrs, attrs, "attributes survive");
    assert_eq!(head.etag, put.etag);
    assert_eq!(
        backend.get_bytes(&bucket, "dir/file.bin").await.unwrap(),
        data
    );

    let empty = backend
        .put_bytes(&bucket, "empty", Bytes::new(), ObjectAttrs::default())
        .await
        .unwrap();
    assert_eq!(empty.etag, md5_hex(b""));
    assert!(
        backend
            .get_bytes(&bucket, "empty")
            .await
            .unwrap()
            .is_empty()
    );

    backend
        .put_bytes(&bucket, "dir/file.bin", "v2", ObjectAttrs::default())
        .await
        .unwrap();
    assert_eq!(
        backend.get_bytes(&bucket, "dir/file.bin").await.unwrap(),
        "v2"
    );
    assert_eq!(
        backend.head(&bucket, "dir/file.bin").await.unwrap().attrs,
        ObjectAttrs::default(),
        "an overwrite replaces the attributes"
    );
}

async fn ranges(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "ranges").await;
    backend
        .put_bytes(&bucket, "r", "0123456789", ObjectAttrs::default())
        .await
        .unwrap();
    let read = |range| read_range(backend, &bucket, range);
    let cases = [
        (
            RangeRequest::FromTo {
                first: 2,
                last: Some(4),
            },
            2..5,
            "234",
        ),
        (
            RangeRequest::FromTo {
                first: 7,
                last: None,
            },
            7..10,
            "789",
        ),
        (
            RangeRequest::FromTo {
                first: 8,
                last: Some(99),
            },
            8..10,
            "89",
        ),
        (RangeRequest::Suffix { length: 3 }, 7..10, "789"),
        (RangeRequest::Suffix { length: 50 }, 0..10, "0123456789"),
    ];
    for (request, range, body) in cases {
        let (got_range, got_body) = read(request).await.unwrap();
        assert_eq!(got_range, range, "{request:?}");
        assert_eq!(got_body, body, "{request:?}");
    }
    for bad in [
        RangeRequest::FromTo {
            first: 10,
            last: None,
        },
        RangeRequest::FromTo {
            first: 5,
            last: Some(3),
        },
        RangeRequest::Suffix { length: 0 },
    ] {
        assert!(
            matches!(
                read(bad).await,
                Err(Error::RangeNotSatisfiable { size: 10 })
            ),
            "{bad:?}"
        );
    }
}

async fn read_range(
    backend: &dyn Backend,
    bucket: &str,
    range: RangeRequest,
) -> Result<(std::ops::Range<u64>, Bytes), Error> {
    let got = backend.get(bucket, "r", Some(range)).await?;
    let range = got.range.clone();
    Ok((range, crate::ext::collect(got.body, "r").await?))
}

async fn uncommitted_writes_leave_nothing(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "uncommitted").await;
    let mut writer = backend
        .put(&bucket, "a/b", PutOptions::default())
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"half")).await.unwrap();
    drop(writer);
    assert!(matches!(
        backend.head(&bucket, "a/b").await,
        Err(Error::NoSuchKey { .. })
    ));
    assert!(
        list_all(backend, &bucket, ListOptions::default())
            .await
            .is_empty()
    );
    backend.delete_bucket(&bucket).await.unwrap();
}

async fn bad_md5_stores_nothing(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "bad-md5").await;
    let mut writer = backend
        .put(&bucket, "k", PutOptions::default())
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"data")).await.unwrap();
    let result = writer
        .commit(CommitOptions {
            expected_md5: Some([0; 16]),
            ..CommitOptions::default()
        })
        .await;
    assert!(matches!(result, Err(Error::BadDigest { .. })), "{result:?}");
    assert!(matches!(
        backend.head(&bucket, "k").await,
        Err(Error::NoSuchKey { .. })
    ));
}

async fn write_conditions(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "conditions").await;
    let put = |condition| {
        let bucket = bucket.clone();
        async move {
            let mut writer = backend.put(&bucket, "k", PutOptions::default()).await?;
            writer.write(Bytes::from_static(b"new")).await?;
            writer
                .commit(CommitOptions {
                    condition: Some(condition),
                    ..CommitOptions::default()
                })
                .await
        }
    };
    assert!(matches!(
        put(WriteCondition::IfMatch("*".into())).await,
        Err(Error::PreconditionFailed { .. })
    ));
    let first = put(WriteCondition::IfNoneExists).await.unwrap();
    assert!(matches!(
        put(WriteCondition::IfNoneExists).await,
        Err(Error::PreconditionFailed { .. })
    ));
    assert!(matches!(
        put(WriteCondition::IfMatch("0".repeat(32))).await,
        Err(Error::PreconditionFailed { .. })
    ));
    put(WriteCondition::IfMatch(first.etag)).await.unwrap();
}

async fn delete_and_missing(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "delete").await;
    assert!(matches!(
        backend.get(&bucket, "nope", None).await,
        Err(Error::NoSuchKey { .. })
    ));
    backend
        .delete(&bucket, "nope")
        .await
        .expect("deleting a missing key succeeds");
    backend
        .put_bytes(&bucket, "x/y/z", "1", ObjectAttrs::default())
        .await
        .unwrap();
    backend.delete(&bucket, "x/y/z").await.unwrap();
    assert!(matches!(
        backend.head(&bucket, "x/y/z").await,
        Err(Error::NoSuchKey { .. })
    ));
    let rest = list_all(
        backend,
        &bucket,
        ListOptions {
            delimiter: Some("/".into()),
            ..ListOptions::default()
        },
    )
    .await;
    assert!(
        rest.is_empty(),
        "no prefix survives its last object: {rest:?}"
    );
}

async fn copy(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "copy").await;
    let attrs = ObjectAttrs {
        content_type: Some("application/json".into()),
        ..ObjectAttrs::default()
    };
    let src = backend
        .put_bytes(&bucket, "src", "{\"a\":1}", attrs.clone())
        .await
        .unwrap();
    let copied = backend
        .copy((&bucket, "src"), (&bucket, "dst/copy"), None)
        .await
        .unwrap();
    assert_eq!(copied.etag, src.etag);
    assert_eq!(copied.attrs, attrs);
    assert_eq!(
        backend.get_bytes(&bucket, "dst/copy").await.unwrap(),
        "{\"a\":1}"
    );
    let replaced = ObjectAttrs {
        content_type: Some("text/plain".into()),
        ..ObjectAttrs::default()
    };
    let onto_itself = backend
        .copy((&bucket, "src"), (&bucket, "src"), Some(replaced.clone()))
        .await
        .unwrap();
    assert_eq!(onto_itself.attrs, replaced);
    assert_eq!(
        backend.get_bytes(&bucket, "src").await.unwrap(),
        "{\"a\":1}"
    );
    assert!(matches!(
        backend
            .copy((&bucket, "missing"), (&bucket, "d"), None)
            .await,
        Err(Error::NoSuchKey { .. })
    ));
}

async fn hostile_keys(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "hostile").await;
    for key in ["../x", "a/../../b", "%2e%2e/x", "a/./b", "a\0b"] {
        let result = backend.put(&bucket, key, PutOptions::default()).await;
        assert!(matches!(result, Err(Error::InvalidKey { .. })), "{key:?}");
        assert!(matches!(
            backend.head(&bucket, key).await,
            Err(Error::InvalidKey { .. })
        ));
    }
    let long = "k".repeat(1025);
    assert!(matches!(
        backend.put(&bucket, &long, PutOptions::default()).await,
        Err(Error::KeyTooLong { .. })
    ));
    assert!(
        list_all(backend, &bucket, ListOptions::default())
            .await
            .is_empty()
    );
}

/// Keys chosen to make naive orderings fail: `-` and `.` sort before `/`, `0` after it.
const TRICKY_KEYS: &[&str] = &[
    "a",
    "a b+c%d=e&f",
    "a-c",
    "a.txt",
    "a/",
    "a//double",
    "a/b",
    "a/b/c",
    "a/ü",
    "a0",
    "b/x",
    "b/y/z",
    "ünïcødé/ファイル",
];

async fn listing_order_and_delimiters(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "listing").await;
    for key in TRICKY_KEYS {
        backend
            .put_bytes(&bucket, key, *key, ObjectAttrs::default())
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
    }
    let all = list_all(backend, &bucket, ListOptions::default()).await;
    assert_eq!(keys(&all), TRICKY_KEYS, "byte-order listing of every key");
    for key in TRICKY_KEYS {
        assert_eq!(
            backend.get_bytes(&bucket, key).await.unwrap(),
            *key,
            "{key:?}"
        );
    }

    let with_delimiter = |prefix: &str, start_after: Option<&str>| ListOptions {
        prefix: prefix.into(),
        delimiter: Some("/".into()),
        start_after: start_after.map(Into::into),
        max_keys: 1000,
    };
    let top = list_all(backend, &bucket, with_delimiter("", None)).await;
    assert_eq!(
        keys(&top),
        [
            "a",
            "a b+c%d=e&f",
            "a-c",
            "a.txt",
            "a/",
            "a0",
            "b/",
            "ünïcødé/"
        ]
    );
    assert!(matches!(top[4], ListEntry::Prefix(_)));
    let under_a = list_all(backend, &bucket, with_delimiter("a/", None)).await;
    assert_eq!(keys(&under_a), ["a/", "a//", "a/b", "a/b/", "a/ü"]);
    let after_prefix = list_all(backend, &bucket, with_delimiter("", Some("a/"))).await;
    assert_eq!(
        keys(&after_prefix),
        ["a0", "b/", "ünïcødé/"],
        "a prefix marker skips its keys"
    );
    let prefixed = list_all(
        backend,
        &bucket,
        ListOptions {
            prefix: "a/b".into(),
            ..ListOptions::default()
        },
    )
    .await;
    assert_eq!(keys(&prefixed), ["a/b", "a/b/c"]);
    let other_delimiter = list_all(
        backend,
        &bucket,
        ListOptions {
            delimiter: Some("b".into()),
            max_keys: 2,
            ..ListOptions::default()
        },
    )
    .await;
    assert_eq!(
        keys(&other_delimiter),
        [
            "a",
            "a b",
            "a-c",
            "a.txt",
            "a/",
            "a//doub",
            "a/b",
            "a/ü",
            "a0",
            "b",
            "ünïcødé/ファイル"
        ]
    );
}

async fn pagination_any_page_size(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "pages").await;
    let mut expected = Vec::new();
    for i in 0..40 {
        let key = format!("p/{}/{i:03}", i % 3);
        backend
            .put_bytes(&bucket, &key, "", ObjectAttrs::default())
            .await
            .unwrap();
        expected.push(key);
    }
    expected.sort();
    for page in 1..=41 {
        let opts = ListOptions {
            max_keys: page,
            ..ListOptions::default()
        };
        let all = list_all(backend, &bucket, opts).await;
        assert_eq!(keys(&all), expected, "page size {page}");
    }
}

async fn file_and_folder_with_same_name(backend: &dyn Backend) {
    let bucket = fresh_bucket(backend, "same-name").await;
    backend
        .put_bytes(&bucket, "a", "file", ObjectAttrs::default())
        .await
        .unwrap();
    backend
        .put_bytes(&bucket, "a/b", "child", ObjectAttrs::default())
        .await
        .unwrap();
    backend
        .put_bytes(&bucket, "a/b/c", "grandchild", ObjectAttrs::default())
        .await
        .unwrap();
    assert_eq!(backend.get_bytes(&bucket, "a").await.unwrap(), "file");
    assert_eq!(backend.get_bytes(&bucket, "a/b").await.unwrap(), "child");
    backend
        .put_bytes(&bucket, "a", "file v2", ObjectAttrs::default())
        .await
        .unwrap();
    assert_eq!(backend.get_bytes(&bucket, "a").await.unwrap(), "file v2");
    let all = list_all(backend, &bucket, ListOptions::default()).await;
    assert_eq!(keys(&all), ["a", "a/b", "a/b/c"]);
    backend.delete(&bucket, "a/b/c").await.unwrap();
    backend.delete(&bucket, "a/b").await.unwrap();
    assert_eq!(backend.get_bytes(&bucket, "a").await.unwrap(), "file v2");
    backend.delete(&bucket, "a").await.unwrap();
    assert!(
        list_all(backend, &bucket, ListOptions::default())
            .await
            .is_empty()
    );
    backend.delete_bucket(&bucket).await.unwrap();
}
