"""The gateway under test: ferry's `ferry serve s3`, or `rclone serve s3` to check the tests."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("S3_TEST_TARGET", "ferry")
REGION = "us-east-1"
MiB = 1024 * 1024
VIRTUAL_HOST_DOMAIN = "s3.test"
LOG_TAIL_LINES = 80


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


def gateway_command(target: str, root: Path, port: int, access: str, secret: str):
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
        # Virtual-host style for BUCKET.s3.test; path style keeps working for 127.0.0.1.
        env["FERRY_S3_DOMAIN"] = VIRTUAL_HOST_DOMAIN
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


def is_ready(gw: Gateway) -> bool:
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
