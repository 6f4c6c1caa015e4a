"""Fixtures for ferry's real-client S3 tests.

A session-scoped gateway is started once: ferry's `ferry serve s3` by default, or
`rclone serve s3` when S3_TEST_TARGET=rclone (to check the tests themselves).

Run:
    scripts/install-tools && . ~/.cache/ferry/tools/env.sh
    cargo build -p ferry && pytest tests/clients            # FERRY_BIN overrides the binary
    S3_TEST_TARGET=rclone pytest tests/clients              # against rclone serve s3

Env: FERRY_BIN (default target/debug/ferry), S3_TEST_TARGET (ferry|rclone),
FERRY_TOOLS_DIR (where install-tools put aws/s5cmd/rclone), FERRY_TEST_TMPDIR (gateway root's
parent; default the system temp dir), FERRY_TEST_KEEP_ROOT=1 (keep the root for inspection).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gateway import LOG_TAIL_LINES, TARGET, Gateway, free_port, gateway_command, is_ready
from helpers import unique_bucket

READY_TIMEOUT = 30.0
_STATE: dict = {}  # the running gateway and whether a test failed, for the report hooks


@pytest.fixture(scope="session")
def gw(tmp_path_factory) -> Gateway:
    base = os.environ.get("FERRY_TEST_TMPDIR") or None
    root = Path(tempfile.mkdtemp(prefix="ferry-root-", dir=base))
    log_path = tmp_path_factory.mktemp("gateway") / f"{TARGET}.log"
    access = "FERRYTEST" + secrets.token_hex(6).upper()
    secret = secrets.token_urlsafe(30)
    port = free_port()
    proc = None
    try:
        cmd, env = gateway_command(TARGET, root, port, access, secret)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        gateway = Gateway(TARGET, "127.0.0.1", port, access, secret, root, log_path, proc)
        _STATE["gw"] = gateway
        deadline = time.monotonic() + READY_TIMEOUT
        while not is_ready(gateway):
            if proc.poll() is not None:
                pytest.exit(f"{TARGET} exited with {proc.returncode} before it was ready:\n"
                            + gateway.log_tail(), returncode=3)
            if time.monotonic() > deadline:
                pytest.exit(f"{TARGET} not ready after {READY_TIMEOUT}s:\n" + gateway.log_tail(),
                            returncode=3)
            time.sleep(0.05)
        yield gateway
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if os.environ.get("FERRY_TEST_KEEP_ROOT"):
            print(f"\ngateway root kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


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
    gw = _STATE.get("gw")
    if report.failed and gw is not None:
        start = getattr(item, "_gw_log_start", 0)
        report.sections.append((f"{gw.target} gateway log during this test",
                                gw.log_tail(since=start)))
        _STATE["failed"] = True


def pytest_terminal_summary(terminalreporter):
    gw = _STATE.get("gw")
    if gw is not None and _STATE.get("failed"):
        terminalreporter.section(f"{gw.target} gateway log (last {LOG_TAIL_LINES} lines)")
        terminalreporter.write_line(gw.log_tail())
        terminalreporter.write_line(f"full log: {gw.log_path}")


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
