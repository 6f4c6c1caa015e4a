#!/usr/bin/env python3
"""Side-by-side S3 benchmark: ferry's gateway vs `rclone serve s3` (local backend).

One invocation starts both servers on 127.0.0.1 with fresh root folders on the same
filesystem, drives them with the same client (s5cmd; boto3 only to check pagination),
the same data and the same steps, checks every result (md5 of what comes back, key
counts), and prints one table with ferry / rclone ratios (>1 means ferry is better).

Not part of the test suite. See bench/README.md. Needs on PATH: s5cmd, rclone (the real
Go binaries) and a python with boto3 -- `scripts/install-tools` then
`source ~/.cache/ferry/tools/env.sh` gives all three.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from benchlib import (
    MiB, REPO, TOOLS, BenchError, copy_logs, free_port, logger, md5_file, mount_of, proc_cpu,
    proc_kib, start_deadline, write_random,
)

MB = 1000 * 1000

ACCESS_KEY = "ferrybenchkey"  # rclone rejects 2-character key ids such as "AK"
SECRET_KEY = "ferrybenchsecret"
REGION = "us-east-1"

TARGETS = {  # ratio targets (ferry / rclone), and ferry's RSS ceiling while streaming 1 GiB
    "put64": 2.0,
    "get64": 2.5,
    "small": 1.5,
    "list": 3.0,
    "rss_1g_mib": 100.0,
}

SMALL_RETRIES = 3  # s5cmd retries for batch PUTs (rclone 500s on concurrent new-prefix PUTs)
CMD_TIMEOUT = 120.0  # seconds for any single client command
GLOBAL_TIMEOUT = 900  # seconds for the whole run; SIGALRM then cleans up


log = logger("bench")


def proc_status(pid: int, field_name: str) -> int:
    """A /proc/PID/status memory field in bytes (VmHWM, VmRSS)."""
    kib = proc_kib(pid, field_name)
    if kib is None:
        raise BenchError(f"{field_name} not found for pid {pid}")
    return kib * 1024


def proc_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    cpu = proc_cpu(pid)
    if cpu is None:
        raise BenchError(f"no CPU times for pid {pid}")
    return cpu


@dataclass
class Server:
    name: str  # "ferry" or "rclone"
    argv: list[str]
    env: dict[str, str]
    root: Path
    log_path: Path
    port: int
    proc: subprocess.Popen | None = None
    log_file: object = None
    cpu_marks: dict[str, float] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.root.mkdir(parents=True, exist_ok=False)
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.proc.returncode}; log:\n"
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            if self._ready():
                exe = os.readlink(f"/proc/{self.proc.pid}/exe")
                if "python" in Path(exe).name:
                    raise BenchError(f"{self.name} runs under {exe}: RSS would be python's")
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name} not ready after {timeout}s")

    def _ready(self) -> bool:
        if self.name == "ferry":
            url = self.endpoint + "/health"
        else:
            url = self.endpoint + "/"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return self.name != "ferry" or resp.status == 200
        except urllib.error.HTTPError:
            # rclone answers an unsigned request with an S3 error: it is up.
            return self.name != "ferry"
        except OSError:
            return False

    def hwm(self) -> int:
        assert self.proc is not None
        return proc_status(self.proc.pid, "VmHWM")

    def rss(self) -> int:
        assert self.proc is not None
        return proc_status(self.proc.pid, "VmRSS")

    def cpu(self) -> tuple[float, float]:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def make_ferry(ferry_bin: Path, base: Path, tag: str) -> Server:
    port = free_port()
    env = dict(os.environ)
    env.update(
        FERRY_S3_ACCESS_KEY_ID=ACCESS_KEY,
        FERRY_S3_SECRET_ACCESS_KEY=SECRET_KEY,
    )
    root = base / f"root-ferry{tag}"
    argv = [str(ferry_bin), "serve", "s3", "--root", str(root), "--addr", f"127.0.0.1:{port}"]
    return Server("ferry", argv, env, root, base / f"ferry{tag}.log", port)


def make_rclone(rclone_bin: str, base: Path, tag: str) -> Server:
    port = free_port()
    root = base / f"root-rclone{tag}"
    argv = [
        rclone_bin, "serve", "s3", str(root),
        "--addr", f"127.0.0.1:{port}",
        "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}",
    ]  # fmt: skip
    env = dict(os.environ)
    env["RCLONE_CONFIG"] = str(base / "rclone.conf")  # empty: no user config leaks in
    return Server("rclone", argv, env, root, base / f"rclone{tag}.log", port)


class Client:
    """Runs s5cmd against one server."""

    def __init__(self, s5cmd: str):
        self.s5cmd = s5cmd
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("AWS_"):
                del self.env[k]
        self.env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )

    def run(self, server: Server, args: list[str], quiet: bool = True,
            timeout: float = CMD_TIMEOUT, retries: int = 0) -> tuple[float, str]:
        """Runs s5cmd, returns (wall seconds, stdout). Fails on any error that is left
        after `retries` retries (none by default: a failed request fails the run)."""
        argv = [self.s5cmd, "--endpoint-url", server.endpoint, "--retry-count", str(retries)]
        if quiet:
            argv += ["--log", "error"]
        argv += args
        t0 = time.perf_counter()
        try:
            p = subprocess.run(argv, env=self.env, capture_output=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"s5cmd timed out after {timeout}s against {server.name}: {argv}") from e
        dt = time.perf_counter() - t0
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        if p.returncode != 0 or "ERROR" in err or "ERROR" in out:
            raise BenchError(
                f"s5cmd failed against {server.name} (rc={p.returncode}): {' '.join(argv)}\n"
                f"stdout: {out[-1500:]}\nstderr: {err[-1500:]}"
            )
        return dt, out


class ThinClient:
    """A minimal S3 client (own SigV4 signing over http.client) to see past s5cmd's own
    costs: PUT streams the file with sendfile and UNSIGNED-PAYLOAD (no client-side
    SHA-256), GET reads into a preallocated buffer, listing does no XML parsing beyond
    the continuation token. One connection, one stream."""

    @staticmethod
    def _q(v: str) -> str:
        return urllib.parse.quote(v, safe="-_.~")

    def _signed(self, server: Server, method: str, path: str, query: dict[str, str],
                extra: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
        now = time.gmtime()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
        day = amz_date[:8]
        headers = {
            "host": f"127.0.0.1:{server.port}",
            "x-amz-date": amz_date,
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
            **{k.lower(): v for k, v in (extra or {}).items()},
        }
        uri = urllib.parse.quote(path, safe="/-_.~")
        query_text = "&".join(f"{self._q(k)}={self._q(v)}" for k, v in sorted(query.items()))
        names = sorted(headers)
        canonical = "\n".join([
            method, uri, query_text,
            "".join(f"{k}:{headers[k].strip()}\n" for k in names),
            ";".join(names), "UNSIGNED-PAYLOAD",
        ])  # fmt: skip
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = "\n".join([
            "AWS4-HMAC-SHA256", amz_date, scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ])  # fmt: skip
        key = ("AWS4" + SECRET_KEY).encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={sig}"
        )
        return uri + ("?" + query_text if query_text else ""), headers

    def put(self, server: Server, bucket: str, key: str, path: Path, want_md5: str) -> float:
        size = path.stat().st_size
        target, headers = self._signed(server, "PUT", f"/{bucket}/{key}", {},
                                       {"content-length": str(size)})
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CMD_TIMEOUT)
        try:
            conn.putrequest("PUT", target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            with open(path, "rb") as f:
                conn.sock.sendfile(f)
            resp = conn.getresponse()
            body = resp.read()
            dt = time.perf_counter() - t0
        finally:
            conn.close()
        if resp.status != 200:
            raise BenchError(f"{server.name}: thin PUT {key}: {resp.status} {body[:300]!r}")
        etag = (resp.getheader("ETag") or "").strip('"')
        if etag != want_md5:
            raise BenchError(f"{server.name}: thin PUT {key}: ETag {etag} != md5 {want_md5}")
        return dt

    def get(self, server: Server, bucket: str, key: str, size: int) -> tuple[float, str]:
        target, headers = self._signed(server, "GET", f"/{bucket}/{key}", {})
        buf = bytearray(size)
        view = memoryview(buf)
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CMD_TIMEOUT)
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise BenchError(f"{server.name}: thin GET {key}: {resp.status} "
                                 f"{resp.read()[:300]!r}")
            n = 0
            while n < size:
                got = resp.readinto(view[n : n + 8 * MiB])
                if not got:
                    break
                n += got
            rest = resp.read()
            dt = time.perf_counter() - t0
        finally:
            conn.close()
        if n != size or rest:
            raise BenchError(f"{server.name}: thin GET {key}: {n + len(rest)} bytes, want {size}")
        return dt, hashlib.md5(buf).hexdigest()

    def list_all(self, server: Server, bucket: str) -> tuple[float, int, int]:
        """Full ListObjectsV2 pagination, 1000 per page: (seconds, keys, pages)."""
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CMD_TIMEOUT)
        keys = pages = 0
        token = None
        t0 = time.perf_counter()
        try:
            for _ in range(1000):  # bounded
                query = {"list-type": "2", "max-keys": "1000"}
                if token:
                    query["continuation-token"] = token
                target, headers = self._signed(server, "GET", f"/{bucket}", query)
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise BenchError(f"{server.name}: thin list: {resp.status} {body[:300]!r}")
                pages += 1
                keys += body.count(b"<Key>")
                if b"<IsTruncated>true</IsTruncated>" not in body:
                    break
                m = re.search(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", body)
                if not m:
                    raise BenchError(f"{server.name}: truncated page without a token")
                token = html_unescape(m.group(1).decode())
            dt = time.perf_counter() - t0
        finally:
            conn.close()
        return dt, keys, pages


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


@dataclass
class Row:
    step: str
    unit: str
    ferry: float
    rclone: float
    higher_is_better: bool
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.ferry / self.rclone if self.rclone else float("inf")
        return self.rclone / self.ferry if self.ferry else float("inf")


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.client = Client(args.s5cmd)
        self.thin = ThinClient()
        self.rows: list[Row] = []
        self.extra: list[tuple[str, str]] = []  # free-form result lines
        self.cpu_rows: list[tuple[str, tuple[float, float], tuple[float, float]]] = []
        self.raw: dict = {}

    # ---------------------------------------------------------------- helpers

    def check_small(self, servers: list[Server], small_dir: Path, shm: Path, total: int) -> None:
        """Every round of small PUTs is complete (`total` objects under small/), and round
        0's objects come back with the bytes of `small_dir`."""
        want = {p.name: md5_file(p) for p in small_dir.iterdir()}
        for s in servers:
            _, out = self.client.run(s, ["ls", "s3://bench/small/*"], quiet=False)
            got_n = len([line for line in out.splitlines() if line.strip()])
            if got_n != total:
                raise BenchError(f"{s.name}: {got_n} small objects listed, expected {total}")
            dst = shm / f"small-{s.name}"
            self.client.run(s, ["--numworkers", "16", "cp", "s3://bench/small/r0/*", f"{dst}/"])
            got = {p.name: md5_file(p) for p in dst.iterdir()}
            if got != want:
                bad = [k for k in want if got.get(k) != want[k]][:5]
                raise BenchError(f"{s.name}: small objects differ after GET, e.g. {bad}")
            shutil.rmtree(dst)

    def sync(self) -> None:
        # Flush dirty pages before each timed operation so that one server's deferred
        # write-back (rclone does not fsync) is not charged to the next measurement.
        os.sync()

    def alternate(self, servers: list[Server], n: int, fn) -> dict[str, list[float]]:
        """Runs fn(server, i) n times per server, alternating servers; returns seconds."""
        out: dict[str, list[float]] = {s.name: [] for s in servers}
        for i in range(n):
            order = servers if i % 2 == 0 else list(reversed(servers))
            for s in order:
                self.sync()
                out[s.name].append(fn(s, i))
        return out

    def cpu_step(self, label: str, servers: list[Server], before: dict) -> None:
        after = {s.name: s.cpu() for s in servers}
        d = {n: (after[n][0] - before[n][0], after[n][1] - before[n][1]) for n in after}
        self.cpu_rows.append((label, d["ferry"], d["rclone"]))

    # ---------------------------------------------------------------- steps

    def step_big(self, servers: list[Server], data: Path, shm: Path) -> None:
        n = self.args.big_reps
        size = data.stat().st_size
        want = self.big_md5
        modes = [
            # part size > object: one PutObject, one GET
            ("s5cmd single-part", "big-single", ["--part-size", "128"]),
            # 50 MiB parts, concurrency 5: multipart PUT (2 parts), 2 ranged GETs
            ("s5cmd default", "big-default", []),
            # own minimal client: sendfile + UNSIGNED-PAYLOAD PUT, one plain GET
            ("thin client", "big-thin", None),
        ]
        for mode, key, flags in modes:

            def put(s: Server, i: int) -> float:
                if flags is None:
                    return self.thin.put(s, "bench", key, data, want)
                dt, _ = self.client.run(s, ["cp", *flags, str(data), f"s3://bench/{key}"])
                return dt

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

            # one untimed warm-up of each (creates the key, so timed PUTs overwrite)
            for s in servers:
                put(s, -1)
                get(s, -1)
            before = {s.name: s.cpu() for s in servers}
            puts = self.alternate(servers, n, put)
            self.cpu_step(f"64 MiB PUT x{n} ({mode})", servers, before)
            before = {s.name: s.cpu() for s in servers}
            gets = self.alternate(servers, n, get)
            self.cpu_step(f"64 MiB GET x{n} ({mode})", servers, before)
            self.raw[f"put64 {mode}"] = puts
            self.raw[f"get64 {mode}"] = gets
            for op, times, target in (("PUT", puts, "put64"), ("GET", gets, "get64")):
                fm, rm = median(times["ferry"]), median(times["rclone"])
                self.rows.append(
                    Row(f"64 MiB {op}, {mode}: MB/s", "MB/s", size / fm / MB, size / rm / MB,
                        True, TARGETS[target],
                        note=f"median of {n}: {fm:.3f} s vs {rm:.3f} s")
                )
            ferry = next(s for s in servers if s.name == "ferry")
            mpu = count_ops(ferry.log_path, "CreateMultipartUpload", f"/bench/{key}")
            puts_seen = count_ops(ferry.log_path, "PutObject", f"/bench/{key}")
            want_mpu = n + 1 if mode == "s5cmd default" else 0
            if mpu != want_mpu or puts_seen != n + 1 - want_mpu:
                raise BenchError(f"{mode}: ferry saw {mpu} multipart uploads and {puts_seen} "
                                 f"PutObject for {key}; expected {want_mpu} and "
                                 f"{n + 1 - want_mpu}")
            if mode == "s5cmd single-part":
                ms = access_ms(ferry.log_path, "PutObject", f"/bench/{key}")[-n:]
                self.extra.append((
                    "ferry server-side time, 64 MiB single-part PutObject",
                    f"median {median(ms):.0f} ms in ferry's access log (request start to "
                    f"response) vs {median(puts['ferry']) * 1000:.0f} ms s5cmd wall time: "
                    "the rest is s5cmd (process start; it reads the file to compute "
                    "X-Amz-Content-Sha256 and Content-MD5 before sending) and is the same for "
                    "both servers",
                ))

    def step_small(self, servers: list[Server], small_dir: Path, shm: Path) -> None:
        n = self.args.small_rounds
        count = self.args.small_count

        def put(s: Server, i: int) -> float:
            # Retries allowed here: rclone answers some concurrent PUTs into a new prefix
            # with 500 (see server_errors); s5cmd retries them, and the count is reported.
            dt, _ = self.client.run(
                s, ["--numworkers", "16", "cp", f"{small_dir}/*", f"s3://bench/small/r{i}/"],
                retries=SMALL_RETRIES,
            )
            return dt

        before = {s.name: s.cpu() for s in servers}
        errs_before = {s.name: server_errors(s) for s in servers}
        times = self.alternate(servers, n, put)
        self.cpu_step(f"{count} x 4 KiB PUT x{n} rounds", servers, before)
        errs = {s.name: server_errors(s) - errs_before[s.name] for s in servers}
        self.raw["small_errors"] = errs
        self.raw["small"] = times
        self.check_small(servers, small_dir, shm, n * count)
        fm = median(times["ferry"])
        rm = median(times["rclone"])
        self.rows.append(
            Row(f"{count} x 4 KiB PUT, 16 workers: objects/s", "obj/s", count / fm, count / rm,
                True, TARGETS["small"],
                note=f"median of {n} rounds; server errors retried by s5cmd: "
                     f"ferry {errs['ferry']}, rclone {errs['rclone']}")
        )

    def step_list(self, servers: list[Server], list_dir: Path) -> None:
        n_keys = self.args.list_keys
        for s in servers:
            t0 = time.perf_counter()
            self.client.run(s, ["mb", "s3://listing"])
            self.client.run(s, ["--numworkers", "64", "cp", f"{list_dir}/*", "s3://listing/"],
                            timeout=300, retries=SMALL_RETRIES)
            log(f"  created {n_keys} keys on {s.name} in {time.perf_counter() - t0:.1f}s")
        # verify pagination with boto3: 1000 keys per page, all keys, in order
        for s in servers:
            pages, keys = self.boto3_list(s)
            expect_pages = -(-n_keys // 1000)
            if len(keys) != n_keys or len(set(keys)) != n_keys or keys != sorted(keys):
                raise BenchError(f"{s.name}: boto3 listing gave {len(keys)} keys "
                                 f"({len(set(keys))} unique, sorted={keys == sorted(keys)})")
            if pages != expect_pages:
                raise BenchError(f"{s.name}: {pages} ListObjectsV2 pages, expected {expect_pages}")
        ferry = next(s for s in servers if s.name == "ferry")
        list_reqs: list[int] = []

        def ls(s: Server, i: int) -> float:
            before = count_ops(s.log_path, "ListObjectsV2") if s is ferry else 0
            dt, out = self.client.run(s, ["ls", "s3://listing/*"], quiet=False)
            lines = [line for line in out.splitlines() if line.strip()]
            if len(lines) != n_keys:
                raise BenchError(f"{s.name}: s5cmd ls printed {len(lines)} keys, want {n_keys}")
            if s is ferry:
                list_reqs.append(count_ops(s.log_path, "ListObjectsV2") - before)
            return dt

        for s in servers:  # untimed warm-up (directory caches)
            ls(s, -1)
        before = {s.name: s.cpu() for s in servers}
        times = self.alternate(servers, self.args.list_reps, ls)
        self.cpu_step(f"list {n_keys} keys x{self.args.list_reps}", servers, before)
        self.raw["list"] = times
        fm, rm = median(times["ferry"]), median(times["rclone"])
        self.rows.append(
            Row(f"list {n_keys} keys, s5cmd ls (ListObjectsV2, 1000/page): s", "s", fm, rm,
                False, TARGETS["list"], note=f"median of {self.args.list_reps}")
        )

        def thin_ls(s: Server, i: int) -> float:
            dt, keys, pages = self.thin.list_all(s, "listing")
            if keys != n_keys or pages != -(-n_keys // 1000):
                raise BenchError(f"{s.name}: thin listing gave {keys} keys in {pages} pages")
            return dt

        for s in servers:
            thin_ls(s, -1)
        before = {s.name: s.cpu() for s in servers}
        times = self.alternate(servers, self.args.list_reps, thin_ls)
        self.cpu_step(f"list {n_keys} keys x{self.args.list_reps} (thin client)", servers, before)
        self.raw["list thin"] = times
        fm, rm = median(times["ferry"]), median(times["rclone"])
        self.rows.append(
            Row(f"list {n_keys} keys, thin client (1000/page): s", "s", fm, rm,
                False, TARGETS["list"], note=f"median of {self.args.list_reps}")
        )
        pages_ms = access_ms(ferry.log_path, "ListObjectsV2", "/listing")
        per = -(-n_keys // 1000)
        per_listing = [sum(pages_ms[i : i + per]) for i in range(0, len(pages_ms) - per + 1, per)]
        if per_listing:
            self.extra.append((
                "ferry server-side time per full listing",
                f"median {median(per_listing):.0f} ms (sum of its {per} ListObjectsV2 "
                "records' ms in the access log)",
            ))
        self.extra.append((
            "listing pages",
            f"boto3 paginator saw {-(-n_keys // 1000)} pages x 1000 keys on both servers; "
            f"ferry's log shows {sorted(set(list_reqs))} ListObjectsV2 requests per s5cmd ls",
        ))

    def boto3_list(self, s: Server) -> tuple[int, list[str]]:
        import boto3
        from botocore.config import Config

        c = boto3.client(
            "s3", endpoint_url=s.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )  # fmt: skip
        pages, keys, token = 0, [], None
        for _ in range(1000):  # bounded
            kw = {"Bucket": "listing", "MaxKeys": 1000}
            if token:
                kw["ContinuationToken"] = token
            r = c.list_objects_v2(**kw)
            pages += 1
            keys += [o["Key"] for o in r.get("Contents", [])]
            if len(r.get("Contents", [])) > 1000:
                raise BenchError(f"{s.name}: page with {len(r['Contents'])} keys > MaxKeys")
            if not r.get("IsTruncated"):
                break
            token = r["NextContinuationToken"]
        return pages, keys

    def step_stream_1g(self, base: Path, data: Path, shm: Path, name: str) -> dict:
        """Fresh server: 1 GiB single-stream PUT + GET (thin client: one request each way),
        then s5cmd's default multipart PUT + ranged GET; VmHWM after each."""
        srv = (make_ferry(self.args.ferry, base, "-1g") if name == "ferry"
               else make_rclone(self.args.rclone, base, "-1g"))
        res: dict = {}
        size = data.stat().st_size
        try:
            srv.start()
            self.client.run(srv, ["mb", "s3://big"])
            res["rss_idle"] = srv.hwm()
            # single stream, thin client (s5cmd with a 2 GiB part size buffers on the
            # client side and is much slower, which says nothing about the server)
            self.sync()
            res["single_put_s"] = self.thin.put(srv, "big", "single", data, self.gig_md5)
            dt, got = self.thin.get(srv, "big", "single", size)
            res["single_get_s"] = dt
            if got != self.gig_md5:
                raise BenchError(f"{name}: 1 GiB GET (single) md5 {got} != {self.gig_md5}")
            res["hwm_after_single"] = srv.hwm()
            # s5cmd default: 50 MiB parts, 5 at a time, both ways
            self.sync()
            dt, _ = self.client.run(srv, ["cp", str(data), "s3://big/multipart"], timeout=300)
            res["multipart_put_s"] = dt
            dst = shm / "get-1g"
            dst.unlink(missing_ok=True)
            dt, _ = self.client.run(srv, ["cp", "s3://big/multipart", str(dst)], timeout=300)
            res["multipart_get_s"] = dt
            got = md5_file(dst)
            dst.unlink()
            if got != self.gig_md5:
                raise BenchError(f"{name}: 1 GiB GET (multipart) md5 {got} != {self.gig_md5}")
            res["hwm_after_multipart"] = srv.hwm()
            res["size"] = size
        finally:
            srv.stop()
        return res

    def step_floor(self, servers: list[Server], base: Path, shm: Path) -> None:
        """s5cmd's fixed cost per command: PUT and GET of a 1-byte object."""
        tiny = base / "data" / "tiny"
        tiny.write_bytes(b"x")

        def put(s: Server, i: int) -> float:
            return self.client.run(s, ["cp", str(tiny), "s3://bench/tiny"])[0]

        def get(s: Server, i: int) -> float:
            dst = shm / f"tiny-{s.name}"
            dst.unlink(missing_ok=True)
            dt, _ = self.client.run(s, ["cp", "s3://bench/tiny", str(dst)])
            if dst.read_bytes() != b"x":
                raise BenchError(f"{s.name}: tiny object came back wrong")
            return dt

        puts = self.alternate(servers, 5, put)
        gets = self.alternate(servers, 5, get)
        self.extra.append((
            "s5cmd fixed cost (1-byte object, median of 5)",
            "; ".join(f"{s.name}: PUT {median(puts[s.name]) * 1000:.0f} ms, "
                      f"GET {median(gets[s.name]) * 1000:.0f} ms" for s in servers)
            + " -- a floor under every s5cmd timing above",
        ))

    # ---------------------------------------------------------------- main

    def run(self) -> int:
        a = self.args
        base = Path(tempfile.mkdtemp(prefix="ferry-bench-", dir=a.workdir))
        shm_parent = Path("/dev/shm") if Path("/dev/shm").is_dir() else base
        shm = Path(tempfile.mkdtemp(prefix="ferry-bench-dl-", dir=shm_parent))
        servers: list[Server] = []
        t_start = time.monotonic()
        try:
            log(f"work dir {base} ({mount_of(base)[1]}), downloads go to {shm}")
            data_dir = base / "data"
            data_dir.mkdir()
            big = data_dir / "big-64MiB"
            self.big_md5 = write_random(big, 64 * MiB)
            small_dir = data_dir / "small"
            small_dir.mkdir()
            for i in range(a.small_count):
                (small_dir / f"obj-{i:04d}").write_bytes(os.urandom(4096))
            list_dir = data_dir / "list"
            list_dir.mkdir()
            for i in range(a.list_keys):
                # empty objects: listing cost does not depend on size, and deleting
                # 30,000 fsynced non-empty files takes minutes on some disks
                (list_dir / f"key-{i:05d}").touch()

            servers = [make_ferry(a.ferry, base, ""), make_rclone(a.rclone, base, "")]
            for s in servers:
                s.start()
                self.client.run(s, ["mb", "s3://bench"])
                log(f"{s.name} up on {s.endpoint} (pid {s.proc.pid})")

            self.step_floor(servers, base, shm)
            log("step 1: 64 MiB PUT/GET")
            self.step_big(servers, big, shm)
            log("step 2: small PUTs")
            self.step_small(servers, small_dir, shm)
            log("step 3: listing")
            self.step_list(servers, list_dir)
            for s in servers:
                if not s.alive():
                    raise BenchError(f"{s.name} died during the run")
            hwm = {s.name: s.hwm() for s in servers}
            self.rows.append(
                Row("peak RSS over steps 1-3 (VmHWM), MiB", "MiB", hwm["ferry"] / MiB,
                    hwm["rclone"] / MiB, False, note="ratio = rclone / ferry")
            )
            self.raw["hwm"] = hwm
            for s in servers:
                s.stop()
            self.log_summaries(servers)
            # bigger data only now: the main servers are stopped
            if not a.skip_1g:
                log("step 4: 1 GiB streaming, fresh servers")
                gig = data_dir / "big-1GiB"
                self.gig_md5 = write_random(gig, 1024 * MiB)
                names = ["ferry"] + ([] if a.skip_rclone_1g else ["rclone"])
                g = {name: self.step_stream_1g(base, gig, shm, name) for name in names}
                self.raw["1g"] = g
                f = g["ferry"]
                r = g.get("rclone")
                for mode, label in (("single", "single-stream PUT + GET (thin client)"),
                                    ("multipart", "then s5cmd default multipart PUT + ranged GET")):
                    self.rows.append(Row(
                        f"1 GiB stream, fresh server, {label}: peak RSS MiB", "MiB",
                        f[f"hwm_after_{mode}"] / MiB,
                        r[f"hwm_after_{mode}"] / MiB if r else float("nan"),
                        False, TARGETS["rss_1g_mib"] if mode == "single" else None,
                        note="ratio = rclone / ferry",
                    ))
                for mode in ("single", "multipart"):
                    for op in ("put", "get"):
                        label = "thin client" if mode == "single" else "s5cmd default"
                        fs = f[f"{mode}_{op}_s"]
                        rs = r[f"{mode}_{op}_s"] if r else float("nan")
                        self.rows.append(Row(
                            f"1 GiB {op.upper()}, {label}: MB/s", "MB/s",
                            f["size"] / fs / MB, f["size"] / rs / MB if r else float("nan"),
                            True, note="single sample",
                        ))
            self.print_report(time.monotonic() - t_start)
            if a.json:
                Path(a.json).write_text(json.dumps({
                    "rows": [r.__dict__ | {"ratio": r.ratio} for r in self.rows],
                    "cpu": self.cpu_rows, "raw": self.raw, "extra": self.extra,
                }, indent=2, default=str))
            return 0
        finally:
            for s in servers:
                try:
                    s.stop()
                except Exception as e:  # noqa: BLE001 - keep cleaning up
                    log(f"stopping {s.name}: {e}")
            if a.keep_logs:
                keep = Path(a.keep_logs)
                copy_logs(base.glob("*.log"), keep)
                log(f"server logs copied to {keep}")
            t_clean = time.monotonic()
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(shm, ignore_errors=True)
            log(f"removed temp data in {time.monotonic() - t_clean:.0f}s; "
                f"total {time.monotonic() - t_start:.0f}s")

    def log_summaries(self, servers: list[Server]) -> None:
        for s in servers:
            text = s.log_path.read_text(errors="replace")
            lines = text.splitlines()
            if s.name == "ferry":
                bad = {}
                warn = 0
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
                self.extra.append(("ferry log", f"{len(lines)} lines, {warn} WARN/ERROR, "
                                   f"non-2xx responses: {bad or 'none'}"))
            else:
                errs = [line for line in lines if "ERROR" in line]
                self.extra.append(("rclone log", f"{len(lines)} lines, {len(errs)} ERROR"
                                   + (f"; first: {errs[0][:200]}" if errs else "")))

    def print_report(self, elapsed: float) -> None:
        def fmt(v: float) -> str:
            if v != v:  # nan
                return "-"
            return f"{v:,.3f}" if v < 10 else f"{v:,.1f}"

        print()
        print("| step | ferry | rclone | ratio (>1: ferry better) | target |")
        print("| --- | ---: | ---: | ---: | --- |")
        for r in self.rows:
            target = ""
            if r.target is not None and r.unit != "MiB":
                target = f"≥{r.target:g}× " + ("MET" if r.ratio >= r.target else "MISSED")
            elif r.target is not None:
                target = f"<{r.target:g} MiB " + ("MET" if r.ferry < r.target else "MISSED")
            ratio = "-" if r.rclone != r.rclone else f"{r.ratio:.2f}×"
            note = f" ({r.note})" if r.note else ""
            print(f"| {r.step}{note} | {fmt(r.ferry)} | {fmt(r.rclone)} | {ratio} | {target} |")
        print()
        print("Server CPU seconds per step, user + sys (whole step, all repetitions):")
        print()
        print("| step | ferry cpu s | rclone cpu s |")
        print("| --- | ---: | ---: |")
        for label, f, r in self.cpu_rows:
            print(f"| {label} | {f[0] + f[1]:.2f} ({f[0]:.2f} + {f[1]:.2f}) "
                  f"| {r[0] + r[1]:.2f} ({r[0]:.2f} + {r[1]:.2f}) |")
        print()
        for k, v in self.extra:
            print(f"- {k}: {v}")
        print(f"- targets: ≥{TARGETS['put64']:g}× 64 MiB PUT, ≥{TARGETS['get64']:g}× 64 MiB GET, "
              f"≥{TARGETS['small']:g}× small PUTs, ≥{TARGETS['list']:g}× listing, ferry peak RSS "
              f"< {TARGETS['rss_1g_mib']:g} MiB while streaming 1 GiB")
        print(f"- wall time of the whole run: {elapsed:.0f}s")
        sys.stdout.flush()


def server_errors(s: Server) -> int:
    """Error responses so far: rclone's ERROR lines from `serve s3` (one per failed
    request), else (ferry) its access log's status >= 500."""
    needle = "ERROR : serve s3:" if s.name == "rclone" else '"status":5'
    with open(s.log_path, errors="replace") as f:
        return sum(1 for line in f if needle in line)


def access_ms(log_path: Path, op: str, path: str) -> list[float]:
    """The `ms` of ferry's access-log records for one op on one path, in order."""
    out = []
    with open(log_path, errors="replace") as f:
        for line in f:
            if f'"op":"{op}"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("path") == path and isinstance(rec.get("ms"), (int, float)):
                out.append(float(rec["ms"]))
    return out


def count_ops(log_path: Path, op: str, path: str | None = None) -> int:
    """How many requests of `op` (on `path`, if given) ferry's access log has so far."""
    needle = f'"op":"{op}"'
    path_needle = f'"path":{json.dumps(path)}' if path else ""
    with open(log_path, errors="replace") as f:
        return sum(1 for line in f if needle in line and path_needle in line)


def find_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(TOOLS / "bin"))
    if not found:
        raise SystemExit(f"{name} not found: run scripts/install-tools and source its env.sh")
    return os.path.realpath(found)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ferry", type=Path, default=REPO / "target/release/ferry",
                   help="ferry binary (default: target/release/ferry)")
    p.add_argument("--rclone", default=None, help="rclone binary (default: from PATH)")
    p.add_argument("--s5cmd", default=None, help="s5cmd binary (default: from PATH)")
    p.add_argument("--workdir", default=None,
                   help="parent of the server roots and test data (default: the system temp dir)")
    p.add_argument("--big-reps", type=int, default=5, help="64 MiB PUTs and GETs per mode")
    p.add_argument("--small-count", type=int, default=1000)
    p.add_argument("--small-rounds", type=int, default=3)
    p.add_argument("--list-keys", type=int, default=10000)
    p.add_argument("--list-reps", type=int, default=3)
    p.add_argument("--skip-1g", action="store_true", help="skip the 1 GiB streaming step")
    p.add_argument("--skip-rclone-1g", action="store_true",
                   help="run the 1 GiB step against ferry only")
    p.add_argument("--json", help="also write raw numbers to this file")
    p.add_argument("--keep-logs", help="copy both servers' logs to this folder")
    a = p.parse_args()
    a.rclone = a.rclone or find_tool("rclone")
    a.s5cmd = a.s5cmd or find_tool("s5cmd")
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
