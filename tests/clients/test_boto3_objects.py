"""boto3: object data paths — multipart transfer, ranges, metadata, copy, conditionals, checksums."""

import os

import boto3.s3.transfer
import pytest

from gateway import MiB
from helpers import (assert_absent, checksum_b64, expect_error, files_under, md5_hex,
                     multipart_etag, raw_request, wait_no_temp_files)

pytestmark = pytest.mark.boto3


def test_upload_file_multipart_and_download(s3, gw, bucket, tmp_path):
    data = os.urandom(20 * MiB + 12345)
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(data)
    config = boto3.s3.transfer.TransferConfig()  # defaults: 8 MiB threshold and parts
    assert len(data) > config.multipart_threshold

    s3.upload_file(str(src), bucket, "big/file.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag(data, config.multipart_chunksize)
    assert gw.object_path(bucket, "big/file.bin").read_bytes() == data
    assert files_under(gw.bucket_dir(bucket)) == {"big/file.bin"}
    wait_no_temp_files(gw)

    s3.download_file(bucket, "big/file.bin", str(dst))
    assert dst.read_bytes() == data


def test_single_put_etag_is_md5(s3, bucket):
    data = b"hello ferry\n" * 100
    put = s3.put_object(Bucket=bucket, Key="small.txt", Body=data)
    assert put["ETag"] == f'"{md5_hex(data)}"'
    assert s3.head_object(Bucket=bucket, Key="small.txt")["ETag"] == put["ETag"]


@pytest.mark.parametrize("range_header,expected", [
    ("bytes=0-9", slice(0, 10)),
    ("bytes=-5", slice(-5, None)),
    ("bytes=10-", slice(10, None)),
], ids=["first10", "suffix5", "from10"])
def test_ranged_get(s3, bucket, range_header, expected):
    data = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    resp = s3.get_object(Bucket=bucket, Key="r", Range=range_header)
    want = data[expected]
    assert resp["Body"].read() == want
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert resp["ContentLength"] == len(want)
    start = expected.start % len(data) if expected.start is not None else 0
    assert resp["ContentRange"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}"


def test_unsatisfiable_range_is_416(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    expect_error("InvalidRange", 416, s3.get_object, Bucket=bucket, Key="r",
                 Range="bytes=100-200")


def test_ranged_get_has_no_full_object_checksum(s3, gw, bucket):
    data = os.urandom(4096)
    s3.put_object(Bucket=bucket, Key="c", Body=data, ChecksumAlgorithm="SHA256")
    full = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert full["ChecksumSHA256"] == checksum_b64("SHA256", data)
    assert full["Body"].read() == data

    # raw first, for a readable failure: boto3 itself would raise FlexibleChecksumError
    raw = raw_request(gw, "GET", f"/{bucket}/c",
                      headers={"Range": "bytes=0-9", "x-amz-checksum-mode": "ENABLED"})
    assert (raw.status, raw.body) == (206, data[:10])
    leaked = {k: v for k, v in raw.headers.items()
              if k.startswith("x-amz-checksum-") and k != "x-amz-checksum-type"}
    assert not leaked, f"ranged GET carries full-object checksum headers: {leaked}"

    resp = s3.get_object(Bucket=bucket, Key="c", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert resp["Body"].read() == data[:10]


def test_metadata_round_trip(s3, bucket):
    meta = {"owner": "alice", "purpose": "unit-test", "mixedcase": "Value With Spaces"}
    s3.put_object(Bucket=bucket, Key="m.json", Body=b"{}", Metadata=meta,
                  ContentType="application/json", CacheControl="max-age=60")
    head = s3.head_object(Bucket=bucket, Key="m.json")
    assert head["Metadata"] == meta
    assert head["ContentType"] == "application/json"
    assert head["CacheControl"] == "max-age=60"
    get = s3.get_object(Bucket=bucket, Key="m.json")
    assert get["Metadata"] == meta and get["ContentType"] == "application/json"


def test_copy_object_metadata_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"},
                  ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="COPY")
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"a": "1"}
    assert head["ContentType"] == "text/plain"
    assert head["ETag"] == f'"{md5_hex(b"payload")}"'
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"payload"


def test_copy_object_metadata_replace(s3, gw, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"},
                  ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="dir/dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"},
                   ContentType="application/x-test")
    head = s3.head_object(Bucket=bucket, Key="dir/dst")
    assert head["Metadata"] == {"b": "2"}
    assert head["ContentType"] == "application/x-test"
    assert gw.object_path(bucket, "dir/dst").read_bytes() == b"payload"
    # the source is untouched
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"a": "1"}


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    expect_error("304", 304, s3.get_object, Bucket=bucket, Key="k", IfNoneMatch=etag)
    expect_error("PreconditionFailed", 412, s3.get_object, Bucket=bucket, Key="k",
                 IfMatch='"0123456789abcdef0123456789abcdef"')
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == b"v1"


def test_conditional_put_if_none_match(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    expect_error("PreconditionFailed", 412, s3.put_object, Bucket=bucket, Key="once",
                 Body=b"second", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_checksum_round_trip(s3, bucket, algorithm):
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key=f"ck-{algorithm}", Body=data,
                        ChecksumAlgorithm=algorithm)
    want = checksum_b64(algorithm, data)
    assert put[f"Checksum{algorithm}"] == want
    get = s3.get_object(Bucket=bucket, Key=f"ck-{algorithm}", ChecksumMode="ENABLED")
    assert get[f"Checksum{algorithm}"] == want
    assert get["Body"].read() == data


def test_wrong_content_md5_is_bad_digest(s3, gw, bucket):
    wrong = checksum_b64("MD5", b"something else")
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="bad-md5",
                 Body=b"actual body", ContentMD5=wrong)
    assert_absent(s3, gw, bucket, "bad-md5")
    assert files_under(gw.bucket_dir(bucket)) == set()
    wait_no_temp_files(gw)


def test_wrong_crc32_is_bad_digest(s3, gw, bucket):
    wrong = checksum_b64("CRC32", b"something else")
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="bad-crc",
                 Body=b"actual body", ChecksumCRC32=wrong)
    assert_absent(s3, gw, bucket, "bad-crc")
    assert files_under(gw.bucket_dir(bucket)) == set()
    wait_no_temp_files(gw)


def test_copy_object_onto_itself_replaces_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same bytes", Metadata={"v": "1"})
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"v": "2"}
    assert got["Body"].read() == b"same bytes"


def test_copy_object_across_buckets(s3, gw, bucket):
    other = bucket + "-dst"
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=bucket, Key="a/src", Body=b"cross-bucket")
    s3.copy_object(Bucket=other, Key="b/dst", CopySource={"Bucket": bucket, "Key": "a/src"})
    assert gw.object_path(other, "b/dst").read_bytes() == b"cross-bucket"
    assert s3.get_object(Bucket=bucket, Key="a/src")["Body"].read() == b"cross-bucket"
