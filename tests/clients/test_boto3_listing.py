"""boto3: listing (v2 and v1 pagination, delimiters), odd key names, bulk delete, versions."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest

from helpers import files_under, unique_bucket

pytestmark = pytest.mark.boto3

DIRS, PER_DIR = 25, 100  # 2,500 keys under data/
KEYS = sorted(f"data/d{d:02d}/k{n:03d}" for d in range(DIRS) for n in range(PER_DIR))
OUTSIDE = ["dat", "data-file", "other/x", "z"]  # near the prefix but not under "data/"


@pytest.fixture(scope="module")
def listing_bucket(gw):
    s3 = gw.client(max_pool_connections=16)
    name = unique_bucket("list")
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=k.encode()),
                      KEYS + OUTSIDE))
    return name


def _keys(pages):
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _prefixes(pages):
    return [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]


def test_list_v2_paginator_default_pages(s3, listing_bucket):
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=listing_bucket,
                                                              Prefix="data/"))
    assert len(pages) == 3  # 1000 + 1000 + 500
    assert _keys(pages) == KEYS
    assert [p["KeyCount"] for p in pages] == [1000, 1000, 500]


def test_list_v2_max_keys_7(s3, listing_bucket):
    keys, token, pages = [], None, 0
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=listing_bucket, Prefix="data/d1", MaxKeys=7, **kwargs)
        pages += 1
        got = [o["Key"] for o in page.get("Contents", [])]
        assert len(got) == page["KeyCount"] <= 7
        keys += got
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    want = [k for k in KEYS if k.startswith("data/d1")]
    assert keys == want  # sorted, every key exactly once
    assert pages == -(-len(want) // 7)


def test_list_v2_delimiter(s3, listing_bucket):
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=listing_bucket, Prefix="data/", Delimiter="/", PaginationConfig={"PageSize": 7}))
    assert _keys(pages) == []
    assert _prefixes(pages) == [f"data/d{d:02d}/" for d in range(DIRS)]
    top = s3.list_objects_v2(Bucket=listing_bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["dat", "data-file", "z"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["data/", "other/"]


def test_list_v2_start_after(s3, listing_bucket):
    page = s3.list_objects_v2(Bucket=listing_bucket, Prefix="data/", StartAfter=KEYS[1234],
                              MaxKeys=5)
    assert [o["Key"] for o in page["Contents"]] == KEYS[1235:1240]


def test_list_v1_marker(s3, listing_bucket):
    keys, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=listing_bucket, Prefix="data/", Marker=marker, MaxKeys=400)
        got = [o["Key"] for o in page.get("Contents", [])]
        keys += got
        if not page["IsTruncated"]:
            break
        # Without a delimiter S3 may omit NextMarker; the last key is the marker then.
        marker = page.get("NextMarker") or got[-1]
    assert keys == KEYS


def test_list_v1_next_marker_with_delimiter(s3, listing_bucket):
    prefixes, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=listing_bucket, Prefix="data/", Delimiter="/",
                               Marker=marker, MaxKeys=7)
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert not page.get("Contents")
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"]  # required when a delimiter is given
    assert prefixes == [f"data/d{d:02d}/" for d in range(DIRS)]


ODD_KEYS = [
    "with space.txt",
    "dir with space/file name",
    "unicode/Grüße/日本語/émoji-🚀.txt",
    "plus+sign+key",
    "percent%20not-a-space%",
    "query=like&and=more",
    "mixed +%=&~!$'()*,;:@ key",
]


@pytest.mark.parametrize("key", ODD_KEYS, ids=range(len(ODD_KEYS)))
def test_odd_key_round_trip(s3, gw, bucket, key):
    body = key.encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    # asked for explicitly, boto3 leaves the keys encoded (it decodes only what it asked for)
    listed_url = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    assert listed_url["EncodingType"] == "url"
    assert [unquote_plus(o["Key"]) for o in listed_url["Contents"]] == [key]
    assert gw.object_path(bucket, key).read_bytes() == body
    s3.delete_object(Bucket=bucket, Key=key)
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


def test_key_that_is_also_a_prefix(s3, bucket):
    """`a` and `a/b` can both be objects although a file system can't hold both as files."""
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"child")
    s3.put_object(Bucket=bucket, Key="a", Body=b"parent")
    s3.put_object(Bucket=bucket, Key="c", Body=b"file first")
    s3.put_object(Bucket=bucket, Key="c/d", Body=b"then child")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"parent"
    assert s3.get_object(Bucket=bucket, Key="a/b")["Body"].read() == b"child"
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"file first"
    assert s3.get_object(Bucket=bucket, Key="c/d")["Body"].read() == b"then child"
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["a", "a/b", "c", "c/d"]
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a", "c"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "c/"]


def test_delete_objects_many(s3, gw, bucket):
    keys = [f"bulk/{i // 50}/obj-{i:04d}" for i in range(300)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    s3.put_object(Bucket=bucket, Key="keep", Body=b"k")
    resp = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": k} for k in keys] + [{"Key": "never-existed"}]})
    assert sorted(d["Key"] for d in resp["Deleted"]) == sorted(keys + ["never-existed"])
    assert not resp.get("Errors")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep"]
    assert files_under(gw.bucket_dir(bucket)) == {"keep"}


def test_list_object_versions_unversioned(s3, bucket):
    keys = ["a", "b/c", "b/d"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    s3.put_object(Bucket=bucket, Key="a", Body=b"overwritten")
    resp = s3.list_object_versions(Bucket=bucket)
    versions = resp.get("Versions", [])
    assert sorted(v["Key"] for v in versions) == keys  # each object exactly once
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in versions)
    assert not resp.get("DeleteMarkers")
