"""The gateway under test: ferry's `ferry serve s3`, or `rclone serve s3` to check the tests.

Backends: "folder" (a local folder, the default) and "onedrive" (`ferry serve s3 --onedrive`
over a drive of ferry's Graph emulator, `ferry emulator`; ferry only).
"""

from __future__ import annotations

import http.client
import json
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
BACKENDS = ("folder", "onedrive")
# The drive folder `ferry serve s3 --onedrive` serves by default; its children are the buckets.
ONEDRIVE_DRIVE_ROOT = "DynamicCapital/ai-training"


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
    backend: str = "folder"
    # With the onedrive backend: the Graph emulator (its root is `root`) and its log.
    emulator: subprocess.Popen | None = None
    emulator_log: Path | None = None

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen]]:
        procs = [("gateway", self.proc)]
        if self.emulator is not None:
            procs.append(("emulator", self.emulator))
        return procs

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

    @property
    def buckets_dir(self) -> Path:
        """The folder on disk whose child folders are the buckets."""
        if self.backend == "folder":
            return self.root
        # The emulator keeps each drive in a folder named after its id, under its root.
        found = list(self.root.glob(f"*/{ONEDRIVE_DRIVE_ROOT}"))
        assert len(found) == 1, f"no single {ONEDRIVE_DRIVE_ROOT} in the emulated drive: {found}"
        return found[0]

    def bucket_dir(self, bucket: str) -> Path:
        return self.buckets_dir / bucket

    def object_path(self, bucket: str, key: str) -> Path:
        return self.buckets_dir / bucket / key

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

    @property
    def logs(self) -> list[tuple[str, Path]]:
        logs = [("gateway", self.log_path)]
        if self.emulator_log is not None:
            logs.append(("emulator", self.emulator_log))
        return logs

    def log_size(self) -> int:
        return file_size(self.log_path)

    def log_tail(self, since: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, since, lines)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_tail(path: Path, since: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
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


def tool_python(venv: str) -> str:
    """The python of one of scripts/install-tools' venvs (dvc, mlflow), for scripts that import
    the tool: FERRY_<VENV>_PYTHON from its env.sh, else TOOLS_DIR/<venv>/bin/python."""
    tools_dir = Path(os.environ.get("FERRY_TOOLS_DIR", Path.home() / ".cache/ferry/tools"))
    for candidate in (os.environ.get(f"FERRY_{venv.upper()}_PYTHON"),
                      tools_dir / venv / "bin" / "python"):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"no python for the {venv} venv in {tools_dir}; run scripts/install-tools")


def ferry_binary() -> str:
    binary = Path(os.environ.get("FERRY_BIN", REPO_ROOT / "target/debug/ferry"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not os.access(binary, os.X_OK):
        pytest.exit(f"ferry binary not found at {binary} (set FERRY_BIN or cargo build -p ferry)",
                    returncode=3)
    return str(binary)


@dataclass
class GraphApp:
    """The app ferry signs in as, and the user whose drive it serves, in the Graph emulator."""
    tenant: str
    client_id: str
    client_secret: str
    user_id: str


def emulator_command(root: Path, config: Path, port: int, app: GraphApp):
    """`ferry emulator` with a TOML config holding the app and the user; drives under root."""
    config.write_text(
        f"root = {json.dumps(str(root))}\n"
        "[[apps]]\n"
        f"tenant = {json.dumps(app.tenant)}\n"
        f"client_id = {json.dumps(app.client_id)}\n"
        f"client_secret = {json.dumps(app.client_secret)}\n"
        "[[users]]\n"
        f"id = {json.dumps(app.user_id)}\n"
        'user_principal_name = "ferry-test@example.test"\n'
        'display_name = "Ferry Test"\n')
    cmd = [ferry_binary(), "emulator", "--emulator-config", str(config),
           "--addr", f"127.0.0.1:{port}"]
    return cmd, dict(os.environ)


def onedrive_env(emulator_port: int, app: GraphApp, state_dir: Path) -> dict[str, str]:
    """FERRY_GRAPH_* settings that point `ferry serve s3 --onedrive` at the emulator."""
    authority = f"http://127.0.0.1:{emulator_port}"
    return {
        "FERRY_GRAPH_AUTHORITY": authority,
        "FERRY_GRAPH_URL": authority + "/v1.0",
        "FERRY_GRAPH_TENANT": app.tenant,
        "FERRY_GRAPH_CLIENT_ID": app.client_id,
        "FERRY_GRAPH_CLIENT_SECRET": app.client_secret,
        "FERRY_GRAPH_DRIVE": f"user:{app.user_id}",
        "FERRY_STATE_DIR": str(state_dir),
    }


def gateway_command(target: str, root: Path, port: int, access: str, secret: str,
                    onedrive: dict[str, str] | None = None):
    """The gateway's command and environment: over the folder root, or over OneDrive when
    onedrive holds the FERRY_GRAPH_* settings (see onedrive_env)."""
    env = dict(os.environ)
    if onedrive is not None and target != "ferry":
        pytest.exit(f"the onedrive backend needs S3_TEST_TARGET=ferry, not {target!r}",
                    returncode=3)
    if target == "ferry":
        env["FERRY_S3_ACCESS_KEY_ID"] = access
        env["FERRY_S3_SECRET_ACCESS_KEY"] = secret
        # Virtual-host style for BUCKET.s3.test; path style keeps working for 127.0.0.1.
        env["FERRY_S3_DOMAIN"] = VIRTUAL_HOST_DOMAIN
        if onedrive is None:
            source = ["--root", str(root)]
        else:
            env.update(onedrive)
            source = ["--onedrive"]
        cmd = [ferry_binary(), "serve", "s3", *source, "--addr", f"127.0.0.1:{port}"]
    elif target == "rclone":
        # rclone reads any flag from RCLONE_<FLAG> (list flags as CSV, hence the quotes);
        # this keeps the secret out of argv.
        env["RCLONE_AUTH_KEY"] = f'"{access},{secret}"'
        env["RCLONE_CONFIG"] = os.devnull
        cmd = [find_tool("rclone"), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}"]
    else:
        pytest.exit(f"unknown S3_TEST_TARGET={target!r} (ferry or rclone)", returncode=3)
    return cmd, env


def http_status(host: str, port: int, path: str) -> int | None:
    """Status of a plain GET, or None when nothing answers."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
    except OSError:
        return None
    return status


def is_ready(gw: Gateway) -> bool:
    path = "/health" if gw.target == "ferry" else "/"
    status = http_status(gw.host, gw.port, path)
    # ferry promises an unauthenticated 200 on /health; rclone has no such route,
    # any HTTP answer means it is listening.
    return status == 200 if gw.target == "ferry" else status is not None


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
