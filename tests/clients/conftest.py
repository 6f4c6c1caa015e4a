"""Fixtures for ferry's real-client S3 tests.

A session-scoped gateway is started once: ferry's `ferry serve s3` by default, or
`rclone serve s3` when S3_TEST_TARGET=rclone (to check the tests themselves).

Run:
    scripts/install-tools && . ~/.cache/ferry/tools/env.sh
    cargo build -p ferry && pytest tests/clients            # FERRY_BIN overrides the binary
    S3_TEST_TARGET=rclone pytest tests/clients              # against rclone serve s3

Tests that take the `backend_gw` fixture run once per backend: over the session's folder
gateway, and over OneDrive (`ferry serve s3 --onedrive` against a `ferry emulator` started for
the session on first use; ferry only, skipped for S3_TEST_TARGET=rclone).

Env: FERRY_BIN (default target/debug/ferry), S3_TEST_TARGET (ferry|rclone),
FERRY_TOOLS_DIR (where install-tools put aws/s5cmd/rclone/dvc and the mlflow venv),
FERRY_TEST_TMPDIR (gateway root's parent; default the system temp dir), FERRY_TEST_KEEP_ROOT=1
(keep the root for inspection).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gateway import (BACKENDS, LOG_TAIL_LINES, TARGET, Gateway, GraphApp, emulator_command,
                     file_size, free_port, gateway_command, http_status, is_ready, log_tail,
                     onedrive_env)
from helpers import unique_bucket

READY_TIMEOUT = 30.0
_STATE: dict = {}  # the running gateways and those a failed test used, for the report hooks


def _start(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(ready, proc: subprocess.Popen, what: str, log_path: Path, abort) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            abort(f"{what} exited with {proc.returncode} before it was ready:\n"
                  + log_tail(log_path))
        if time.monotonic() > deadline:
            abort(f"{what} not ready after {READY_TIMEOUT}s:\n" + log_tail(log_path))
        time.sleep(0.05)


@contextlib.contextmanager
def _running_gateway(tmp_path_factory, backend: str, abort):
    """Starts the gateway under test over `backend` (and, for onedrive, the Graph emulator it
    serves); yields the Gateway; stops them and removes their files at the end."""
    base = os.environ.get("FERRY_TEST_TMPDIR") or None
    work = Path(tempfile.mkdtemp(prefix="ferry-root-", dir=base))
    logs = tmp_path_factory.mktemp(f"gateway-{backend}")
    log_path = logs / f"{TARGET}.log"
    access = "FERRYTEST" + secrets.token_hex(6).upper()
    secret = secrets.token_urlsafe(30)
    procs: list[subprocess.Popen] = []
    try:
        root, onedrive, emulator, emulator_log = work, None, None, None
        if backend == "onedrive":
            # The emulator keeps the drives under root; ferry's metadata and spool go to state.
            root = work / "drives"
            root.mkdir()
            app = GraphApp(tenant="ferry-test-tenant", client_id="ferry-test-app",
                           client_secret=secrets.token_hex(16), user_id="ferry-test-user")
            emulator_port = free_port()
            emulator_log = logs / "emulator.log"
            cmd, env = emulator_command(root, logs / "emulator.toml", emulator_port, app)
            emulator = _start(cmd, env, emulator_log)
            procs.append(emulator)
            # Any HTTP answer (the emulator has no /health) means it is listening.
            _wait_ready(lambda: http_status("127.0.0.1", emulator_port, "/") is not None,
                        emulator, "ferry emulator", emulator_log, abort)
            onedrive = onedrive_env(emulator_port, app, work / "state")
        elif backend != "folder":
            abort(f"unknown backend {backend!r} (one of {BACKENDS})")
        port = free_port()
        cmd, env = gateway_command(TARGET, root, port, access, secret, onedrive)
        proc = _start(cmd, env, log_path)
        procs.append(proc)
        gateway = Gateway(TARGET, "127.0.0.1", port, access, secret, root, log_path, proc,
                          backend, emulator, emulator_log)
        _wait_ready(lambda: is_ready(gateway), proc, f"{TARGET} ({backend})", log_path, abort)
        yield gateway
    finally:
        for proc in reversed(procs):  # the gateway before the emulator it uses
            _stop(proc)
        if os.environ.get("FERRY_TEST_KEEP_ROOT"):
            print(f"\ngateway root kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _exit_session(message: str):
    pytest.exit(message, returncode=3)


@pytest.fixture(scope="session")
def gw(tmp_path_factory) -> Gateway:
    with _running_gateway(tmp_path_factory, "folder", _exit_session) as gateway:
        _STATE["gw"] = gateway
        yield gateway


@pytest.fixture(scope="session")
def onedrive_gw(tmp_path_factory) -> Gateway:
    """ferry's gateway over a OneDrive folder of the Graph emulator; started on first use."""
    if TARGET != "ferry":
        pytest.skip(f"the onedrive backend is ferry's (S3_TEST_TARGET={TARGET})")
    with _running_gateway(tmp_path_factory, "onedrive", pytest.fail) as gateway:
        yield gateway


def _watch(node, gateway: Gateway) -> None:
    """Remembers the gateway a test uses and where its logs stood when the test began."""
    node._gw = gateway
    node._gw_log_start = {path: file_size(path) for _, path in gateway.logs}


def _check_alive(gateway: Gateway) -> None:
    for name, proc in gateway.processes:
        if proc.poll() is not None:
            pytest.fail(f"{name} ({gateway.backend}) exited with code {proc.returncode} "
                        "during this test")


@pytest.fixture(autouse=True)
def _gateway_watch(request, gw):
    """Remembers where the log stood when the test began; checks the gateway survived."""
    _watch(request.node, gw)
    yield
    _check_alive(gw)


@pytest.fixture(params=BACKENDS)
def backend_gw(request) -> Gateway:
    """The gateway over each backend: the session's folder gateway, then ferry over OneDrive."""
    gateway = request.getfixturevalue("gw" if request.param == "folder" else "onedrive_gw")
    _watch(request.node, gateway)
    yield gateway
    _check_alive(gateway)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    gw = getattr(item, "_gw", None) or _STATE.get("gw")
    if report.failed and gw is not None:
        starts = getattr(item, "_gw_log_start", {})
        for name, path in gw.logs:
            report.sections.append((f"{gw.target} {name} log ({gw.backend}) during this test",
                                    log_tail(path, since=starts.get(path, 0))))
        failed = _STATE.setdefault("failed", [])
        if all(g is not gw for g in failed):
            failed.append(gw)


def pytest_terminal_summary(terminalreporter):
    for gw in _STATE.get("failed", []):
        for name, path in gw.logs:
            terminalreporter.section(f"{gw.target} {name} log ({gw.backend}, "
                                     f"last {LOG_TAIL_LINES} lines)")
            terminalreporter.write_line(log_tail(path))
            terminalreporter.write_line(f"full log: {path}")


@pytest.fixture(scope="session")
def s3(gw):
    """A boto3 client with default settings (path-style), shared by the session."""
    return gw.client()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket for this test."""
    name = unique_bucket()
    s3.create_bucket(Bucket=name)
    return name
