#!/usr/bin/env python3
"""ferry's S3 gateway over OneDrive (through ferry's Graph emulator) next to ferry over a
local folder and `rclone serve s3` over a local folder, in one run.

Three servers on 127.0.0.1, each with fresh state under one temp folder:

  onedrive  `ferry serve s3 --onedrive` against `ferry emulator` (a separate process)
  local     `ferry serve s3 --root DIR`
  rclone    `rclone serve s3 DIR`

Steps (each result checked: md5 of every GET, key and page counts):
  1. s3_bench.py's gateway workload on all three, servers alternated per repetition,
     median of the repetitions: 64 MiB PUT and GET (s5cmd single-part, s5cmd default,
     thin client), 1,000 x 4 KiB PUTs (s5cmd, 16 workers), a full ListObjectsV2 listing of
     10,000 keys at 1,000 per page (s5cmd ls and thin client). Peak RSS after it. The
     listing keys are uploaded with s5cmd through each server (`--keys-via disk`: on
     `onedrive`, written straight into the drive folder on the emulator's disk instead).
  2. Graph requests per S3 operation on `onedrive`: the emulator's /_emulator/stats
     (Graph API requests and pre-authenticated upload/download requests) read before and
     after each single operation.
  3. Fresh emulator and gateway: a 1 GiB s5cmd multipart upload through `onedrive`; its
     time and the peak RSS (VmHWM) of gateway and emulator.

Prints markdown tables: the workload with "ferry better" factors against rclone, the Graph
request counts, peak RSS and the targets. Not part of the test suite; see bench/README.md.
Needs s5cmd, rclone and a python with boto3 (`scripts/install-tools`, then
`source ~/.cache/ferry/tools/env.sh`) and `cargo build --release -p ferry`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import s3_bench
from benchlib import (
    MiB, REPO, BenchError, clean_env, copy_logs, ferry_build, fs_of, host, host_line, logger,
    md5_file, proc_cpu, start_deadline, target_table, write_random,
)
from s3_bench import (
    ACCESS_KEY, CMD_TIMEOUT, SECRET_KEY, SMALL_RETRIES, Client, Server, ThinClient, count_ops,
    find_tool, make_rclone, server_errors,
)

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT_SECRET = "ferry-onedrive-bench-secret"
USER_ID = "00000000-0000-0000-0000-0000000000a1"  # the emulator's default user
DRIVE_ROOT = "DynamicCapital/ai-training"  # the gateway's default --drive-root

TARGETS = {
    "list_graph": 2,  # Graph requests (API + transfer) for a full listing, fresh index
    "list_vs_rclone": 3.0,  # listing speed, ferry over OneDrive vs rclone over a folder
    "put64_mibs": 150.0,  # 64 MiB PUT through the emulator
    "rss_1g_mib": 150.0,  # gateway peak RSS during the 1 GiB multipart upload
}

# sizes and repetitions: full run, and --quick (a check of the script itself)
FULL = dict(big_mib=64, big_reps=5, small_count=1000, small_rounds=3, list_keys=10000,
            list_reps=3, graph_reps=3, huge_mib=1024, freshness=5)
QUICK = dict(big_mib=16, big_reps=2, small_count=100, small_rounds=1, list_keys=1000,
             list_reps=2, graph_reps=1, huge_mib=128, freshness=2)
PART_MIB = 8  # part size of the multipart upload counted in step 2
GLOBAL_TIMEOUT = 1500  # seconds for the whole run; SIGALRM then cleans up

A, B, C = "onedrive", "local", "rclone"
LABEL = {A: "ferry → OneDrive (emulator)", B: "ferry, local folder", C: "rclone, local folder"}

log = logger("onedrive-bench")


# ---------------------------------------------------------------------------------------
# Processes


@dataclass
class Proc(Server):
    """A ferry process (gateway or emulator) started with `--addr 127.0.0.1:0`: the port
    comes from its JSON "listening" log line; ready once `health` answers 200."""

    health: str = "/health"

    def _ready(self) -> bool:
        if not self.port:
            for line in self.log_path.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if "listening" in str(rec.get("message")) and "endpoint" in rec:
                    self.port = int(rec["endpoint"].rsplit(":", 1)[1])
                    break
            else:
                return False
        try:
            with urllib.request.urlopen(self.endpoint + self.health, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False


def make_emulator(ferry: Path, base: Path, tag: str, debug: bool = False) -> Proc:
    env = clean_env()
    env.update(FERRY_EMULATOR_TENANT=TENANT, FERRY_EMULATOR_CLIENT_ID=CLIENT_ID,
               FERRY_EMULATOR_CLIENT_SECRET=CLIENT_SECRET, FERRY_LOG_FORMAT="json")
    if debug:  # one log line per request (method and URI)
        env["FERRY_LOG"] = "info,ferry_graph_emulator::server=debug"
    root = base / f"emulator-root{tag}"
    argv = [str(ferry), "emulator", "--root", str(root), "--addr", "127.0.0.1:0"]
    return Proc("emulator", argv, env, root, base / f"emulator{tag}.log", 0,
                health="/_emulator/health")


def make_gateway(ferry: Path, base: Path, tag: str, emu: Proc | None, freshness: int) -> Proc:
    """`ferry serve s3` over the emulator's default user's drive (emu given), else over a
    fresh folder. `root` is the served folder, or FERRY_STATE_DIR with --onedrive."""
    env = clean_env()
    env.update(FERRY_LOG_FORMAT="json", FERRY_S3_ACCESS_KEY_ID=ACCESS_KEY,
               FERRY_S3_SECRET_ACCESS_KEY=SECRET_KEY)
    argv = [str(ferry), "serve", "s3", "--addr", "127.0.0.1:0"]
    if emu is not None:
        root = base / f"state-onedrive{tag}"
        env.update(
            FERRY_STATE_DIR=str(root),
            FERRY_GRAPH_AUTHORITY=emu.endpoint,
            FERRY_GRAPH_URL=emu.endpoint + "/v1.0",
            FERRY_GRAPH_TENANT=TENANT,
            FERRY_GRAPH_CLIENT_ID=CLIENT_ID,
            FERRY_GRAPH_CLIENT_SECRET=CLIENT_SECRET,
            FERRY_GRAPH_DRIVE=f"user:{USER_ID}",
        )
        argv += ["--onedrive", "--freshness", f"{freshness}s"]
        name = A
    else:
        root = base / f"root-local{tag}"
        env["FERRY_STATE_DIR"] = str(base / f"state-local{tag}")
        argv += ["--root", str(root)]
        name = B
    return Proc(name, argv, env, root, base / f"ferry-{name}{tag}.log", 0)


def emu_stats(emu: Server) -> tuple[int, int]:
    """(Graph API requests, transfer requests) the emulator has served since it started."""
    with urllib.request.urlopen(emu.endpoint + "/_emulator/stats", timeout=10) as r:
        d = json.load(r)
    return int(d["graph_requests"]), int(d["transfer_requests"])


def thin_call(srv: Server, method: str, bucket: str, key: str,
              body: bytes | None = None) -> tuple[float, int, bytes, dict[str, str]]:
    """One signed request (s3_bench's SigV4 over http.client, one connection):
    (seconds, status, body, headers)."""
    extra = {"content-length": str(len(body))} if body is not None else {}
    target, headers = ThinClient()._signed(srv, method, f"/{bucket}/{key}", {}, extra)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=CMD_TIMEOUT)
    try:
        t0 = time.perf_counter()
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        dt = time.perf_counter() - t0
    finally:
        conn.close()
    return dt, resp.status, data, {k.lower(): v for k, v in resp.getheaders()}


def ferry_log_summary(s: Server) -> str:
    """Lines, WARN/ERROR lines and non-2xx responses (by op) in a ferry JSON log."""
    lines = s.log_path.read_text(errors="replace").splitlines()
    warn, bad = 0, {}
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("level") in ("WARN", "ERROR"):
            warn += 1
        st = rec.get("status")
        if isinstance(st, int) and st >= 300:
            k = f"{rec.get('op')} {st}"
            bad[k] = bad.get(k, 0) + 1
    return f"{len(lines)} lines, {warn} WARN/ERROR" + (
        f", non-2xx responses: {bad}" if s.name != "emulator" else "")


def wait_count(path: Path, op: str, key_path: str, want: int) -> int:
    """count_ops, polled up to 2 s until it reaches `want` (log lines may trail)."""
    deadline = time.monotonic() + 2
    while (n := count_ops(path, op, key_path)) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


# ---------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    step: str
    unit: str
    values: dict[str, float]
    higher_is_better: bool
    note: str = ""

    def ratio(self, name: str) -> float:
        x, r = self.values.get(name, float("nan")), self.values.get(C, float("nan"))
        return x / r if self.higher_is_better else r / x


@dataclass
class GraphCount:
    op: str
    graph: list[int] = field(default_factory=list)
    transfer: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)


def fmt(v: float) -> str:
    if v != v:  # nan
        return "-"
    return f"{v:,.3f}" if v < 10 else f"{v:,.1f}"


def fmt_counts(xs: list[int]) -> str:
    return str(xs[0]) if len(set(xs)) == 1 else ", ".join(map(str, xs))


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.a = args
        self.client = Client(args.s5cmd)
        self.thin = ThinClient()
        self.s3 = s3_bench.Bench(args)  # for alternate() and boto3_list()
        self.rows: list[Row] = []
        self.graph: list[GraphCount] = []
        # (what, operations, Graph requests, transfer requests, emulator CPU s, gateway CPU s)
        self.step1_graph: list[tuple[str, int, int, int, float, float]] = []
        self.rss: list[tuple[str, float]] = []
        self.extra: list[tuple[str, str]] = []
        self.raw: dict = {}
        self.emu: Proc | None = None
        self.gw: Proc | None = None  # the gateway over the emulator
        self.procs: list[Server] = []
        self.big = self.big_md5 = None

    @property
    def big_label(self) -> str:
        return f"{self.a.big_mib} MiB"

    def counts_during(self, fn):
        """Runs fn(); returns (its result, Graph requests, transfer requests) from the
        emulator's counters around it."""
        g0, t0 = emu_stats(self.emu)
        out = fn()
        g1, t1 = emu_stats(self.emu)
        return out, g1 - g0, t1 - t0

    def on_onedrive(self, what: str, ops: int, fn):
        """Runs fn() and notes the Graph and transfer requests and the CPU seconds of the
        emulator and the OneDrive gateway during it (a row of the step-1 Graph table)."""
        cpu0 = [sum(proc_cpu(p.proc.pid) or (0, 0)) for p in (self.emu, self.gw)]
        out, g, t = self.counts_during(fn)
        cpu1 = [sum(proc_cpu(p.proc.pid) or (0, 0)) for p in (self.emu, self.gw)]
        self.step1_graph.append((what, ops, g, t, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]))
        return out

    # ----------------------------------------------------------- step 1: the workload

    def step_big(self, servers: list[Server], shm: Path) -> None:
        n, data, want = self.a.big_reps, self.big, self.big_md5
        size = data.stat().st_size
        modes = [
            ("s5cmd single-part", "big-single", ["--part-size", str(2 * self.a.big_mib)]),
            ("s5cmd default", "big-default", []),  # 50 MiB parts, 5 at a time
            ("thin client", "big-thin", None),  # sendfile + UNSIGNED-PAYLOAD, one plain GET
        ]
        for mode, key, flags in modes:

            def put(s: Server, i: int) -> float:
                if flags is None:
                    return self.thin.put(s, "bench", key, data, want)
                return self.client.run(s, ["cp", *flags, str(data), f"s3://bench/{key}"])[0]

            def get(s: Server, i: int) -> float:
                if flags is None:
                    dt, got = self.thin.get(s, "bench", key, size)
                else:
                    dst = shm / f"get-{s.name}"
                    dst.unlink(missing_ok=True)
                    dt, _ = self.client.run(s, ["cp", *flags, f"s3://bench/{key}", str(dst)])
                    got = md5_file(dst)
                    dst.unlink()
                if got != want:
                    raise BenchError(f"{s.name}: GET {key} md5 {got} != PUT md5 {want}")
                return dt

            for s in servers:  # untimed warm-up; creates the key, so timed PUTs overwrite
                put(s, -1)
                get(s, -1)
            puts = self.on_onedrive(f"{self.big_label} PUT, {mode}", n,
                                    lambda: self.s3.alternate(servers, n, put))
            gets = self.on_onedrive(f"{self.big_label} GET, {mode}", n,
                                    lambda: self.s3.alternate(servers, n, get))
            self.raw[f"put {mode}"], self.raw[f"get {mode}"] = puts, gets
            for op, times in (("PUT", puts), ("GET", gets)):
                self.rows.append(Row(
                    f"{self.big_label} {op}, {mode}: MiB/s", "MiB/s",
                    {s.name: size / MiB / median(times[s.name]) for s in servers}, True,
                    note=f"median of {n}"))

    def step_small(self, servers: list[Server], small_dir: Path, shm: Path) -> None:
        n, count = self.a.small_rounds, self.a.small_count

        def put(s: Server, i: int) -> float:
            # retries allowed, as in s3_bench.py: rclone answers some concurrent PUTs into
            # a new prefix with 500; the server errors are counted and reported
            return self.client.run(
                s, ["--numworkers", "16", "cp", f"{small_dir}/*", f"s3://bench/small/r{i}/"],
                retries=SMALL_RETRIES, timeout=300)[0]

        errs0 = {s.name: server_errors(s) for s in servers}
        times = self.on_onedrive(
            f"{count} x 4 KiB PUT, s5cmd 16 workers, {n} round(s), each into a new folder",
            n * count, lambda: self.s3.alternate(servers, n, put))
        errs = {s.name: server_errors(s) - errs0[s.name] for s in servers}
        self.raw["small"], self.raw["small_5xx"] = times, errs
        self.s3.check_small(servers, small_dir, shm, n * count)
        self.rows.append(Row(
            f"{count} x 4 KiB PUT, s5cmd 16 workers: objects/s", "obj/s",
            {s.name: count / median(times[s.name]) for s in servers}, True,
            note=f"median of {n} rounds; 5xx retried by s5cmd: "
                 + ", ".join(f"{k} {v}" for k, v in errs.items())))

    def step_list(self, servers: list[Server], list_dir: Path) -> None:
        n_keys, reps = self.a.list_keys, self.a.list_reps
        pages = -(-n_keys // 1000)
        on_disk = self.a.keys_via == "disk"
        written = 0.0
        for s in servers:
            self.client.run(s, ["mb", "s3://listing"])
            t0 = time.perf_counter()
            if s.name == A and on_disk:
                # straight into the drive's folder on the emulator's disk, as someone
                # syncing files into OneDrive would; the emulator's folder watching picks
                # them up, the gateway's index at its next delta round
                folders = list(self.emu.root.glob(f"*/{DRIVE_ROOT}/listing"))
                if len(folders) != 1:
                    raise BenchError(f"the bucket's folder on the emulator's disk: {folders}")
                for f in sorted(list_dir.iterdir()):
                    (folders[0] / f.name).touch()
                written = time.monotonic()
            else:
                def create() -> None:
                    self.client.run(s, ["--numworkers", "64", "cp", f"{list_dir}/*",
                                        "s3://listing/"], timeout=900, retries=SMALL_RETRIES)
                if s.name == A:
                    self.on_onedrive(f"create the {n_keys:,} listing keys (s5cmd cp, 64 "
                                     "workers, empty objects)", n_keys, create)
                else:
                    create()
            dt = time.perf_counter() - t0
            log(f"  created {n_keys} keys on {s.name} in {dt:.1f}s"
                + (" (on the emulator's disk)" if s.name == A and on_disk else ""))
            self.raw[f"create_list_keys_s {s.name}"] = dt
        self.extra.append((
            f"creating the {n_keys:,} listing keys (not timed in the tables)",
            ("on onedrive written straight into the drive folder on the emulator's disk, on the "
             "others with s5cmd cp (64 workers)" if on_disk else
             "s5cmd cp (64 workers) through each server") + ": " + ", ".join(
                f"{s.name} {self.raw[f'create_list_keys_s {s.name}']:.1f} s" for s in servers)))
        if on_disk:  # let the gateway's index age past --freshness, so it sees the files
            time.sleep(max(0.0, written + self.a.freshness + 1 - time.monotonic()))
        for s in servers:  # boto3's paginator: every key once, in order, 1,000 per page
            if s.name == A:  # the first listing since the writes: the index catches up
                got_pages, keys = self.on_onedrive(
                    f"first listing after writing the {n_keys:,} keys (boto3, {pages} page(s))",
                    1, lambda: self.s3.boto3_list(s))
            else:
                got_pages, keys = self.s3.boto3_list(s)
            if len(keys) != n_keys or len(set(keys)) != n_keys or keys != sorted(keys):
                raise BenchError(f"{s.name}: boto3 listing gave {len(keys)} keys "
                                 f"({len(set(keys))} unique, sorted={keys == sorted(keys)})")
            if got_pages != pages:
                raise BenchError(f"{s.name}: {got_pages} ListObjectsV2 pages, expected {pages}")
        graph_per_listing: dict[str, list[tuple[int, int]]] = {}

        def counted(kind: str, s: Server, fn) -> float:
            if s.name != A:
                return fn()
            dt, g, t = self.counts_during(fn)
            graph_per_listing.setdefault(kind, []).append((g, t))
            return dt

        def ls(s: Server, i: int) -> float:
            def run() -> float:
                dt, out = self.client.run(s, ["ls", "s3://listing/*"], quiet=False)
                got = len([ln for ln in out.splitlines() if ln.strip()])
                if got != n_keys:
                    raise BenchError(f"{s.name}: s5cmd ls printed {got} keys, want {n_keys}")
                return dt
            return counted("s5cmd ls", s, run)

        def thin_ls(s: Server, i: int) -> float:
            def run() -> float:
                dt, keys, got_pages = self.thin.list_all(s, "listing")
                if keys != n_keys or got_pages != pages:
                    raise BenchError(f"{s.name}: thin listing gave {keys} keys in "
                                     f"{got_pages} pages")
                return dt
            return counted("thin client", s, run)

        for kind, fn in (("s5cmd ls", ls), ("thin client", thin_ls)):
            for s in servers:  # untimed warm-up
                fn(s, -1)
            graph_per_listing.pop(kind, None)
            times = self.s3.alternate(servers, reps, fn)
            self.raw[f"list {kind}"] = times
            self.rows.append(Row(
                f"list {n_keys:,} keys, {kind} (ListObjectsV2, 1000/page): s", "s",
                {s.name: median(times[s.name]) for s in servers}, False,
                note=f"median of {reps}"))
        self.raw["list_graph_per_timed_listing"] = graph_per_listing
        self.extra.append((
            "Graph requests (API, transfer) during each timed listing on onedrive",
            "; ".join(f"{k}: {v}" for k, v in graph_per_listing.items())
            + f" (--freshness {self.a.freshness}s; a listing after it expired pays a delta round)"))

    # ----------------------------------------------------------- step 2: Graph per op

    def step_graph(self, gw: Server, shm: Path) -> None:
        """Graph and transfer requests per single S3 operation on the OneDrive gateway.
        Every operation but the "expired" listing runs right after a HEAD of another key,
        so the index is fresh (younger than --freshness)."""
        n_keys, reps = self.a.list_keys, self.a.graph_reps
        small = (Path(self.a._small_dir) / "obj-0000").read_bytes()
        small_md5 = md5_file(Path(self.a._small_dir) / "obj-0000")
        rows: dict[str, GraphCount] = {}

        def freshen() -> None:
            _, st, _, _ = thin_call(gw, "HEAD", "bench", "small/r0/obj-0001")
            if st != 200:
                raise BenchError(f"HEAD small/r0/obj-0001: {st}")

        def measure(op: str, fn, fresh: bool = True) -> None:
            if fresh:
                freshen()
            self.s3.sync()
            (dt, *_), g, t = self.counts_during(fn)
            row = rows.setdefault(op, GraphCount(op))
            row.graph.append(g)
            row.transfer.append(t)
            row.ms.append(dt * 1000)

        def listing() -> tuple[float]:
            dt, keys, pages = self.thin.list_all(gw, "listing")
            if keys != n_keys:
                raise BenchError(f"listing gave {keys} keys, want {n_keys}")
            return (dt,)

        def single(method: str, key: str, body: bytes | None = None, want: int = 200,
                   check=None):
            def run() -> tuple[float]:
                dt, st, data, hdrs = thin_call(gw, method, "bench", key, body)
                if st != want:
                    raise BenchError(f"{method} {key}: {st} {data[:300]!r}")
                if check:
                    check(data, hdrs)
                return (dt,)
            return run

        def check_small(data: bytes, hdrs: dict) -> None:
            if data != small:
                raise BenchError("GET of the small object returned other bytes")

        def check_head(data: bytes, hdrs: dict) -> None:
            if hdrs.get("content-length") != str(len(small)) or \
                    hdrs.get("etag", "").strip('"') != small_md5:
                raise BenchError(f"HEAD small: {hdrs}")

        size = self.big.stat().st_size
        mp = f"mp-{self.a.big_mib}"
        idle = GraphCount(f"(idle for --freshness + 1 = {self.a.freshness + 1} s, no request)")
        for i in range(reps):
            log(f"  repetition {i + 1}/{reps}")
            listing()  # makes the index fresh, whatever it was
            measure(f"ListObjectsV2, all {n_keys:,} keys ({-(-n_keys // 1000)} page(s)), "
                    "index fresh (right after another listing)", listing, fresh=False)
            (_, g, t) = self.counts_during(lambda: time.sleep(self.a.freshness + 1))
            idle.graph.append(g)
            idle.transfer.append(t)
            measure(f"ListObjectsV2, all {n_keys:,} keys, index older than --freshness "
                    f"(after {self.a.freshness + 1} s idle)", listing, fresh=False)
            measure("HeadObject, 4 KiB object", single("HEAD", "small/r0/obj-0000",
                                                        check=check_head))
            measure("GetObject, 4 KiB object", single("GET", "small/r0/obj-0000",
                                                       check=check_small))
            measure("PutObject, 4 KiB, new key in an existing folder",
                    single("PUT", f"small/r0/new-{i}", small))
            measure("PutObject, 4 KiB, overwrite", single("PUT", f"small/r0/new-{i}", small))
            measure("DeleteObject, 4 KiB object", single("DELETE", f"small/r0/new-{i}", want=204))
            measure("PutObject, 4 KiB, new key in a new folder (`gN/new`)",
                    single("PUT", f"g{i}/new", small))
            measure(f"PutObject, {self.big_label}, one request (thin client), existing folder",
                    lambda: (self.thin.put(gw, "bench", f"g{i}/big", self.big, self.big_md5),))

            def get_big() -> tuple[float]:
                dt, got = self.thin.get(gw, "bench", f"g{i}/big", size)
                if got != self.big_md5:
                    raise BenchError(f"GET g{i}/big: md5 {got} != {self.big_md5}")
                return (dt,)

            measure(f"GetObject, {self.big_label}, one request (thin client)", get_big)
            parts = -(-self.a.big_mib // PART_MIB)
            before = count_ops(gw.log_path, "UploadPart", f"/bench/{mp}")

            def multipart() -> tuple[float]:
                return (self.client.run(gw, ["cp", "--part-size", str(PART_MIB), str(self.big),
                                             f"s3://bench/{mp}"])[0],)

            measure(f"multipart upload, {self.big_label} in {parts} x {PART_MIB} MiB parts "
                    "(s5cmd; create + parts + complete)", multipart)
            seen = wait_count(gw.log_path, "UploadPart", f"/bench/{mp}", before + parts) - before
            if seen != parts:
                raise BenchError(f"multipart upload: ferry logged {seen} UploadPart, want {parts}")
        dst = shm / "mp-check"
        self.client.run(gw, ["cp", f"s3://bench/{mp}", str(dst)])
        if md5_file(dst) != self.big_md5:
            raise BenchError("multipart upload: the object read back differs")
        dst.unlink()
        self.graph = list(rows.values())
        self.graph.insert(1, idle)
        self.raw["graph_per_op"] = [g.__dict__ for g in self.graph]

    # ----------------------------------------------------------- step 3: 1 GiB upload

    def step_huge(self, base: Path, data: Path, want_md5: str) -> dict:
        emu = make_emulator(self.a.ferry, base, "-1g", self.a.emulator_debug)
        gw = None
        self.procs.append(emu)
        res: dict = {"size": data.stat().st_size}
        try:
            emu.start()
            gw = make_gateway(self.a.ferry, base, "-1g", emu, self.a.freshness)
            self.procs.append(gw)
            gw.start()
            self.client.run(gw, ["mb", "s3://big"])
            res["gw_hwm_idle"], res["emu_hwm_idle"] = gw.hwm(), emu.hwm()
            self.s3.sync()
            g0, t0 = emu_stats(emu)
            res["s"], _ = self.client.run(gw, ["cp", str(data), "s3://big/huge"], timeout=900)
            g1, t1 = emu_stats(emu)
            res["gw_hwm"], res["emu_hwm"] = gw.hwm(), emu.hwm()
            res["graph"], res["transfer"] = g1 - g0, t1 - t0
            res["parts"] = count_ops(gw.log_path, "UploadPart", "/big/huge")
            found = list(emu.root.glob(f"*/{DRIVE_ROOT}/big/huge"))
            if len(found) != 1 or found[0].stat().st_size != res["size"]:
                raise BenchError(f"1 GiB upload: emulator holds {found}")
            if md5_file(found[0]) != want_md5:
                raise BenchError("1 GiB upload: the file on the emulator's disk differs")
            res["gw_log"] = ferry_log_summary(gw)
            res["emu_log"] = ferry_log_summary(emu)
        finally:
            for p in (gw, emu):
                if p is not None:
                    p.stop()
        return res

    # ----------------------------------------------------------- main

    def run(self) -> int:
        a = self.a
        base = Path(tempfile.mkdtemp(prefix="ferry-onedrive-bench-", dir=a.workdir))
        shm_parent = Path("/dev/shm") if Path("/dev/shm").is_dir() else base
        shm = Path(tempfile.mkdtemp(prefix="ferry-onedrive-bench-dl-", dir=shm_parent))
        t_start = time.monotonic()
        try:
            log(f"work dir {base} ({fs_of(base)}), downloads go to {shm}")
            self.raw["machine"] = host() | ferry_build(a.ferry) | {"workdir_fs": fs_of(base)}
            self.raw["settings"] = {k: getattr(a, k) for k in FULL} | {
                "quick": a.quick, "keys_via": a.keys_via}
            data = base / "data"
            data.mkdir()
            self.big = data / f"big-{a.big_mib}MiB"
            self.big_md5 = write_random(self.big, a.big_mib * MiB)
            small_dir = data / "small"
            small_dir.mkdir()
            for i in range(a.small_count):
                (small_dir / f"obj-{i:04d}").write_bytes(os.urandom(4096))
            a._small_dir = str(small_dir)
            list_dir = data / "list"
            list_dir.mkdir()
            for i in range(a.list_keys):
                (list_dir / f"key-{i:05d}").touch()  # empty, as in s3_bench.py

            self.emu = make_emulator(a.ferry, base, "", a.emulator_debug)
            self.procs.append(self.emu)
            self.emu.start()
            log(f"emulator up on {self.emu.endpoint} (pid {self.emu.proc.pid})")
            servers = [make_gateway(a.ferry, base, "", self.emu, a.freshness),
                       make_gateway(a.ferry, base, "", None, a.freshness),
                       make_rclone(a.rclone, base, "")]
            self.procs += servers
            for s in servers:
                s.start()
                self.client.run(s, ["mb", "s3://bench"])
                log(f"{s.name} up on {s.endpoint} (pid {s.proc.pid})")
            gw = self.gw = servers[0]
            watched = [self.emu, *servers]
            cpu0 = {p.name: proc_cpu(p.proc.pid) for p in watched}

            log(f"step 1a: {self.big_label} PUT/GET")
            self.step_big(servers, shm)
            log("step 1b: small PUTs")
            self.step_small(servers, small_dir, shm)
            log(f"step 1c: listing {a.list_keys:,} keys")
            self.step_list(servers, list_dir)
            for p in watched:
                if not p.alive():
                    raise BenchError(f"{p.name} died during step 1")
            cpu1 = {p.name: proc_cpu(p.proc.pid) for p in watched}
            self.extra.append(("CPU seconds over step 1, user + sys", ", ".join(
                f"{n} {sum(cpu1[n]) - sum(cpu0[n]):.1f}" for n in cpu1)))
            hwm = {p.name: p.hwm() / MiB for p in watched}
            self.raw["hwm_after_step1_mib"] = hwm
            self.rows.append(Row("peak RSS after step 1 (VmHWM): MiB", "MiB",
                                 {s.name: hwm[s.name] for s in servers}, False,
                                 note=f"the emulator behind onedrive: {hwm['emulator']:.1f} MiB"))
            self.rss.append(("ferry gateway (onedrive) after step 1", hwm[A]))
            self.rss.append(("emulator after step 1", hwm["emulator"]))

            log(f"step 2: Graph requests per operation (--freshness {a.freshness}s)")
            self.step_graph(gw, shm)
            for p in watched:
                if not p.alive():
                    raise BenchError(f"{p.name} died during step 2")
            for s in [*servers, self.emu]:
                s.stop()
                summary = (f"{server_errors(s)} `serve s3` ERROR lines" if s.name == C
                           else ferry_log_summary(s))
                self.extra.append((f"{s.name} log", summary))

            if not a.skip_1g:
                log(f"step 3: {a.huge_mib} MiB multipart upload, fresh emulator and gateway")
                huge = data / "huge"
                huge_md5 = write_random(huge, a.huge_mib * MiB)
                self.big.unlink()  # disk: the 1 GiB file is held four times meanwhile
                h = self.step_huge(base, huge, huge_md5)
                huge.unlink()
                self.raw["huge"] = h
                self.rss.append((f"ferry gateway (onedrive) during the {a.huge_mib} MiB upload",
                                 h["gw_hwm"] / MiB))
                self.rss.append((f"emulator during the {a.huge_mib} MiB upload",
                                 h["emu_hwm"] / MiB))
                self.extra.append((f"{a.huge_mib} MiB upload logs", f"gateway: {h['gw_log']}; "
                                   f"emulator: {h['emu_log']}"))
            self.print_report(time.monotonic() - t_start)
            if a.json:
                Path(a.json).write_text(json.dumps({
                    "rows": [r.__dict__ | {"ratio_vs_rclone": {n: r.ratio(n) for n in (A, B)}}
                             for r in self.rows],
                    "graph": self.raw.get("graph_per_op"), "rss_mib": self.rss,
                    "extra": self.extra, "raw": self.raw,
                }, indent=2, default=str))
            return 0
        finally:
            for p in self.procs:
                try:
                    p.stop()
                except Exception as e:  # noqa: BLE001 - keep cleaning up
                    log(f"stopping {p.name}: {e}")
            if a.keep_logs:
                copy_logs(base.glob("*.log"), Path(a.keep_logs))
                log(f"logs copied to {a.keep_logs}")
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(shm, ignore_errors=True)
            log(f"removed temp data; total {time.monotonic() - t_start:.0f}s")

    def print_report(self, elapsed: float) -> None:
        a, m = self.a, self.raw["machine"]
        out = [
            "", f"ferry S3 gateway over OneDrive (ferry emulator) vs ferry and rclone over a "
                f"local folder, {m['date_utc']}",
            "", host_line(m),
            f"- ferry {m['ferry_commit']} (binary built {m['ferry_binary_mtime']}); "
            f"rclone and s5cmd from {Path(a.rclone).parent}",
            f"- work dir on {m['workdir_fs']}; gateway --freshness {a.freshness}s; listing keys "
            + ("written into the emulator's drive folder on disk" if a.keys_via == "disk"
               else "created through the gateway")
            + ("; QUICK MODE (small sizes)" if a.quick else ""),
            "", "Workload (ratios: \"ferry better\" factors against rclone; speed x/rclone, "
                "time and memory rclone/x):", "",
            f"| step | {LABEL[A]} | {LABEL[B]} | {LABEL[C]} | onedrive vs rclone "
            "| local vs rclone |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in self.rows:
            note = f" ({r.note})" if r.note else ""
            out.append(f"| {r.step}{note} | {fmt(r.values[A])} | {fmt(r.values[B])} | "
                       f"{fmt(r.values[C])} | {r.ratio(A):.2f}× | {r.ratio(B):.2f}× |")
        out += ["", "Graph requests per S3 operation on onedrive (emulator's /_emulator/stats "
                    "before and after; transfer = pre-authenticated upload/download URLs; "
                    f"{a.graph_reps} repetition(s), values listed when they differ):", "",
                "| operation | Graph API requests | transfer requests | ms (median) |",
                "| --- | ---: | ---: | ---: |"]
        for g in self.graph:
            ms = f"{median(g.ms):,.1f}" if g.ms else "-"
            out.append(f"| {g.op} | {fmt_counts(g.graph)} | {fmt_counts(g.transfer)} | {ms} |")
        out += ["", "Graph requests on onedrive during step 1 (all servers alternate; only "
                    "onedrive talks to the emulator; CPU seconds over the whole row):", "",
                "| step | operations | Graph API requests | transfer requests | per operation "
                "| emulator CPU s | gateway CPU s |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for what, ops, g, t, ecpu, gcpu in self.step1_graph:
            out.append(f"| {what} | {ops:,} | {g:,} | {t:,} | {g / ops:.2f} + {t / ops:.2f} "
                       f"| {ecpu:.2f} | {gcpu:.2f} |")
        out += ["", "Peak RSS (VmHWM):", "", "| process | MiB |", "| --- | ---: |"]
        out += [f"| {k} | {v:.1f} |" for k, v in self.rss]
        h = self.raw.get("huge")
        if h:
            out += ["", f"{a.huge_mib} MiB multipart upload through onedrive (s5cmd default: "
                        f"50 MiB parts, 5 at a time; fresh emulator and gateway): "
                        f"{h['s']:.1f} s, {h['size'] / MiB / h['s']:.0f} MiB/s, {h['parts']} "
                        f"parts, {h['graph']} Graph API + {h['transfer']} transfer requests; "
                        "the file on the emulator's disk checked by md5"]
        row = {r.step: r for r in self.rows}
        thin_list = next(r for r in self.rows if r.step.startswith("list") and "thin" in r.step)
        s5_list = next(r for r in self.rows if r.step.startswith("list") and "s5cmd" in r.step)
        fresh = self.graph[0]
        fresh_max = max(g + t for g, t in zip(fresh.graph, fresh.transfer))
        put = row[f"{self.big_label} PUT, thin client: MiB/s"].values[A]
        targets = [
            (f"list {a.list_keys:,} keys, fresh index: Graph requests (API + transfer, worst "
             "repetition)", str(fresh_max), f"≤ {TARGETS['list_graph']}",
             fresh_max <= TARGETS["list_graph"]),
            (f"list {a.list_keys:,} keys, thin client: onedrive vs rclone over a folder",
             f"{thin_list.ratio(A):.2f}×", f"≥ {TARGETS['list_vs_rclone']:g}×",
             thin_list.ratio(A) >= TARGETS["list_vs_rclone"]),
            (f"list {a.list_keys:,} keys, s5cmd ls: onedrive vs rclone over a folder",
             f"{s5_list.ratio(A):.2f}×", f"≥ {TARGETS['list_vs_rclone']:g}×",
             s5_list.ratio(A) >= TARGETS["list_vs_rclone"]),
            (f"{self.big_label} PUT through the emulator, thin client", f"{put:.0f} MiB/s",
             f"≥ {TARGETS['put64_mibs']:g} MiB/s", put >= TARGETS["put64_mibs"]),
        ]
        if h:
            targets.append((f"ferry peak RSS during the {a.huge_mib} MiB multipart upload",
                            f"{h['gw_hwm'] / MiB:.1f} MiB", f"< {TARGETS['rss_1g_mib']:g} MiB",
                            h["gw_hwm"] / MiB < TARGETS["rss_1g_mib"]))
        out += ["", "Targets:", "", *target_table(targets), ""]
        out += [f"- {k}: {v}" for k, v in self.extra]
        out.append(f"- wall time of the whole run: {elapsed:.0f}s")
        print("\n".join(out), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ferry", type=Path, default=REPO / "target/release/ferry",
                   help="ferry binary (default: target/release/ferry)")
    p.add_argument("--rclone", default=None, help="rclone binary (default: from PATH)")
    p.add_argument("--s5cmd", default=None, help="s5cmd binary (default: from PATH)")
    p.add_argument("--workdir", default=None,
                   help="parent of the run's temp folder (default: the system temp dir)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few repetitions, to check the script (~20 s)")
    for k, v in FULL.items():
        p.add_argument("--" + k.replace("_", "-"), type=int, default=None,
                       help=f"default {v}, --quick {QUICK[k]}"
                       + (" (seconds; the gateway's --freshness)" if k == "freshness" else ""))
    p.add_argument("--keys-via", choices=("disk", "gateway"), default="gateway",
                   help="how the listing keys get onto onedrive: s5cmd cp through the gateway "
                        "(default), or written straight into the drive folder on the "
                        "emulator's disk, as a sync client would")
    p.add_argument("--skip-1g", action="store_true", help="skip step 3 (the big upload)")
    p.add_argument("--emulator-debug", action="store_true",
                   help="the emulator logs every request (see --keep-logs); slows it down")
    p.add_argument("--json", help="also write the numbers to this file")
    p.add_argument("--keep-logs", help="copy the servers' and emulator's logs to this folder")
    a = p.parse_args()
    for k, v in (QUICK if a.quick else FULL).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.big_mib < PART_MIB * 2:
        raise SystemExit(f"--big-mib must be at least {2 * PART_MIB} (two multipart parts)")
    a.rclone = a.rclone or find_tool("rclone")
    a.s5cmd = a.s5cmd or find_tool("s5cmd")
    try:
        import boto3  # noqa: F401 - used by s3_bench's boto3_list
    except ImportError:
        raise SystemExit("no boto3 in this python: source ~/.cache/ferry/tools/env.sh and use "
                         "its python") from None
    if not a.ferry.is_file():
        raise SystemExit(f"{a.ferry} missing: cargo build --release -p ferry")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start_deadline(GLOBAL_TIMEOUT, f"benchmark exceeded {GLOBAL_TIMEOUT}s")
    try:
        return Bench(a).run()
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
