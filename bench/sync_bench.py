#!/usr/bin/env python3
"""`ferry sync` of a CSV file and of the same rows as Parquet into the managed Postgres
cluster, against `psql \\copy ... csv` of the same CSV into an identical table, in one run.

Steps (each load checked):
  0. generate --rows rows (default 10 M, about 1 GB) of a 6-column CSV with a header,
     deterministic and streamed to disk: id bigint, ts timestamp (one second apart from
     2024-06-01 09:30:00), symbol text (36 tickers), price double, qty bigint, note text
     (some with commas inside quotes, some empty); then the same rows as Parquet (row
     groups of 1 M rows) with pyarrow, run by whichever python has it (--parquet-python;
     without one the Parquet step is reported as not run). `ferry db start` once, then
     `ferry db migrate` so no timed sync pays for the migrations.
  per repetition (--reps), each preceded by a CHECKPOINT and os.sync():
  1. `ferry sync --root R --json` with the CSV as a new dataset version
     (R/datasets/bench/csv_rN/data.csv, a hard link to the generated file);
  2. `psql -c "\\copy t FROM 'file' WITH (FORMAT csv, HEADER true)"` of the same file into
     an UNLOGGED table with the column types ferry inferred (its `_ferry_*` columns left out);
  3. `ferry sync --root R --json` with the Parquet file (datasets/bench/parquet_rN/).
  Every load must hold exactly --rows rows (SELECT count(*)) and the generator's sums of
  id, qty, price and note lengths, its count of non-empty notes and its last ts, and ferry
  must report no rejects; else the run fails.

Each ferry load gets its own root R (a new source): ferry knows a local file by device and
inode, and two hard links of one file under one root break its bookkeeping (the sync after
the one that loaded both fails on a duplicate key in ferry.onedrive_ingest).

Prints the machine, a markdown table (step, value, target, met?) and where the time went
(wall, CPU of ferry or psql from GNU time, CPU of the Postgres cluster). Peak RSS is GNU
time's (`/usr/bin/time`, Debian package `time`, installed with apt-get when missing and
running as root), else VmHWM sampled every 20 ms. Not part of the test suite. Needs
python3 (standard library), psql, the PostgreSQL server binaries ferry's managed cluster
uses, and a release build: `cargo build --release -p ferry`. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    MiB, REPO, TOOLS, BenchError, child_pids, clean_env, copy_logs, ensure_gnu_time, ferry_build,
    fs_of, host, host_line, logger, proc_cpu, proc_kib, read_gnu_time, sh, start_deadline,
    target_table,
)

TARGETS = {"csv_ratio": 1.3, "parquet_rows_s": 1.5e6, "rss_mib": 256.0}

ROW_GROUP = 1_000_000  # Parquet rows per row group
CMD_TIMEOUT = 1800.0  # seconds for any single command
GLOBAL_TIMEOUT = 3600  # seconds for the whole run (--timeout); SIGALRM then cleans up
DATASET = "bench"

log = logger("sync-bench")


# ---------------------------------------------------------------------------------------
# Test data


SYMBOLS = [
    "AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "NFLX", "ORCL", "IBM",
    "INTC", "AMD", "CSCO", "ADBE", "CRM", "PYPL", "SAP", "ASML", "TSM", "BABA",
    "JPM", "BAC", "WFC", "GS", "MS", "C", "V", "MA", "AXP", "BRK.B",
    "XOM", "CVX", "KO", "PEP", "MCD", "DIS",
]  # fmt: skip
NOTE_WORDS = [
    "limit order", "market order", "filled", "partial fill", "cancelled by client",
    "amended", "opening auction", "closing auction", "block trade", "odd lot",
    "routed to venue", "iceberg slice", "stop triggered", "desk override", "algo child",
    "cross", "late report", "price improved",
]  # fmt: skip
COLUMNS = ["id", "ts", "symbol", "price", "qty", "note"]
START = dt.datetime(2024, 6, 1, 9, 30, 0)
CHUNK_ROWS = 50_000  # rows formatted per write


@dataclass
class Expected:
    """What every loaded table must hold (computed while generating)."""

    rows: int = 0
    sum_id: int = 0
    sum_qty: int = 0
    sum_price_e4: int = 0  # sum of price * 10,000 (prices have 4 decimals)
    note_chars: int = 0  # sum of length(note); "" and NULL both add 0
    notes_nonempty: int = 0
    max_ts: str = ""


def generate_csv(path: Path, rows: int, seed: int = 20240601) -> Expected:
    """Writes `rows` rows (plus a header) to `path`, CHUNK_ROWS at a time."""
    rng = random.Random(seed)
    rand = rng.random
    nwords, nsyms = len(NOTE_WORDS), len(SYMBOLS)
    # Timestamps one second apart: the date per day, the time of day from a table.
    tods = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
    start_day = START.date()
    start_secs = START.hour * 3600 + START.minute * 60 + START.second
    days: dict[int, str] = {}
    exp = Expected(rows=rows)
    ts = ""
    with open(path, "w", encoding="ascii", newline="", buffering=4 * MiB) as f:
        f.write(",".join(COLUMNS) + "\n")
        for first in range(1, rows + 1, CHUNK_ROWS):
            lines = []
            for i in range(first, min(first + CHUNK_ROWS, rows + 1)):
                day, tod = divmod(start_secs + i - 1, 86400)
                date = days.get(day)
                if date is None:
                    date = days[day] = (start_day + dt.timedelta(days=day)).isoformat()
                ts = f"{date} {tods[tod]}"
                ticks = int(rand() * 5_000_000 + 10_000)  # price 1.0000 .. 500.9999
                price = ticks / 10_000
                qty = int(rand() * 9_999) + 1
                k = rand()
                if k < 0.1:
                    note = field_text = ""
                else:
                    w1 = NOTE_WORDS[int(rand() * nwords)]
                    w2 = NOTE_WORDS[int(rand() * nwords)]
                    ref = int(rand() * 100_000_000)
                    acct = int(rand() * 1_000_000)
                    if k < 0.35:  # a comma inside: quoted
                        note = f"{w1}, then {w2} (ref {ref:08d}; acct {acct:06d})"
                        field_text = f'"{note}"'
                    else:
                        note = field_text = f"{w1}; {w2} (ref {ref:08d}; acct {acct:06d})"
                    exp.note_chars += len(note)
                    exp.notes_nonempty += 1
                exp.sum_id += i
                exp.sum_qty += qty
                exp.sum_price_e4 += ticks
                lines.append(f"{i},{ts},{SYMBOLS[int(rand() * nsyms)]},{price!r},{qty},{field_text}\n")
            f.write("".join(lines))
    exp.max_ts = ts
    return exp


def write_parquet(csv_path: Path, out: Path, row_group: int) -> dict:
    """The CSV's rows as Parquet (runs under a python with pyarrow: `--write-parquet`).
    Streams the CSV and writes one row group per `row_group` rows; returns the counts."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("id", pa.int64()), ("ts", pa.timestamp("us")), ("symbol", pa.string()),
        ("price", pa.float64()), ("qty", pa.int64()), ("note", pa.string()),
    ])  # fmt: skip
    convert = pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema},
        strings_can_be_null=False,  # an empty note stays "", as ferry loads it from CSV
        timestamp_parsers=["%Y-%m-%d %H:%M:%S"],
    )
    reader = pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=16 << 20),
                            convert_options=convert)
    pending, n = [], 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in reader:
            pending.append(batch)
            n += batch.num_rows
            while n >= row_group:
                table = pa.Table.from_batches(pending, schema)
                writer.write_table(table.slice(0, row_group), row_group_size=row_group)
                rest = table.slice(row_group)
                pending, n = rest.to_batches(), rest.num_rows
        if n:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=row_group)
    meta = pq.ParquetFile(out).metadata
    return {"rows": meta.num_rows, "row_groups": meta.num_row_groups,
            "pyarrow": pa.__version__}


def parquet_python(wanted: str | None) -> tuple[str | None, str]:
    """A python that can import pyarrow: (path, "") or (None, why not)."""
    candidates = [wanted] if wanted else [
        sys.executable,
        str(TOOLS / "clients/bin/python"),
        str(TOOLS / "bench/bin/python"),
    ]
    tried = []
    for py in candidates:
        if not py or not os.access(py, os.X_OK):
            tried.append(f"{py} (missing)")
            continue
        r = subprocess.run([py, "-c", "import pyarrow"], capture_output=True, timeout=60)
        if r.returncode == 0:
            return py, ""
        tried.append(py)
    return None, (f"pyarrow is not importable from {', '.join(tried)}; `python3 -m venv "
                  f"{TOOLS}/bench && {TOOLS}/bench/bin/pip install pyarrow` gives one")


# ---------------------------------------------------------------------------------------
# Processes: timing, peak RSS and CPU


@dataclass
class Run:
    """One timed command."""

    label: str
    wall: float
    rc: int
    maxrss_mib: float
    user: float
    sys: float
    stdout: Path
    stderr: Path
    server_cpu: float = 0.0  # CPU seconds of the Postgres cluster over the command

    def check(self) -> "Run":
        if self.rc != 0:
            tail = self.stderr.read_text(errors="replace")[-3000:]
            raise BenchError(f"{self.label}: exit {self.rc}; stderr ({self.stderr}):\n{tail}")
        return self


class Runner:
    def __init__(self, logdir: Path, gnu_time: str | None):
        self.logdir, self.gnu_time = logdir, gnu_time
        self.n = 0
        self.current: subprocess.Popen | None = None  # killed by cleanup if the run aborts

    def run(self, label: str, argv: list[str], env: dict[str, str],
            timeout: float = CMD_TIMEOUT) -> Run:
        """Runs argv, stdout and stderr to files under the log dir. Peak RSS and CPU come from
        GNU time (ru_maxrss of the program itself; wait4 on a child of this python would
        carry python's RSS over exec), else from VmHWM sampling and wait4."""
        self.n += 1
        stem = self.logdir / f"{self.n:02d}-{label}"
        out_path, err_path, time_path = (Path(f"{stem}.{s}") for s in ("stdout", "stderr", "time"))
        cmd = [self.gnu_time, "-o", str(time_path), "-f", "%e %M %U %S", *argv] if self.gnu_time else argv
        hwm = 0
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
            self.current = proc
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if not self.gnu_time:
                    hwm = max(hwm, proc_kib(proc.pid, "VmHWM") or 0)
                if time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: time and ferry
                    os.wait4(proc.pid, 0)
                    self.current = None
                    raise BenchError(f"{label}: still running after {timeout:.0f} s, killed")
                time.sleep(0.02)
            wall = time.perf_counter() - t0
        self.current = None
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
        maxrss_mib, user, system = hwm / 1024, usage.ru_utime, usage.ru_stime
        if self.gnu_time:
            if got := read_gnu_time(time_path):
                rss_kib, user, system = got
                maxrss_mib = rss_kib / 1024
            else:
                log(f"{label}: cannot read GNU time's output in {time_path}")
        return Run(label, wall, proc.returncode, maxrss_mib, user, system, out_path, err_path)

    def kill_current(self) -> None:
        p = self.current
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def clean_env_pg() -> dict[str, str]:
    """The environment without the caller's ferry and Postgres settings."""
    return clean_env("PG", "DATABASE_URL")


# ---------------------------------------------------------------------------------------
# The managed cluster and psql


class Cluster:
    """ferry's managed cluster under FERRY_STATE_DIR, driven with `ferry db` and psql."""

    def __init__(self, ferry: Path, state: Path, runner: Runner):
        self.ferry, self.runner = ferry, runner
        self.ferry_env = clean_env_pg()
        self.ferry_env.update(FERRY_STATE_DIR=str(state), FERRY_LOG_FORMAT="json")
        self.info: dict = {}
        self.psql_env: dict[str, str] = {}
        self.started = False

    def db(self, label: str, *args: str) -> Run:
        return self.runner.run(label, [str(self.ferry), "db", *args], self.ferry_env, timeout=300)

    def start(self) -> float:
        """`ferry db start` (creates the cluster); returns its wall seconds."""
        r = self.db("db-start", "start", "--json")
        self.started = True
        r.check()
        self.info = json.loads(r.stdout.read_text())
        if self.info.get("status") != "running":
            raise BenchError(f"ferry db start: {self.info}")
        password = Path(self.info["password_file"]).read_text().strip()
        self.psql_env = clean_env_pg()
        self.psql_env.update(
            PGHOST="127.0.0.1", PGPORT=str(self.info["port"]), PGUSER="ferry",
            PGDATABASE="ferry", PGPASSWORD=password, PGAPPNAME="ferry-sync-bench",
        )  # fmt: skip
        log(f"cluster running on port {self.info['port']} (data {self.info['data']}); "
            f"started in {r.wall:.1f} s")
        return r.wall

    def stop(self) -> None:
        if self.started:
            self.db("db-stop", "stop", "--json").check()
            self.started = False

    def psql_argv(self, *args: str, quiet: bool = True) -> list[str]:
        return ["psql", "-X", *(["-q"] if quiet else []), "-v", "ON_ERROR_STOP=1", *args]

    def query(self, sql: str) -> list[list[str]]:
        """Rows of a query, fields split on '|' (untimed; not logged to files)."""
        r = subprocess.run(self.psql_argv("-A", "-t", "-c", sql), env=self.psql_env,
                           capture_output=True, text=True, timeout=CMD_TIMEOUT)
        if r.returncode != 0:
            raise BenchError(f"psql failed on {sql!r}: {r.stderr.strip()}")
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def postmaster_pid(self) -> int:
        return int((Path(self.info["data"]) / "postmaster.pid").read_text().split()[0])

    def cpu_s(self) -> float:
        """CPU seconds of the whole cluster so far: the postmaster with its reaped children
        (backends that ended), plus its live children (background workers, backends)."""
        root = self.postmaster_pid()
        return sum(sum(proc_cpu(pid, children=True) or ()) for pid in [root, *child_pids(root)])


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_sql(qualified: str) -> str:
    """`schema.name` as ferry reports it -> quoted SQL."""
    schema, name = qualified.split(".", 1)
    return f"{quote_ident(schema)}.{quote_ident(name)}"


# ---------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Load:
    """One timed load and what it produced."""

    what: str  # "ferry csv", "psql csv", "ferry parquet"
    rep: int
    rows: int
    run: Run
    table: str  # quoted SQL name
    ferry_ms: int | None = None  # ferry's own duration_ms
    extra: dict = field(default_factory=dict)

    @property
    def rows_s(self) -> float:
        return self.rows / self.run.wall


class Bench:
    def __init__(self, args: argparse.Namespace, base: Path, results: dict):
        self.args, self.base, self.results = args, base, results
        self.logdir = base / "logs"
        self.logdir.mkdir()
        self.runner = Runner(self.logdir, ensure_gnu_time(log))
        self.cluster = Cluster(args.ferry, base / "state", self.runner)
        self.loads: list[Load] = []
        self.exp = Expected()

    def timed_start(self) -> float:
        """Before a timed load: dirty pages out (Postgres', then the OS's), CPU mark."""
        self.cluster.query("CHECKPOINT")
        os.sync()
        return self.cluster.cpu_s()

    def verify(self, load: Load) -> None:
        """The table holds exactly the generated rows (counts and sums), else fail."""
        e = self.exp
        row = self.cluster.query(
            f"SELECT count(*), sum(id), sum(qty), (sum(price::numeric) * 10000)::bigint, "
            f"coalesce(sum(length(note)), 0), count(nullif(note, '')), max(ts) FROM {load.table}")[0]
        got = {"rows": int(row[0]), "sum_id": int(row[1] or 0), "sum_qty": int(row[2] or 0),
               "sum_price_e4": int(row[3] or 0), "note_chars": int(row[4]),
               "notes_nonempty": int(row[5]), "max_ts": row[6]}
        want = {k: getattr(e, k) for k in got}
        if got != want:
            bad = {k: (got[k], want[k]) for k in got if got[k] != want[k]}
            raise BenchError(f"{load.what} rep {load.rep}: {load.table} differs from the "
                             f"generated data (got, expected): {bad}")
        if load.rows != e.rows:
            raise BenchError(f"{load.what} rep {load.rep}: reported {load.rows} rows, "
                             f"expected {e.rows}")
        log(f"{load.what} rep {load.rep}: {load.rows:,} rows in {load.run.wall:.2f} s = "
            f"{load.rows_s:,.0f} rows/s, peak RSS {load.run.maxrss_mib:.1f} MiB; table checked")

    def done_with(self, table: str) -> None:
        """Drops a checked table (kept with --keep) so the disk holds one rep at a time."""
        if not self.args.keep:
            self.cluster.query(f"DROP TABLE {table}")

    def ferry_sync(self, kind: str, rep: int, src: Path, ext: str) -> Load:
        """`ferry sync` of `src` as the only file of a new source root and dataset version."""
        version = f"{kind}_r{rep}"
        root = self.base / "roots" / version
        folder = root / "datasets" / DATASET / version
        folder.mkdir(parents=True)
        dst = folder / f"data.{ext}"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        cpu0 = self.timed_start()
        run = self.runner.run(f"sync-{version}", [str(self.args.ferry), "sync", "--root", str(root),
                                                  "--json"], self.cluster.ferry_env)
        run.server_cpu = self.cluster.cpu_s() - cpu0
        run.check()
        report = json.loads(run.stdout.read_text())
        files = report.get("files") or []
        if (report.get("status") != "succeeded" or report.get("files_loaded") != 1
                or report.get("rows_rejected") != 0 or len(files) != 1):
            raise BenchError(f"ferry sync {version}: unexpected report: "
                             f"{json.dumps({k: v for k, v in report.items() if k != 'files'})}; "
                             f"files: {json.dumps(files)[:2000]}")
        load = Load(f"ferry {kind}", rep, int(report["rows_loaded"]), run,
                    table_sql(files[0]["target_table"]), ferry_ms=report.get("duration_ms"),
                    extra={"target_table": files[0]["target_table"], "schema": files[0].get("schema"),
                           "bytes": report.get("bytes")})
        self.verify(load)
        return load

    def psql_copy(self, rep: int, src: Path, like: str) -> Load:
        """psql's \\copy of `src` into a new UNLOGGED table with the data columns of `like`."""
        schema, name = like.split(".", 1)
        cols = self.cluster.query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = '{schema}' AND c.relname = '{name}' AND a.attnum > 0 "
            "AND NOT a.attisdropped AND a.attname NOT LIKE '\\_ferry\\_%' ORDER BY a.attnum")
        if [c[0] for c in cols] != COLUMNS:
            raise BenchError(f"ferry's table {like} has columns {cols}, expected {COLUMNS}")
        table = f"bench_psql.csv_r{rep}"
        defs = ", ".join(f"{quote_ident(c)} {t}" for c, t in cols)
        self.cluster.query(f"CREATE SCHEMA IF NOT EXISTS bench_psql; "
                           f"CREATE UNLOGGED TABLE {table} ({defs})")
        path = str(src).replace("'", "''")
        cpu0 = self.timed_start()
        run = self.runner.run(f"psql-copy-r{rep}", self.cluster.psql_argv(
            "-c", f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true)", quiet=False),
            self.cluster.psql_env)
        run.server_cpu = self.cluster.cpu_s() - cpu0
        run.check()
        said = run.stdout.read_text().split()  # "COPY <rows>"
        if len(said) != 2 or said[0] != "COPY" or not said[1].isdigit():
            raise BenchError(f"psql \\copy printed {' '.join(said)!r}, expected 'COPY <rows>'")
        load = Load("psql csv", rep, int(said[1]), run, table, extra={"columns": cols})
        self.verify(load)
        return load

    def run(self) -> None:
        a, res = self.args, self.results
        data = self.base / "data"
        data.mkdir()
        csv_path = data / "bench.csv"

        log(f"generating {a.rows:,} rows of CSV in {csv_path}")
        t = time.perf_counter()
        self.exp = generate_csv(csv_path, a.rows)
        res["gen_csv_s"] = time.perf_counter() - t
        res["csv_bytes"] = csv_path.stat().st_size
        res["expected"] = self.exp.__dict__
        log(f"CSV: {res['csv_bytes'] / 1e6:,.1f} MB in {res['gen_csv_s']:.1f} s")

        pq_path: Path | None = None
        py, why = parquet_python(a.parquet_python)
        if py:
            pq_path = data / "bench.parquet"
            log(f"writing Parquet with {py}")
            t = time.perf_counter()
            r = self.runner.run("write-parquet", [py, str(Path(__file__).resolve()),
                                                  "--write-parquet", str(csv_path), str(pq_path)],
                                clean_env_pg())
            r.check()
            res["gen_parquet_s"] = time.perf_counter() - t
            res["parquet_bytes"] = pq_path.stat().st_size
            res["parquet_python"] = py
            res["parquet"] = json.loads(r.stdout.read_text())
            if res["parquet"]["rows"] != a.rows:
                raise BenchError(f"the Parquet file has {res['parquet']['rows']} rows, not {a.rows}")
            log(f"Parquet: {res['parquet_bytes'] / 1e6:,.1f} MB in {res['gen_parquet_s']:.1f} s")
        else:
            res["parquet_not_run"] = why
            log(f"Parquet not run: {why}")

        res["cluster_start_s"] = self.cluster.start()
        self.cluster.db("db-migrate", "migrate", "--json").check()
        res["postgres"] = self.cluster.query("SELECT version()")[0][0]
        res["pg_settings"] = {n: f"{v}{u}" for n, v, u in self.cluster.query(
            "SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name IN "
            "('shared_buffers', 'fsync', 'synchronous_commit', 'max_wal_size', 'wal_level', "
            "'work_mem', 'maintenance_work_mem') ORDER BY name")}

        for rep in range(1, a.reps + 1):
            fc = self.ferry_sync("csv", rep, csv_path, "csv")
            ps = self.psql_copy(rep, csv_path, fc.extra["target_table"])
            self.loads += [fc, ps]
            self.done_with(ps.table)
            self.done_with(fc.table)
            if pq_path is not None:
                fp = self.ferry_sync("parquet", rep, pq_path, "parquet")
                self.loads.append(fp)
                self.done_with(fp.table)
        res["loads"] = [{
            "what": ld.what, "rep": ld.rep, "rows": ld.rows, "wall_s": ld.run.wall,
            "rows_s": ld.rows_s, "maxrss_mib": ld.run.maxrss_mib, "user_s": ld.run.user,
            "sys_s": ld.run.sys, "server_cpu_s": ld.run.server_cpu, "ferry_duration_ms": ld.ferry_ms,
            "table": ld.table, **ld.extra,
        } for ld in self.loads]
        res["log_notes"] = self.log_notes()

    def log_notes(self) -> list[str]:
        """WARN/ERROR lines of ferry's logs, and ERRORs in the Postgres server log."""
        notes = []
        for p in sorted(self.logdir.glob("*.stderr")):
            bad = [ln for ln in p.read_text(errors="replace").splitlines()
                   if '"level":"WARN"' in ln or '"level":"ERROR"' in ln or "ERROR" in ln]
            if bad:
                notes.append(f"{p.name}: {len(bad)} WARN/ERROR line(s); first: {bad[0][:200]}")
        server_log = self.cluster.info.get("log")
        if server_log and Path(server_log).exists():
            bad = [ln for ln in Path(server_log).read_text(errors="replace").splitlines()
                   if "ERROR:" in ln or "FATAL:" in ln or "PANIC:" in ln]
            if bad:
                notes.append(f"Postgres server.log: {len(bad)} ERROR/FATAL line(s); first: "
                             f"{bad[0][:200]}")
        return notes


# ---------------------------------------------------------------------------------------
# Machine description and report


def machine(workdir: Path, ferry: Path, gnu_time: bool) -> dict:
    return {
        **host(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "workdir": str(workdir), "workdir_fs": fs_of(workdir),
        **ferry_build(ferry),
        "psql": sh(["psql", "--version"]),
        "python": sys.version.split()[0],
        "rss_from": "GNU time (ru_maxrss)" if gnu_time else "VmHWM sampled every 20 ms",
    }


def build_rows(results: dict) -> None:
    """The table's rows (step, value, target, met?) and the where-the-time-went lines."""
    loads = results["loads"]
    rows, where = results["rows"], results["where"]
    n = results["expected"]["rows"]

    def of(what: str) -> list[dict]:
        return [ld for ld in loads if ld["what"] == what]

    def rate(xs: list[dict]) -> tuple[float, str]:
        vals = [x["rows_s"] for x in xs]
        med = statistics.median(vals)
        detail = (f"median of {len(vals)}: " + ", ".join(f"{v:,.0f}" for v in vals)
                  if len(vals) > 1 else f"{xs[0]['wall_s']:.2f} s")
        return med, detail

    size = f"{n:,} rows, {results['csv_bytes'] / 1e6:,.0f} MB"
    fc, ps, fp = of("ferry csv"), of("psql csv"), of("ferry parquet")
    fc_rate, fc_detail = rate(fc)
    ps_rate, ps_detail = rate(ps)
    ratio = fc_rate / ps_rate
    rows.append((f"`ferry sync` CSV ({size}) into the managed cluster: rows/s ({fc_detail}; "
                 "whole process, from spawn to exit)", f"{fc_rate:,.0f}", "", None))
    rows.append((f"`psql \\copy ... csv` of the same file into an identical UNLOGGED table: "
                 f"rows/s ({ps_detail})", f"{ps_rate:,.0f}", "", None))
    rows.append(("ferry CSV rows/s ÷ psql rows/s", f"{ratio:.2f}×", f">= {TARGETS['csv_ratio']:g}×",
                 ratio >= TARGETS["csv_ratio"]))
    if fp:
        fp_rate, fp_detail = rate(fp)
        groups = results["parquet"]["row_groups"]
        rows.append((f"`ferry sync` Parquet ({results['parquet_bytes'] / 1e6:,.0f} MB, snappy, "
                     f"{groups} row group{'s' if groups > 1 else ''} of up to {ROW_GROUP:,} rows): "
                     f"rows/s ({fp_detail})", f"{fp_rate:,.0f}",
                     f">= {TARGETS['parquet_rows_s'] / 1e6:g} M rows/s",
                     fp_rate >= TARGETS["parquet_rows_s"]))
    else:
        rows.append(("`ferry sync` Parquet: rows/s", "not run", f">= {TARGETS['parquet_rows_s'] / 1e6:g} "
                     f"M rows/s", None))
    lim = TARGETS["rss_mib"]
    for what, xs in (("CSV", fc), ("Parquet", fp)):
        if xs:
            m = max(x["maxrss_mib"] for x in xs)
            rows.append((f"peak RSS of `ferry sync` {what}" + (f" (max of {len(xs)})" if len(xs) > 1 else "")
                         + ": MiB", f"{m:.1f}", f"< {lim:.0f} MiB", m < lim))
    rows.append(("peak RSS of psql (for reference): MiB", f"{max(x['maxrss_mib'] for x in ps):.1f}",
                 "", None))
    for ld in loads:
        own = f"; ferry's own duration_ms {ld['ferry_duration_ms']:,}" if ld["ferry_duration_ms"] else ""
        where.append((f"{ld['what']} rep {ld['rep']}{own}", ld["wall_s"], ld["user_s"], ld["sys_s"],
                      ld["server_cpu_s"]))


def render(results: dict) -> str:
    m = results["machine"]
    out = [
        "## Machine",
        "",
        f"- date: {m['date_utc']}; load average at the start: {m['loadavg']}",
        host_line(m),
        f"- work dir {m['workdir']}: {m['workdir_fs']} (data files, cluster, source roots)",
        f"- ferry {m['ferry_commit']} (binary built {m['ferry_binary_mtime']}); {m['psql']}; "
        f"python {m['python']}; peak RSS from {m['rss_from']}",
        f"- server: {results.get('postgres', '?')}",
        "- cluster settings (ferry's managed cluster, as it starts it): "
        + ", ".join(f"{k}={v}" for k, v in results.get("pg_settings", {}).items()),
        f"- data: CSV written in {results['gen_csv_s']:.1f} s"
        + (f", Parquet in {results['gen_parquet_s']:.1f} s (pyarrow {results['parquet']['pyarrow']}, "
           f"{results['parquet_python']})"
           if "gen_parquet_s" in results else f"; Parquet not run: {results.get('parquet_not_run')}"),
        "",
        *target_table(results["rows"]),
        "",
        "Where the time went (CPU seconds of the client process, ferry or psql, from GNU time; "
        "and of the whole Postgres cluster over the load; each load follows a CHECKPOINT and "
        "os.sync()):",
        "",
        "| load | wall s | client user s | client sys s | Postgres CPU s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, wall, user, system, server in results["where"]:
        out.append(f"| {label} | {wall:.2f} | {user:.2f} | {system:.2f} | {server:.2f} |")
    notes = results.get("log_notes") or []
    out += ["", "Logs: " + ("; ".join(notes) if notes else
                            "no WARN/ERROR from ferry; no ERROR in the Postgres server log.")]
    if results["expected"]["rows"] < 10_000_000:
        out.append("\nThe targets are for 10 M rows: in a smaller run fixed costs (process start, "
                   "connection and SCRAM authentication, migrations check, commit) weigh more.")
    out.append(f"\nWhole run: {results['elapsed_s']:.0f} s.")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--ferry", type=Path, default=REPO / "target" / "release" / "ferry")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                   help="parent of the run's temp folder (data files, cluster, source roots)")
    p.add_argument("--reps", type=int, default=1, help="repetitions of the three loads")
    p.add_argument("--parquet-python", help="a python with pyarrow to write the Parquet file "
                   f"(default: this one, else {TOOLS}/clients/bin/python, else {TOOLS}/bench/bin/python)")
    p.add_argument("--json", type=Path, help="write the raw results here")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp folder and the loaded tables (the cluster is stopped)")
    p.add_argument("--keep-logs", type=Path, help="copy the logs (ferry, psql, GNU time) here")
    p.add_argument("--timeout", type=int, default=GLOBAL_TIMEOUT, help="seconds for the whole run")
    p.add_argument("--write-parquet", nargs=2, metavar=("CSV", "PARQUET"), help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.write_parquet:  # the helper mode, run under a python with pyarrow
        done = write_parquet(Path(args.write_parquet[0]), Path(args.write_parquet[1]), ROW_GROUP)
        print(json.dumps(done))
        return 0
    if not args.ferry.is_file():
        print(f"no ferry binary at {args.ferry}; run `cargo build --release -p ferry`", file=sys.stderr)
        return 2
    if not shutil.which("psql"):
        print("psql not found (Debian: apt-get install postgresql-client)", file=sys.stderr)
        return 2
    args.ferry = args.ferry.resolve()
    base = Path(tempfile.mkdtemp(prefix="ferry-sync-bench-", dir=args.workdir))
    base.chmod(0o711)  # the cluster runs as `postgres` when we are root: it must enter here

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start_deadline(args.timeout, f"the whole run took over {args.timeout} s")
    t0 = time.perf_counter()
    results: dict = {"rows": [], "where": []}
    bench = None
    ok = False
    try:
        bench = Bench(args, base, results)
        results["machine"] = machine(base, args.ferry, bench.runner.gnu_time is not None)
        bench.run()
        ok = True
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        signal.alarm(0)
        if bench is not None:
            bench.runner.kill_current()
            try:
                bench.cluster.stop()
            except Exception as e:  # keep cleaning up
                print(f"stopping the cluster: {e} (data dir {base / 'state'})", file=sys.stderr)
            if args.keep_logs:
                copy_logs(bench.logdir.iterdir(), args.keep_logs)
                log(f"logs copied to {args.keep_logs}")
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    results["elapsed_s"] = time.perf_counter() - t0
    if not ok:
        return 1
    build_rows(results)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
