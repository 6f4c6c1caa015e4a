"""Helpers shared by the benchmarks in this folder (standard library only)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

MiB = 1024 * 1024

REPO = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("FERRY_TOOLS_DIR", Path.home() / ".cache/ferry/tools"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


def logger(name: str) -> Callable[[str], None]:
    """A `log(msg)` that prints `[name HH:MM:SS] msg` to stderr."""

    def log(msg: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


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


# ---------------------------------------------------------------------------------------
# Processes: environment, /proc, GNU time, the run's deadline


def clean_env(*drop: str) -> dict[str, str]:
    """The environment without the caller's FERRY_* and RUST_LOG settings, nor any variable
    whose name starts with one of `drop`."""
    prefixes = ("FERRY_", "RUST_LOG", *drop)
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def proc_kib(pid: int, name: str, path: str = "status") -> int | None:
    """A `Name:   123 kB` field of /proc/PID/status (or /proc/meminfo with pid 0)."""
    try:
        with open(f"/proc/{pid}/{path}" if pid else f"/proc/{path}") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu(pid: int, children: bool = False) -> tuple[float, float] | None:
    """(user, system) CPU seconds of a live process, with those of its reaped children
    added when `children`; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user, system = int(fields[11]), int(fields[12])
        if children:
            user, system = user + int(fields[13]), system + int(fields[14])
    except (OSError, IndexError, ValueError):
        return None
    return user / CLK_TCK, system / CLK_TCK


def child_pids(pid: int) -> list[int]:
    """The live children of a process ([] if it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


GNU_TIME = "/usr/bin/time"


def find_gnu_time() -> str | None:
    """/usr/bin/time (GNU time, Debian package `time`) if it is installed, else None."""
    return GNU_TIME if os.access(GNU_TIME, os.X_OK) else None


def ensure_gnu_time(log: Callable[[str], None]) -> str | None:
    """/usr/bin/time, installed with apt-get when missing and we are root; else None."""
    if found := find_gnu_time():
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("GNU time missing: apt-get install -y time")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "install", "-y", "-q", "time"],
                    ["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "time"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
            if found := find_gnu_time():
                return found
    log("no GNU time: peak RSS from VmHWM sampled every 20 ms")
    return None


def read_gnu_time(path: Path) -> tuple[int, float, float] | None:
    """(peak RSS in KiB, user s, system s) from what `/usr/bin/time -o PATH -f '... %M %U %S'`
    wrote: its last non-blank line (a "Command exited with non-zero status N" line may
    precede it). None when there is no such line."""
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        *_, rss_kib, user, system = lines[-1].split()
        return int(rss_kib), float(user), float(system)
    except (OSError, IndexError, ValueError):
        return None


def start_deadline(seconds: int, message: str) -> None:
    """Raises BenchError(message) in the main thread once `seconds` have passed (SIGALRM;
    `signal.alarm(0)` cancels it), so that the caller's cleanup runs."""

    def on_alarm(signum, frame):
        raise BenchError(message)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)


def copy_logs(files: Iterable[Path], dest: Path) -> None:
    """Copies `files` into the folder `dest` (made if missing)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)


# ---------------------------------------------------------------------------------------
# Machine description and report


def sh(cmd: list[str]) -> str:
    """A command's stripped stdout; "" if it cannot run."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def mount_of(path: Path) -> tuple[str, str, str]:
    """(mount point, fs type, device) holding `path`."""
    real = str(path.resolve())
    best = ("", "?", "?")
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                best = (mnt, fstype, dev)
    return best


def fs_of(path: Path) -> str:
    """The filesystem holding `path`, as `fstype (device on mount point)`."""
    mnt, fs, dev = mount_of(path)
    return f"{fs} ({dev} on {mnt})"


def host() -> dict:
    """date, CPUs, CPU model, RAM and kernel of this machine (render with host_line)."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": sh(["date", "-u"]),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round((proc_kib(0, "MemTotal", "meminfo") or 0) / MiB, 1),
        "kernel": sh(["uname", "-srm"]),
    }


def host_line(m: dict) -> str:
    """The CPUs, RAM and kernel of a host() dict as one markdown list item."""
    return f"- {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB RAM, {m['kernel']}"


def ferry_build(ferry: Path) -> dict:
    """The commit the ferry binary is presumably built from (with a warning when crates/
    has uncommitted changes or HEAD is newer than the binary) and the binary's mtime."""
    commit = sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    head_time = sh(["git", "-C", str(REPO), "log", "-1", "--format=%ct"])
    stale = head_time.isdigit() and int(head_time) > ferry.stat().st_mtime
    dirty = sh(["git", "-C", str(REPO), "status", "--porcelain", "--", "crates", "Cargo.toml",
                "Cargo.lock"])
    return {
        "ferry_commit": commit + (" + uncommitted changes in crates/" if dirty else "")
        + (" (HEAD is newer than the binary: rebuild?)" if stale else ""),
        "ferry_binary_mtime": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ferry.stat().st_mtime)),
    }


def target_table(rows: list[tuple]) -> list[str]:
    """Markdown lines of a (step, value, target, met?) table; met? None leaves it empty."""
    out = ["| step | value | target | met? |", "| --- | ---: | --- | --- |"]
    for step, value, target, ok in rows:
        met = "" if ok is None else ("MET" if ok else "MISSED")
        out.append(f"| {step} | {value} | {target} | {met} |")
    return out
