"""Helpers shared by the benchmarks in this folder (standard library only)."""

import hashlib
import os
import socket
from pathlib import Path

MiB = 1024 * 1024


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def write_random(path: Path, size: int) -> str:
    """Writes `size` random bytes to `path`; returns their md5."""
    h = hashlib.md5()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 16 * MiB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.hexdigest()
