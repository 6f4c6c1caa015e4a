#!/usr/bin/env python3
"""ferry's Microsoft Graph client (`ferry onedrive`) against ferry's Graph emulator
(`ferry emulator`), both on 127.0.0.1, in one run.

Steps (each result checked):
  1. upload a 256 MiB file with `ferry onedrive put`, 3 times (median MiB/s; the size the
     emulator reports and the md5 of the file on the emulator's disk are checked);
  2. download it with `ferry onedrive get`, 3 times (median MiB/s; md5 of every download);
  3. 100,000 small files written straight into the drive's folder on disk over 1,000
     folders (not timed); the first `ferry onedrive ls` afterwards (the emulator picks them
     up: it watches its folders and rescans those that changed) and a repeat `ls` are timed; then a full
     `ferry onedrive delta --json` (median of 3, stdout to a file; the JSON must hold
     >= 100,000 files). A delta that runs past --delta-timeout is stopped and reported with
     the pages the emulator served by then and a projection; later repetitions are skipped.
  3b. the emulator restarted on the same folder with `scan_disk = false` (no folder
     watching; its startup is timed), and the same full delta again (median of 3);
  4. peak RSS: VmHWM of each emulator at its end, and of every ferry client process (from
     wait4's rusage, as /usr/bin/time reports it).

Prints the machine, then a markdown table (step, value, target, met?) and where the time
went (wall vs CPU of client and emulator per step). Not part of the test suite. Needs only
python3 (standard library) and a release build: `cargo build --release -p ferry`.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from statistics import median

from benchlib import (
    MiB, REPO, BenchError, child_pids, clean_env, copy_logs, ferry_build, find_gnu_time, free_port,
    fs_of, host, host_line, logger, md5_file, proc_cpu, proc_kib, read_gnu_time, start_deadline,
    target_table, write_random,
)

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT_SECRET = "ferry-graph-bench-secret"
USER_ID = "00000000-0000-0000-0000-0000000000a1"  # the emulator's default user
SIDECAR = ".ferry-emulator"  # the emulator's own state folder under its root
DELTA_PAGE = 200  # the emulator's default delta page size (the client sends no $top)

TARGETS = {"upload_mibs": 200.0, "download_mibs": 200.0, "delta_s": 5.0, "rss_mib": 150.0}

CMD_TIMEOUT = 120.0  # any client command except delta
GLOBAL_TIMEOUT = 1200  # seconds for the whole run; SIGALRM then cleans up
GNU_TIME = find_gnu_time()  # None: client peak RSS from VmHWM sampled every 20 ms

log = logger("graph-bench")


# ---------------------------------------------------------------------------------------
# Processes


class Emulator:
    """`ferry emulator` on 127.0.0.1 with logs in files; the server target logs every
    request at debug level (one line each) so pages served can be counted."""

    def __init__(self, ferry: Path, root: Path, logdir: Path, name: str, config: Path | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.out_path = logdir / f"{name}.stdout"
        self.log_path = logdir / f"{name}.log"
        env = clean_env()
        env.update(
            FERRY_EMULATOR_TENANT=TENANT,
            FERRY_EMULATOR_CLIENT_ID=CLIENT_ID,
            FERRY_EMULATOR_CLIENT_SECRET=CLIENT_SECRET,
            FERRY_LOG="info,ferry_graph_emulator::server=debug",
            FERRY_LOG_FORMAT="json",
        )
        cmd = [str(ferry), "emulator", "--root", str(root), "--addr", f"127.0.0.1:{self.port}"]
        if config is not None:
            cmd += ["--emulator-config", str(config)]
        self._out = open(self.out_path, "wb")
        self._err = open(self.log_path, "wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, env=env)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from spawn until `/_emulator/health` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/_emulator/health", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.02)
        raise BenchError(f"{self.name} not ready after {timeout:.0f} s")

    def hwm_mib(self) -> float | None:
        kib = proc_kib(self.pid, "VmHWM")
        return None if kib is None else kib / 1024

    def cpu_s(self) -> float | None:
        """user + system CPU seconds of the emulator so far."""
        cpu = proc_cpu(self.pid)
        return None if cpu is None else sum(cpu)

    def log_size(self) -> int:
        self._err.flush()
        return self.log_path.stat().st_size

    def requests_since(self, offset: int, needle: str) -> int:
        """Requests logged after byte `offset` whose URI contains `needle`."""
        n = 0
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            for raw in f:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("message") == "request" and needle in line.get("uri", ""):
                    n += 1
        return n

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._out.close()
        self._err.close()


def client_env(emu: Emulator, state_dir: Path) -> dict[str, str]:
    env = clean_env()
    env.update(
        FERRY_GRAPH_AUTHORITY=emu.url,
        FERRY_GRAPH_URL=f"{emu.url}/v1.0",
        FERRY_GRAPH_TENANT=TENANT,
        FERRY_GRAPH_CLIENT_ID=CLIENT_ID,
        FERRY_GRAPH_CLIENT_SECRET=CLIENT_SECRET,
        FERRY_GRAPH_DRIVE=f"user:{USER_ID}",
        FERRY_STATE_DIR=str(state_dir),
    )
    return env


class Run:
    """One client process: wall time, exit status, peak RSS and CPU (wait4's rusage)."""

    def __init__(self, seconds: float, rc: int | None, maxrss_mib: float, cpu_s: float,
                 timed_out: bool, stdout: Path, stderr: Path):
        self.seconds, self.rc, self.maxrss_mib, self.cpu_s = seconds, rc, maxrss_mib, cpu_s
        self.timed_out, self.stdout, self.stderr = timed_out, stdout, stderr

    def check(self, what: str) -> "Run":
        if self.timed_out or self.rc != 0:
            err = self.stderr.read_text(errors="replace")[-2000:]
            state = "timed out" if self.timed_out else f"exit {self.rc}"
            raise BenchError(f"{what}: {state}\n{err}")
        return self


class Clients:
    def __init__(self, ferry: Path, logdir: Path, state_dir: Path):
        self.ferry, self.logdir, self.state_dir = ferry, logdir, state_dir
        self.n = 0
        self.env: dict[str, str] = {}
        self.runs: list[tuple[str, Run]] = []
        self.current: subprocess.Popen | None = None  # killed by cleanup if the run aborts

    def point_at(self, emu: Emulator) -> None:
        self.env = client_env(emu, self.state_dir)

    def run(self, label: str, args: list[str], stdout: Path | None = None,
            timeout: float = CMD_TIMEOUT) -> Run:
        """Runs `ferry onedrive ARGS`. Peak RSS and CPU come from GNU time (`/usr/bin/time`:
        the kernel's ru_maxrss of ferry itself) when it is installed, else from sampling
        VmHWM every 20 ms. (wait4 on a child spawned from this python would not do: Linux
        carries the RSS of the forked python over exec into ru_maxrss.)"""
        self.n += 1
        out_path = stdout or self.logdir / f"client-{self.n:02d}-{label}.stdout"
        err_path = self.logdir / f"client-{self.n:02d}-{label}.stderr"
        time_path = self.logdir / f"client-{self.n:02d}-{label}.time"
        cmd = [str(self.ferry), "onedrive", *args]
        if GNU_TIME:
            cmd = [GNU_TIME, "-o", str(time_path), "-f", "%M %U %S", *cmd]
        result: list = []
        hwm = [0]
        done = threading.Event()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=self.env)
            self.current = proc

            def reap() -> None:
                _, status, usage = os.wait4(proc.pid, 0)
                result.append((time.perf_counter() - start, status, usage))
                done.set()

            def sample() -> None:
                while not done.is_set():
                    kib = proc_kib(proc.pid, "VmHWM")
                    if kib:
                        hwm[0] = max(hwm[0], kib)
                    done.wait(0.02)

            waiter = threading.Thread(target=reap, daemon=True)
            waiter.start()
            if not GNU_TIME:
                threading.Thread(target=sample, daemon=True).start()
            waiter.join(timeout)
            timed_out = waiter.is_alive()
            if timed_out:
                if GNU_TIME:  # ferry is the child of time: stop it by its pid, then time ends
                    for pid in child_pids(proc.pid):
                        hwm[0] = max(hwm[0], proc_kib(pid, "VmHWM") or 0)
                        os.kill(pid, signal.SIGKILL)
                    waiter.join(10)
                if waiter.is_alive():
                    proc.kill()
                    waiter.join(30)
        self.current = None
        seconds, status, usage = result[0]
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
        maxrss_mib, cpu = hwm[0] / 1024, usage.ru_utime + usage.ru_stime
        if GNU_TIME and (got := read_gnu_time(time_path)):
            rss_kib, user, system = got
            maxrss_mib = max(maxrss_mib, rss_kib / 1024)
            cpu = user + system
        run = Run(seconds, proc.returncode, maxrss_mib, cpu, timed_out, out_path, err_path)
        self.runs.append((label, run))
        return run


# ---------------------------------------------------------------------------------------
# Machine description


def machine(workdir: Path, download_dir: Path, ferry: Path) -> dict:
    return {
        **host(),
        "workdir": str(workdir), "workdir_fs": fs_of(workdir),
        "download_dir": str(download_dir), "download_fs": fs_of(download_dir),
        **ferry_build(ferry),
        "python": sys.version.split()[0],
        "client_rss_from": "GNU time (ru_maxrss)" if GNU_TIME else "VmHWM sampled every 20 ms",
    }


# ---------------------------------------------------------------------------------------
# The benchmark


def fmt_s(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def drive_folder(root: Path) -> Path:
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name != SIDECAR]
    if len(dirs) != 1:
        raise BenchError(f"expected one drive folder under {root}, found {[p.name for p in dirs]}")
    return dirs[0]


def create_tree(base: Path, files: int, folders: int) -> None:
    per = math.ceil(files / folders)
    made = 0
    for i in range(folders):
        sub = base / f"d{i:04d}"
        sub.mkdir(parents=True)
        for j in range(per):
            if made == files:
                return
            with open(sub / f"item{j:04d}.txt", "wb") as f:
                f.write(b"ferry graph bench %d\n" % made)
            made += 1


def count_delta(path: Path) -> tuple[int, int, int]:
    """(items, files, deleted) in `ferry onedrive delta --json` output."""
    with open(path, "rb") as f:
        doc = json.load(f)
    items = doc.get("items", [])
    files = sum(1 for i in items if not i.get("folder") and not i.get("deleted"))
    deleted = sum(1 for i in items if i.get("deleted"))
    if not doc.get("deltaLink"):
        raise BenchError("delta output has no deltaLink")
    return len(items), files, deleted


def bench(args: argparse.Namespace, workdir: Path, logdir: Path, results: dict) -> None:
    ferry = args.ferry
    root = workdir / "emulator-root"
    root.mkdir()
    state = workdir / "client-state"
    state.mkdir()
    src = workdir / "big.bin"
    size = args.size_mib * MiB
    rows = results["rows"]
    where = results["where"]
    clients = Clients(ferry, logdir, state)
    results["_clients"] = clients  # for cleanup
    emus: list[Emulator] = []
    results["_emus"] = emus

    log(f"writing {args.size_mib} MiB of random bytes")
    src_md5 = write_random(src, size)

    emu = Emulator(ferry, root, logdir, "emulator", None)
    emus.append(emu)
    ready = emu.wait_ready()
    log(f"emulator ready in {ready:.2f} s at {emu.url}")
    clients.point_at(emu)

    # 1. upload
    remote = "bench/big.bin"
    up: list[float] = []
    up_rss: list[float] = []
    cpu0 = emu.cpu_s()
    cli_cpu = 0.0
    for i in range(args.reps):
        os.sync()
        r = clients.run(f"put{i + 1}", ["--json", "put", str(src), remote]).check("put")
        item = json.loads(r.stdout.read_text())
        if item.get("size") != size:
            raise BenchError(f"put reported size {item.get('size')}, expected {size}")
        up.append(r.seconds)
        up_rss.append(r.maxrss_mib)
        cli_cpu += r.cpu_s
        log(f"put {i + 1}: {r.seconds:.3f} s ({size / MiB / r.seconds:.1f} MiB/s)")
    emu_cpu = emu.cpu_s() - cpu0
    drive = drive_folder(root)
    if md5_file(drive / remote) != src_md5:
        raise BenchError("the uploaded file on the emulator's disk differs from the source")
    up_mibs = size / MiB / median(up)
    rows.append((f"upload {args.size_mib} MiB, `ferry onedrive put` (upload session, 10 MiB "
                 f"fragments): MiB/s, median of {args.reps} (s: {fmt_s(up)})",
                 f"{up_mibs:.1f}", f">= {TARGETS['upload_mibs']:.0f} MiB/s",
                 up_mibs >= TARGETS["upload_mibs"]))
    where.append(("upload x%d" % args.reps, sum(up), cli_cpu, emu_cpu))
    results["upload_s"] = up

    # 2. download
    down: list[float] = []
    down_rss: list[float] = []
    cpu0 = emu.cpu_s()
    cli_cpu = 0.0
    dest = args.download_dir / f"ferry-graph-bench-{os.getpid()}.bin"
    results["_dest"] = dest
    try:
        for i in range(args.reps):
            os.sync()
            r = clients.run(f"get{i + 1}", ["--json", "get", remote, str(dest)]).check("get")
            down.append(r.seconds)
            down_rss.append(r.maxrss_mib)
            cli_cpu += r.cpu_s
            got = md5_file(dest)
            if got != src_md5:
                raise BenchError(f"download {i + 1}: md5 {got} != {src_md5}")
            dest.unlink()
            log(f"get {i + 1}: {r.seconds:.3f} s ({size / MiB / r.seconds:.1f} MiB/s), md5 ok")
    finally:
        dest.unlink(missing_ok=True)
    emu_cpu = emu.cpu_s() - cpu0
    down_mibs = size / MiB / median(down)
    rows.append((f"download {args.size_mib} MiB, `ferry onedrive get` (to {args.download_dir}, md5 "
                 f"checked): MiB/s, median of {args.reps} (s: {fmt_s(down)})",
                 f"{down_mibs:.1f}", f">= {TARGETS['download_mibs']:.0f} MiB/s",
                 down_mibs >= TARGETS["download_mibs"]))
    where.append(("download x%d" % args.reps, sum(down), cli_cpu, emu_cpu))
    results["download_s"] = down

    # 3. 100k files on disk, then ls and delta
    log(f"creating {args.files} files in {args.folders} folders on disk")
    t = time.perf_counter()
    create_tree(drive / "bulk", args.files, args.folders)
    os.sync()
    created_s = time.perf_counter() - t
    total_items = 1 + 1 + 1 + 1 + args.folders + args.files  # root, bench/, big.bin, bulk/
    rows.append((f"write {args.files:,} files in {args.folders:,} folders straight to the drive "
                 f"folder, then os.sync() (setup, not a target): s", f"{created_s:.1f}", "", None))

    cpu0 = emu.cpu_s()
    r1 = clients.run("ls-first", ["--json", "ls"]).check("first ls")
    emu_cpu = emu.cpu_s() - cpu0
    where.append(("first ls (picks up the new files)", r1.seconds, r1.cpu_s, emu_cpu))
    cpu0 = emu.cpu_s()
    r2 = clients.run("ls-again", ["--json", "ls"]).check("second ls")
    emu_cpu2 = emu.cpu_s() - cpu0
    where.append(("repeat ls (nothing changed)", r2.seconds, r2.cpu_s, emu_cpu2))
    rows.append(("first `ferry onedrive ls` after writing them (the emulator's first scan of "
                 f"{total_items:,} items, inside the ls): s", f"{r1.seconds:.2f}", "", None))
    rows.append(("repeat `ferry onedrive ls`, nothing changed (token + 2 Graph requests; every "
                 "request first rescans the folders that changed on disk): s", f"{r2.seconds:.2f}", "", None))
    log(f"first ls {r1.seconds:.2f} s, repeat ls {r2.seconds:.2f} s")

    pages = math.ceil(total_items / DELTA_PAGE)
    delta_out = args.download_dir / f"ferry-graph-bench-delta-{os.getpid()}.json"
    results["_delta_out"] = delta_out

    def deltas(label: str, emu: Emulator) -> dict:
        times: list[float] = []
        rss: list[float] = []
        note = ""
        cpu0 = emu.cpu_s()
        cli_cpu = 0.0
        wall = 0.0
        for i in range(args.delta_reps):
            os.sync()
            off = emu.log_size()
            r = clients.run(f"{label}{i + 1}", ["--json", "delta"], stdout=delta_out,
                            timeout=args.delta_timeout)
            cli_cpu += r.cpu_s
            wall += r.seconds
            rss.append(r.maxrss_mib)
            if r.timed_out:
                served = emu.requests_since(off, "/root/delta")
                done = max(served - 1, 1)  # the last one was in flight
                proj = r.seconds * pages / done
                note = (f"not finished: stopped at {r.seconds:.0f} s after ~{done} of {pages} pages "
                        f"({DELTA_PAGE} items each); projected ~{proj:.0f} s")
                log(f"{label} {i + 1}: {note}")
                delta_out.unlink(missing_ok=True)
                return {"times": times, "rss": rss, "note": note, "projected": proj,
                        "cli_cpu": cli_cpu, "emu_cpu": emu.cpu_s() - cpu0, "wall": wall,
                        "partial_rss": True}
            r.check("delta")
            items, files, deleted = count_delta(delta_out)
            delta_out.unlink()
            if files < args.files:
                raise BenchError(f"delta listed {files} files, expected >= {args.files}")
            times.append(r.seconds)
            log(f"{label} {i + 1}: {r.seconds:.2f} s, {items} items ({files} files, {deleted} deleted), "
                f"client peak RSS {r.maxrss_mib:.1f} MiB")
        return {"times": times, "rss": rss, "note": note, "items": items, "files": files,
                "cli_cpu": cli_cpu, "emu_cpu": emu.cpu_s() - cpu0, "wall": wall,
                "partial_rss": False}

    d = deltas("delta", emu)
    results["delta_default"] = {k: v for k, v in d.items()}
    if d["times"]:
        med = median(d["times"])
        rows.append((f"full `ferry onedrive delta --json` of {d['items']:,} items ({pages} pages), "
                     f"default emulator (watching its folders): s, median of {len(d['times'])} "
                     f"(s: {fmt_s(d['times'])})", f"{med:.2f}", f"< {TARGETS['delta_s']:.0f} s",
                     med < TARGETS["delta_s"]))
    else:
        rows.append((f"full `ferry onedrive delta --json` of {total_items:,} items, default emulator "
                     f"(watching its folders): {d['note']}", f"> {args.delta_timeout:.0f} s",
                     f"< {TARGETS['delta_s']:.0f} s", False))
    where.append(("full delta, default emulator" + (" (stopped)" if d["note"] else ""),
                  d["wall"], d["cli_cpu"], d["emu_cpu"]))

    emu_hwm = emu.hwm_mib()
    results["emulator_hwm_mib"] = emu_hwm
    emu.stop()

    # 3b. the same delta with folder watching off
    d2 = None
    noscan_hwm = None
    if not args.skip_noscan:
        cfg = workdir / "emulator-noscan.toml"
        cfg.write_text(
            f'root = "{root}"\nscan_disk = false\n\n[[apps]]\ntenant = "{TENANT}"\n'
            f'client_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n'
        )
        emu2 = Emulator(ferry, root, logdir, "emulator-noscan", cfg)
        emus.append(emu2)
        start_s = emu2.wait_ready(timeout=120)
        log(f"emulator (scan_disk = false) ready in {start_s:.2f} s")
        clients.point_at(emu2)
        rows.append((f"emulator restart with `scan_disk = false` on the same folder: spawn to "
                     f"health 200 (loads its state, one startup scan of {total_items:,} items): s",
                     f"{start_s:.2f}", "", None))
        d2 = deltas("delta-noscan", emu2)
        results["delta_noscan"] = d2
        if d2["times"]:
            med = median(d2["times"])
            rows.append((f"full `ferry onedrive delta --json` of {d2['items']:,} items, emulator "
                         f"with `scan_disk = false`: s, median of {len(d2['times'])} "
                         f"(s: {fmt_s(d2['times'])}; the first also hashes the new files)",
                         f"{med:.2f}", f"(< {TARGETS['delta_s']:.0f} s)", med < TARGETS["delta_s"]))
        else:
            rows.append((f"full delta, emulator with `scan_disk = false`: {d2['note']}",
                         f"> {args.delta_timeout:.0f} s", f"(< {TARGETS['delta_s']:.0f} s)", False))
        where.append(("full delta, scan_disk = false", d2["wall"], d2["cli_cpu"], d2["emu_cpu"]))
        noscan_hwm = emu2.hwm_mib()
        results["emulator_noscan_hwm_mib"] = noscan_hwm
        emu2.stop()

    # 4. memory
    lim = TARGETS["rss_mib"]
    rows.append(("peak RSS, emulator (VmHWM after steps 1-3): MiB", f"{emu_hwm:.1f}",
                 f"< {lim:.0f} MiB", emu_hwm < lim))
    if noscan_hwm is not None:
        rows.append(("peak RSS, emulator with `scan_disk = false` (VmHWM after its deltas): MiB",
                     f"{noscan_hwm:.1f}", f"< {lim:.0f} MiB", noscan_hwm < lim))
    rows.append(("peak RSS, client `put` (max of %d): MiB" % args.reps, f"{max(up_rss):.1f}",
                 f"< {lim:.0f} MiB", max(up_rss) < lim))
    rows.append(("peak RSS, client `get` (max of %d): MiB" % args.reps, f"{max(down_rss):.1f}",
                 f"< {lim:.0f} MiB", max(down_rss) < lim))
    rows.append(("peak RSS, client `ls` of the root (max of 2): MiB",
                 f"{max(r1.maxrss_mib, r2.maxrss_mib):.1f}", f"< {lim:.0f} MiB",
                 max(r1.maxrss_mib, r2.maxrss_mib) < lim))
    m = max(d["rss"])
    if d["partial_rss"]:
        rows.append(("peak RSS, client `delta` against the default emulator (stopped early, so "
                     "partial): MiB", f"{m:.1f}", f"< {lim:.0f} MiB", None))
    else:
        rows.append((f"peak RSS, client `delta --json` of {d['items']:,} items (max of "
                     f"{len(d['rss'])}): MiB", f"{m:.1f}", f"< {lim:.0f} MiB", m < lim))
    if d2 is not None and d2["rss"]:
        m2 = max(d2["rss"])
        partial = d2["partial_rss"]
        rows.append((f"peak RSS, client `delta --json`, emulator with `scan_disk = false` "
                     f"(max of {len(d2['rss'])}{', partial' if partial else ''}): MiB", f"{m2:.1f}",
                     f"< {lim:.0f} MiB", None if partial else m2 < lim))

    # What the logs say
    notes = []
    for _, run in clients.runs:
        text = run.stderr.read_text(errors="replace").strip()
        if text:
            notes.append(f"{run.stderr.name}: {text.splitlines()[0][:200]}")
    for e in emus:
        bad = 0
        with open(e.log_path, "rb") as f:
            for raw in f:
                if b'"level":"WARN"' in raw or b'"level":"ERROR"' in raw:
                    bad += 1
        if bad:
            notes.append(f"{e.log_path.name}: {bad} WARN/ERROR lines")
    results["log_notes"] = notes


def render(results: dict) -> str:
    m = results["machine"]
    out = [
        "## Machine",
        "",
        f"- date: {m['date_utc']}",
        host_line(m),
        f"- work dir {m['workdir']}: {m['workdir_fs']}; downloads and delta output: "
        f"{m['download_dir']}: {m['download_fs']}",
        f"- ferry {m['ferry_commit']} (binary built {m['ferry_binary_mtime']}); python {m['python']}; "
        f"client peak RSS from {m['client_rss_from']}, emulator's from VmHWM",
        "",
        *target_table(results["rows"]),
        "",
        "Where the time went (CPU seconds of the ferry client processes and of the emulator "
        "over the step):",
        "",
        "| step | wall s | client CPU s | emulator CPU s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for step, wall, cli, emu in results["where"]:
        out.append(f"| {step} | {wall:.2f} | {cli:.2f} | {emu:.2f} |")
    notes = results.get("log_notes") or []
    out += ["", "Logs: " + ("; ".join(notes) if notes else
                            "no client wrote to stderr; no WARN/ERROR in the emulator logs.")]
    out.append(f"\nWhole run: {results['elapsed_s']:.0f} s.")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ferry", type=Path, default=REPO / "target" / "release" / "ferry")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                   help="parent of the run's temp folder (emulator root, client state, source file)")
    p.add_argument("--download-dir", type=Path,
                   default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                   help="where downloads and the delta JSON go (default /dev/shm; else the work dir)")
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--reps", type=int, default=3, help="uploads and downloads")
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--folders", type=int, default=1_000)
    p.add_argument("--delta-reps", type=int, default=3)
    p.add_argument("--delta-timeout", type=float, default=120.0,
                   help="seconds before a delta is stopped and projected (later reps skipped)")
    p.add_argument("--skip-noscan", action="store_true",
                   help="skip step 3b (restart with scan_disk = false and delta again)")
    p.add_argument("--keep-logs", type=Path, help="copy the emulator and client logs here")
    p.add_argument("--json", type=Path, help="write the raw results here")
    args = p.parse_args()

    if not args.ferry.is_file():
        print(f"no ferry binary at {args.ferry}; run `cargo build --release -p ferry`", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="ferry-graph-bench-", dir=args.workdir))
    if args.download_dir is None:
        args.download_dir = workdir
    logdir = workdir / "logs"
    logdir.mkdir()
    results: dict = {"rows": [], "where": [], "machine": machine(workdir, args.download_dir, args.ferry)}

    start_deadline(GLOBAL_TIMEOUT, f"the whole run took over {GLOBAL_TIMEOUT} s")
    t0 = time.perf_counter()
    ok = False
    try:
        bench(args, workdir, logdir, results)
        ok = True
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        signal.alarm(0)
        clients = results.get("_clients")
        if clients is not None and clients.current is not None and clients.current.poll() is None:
            clients.current.kill()  # a client of ours still running after an abort
        for emu in results.get("_emus", []):
            try:
                emu.stop()
            except Exception as e:  # keep cleaning up
                print(f"stopping {emu.name}: {e}", file=sys.stderr)
        for key in ("_dest", "_delta_out"):
            if results.get(key):
                results[key].unlink(missing_ok=True)
        if args.keep_logs:
            copy_logs(logdir.iterdir(), args.keep_logs)
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.perf_counter() - t0
    if not ok:
        return 1
    print(render(results))
    if args.json:
        raw = {k: v for k, v in results.items() if not k.startswith("_")}
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
