"""boto3: bucket lifecycle and bucket-level queries."""

import pytest

from helpers import expect_error, unique_bucket

pytestmark = pytest.mark.boto3


def test_create_and_delete_bucket(s3, gw):
    name = unique_bucket("life")
    s3.create_bucket(Bucket=name)
    assert gw.bucket_dir(name).is_dir()
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)

    s3.put_object(Bucket=name, Key="dir/obj", Body=b"x")
    expect_error("BucketNotEmpty", 409, s3.delete_bucket, Bucket=name)
    assert s3.get_object(Bucket=name, Key="dir/obj")["Body"].read() == b"x"

    s3.delete_object(Bucket=name, Key="dir/obj")
    s3.delete_bucket(Bucket=name)
    assert not gw.bucket_dir(name).exists()
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    expect_error("404", 404, s3.head_bucket, Bucket=name)
    expect_error("NoSuchBucket", 404, s3.list_objects_v2, Bucket=name)


def test_get_bucket_versioning_unversioned(s3, bucket):
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Status" not in resp  # never versioned
