"""Helpers for the client tests: S3 errors, files on disk, hashes, raw HTTP, CLI tools."""

from __future__ import annotations

import base64
import hashlib
import http.client
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import pytest

from gateway import REGION, Gateway

# --------------------------------------------------------------------------- buckets, S3 errors


def unique_bucket(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def ensure_bucket(s3, name: str) -> None:
    """Creates the bucket unless it is there, as a user would before pointing a tool at it."""
    try:
        s3.create_bucket(Bucket=name)
    except botocore.exceptions.ClientError as exc:
        if error_of(exc)[0] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def error_of(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a boto3 ClientError."""
    return (exc.response["Error"]["Code"],
            exc.response["ResponseMetadata"]["HTTPStatusCode"])


def expect_error(code: str, status: int, fn, *args, **kwargs):
    """Calls fn and asserts it fails with the given S3 error code and HTTP status."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(*args, **kwargs)
    assert error_of(info.value) == (code, status), info.value.response
    return info.value


def assert_absent(s3, gw: Gateway, bucket: str, key: str):
    """The object is neither visible through S3 nor present on disk."""
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)
    assert not gw.object_path(bucket, key).exists()


# --------------------------------------------------------------------------- disk


def files_under(path: Path) -> set[str]:
    """Relative POSIX paths of all regular files below path."""
    if not path.exists():
        return set()
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def leftover_temp_files(gw: Gateway) -> list[str]:
    """Temporary/partial files the gateway still has."""
    if gw.target == "ferry":  # ROOT/.ferry/tmp, and any other tmp folder of ferry's
        return sorted(p for p in files_under(gw.root / ".ferry") if "tmp" in p.split("/")[:-1])
    return sorted(p for p in files_under(gw.root)
                  if p.endswith(".partial") or "/.rclone_temp_" in f"/{p}")


def wait_no_temp_files(gw: Gateway, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while (left := leftover_temp_files(gw)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"temporary files left behind: {left}"


def wait_upload_gone(gw: Gateway, upload_id: str, timeout: float = 15.0):
    """No file of this multipart upload (parts, manifest) is left in ferry's state folder."""
    if gw.target != "ferry":
        return  # other gateways keep parts elsewhere, under names we can't predict
    deadline = time.monotonic() + timeout
    while ((left := [p for p in files_under(gw.root / ".ferry") if upload_id in p])
           and time.monotonic() < deadline):
        time.sleep(0.05)
    assert not left, f"files of upload {upload_id} left behind: {left}"


# --------------------------------------------------------------------------- hashes


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def multipart_etag(data: bytes, part_size: int) -> str:
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def checksum_b64(algorithm: str, data: bytes) -> str:
    if algorithm == "CRC32":
        return b64(zlib.crc32(data).to_bytes(4, "big"))
    if algorithm == "CRC32C":
        return b64(crc32c(data).to_bytes(4, "big"))
    return b64(hashlib.new(algorithm.lower(), data).digest())


# --------------------------------------------------------------------------- raw HTTP


def canonical_path(raw_path: str) -> str:
    """The URI path S3 signs: the decoded path, URI-encoded once."""
    return urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/~")


def sign_headers(gw: Gateway, method: str, raw_path: str, query: str = "",
                 headers: dict | None = None, body: bytes = b"",
                 unsigned_payload: bool = False, secret_key: str | None = None) -> dict:
    """SigV4 headers (botocore's S3 signer) for a request sent with exactly raw_path."""
    url = f"{gw.endpoint}{canonical_path(raw_path)}" + (f"?{query}" if query else "")
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body,
                                         headers=dict(headers or {}))
    if unsigned_payload:
        req.context["client_config"] = botocore.config.Config(
            s3={"payload_signing_enabled": False})
    creds = botocore.credentials.Credentials(gw.access_key, secret_key or gw.secret_key)
    botocore.auth.S3SigV4Auth(creds, "s3", REGION).add_auth(req)
    return dict(req.headers.items())


@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes

    @property
    def code(self) -> str | None:
        return xml_error_code(self.body)


def raw_request(gw: Gateway, method: str, raw_path: str, query: str = "",
                headers: dict | None = None, body: bytes = b"", sign: bool = True,
                **sign_kwargs) -> RawResponse:
    """Sends a request with http.client so the path reaches the server untouched."""
    hdrs = dict(headers or {})
    if sign:
        hdrs = sign_headers(gw, method, raw_path, query, hdrs, body, **sign_kwargs)
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    try:
        conn.request(method, raw_path + (f"?{query}" if query else ""), body=body, headers=hdrs)
        resp = conn.getresponse()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                           resp.read())
    finally:
        conn.close()


def xml_error_code(body: bytes) -> str | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Code":
            return el.text
    return None


def urlopen(req: urllib.request.Request | str) -> tuple[int, dict, bytes]:
    """urllib request that returns (status, headers, body) for error statuses too."""
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


# --------------------------------------------------------------------------- CLI tools, trees


def run_tool(argv: list[str], env: dict, timeout: float = 120, cwd=None) -> str:
    """Runs a CLI client; fails the test with its output if it exits non-zero."""
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv[:4])} ... exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc.stdout


def make_tree(base: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def read_tree(base: Path) -> dict[str, bytes]:
    return {rel: (base / rel).read_bytes() for rel in files_under(base)}
