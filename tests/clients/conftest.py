"""Fixtures and helpers for ferry's real-client S3 tests.

A session-scoped gateway is started once: ferry's `ferry serve s3` by default, or
`rclone serve s3` when S3_TEST_TARGET=rclone (to check the tests themselves).

Run:
    scripts/install-tools && . ~/.cache/ferry/tools/env.sh
    cargo build -p ferry && pytest tests/clients            # FERRY_BIN overrides the binary
    S3_TEST_TARGET=rclone pytest tests/clients              # against rclone serve s3

Env: FERRY_BIN (default target/debug/ferry), S3_TEST_TARGET (ferry|rclone),
FERRY_TOOLS_DIR (where install-tools put aws/s5cmd/rclone), FERRY_TEST_TMPDIR (gateway root's
parent; default the system temp dir).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("S3_TEST_TARGET", "ferry")
REGION = "us-east-1"
MiB = 1024 * 1024
READY_TIMEOUT = 30.0
LOG_TAIL_LINES = 80


# --------------------------------------------------------------------------- gateway


@dataclass
class Gateway:
    target: str
    host: str
    port: int
    access_key: str
    secret_key: str
    root: Path
    log_path: Path
    proc: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self, secret_key: str | None = None, access_key: str | None = None, **config):
        """A boto3 S3 client with default settings, path-style addressing."""
        s3_cfg = {"addressing_style": "path"}
        s3_cfg.update(config.pop("s3", {}))
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(s3=s3_cfg, **config),
        )

    def bucket_dir(self, bucket: str) -> Path:
        return self.root / bucket

    def object_path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def client_env(self) -> dict[str, str]:
        """Environment for CLI clients (aws, s5cmd) pointed at the gateway."""
        env = dict(os.environ)
        for name in list(env):
            if name.startswith("AWS_"):
                del env[name]
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            S3_ENDPOINT_URL=self.endpoint,
        )
        return env

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, since: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_tool(name: str) -> str:
    """An executable from PATH or from scripts/install-tools' bin dir."""
    tools_dir = Path(os.environ.get("FERRY_TOOLS_DIR", Path.home() / ".cache/ferry/tools"))
    for candidate in (shutil.which(name), tools_dir / "bin" / name):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{name} not found on PATH or in {tools_dir}/bin; run scripts/install-tools")


def _gateway_command(target: str, root: Path, port: int, access: str, secret: str):
    env = dict(os.environ)
    if target == "ferry":
        binary = Path(os.environ.get("FERRY_BIN", REPO_ROOT / "target/debug/ferry"))
        if not binary.is_absolute():
            binary = REPO_ROOT / binary
        if not os.access(binary, os.X_OK):
            pytest.exit(f"ferry binary not found at {binary} (set FERRY_BIN or cargo build -p ferry)",
                        returncode=3)
        env["FERRY_S3_ACCESS_KEY_ID"] = access
        env["FERRY_S3_SECRET_ACCESS_KEY"] = secret
        cmd = [str(binary), "serve", "s3", "--root", str(root), "--addr", f"127.0.0.1:{port}"]
    elif target == "rclone":
        # rclone reads any flag from RCLONE_<FLAG> (list flags as CSV, hence the quotes);
        # this keeps the secret out of argv.
        env["RCLONE_AUTH_KEY"] = f'"{access},{secret}"'
        env["RCLONE_CONFIG"] = os.devnull
        cmd = [find_tool("rclone"), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}"]
    else:
        pytest.exit(f"unknown S3_TEST_TARGET={target!r} (ferry or rclone)", returncode=3)
    return cmd, env


def _is_ready(gw: Gateway) -> bool:
    path = "/health" if gw.target == "ferry" else "/"
    try:
        conn = http.client.HTTPConnection(gw.host, gw.port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
    except OSError:
        return False
    # ferry promises an unauthenticated 200 on /health; rclone has no such route,
    # any HTTP answer means it is listening.
    return status == 200 if gw.target == "ferry" else True


@pytest.fixture(scope="session")
def gw(tmp_path_factory) -> Gateway:
    base = os.environ.get("FERRY_TEST_TMPDIR") or None
    root = Path(tempfile.mkdtemp(prefix="ferry-root-", dir=base))
    log_path = tmp_path_factory.mktemp("gateway") / f"{TARGET}.log"
    access = "FERRYTEST" + secrets.token_hex(6).upper()
    secret = secrets.token_urlsafe(30)
    port = free_port()
    cmd, env = _gateway_command(TARGET, root, port, access, secret)
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    gateway = Gateway(TARGET, "127.0.0.1", port, access, secret, root, log_path, proc)
    _LOG["gw"] = gateway
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _is_ready(gateway):
            if proc.poll() is not None:
                pytest.exit(f"{TARGET} exited with {proc.returncode} before it was ready:\n"
                            + gateway.log_tail(), returncode=3)
            if time.monotonic() > deadline:
                pytest.exit(f"{TARGET} not ready after {READY_TIMEOUT}s:\n" + gateway.log_tail(),
                            returncode=3)
            time.sleep(0.05)
        yield gateway
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


_LOG: dict = {}


@pytest.fixture(autouse=True)
def _gateway_watch(request, gw):
    """Remembers where the log stood when the test began; checks the gateway survived."""
    request.node._gw_log_start = gw.log_size()
    yield
    if gw.proc.poll() is not None:
        pytest.fail(f"gateway exited with code {gw.proc.returncode} during this test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    gw = _LOG.get("gw")
    if report.failed and gw is not None:
        start = getattr(item, "_gw_log_start", 0)
        report.sections.append((f"{gw.target} gateway log during this test",
                                gw.log_tail(since=start)))
        _LOG["failed"] = True


def pytest_terminal_summary(terminalreporter):
    gw = _LOG.get("gw")
    if gw is not None and _LOG.get("failed"):
        terminalreporter.section(f"{gw.target} gateway log (last {LOG_TAIL_LINES} lines)")
        terminalreporter.write_line(gw.log_tail())
        terminalreporter.write_line(f"full log: {gw.log_path}")


# --------------------------------------------------------------------------- clients


@pytest.fixture(scope="session")
def s3(gw):
    return gw.client()


def unique_bucket(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket for this test."""
    name = unique_bucket()
    s3.create_bucket(Bucket=name)
    return name


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
    if gw.target == "ferry":
        return sorted(files_under(gw.root / ".ferry" / "tmp"))
    return sorted(p for p in files_under(gw.root)
                  if p.endswith(".partial") or "/.rclone_temp_" in f"/{p}")


def wait_no_temp_files(gw: Gateway, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while (left := leftover_temp_files(gw)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"temporary files left behind: {left}"


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


def rclone_env(gw: Gateway, remote: str = "FERRY") -> dict[str, str]:
    """Environment that defines an rclone S3 remote named `remote` (lower case), no config file."""
    env = gw.client_env()
    prefix = f"RCLONE_CONFIG_{remote.upper()}_"
    env.update({
        "RCLONE_CONFIG": os.devnull,
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other",
        prefix + "ENDPOINT": gw.endpoint,
        prefix + "ACCESS_KEY_ID": gw.access_key,
        prefix + "SECRET_ACCESS_KEY": gw.secret_key,
        prefix + "REGION": REGION,
        prefix + "FORCE_PATH_STYLE": "true",
    })
    return env
