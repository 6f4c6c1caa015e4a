"""Bad, hostile and unlucky requests: exact S3 error codes, nothing partial left visible."""

import hashlib
import os
import socket
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway import TARGET, MiB
from helpers import (assert_absent, b64, expect_error, files_under, raw_request, sign_headers,
                     urlopen, wait_no_temp_files, wait_upload_gone, xml_error_code)

pytestmark = pytest.mark.bad_input


# --------------------------------------------------------------------------- auth


def test_bad_secret_is_signature_mismatch(gw, s3, bucket):
    bad = gw.client(secret_key=gw.secret_key + "x")
    expect_error("SignatureDoesNotMatch", 403, bad.list_objects_v2, Bucket=bucket)
    expect_error("SignatureDoesNotMatch", 403, bad.put_object, Bucket=bucket, Key="k", Body=b"x")
    assert_absent(s3, gw, bucket, "k")


def test_unknown_access_key(gw, s3, bucket):
    bad = gw.client(access_key="NOSUCHKEY0000000")
    expect_error("InvalidAccessKeyId", 403, bad.list_objects_v2, Bucket=bucket)


@pytest.mark.skipif(TARGET != "ferry", reason="/health is ferry's")
def test_health_needs_no_auth(gw):
    status, _, _ = urlopen(f"{gw.endpoint}/health")
    assert status == 200


def test_unauthenticated_requests_denied(gw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    for req in (f"{gw.endpoint}/{bucket}/private",
                f"{gw.endpoint}/{bucket}",
                f"{gw.endpoint}/",
                urllib.request.Request(f"{gw.endpoint}/{bucket}/anon", data=b"x", method="PUT")):
        status, headers, body = urlopen(req)
        assert status == 403, (req, body)
        assert xml_error_code(body) == "AccessDenied", body
        assert b"secret" not in body
    assert_absent(s3, gw, bucket, "anon")


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("template", [
    "../{n}",
    "../../{n}",
    "a/../../{n}",
    "%2e%2e/{n}",
    "%2E%2E/%2e%2e/{n}",
    "a/%2e%2e/%2e%2e/{n}",
    "..%2f{n}",
], ids=["dotdot", "dotdot2", "a-dotdot-dotdot", "enc-dotdot", "enc-dotdot2", "a-enc-dotdot2",
        "dotdot-enc-slash"])
def test_traversal_key_rejected(gw, s3, bucket, template):
    name = f"escaped-{uuid.uuid4().hex[:8]}"
    raw_path = f"/{bucket}/" + template.format(n=name)
    before_root = set(os.listdir(gw.root)) - {".ferry"}
    resp = raw_request(gw, "PUT", raw_path, body=b"evil")
    assert resp.status == 400, (resp.status, resp.body)
    assert resp.code, resp.body  # an S3 XML error document
    for get in (raw_request(gw, "GET", raw_path), raw_request(gw, "HEAD", raw_path)):
        assert get.status in (400, 404), get
    assert set(os.listdir(gw.root)) - {".ferry"} == before_root
    assert not (gw.root / name).exists() and not (gw.root.parent / name).exists()
    assert files_under(gw.bucket_dir(bucket)) == set()


def test_key_too_long(gw, s3, bucket):
    # 1024 bytes is the limit; segments stay under the 255-byte file name limit.
    ok_key = "/".join(["k" * 200] * 5) + "/" + "z" * 19
    assert len(ok_key) == 1024
    s3.put_object(Bucket=bucket, Key=ok_key, Body=b"fits")
    assert s3.get_object(Bucket=bucket, Key=ok_key)["Body"].read() == b"fits"

    long_key = ok_key + "z"
    expect_error("KeyTooLongError", 400, s3.put_object, Bucket=bucket, Key=long_key, Body=b"x")
    assert files_under(gw.bucket_dir(bucket)) == {ok_key}


def test_missing_bucket_and_key(s3, bucket):
    expect_error("NoSuchBucket", 404, s3.put_object, Bucket=f"{bucket}-missing", Key="k", Body=b"x")
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="missing")


# --------------------------------------------------------------------------- multipart & XML


def _upload_parts(s3, bucket, key, sizes):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, size in enumerate(sizes, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=os.urandom(size))["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    return upload_id, parts


def test_complete_multipart_malformed_xml(gw, s3, bucket):
    upload_id, parts = _upload_parts(s3, bucket, "mpu", [1024])
    body = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
            f"<ETag>{parts[0]['ETag']}</ETag></Part").encode()  # truncated
    resp = raw_request(gw, "POST", f"/{bucket}/mpu", query=f"uploadId={upload_id}", body=body)
    assert (resp.status, resp.code) == (400, "MalformedXML"), resp.body
    assert_absent(s3, gw, bucket, "mpu")
    # the upload survives a bad request and can still be listed and aborted
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="mpu",
                                                    UploadId=upload_id)["Parts"]] == [1]
    s3.abort_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload_id)
    wait_upload_gone(gw, upload_id)


def test_delete_objects_malformed_xml(gw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="stay", Body=b"x")
    body = b"<Delete><Object><Key>stay</Key></Object>"  # unclosed
    headers = {"Content-MD5": b64(hashlib.md5(body).digest()), "Content-Type": "application/xml"}
    resp = raw_request(gw, "POST", f"/{bucket}", query="delete=", headers=headers, body=body)
    assert (resp.status, resp.code) == (400, "MalformedXML"), resp.body
    assert s3.get_object(Bucket=bucket, Key="stay")["Body"].read() == b"x"


def test_complete_with_small_part_is_entity_too_small(gw, s3, bucket):
    upload_id, parts = _upload_parts(s3, bucket, "small-parts", [1024, 1024])
    expect_error("EntityTooSmall", 400, s3.complete_multipart_upload, Bucket=bucket,
                 Key="small-parts", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert_absent(s3, gw, bucket, "small-parts")
    s3.abort_multipart_upload(Bucket=bucket, Key="small-parts", UploadId=upload_id)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    wait_upload_gone(gw, upload_id)
    assert files_under(gw.bucket_dir(bucket)) == set()


def test_multipart_min_part_size_accepted(gw, s3, bucket):
    """5 MiB parts (last one smaller) complete, with the S3 multipart ETag."""
    key = "mpu-ok"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1000)]
    parts = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                                      PartNumber=i, Body=c)["ETag"]}
             for i, c in enumerate(chunks, start=1)]
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [p["Size"] for p in listed] == [len(c) for c in chunks]
    assert_absent(s3, gw, bucket, key)  # not visible before completion
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    digest = hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest()
    assert done["ETag"] == f'"{digest}-3"'
    assert gw.object_path(bucket, key).read_bytes() == b"".join(chunks)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    wait_upload_gone(gw, upload_id)
    wait_no_temp_files(gw)


def test_unknown_upload_id(s3, bucket):
    bogus = "no-such-upload-" + uuid.uuid4().hex
    expect_error("NoSuchUpload", 404, s3.upload_part, Bucket=bucket, Key="k", UploadId=bogus,
                 PartNumber=1, Body=b"x")
    expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=bucket, Key="k",
                 UploadId=bogus,
                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})
    expect_error("NoSuchUpload", 404, s3.abort_multipart_upload, Bucket=bucket, Key="k",
                 UploadId=bogus)
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key="k", UploadId=bogus)


# --------------------------------------------------------------------------- disconnects & races


def test_client_disconnect_mid_upload(gw, s3, bucket):
    length = 10 * MiB
    path = f"/{bucket}/interrupted.bin"
    headers = sign_headers(gw, "PUT", path, headers={"Content-Length": str(length)},
                           unsigned_payload=True)
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    head = f"PUT {path} HTTP/1.1\r\nHost: {gw.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host") + "\r\n"
    with socket.create_connection((gw.host, gw.port), timeout=10) as sock:
        sock.sendall(head.encode())
        sock.sendall(os.urandom(MiB))
    assert_absent(s3, gw, bucket, "interrupted.bin")
    wait_no_temp_files(gw)
    assert files_under(gw.bucket_dir(bucket)) == set()
    assert_absent(s3, gw, bucket, "interrupted.bin")


def test_concurrent_puts_never_mix(gw, bucket):
    size, writers, readers = 256 * 1024, 100, 4
    versions = {i: (i.to_bytes(2, "big") + bytes([i ^ 0x5A, 0xA5])) * (size // 4)
                for i in range(writers + 1)}
    known = {hashlib.md5(v).hexdigest(): i for i, v in versions.items()}
    s3 = gw.client(max_pool_connections=writers + readers)
    s3.put_object(Bucket=bucket, Key="hot", Body=versions[writers])  # initial version

    done = threading.Event()
    seen: list[int] = []

    def reader():
        while not done.is_set():
            body = s3.get_object(Bucket=bucket, Key="hot")["Body"].read()
            digest = hashlib.md5(body).hexdigest()
            assert digest in known, f"GET returned a body that is no written version ({len(body)} bytes)"
            seen.append(known[digest])

    def writer(i):
        s3.put_object(Bucket=bucket, Key="hot", Body=versions[i])

    with ThreadPoolExecutor(readers) as rpool:
        read_futures = [rpool.submit(reader) for _ in range(readers)]
        try:
            with ThreadPoolExecutor(writers) as wpool:
                list(wpool.map(writer, range(writers)))
        finally:
            done.set()
        for f in read_futures:
            f.result()

    # the readers really overlapped the writers
    assert len(set(seen)) >= 2, f"{len(seen)} GETs saw only versions {set(seen)}"
    final = s3.get_object(Bucket=bucket, Key="hot")["Body"].read()
    assert hashlib.md5(final).hexdigest() in known
    assert gw.object_path(bucket, "hot").read_bytes() == final
    wait_no_temp_files(gw)
    assert files_under(gw.bucket_dir(bucket)) == {"hot"}
