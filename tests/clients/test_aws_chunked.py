"""aws-chunked uploads, built byte by byte as SDKs send them: signed chunks (with and
without a signed trailer) and unsigned chunks with a trailing checksum."""

import datetime
import hashlib
import hmac
import http.client
import os

import pytest

from gateway import REGION, TARGET
from helpers import assert_absent, checksum_b64, xml_error_code

pytestmark = pytest.mark.skipif(TARGET != "ferry", reason="ferry's aws-chunked handling")

EMPTY_SHA = hashlib.sha256(b"").hexdigest()
CHUNK = 64 * 1024


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Signer:
    """A SigV4 signer written from the spec, independent of the SDKs under test."""

    def __init__(self, gw):
        self.gw = gw
        now = datetime.datetime.now(datetime.timezone.utc)
        self.amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        self.date = now.strftime("%Y%m%d")
        self.scope = f"{self.date}/{REGION}/s3/aws4_request"
        key = _hmac(("AWS4" + gw.secret_key).encode(), self.date)
        for part in (REGION, "s3", "aws4_request"):
            key = _hmac(key, part)
        self.key = key

    def sign(self, string_to_sign: str) -> str:
        return hmac.new(self.key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def seed(self, method: str, path: str, headers: dict) -> str:
        """Adds the Authorization header; returns the seed signature for the chunks."""
        headers["host"] = self.gw.netloc
        headers["x-amz-date"] = self.amz_date
        names = sorted(headers)
        canonical = "\n".join([
            method, path, "",
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            headers["x-amz-content-sha256"],
        ])
        signature = self.sign("\n".join([
            "AWS4-HMAC-SHA256", self.amz_date, self.scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]))
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.gw.access_key}/{self.scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}")
        return signature

    def chunk(self, previous: str, data: bytes) -> str:
        return self.sign("\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, previous, EMPTY_SHA,
            hashlib.sha256(data).hexdigest(),
        ]))

    def trailer(self, previous: str, trailer: bytes) -> str:
        return self.sign("\n".join([
            "AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, previous,
            hashlib.sha256(trailer).hexdigest(),
        ]))


def _send(gw, method: str, path: str, headers: dict, body: bytes):
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def signed_chunked_put(gw, bucket, key, data, trailer_crc=None, tamper=False):
    signer = Signer(gw)
    path = f"/{bucket}/{key}"
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer_crc else "")
    headers = {
        "x-amz-content-sha256": mode,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
    }
    if trailer_crc:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    previous = signer.seed("PUT", path, headers)
    body = b""
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] + [b""]
    for chunk in chunks:
        previous = signer.chunk(previous, chunk)
        sent = chunk
        if tamper and chunk:
            sent = bytes([chunk[0] ^ 1]) + chunk[1:]
            tamper = False
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent
        if chunk or not trailer_crc:
            body += b"\r\n"
    if trailer_crc:
        trailer = f"x-amz-checksum-crc32:{trailer_crc}".encode()
        signature = signer.trailer(previous, trailer + b"\n")
        body += trailer + b"\r\n" + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()
    headers["content-length"] = str(len(body))
    return _send(gw, "PUT", path, headers, body)


def unsigned_trailer_put(gw, bucket, key, data, crc):
    signer = Signer(gw)
    path = f"/{bucket}/{key}"
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    signer.seed("PUT", path, headers)
    body = b""
    for i in range(0, len(data), CHUNK):
        chunk = data[i:i + CHUNK]
        body += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    body += b"0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    headers["content-length"] = str(len(body))
    return _send(gw, "PUT", path, headers, body)


def stored_crc32(s3, bucket, key):
    return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED").get("ChecksumCRC32")


def test_signed_chunks(gw, s3, bucket):
    data = os.urandom(3 * CHUNK + 123)
    status, body = signed_chunked_put(gw, bucket, "signed.bin", data)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="signed.bin")["Body"].read() == data


def test_signed_chunks_with_signed_trailer(gw, s3, bucket):
    data = os.urandom(2 * CHUNK + 7)
    crc = checksum_b64("CRC32", data)
    status, body = signed_chunked_put(gw, bucket, "trailer.bin", data, trailer_crc=crc)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="trailer.bin")["Body"].read() == data
    assert stored_crc32(s3, bucket, "trailer.bin") == crc


def test_tampered_chunk_is_refused_and_nothing_stored(gw, s3, bucket):
    data = os.urandom(2 * CHUNK)
    status, body = signed_chunked_put(gw, bucket, "tampered.bin", data, tamper=True)
    assert status == 403, body
    assert xml_error_code(body) == "SignatureDoesNotMatch"
    assert_absent(s3, gw, bucket, "tampered.bin")


def test_unsigned_chunks_with_trailing_checksum(gw, s3, bucket):
    data = os.urandom(CHUNK + 5)
    crc = checksum_b64("CRC32", data)
    status, body = unsigned_trailer_put(gw, bucket, "unsigned.bin", data, crc)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="unsigned.bin")["Body"].read() == data
    assert stored_crc32(s3, bucket, "unsigned.bin") == crc


def test_wrong_trailing_checksum_is_bad_digest(gw, s3, bucket):
    data = os.urandom(CHUNK + 5)
    wrong = checksum_b64("CRC32", data + b"x")
    status, body = unsigned_trailer_put(gw, bucket, "bad-trailer.bin", data, wrong)
    assert status == 400, body
    assert xml_error_code(body) == "BadDigest"
    assert_absent(s3, gw, bucket, "bad-trailer.bin")
