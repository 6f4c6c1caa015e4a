"""boto3: presigned GET/PUT URLs (SigV2 and SigV4) used by a plain HTTP client."""

import time
import urllib.request

import pytest

from helpers import assert_absent, urlopen, xml_error_code

pytestmark = pytest.mark.boto3

SIGNATURES = pytest.mark.parametrize("signature", ["s3", "s3v4"], ids=["sigv2", "sigv4"])


@SIGNATURES
def test_presigned_get(gw, s3, bucket, signature):
    s3.put_object(Bucket=bucket, Key="shared/file.txt", Body=b"presigned content")
    signer = gw.client(signature_version=signature)
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared/file.txt"}, ExpiresIn=300)
    status, _, body = urlopen(url)
    assert (status, body) == (200, b"presigned content")


@SIGNATURES
def test_presigned_put(gw, s3, bucket, signature):
    signer = gw.client(signature_version=signature)
    url = signer.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": "up/loaded.bin", "ContentType": "application/octet-stream"},
        ExpiresIn=300)
    req = urllib.request.Request(url, data=b"\x00\x01uploaded", method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    status, _, body = urlopen(req)
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="up/loaded.bin")
    assert got["Body"].read() == b"\x00\x01uploaded"
    assert gw.object_path(bucket, "up/loaded.bin").read_bytes() == b"\x00\x01uploaded"


@SIGNATURES
def test_presigned_url_tampered(gw, s3, bucket, signature):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="other", Body=b"other secret")
    signer = gw.client(signature_version=signature)
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=300)
    status, _, body = urlopen(url.replace(f"/{bucket}/k?", f"/{bucket}/other?"))
    assert (status, xml_error_code(body)) == (403, "SignatureDoesNotMatch"), body


def _wait_until(t: float):
    while time.time() < t:
        time.sleep(0.1)


@SIGNATURES
def test_presigned_url_expires(gw, s3, bucket, signature):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    signer = gw.client(signature_version=signature)
    signed_at = time.time()
    get_url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    put_url = signer.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "late"}, ExpiresIn=1)
    # SigV4 dates have one-second resolution; wait past expiry with a margin.
    _wait_until(signed_at + 2.5)

    status, _, body = urlopen(get_url)
    assert (status, xml_error_code(body)) == (403, "AccessDenied"), body
    status, _, body = urlopen(urllib.request.Request(put_url, data=b"x", method="PUT"))
    assert (status, xml_error_code(body)) == (403, "AccessDenied"), body
    assert_absent(s3, gw, bucket, "late")
