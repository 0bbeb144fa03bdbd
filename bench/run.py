"""The benchmark: one command, a real server, a real load generator, baselines in the same run.

    .venv/bin/python -m bench.run                      # both stores, 10M events each (8-9 min)
    .venv/bin/python -m bench.run --store sqlite       # or clickhouse: one store alone
    .venv/bin/python -m bench.run --scale 100M
    .venv/bin/python -m bench.run --quick              # both, about a minute: CI runs this

Each store (SQLite, and ClickHouse on a clickhouse-server the benchmark starts for itself)
gets the same synthetic data set and the same load; the table puts them side by side.
Load comes from `wrk` (Debian's package) with Lua scripts, never from Python, which would
measure itself. Everything talks to 127.0.0.1 only and every process started is stopped
by its PID. Nothing here asserts a time: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.fixture import EVENT_NAMES, USERS, Fixture, build
from eventtally.domain.model import Segment
from eventtally.store.base import Store
from eventtally.store.sqlite import DB_FILE, SqliteStore

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
# Seconds a server gets to stop before it is killed. A server still applying the requests
# wrk left queued at the end of a phase need not drain them: 32 queued bodies take the
# ClickHouse store a minute with cold caches, and nothing measured depends on them.
STOP_GRACE = 5.0
WRK_TIMEOUT = 10  # seconds wrk waits for an answer


STORES = ("sqlite", "clickhouse")
LABELS = {"sqlite": "SQLite", "clickhouse": "ClickHouse"}
# The table's rows, in order, with their targets (docs/performance.md).
ROWS = {
    "fixture build": "",
    "disk per stored event": "",
    "series p99 over HTTP, idle": "<= 5 ms",
    "same series by GROUP BY over raw events (median)": "",
    "durable ingest, 75-event bodies": ">= 150,000",
    "ingest latency p99": "<= 50 ms",
    "the same beside a series load (2 connections)": "(reported)",
    "ingest latency p99 beside that series load": "(reported)",
    "series p99 under ingest load": "(reported)",
    "server RSS at rest / peak under ingest": "<= 300 MB",
    "clickhouse-server RSS at rest / peak under ingest": "",
    "parse-only endpoint (decode + validate, no store)": ">= 50%",
    "durable ingest, 10 tracked segments": ">= 100,000",
    "eventtally import (JSONL of event objects)": ">= 500,000",
}


@dataclass
class Cell:
    figure: str
    value: float | None = None  # what the ratio column compares
    note: str = ""


@dataclass
class Results:
    """Figures by row and store, and notes that belong to a row rather than a store."""

    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, what: str, store: str, figure: str, value: float | None, note: str = "") -> None:
        assert what in ROWS, what
        self.cells.setdefault(what, {})[store] = Cell(figure, value, note)

    def value(self, what: str, store: str) -> float | None:
        cell = self.cells.get(what, {}).get(store)
        return None if cell is None else cell.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


@contextmanager
def server(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=out, start_new_session=True, cwd=ROOT
        )
    try:
        wait_listening(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def eventtally_serve(
    store_args: list[str], port: int, log: Path
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "eventtally.cli", "serve", *store_args]
    return server([*command, "--port", str(port)], port, log)


def rss_mb(pid: int) -> float:
    """The RSS of a process and of every process under it (eventtally's ingest process)."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_mb(int(child))
    except (FileNotFoundError, ProcessLookupError):  # it exited while being measured
        pass
    return total


# wrk ------------------------------------------------------------------------------------
_LUA_REPORT = """
done = function(summary, latency, requests)
  local out = string.format(
    '{"requests": %d, "seconds": %f, "non2xx": %d, "errors": %d, "timeouts": %d',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.timeout)
  for _, p in ipairs({50, 90, 99}) do
    out = out .. string.format(', "p%d": %f', p, latency:percentile(p) / 1000)
  end
  io.stderr:write("WRK-JSON " .. out .. "}\\n")
end
"""


def lua_list(values: list[str]) -> str:
    return "{" + ",".join("[==[" + v + "]==]" for v in values) + "}"


def write_series_lua(path: Path, key: str, paths: list[str]) -> None:
    path.write_text(
        f"paths = {lua_list(paths)}\n"
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "local i = 0\n"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n" + _LUA_REPORT
    )


def write_track_lua(path: Path, key: str, bodies: list[str]) -> None:
    path.write_text(
        f"bodies = {lua_list(bodies)}\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "local i = 0\n"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format(nil, '/users/track', nil, bodies[(i % #bodies) + 1])\nend\n"
        + _LUA_REPORT
    )


def wrk(
    url: str, script: Path, seconds: int, connections: int, threads: int = 1
) -> dict[str, float]:
    done = subprocess.run(
        [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
            "--timeout", f"{WRK_TIMEOUT}s",
            "-s", str(script), url,
        ],
        capture_output=True, text=True, timeout=seconds + 120, check=True,
    )  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("WRK-JSON "))
    report: dict[str, float] = json.loads(line.removeprefix("WRK-JSON "))
    report["rate"] = report["requests"] / report["seconds"]
    return report


def errors(report: dict[str, float]) -> str:
    """wrk's timeouts and other socket errors, when there were any."""
    timeouts, other = report["timeouts"], report["errors"] - report["timeouts"]
    return (f", timeouts {timeouts:.0f}" if timeouts else "") + (
        f", socket errors {other:.0f}" if other else ""
    )


def latency(report: dict[str, float], percentile: str = "p99") -> str:
    if report["timeouts"] and percentile == "p99":
        return f"> {WRK_TIMEOUT} s"
    return f"{report[percentile]:.1f} ms" if report["requests"] else "none answered"


def track_bodies(count: int, seed: int = 1) -> list[str]:
    """Bodies of 75 events from 100,000 distinct users, times in the last two days."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    bodies = []
    for _ in range(count):
        events = [
            {
                "external_id": f"user-{rng.randrange(USERS)}",
                "name": rng.choice(EVENT_NAMES),
                "time": (now - timedelta(seconds=rng.randrange(2 * 86_400))).isoformat(),
            }
            for _ in range(75)
        ]
        bodies.append(json.dumps({"events": events}))
    return bodies


# Series ---------------------------------------------------------------------------------
def series_paths(fixture: Fixture) -> list[str]:
    ending = datetime.fromtimestamp(fixture.end_us / 1e6, UTC).date().isoformat()
    paths = []
    for unit, length in (("day", 100), ("hour", 24)):
        for name in EVENT_NAMES[:2]:
            base = (
                f"/events/data_series?event={name}&length={length}&unit={unit}&ending_at={ending}"
            )
            paths += [
                base,
                f"{base}&app_id={fixture.app_ids[0]}",
                f"{base}&segment_id={fixture.segment_id}",
                f"{base}&app_id={fixture.app_ids[1]}&segment_id={fixture.segment_id}",
            ]
    return paths


def sqlite_group_by_baseline(fixture: Fixture, runs: int) -> float:
    """The same day series (100 days, one event, every app) by a plain GROUP BY over the raw
    events in the same store; median milliseconds."""
    conn = sqlite3.connect(f"file:{fixture.data / DB_FILE}?mode=ro", uri=True)
    event_type = conn.execute(
        "SELECT id FROM event_types WHERE name = ?", (EVENT_NAMES[0],)
    ).fetchone()[0]
    day = 86_400 * 1_000_000
    start = fixture.end_us - 100 * day
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        rows = conn.execute(
            "SELECT (time - ?) / ? AS d, count(*) FROM events "
            "WHERE event_type = ? AND time >= ? AND time < ? GROUP BY d",
            (start, day, event_type, start, fixture.end_us),
        ).fetchall()
        times.append((time.perf_counter() - began) * 1000)
        assert len(rows) <= 100
    conn.close()
    return statistics.median(times)


def segment_filters(apps: tuple[str, ...]) -> list[object]:
    """Nine rules over attributes, event counts and apps used, most matching most users."""
    return [
        {"attribute": "plan", "op": "eq", "value": "free"},
        {"event": "checkout", "op": "gte", "count": 1},
        {"not": {"attribute": "plan", "op": "eq", "value": "pro"}},
        {"used_app": apps[0]},
        {"any": [{"used_app": apps[1]}, {"attribute": "plan", "op": "exists"}]},
        {"event": "search", "op": "gte", "count": 2},
        {"attribute": "plan", "op": "exists"},
        {"event": "app_open", "op": "lte", "count": 1000},
        {
            "all": [
                {"attribute": "plan", "op": "exists"},
                {"event": "share", "op": "gte", "count": 0},
            ]
        },
    ]


def add_segments(store: Store, fixture: Fixture, total: int) -> None:
    """More tracked segments, overlapping, so ingest counts each event for several."""
    workspace = store.workspace("bench")
    assert workspace is not None
    now = time.time_ns() // 1000
    for i, rule in enumerate(segment_filters(fixture.app_ids)[: total - 1]):
        draft = Segment(0, workspace.id, "", f"bench-{i}", rule, True)
        store.create_segment(workspace.id, draft, now)


def import_source(work: Path, count: int) -> Path:
    """A JSONL file of `count` event objects of the benchmark's users over 30 days (made
    once per work directory)."""
    source = work / f"import-{count}.jsonl"
    if not source.exists():
        rng = random.Random(3)
        now = datetime.now(UTC).replace(microsecond=0)
        with source.open("w") as out:
            for _ in range(count):
                event = {
                    "external_id": f"user-{rng.randrange(USERS)}",
                    "name": rng.choice(EVENT_NAMES),
                    "time": (now - timedelta(seconds=rng.randrange(86_400 * 30))).isoformat(),
                }
                out.write(json.dumps(event) + "\n")
    return source


def import_rate(
    store_args: list[str], work: Path, count: int, limit: float, stored: Callable[[], int]
) -> tuple[float, int | None]:
    """`eventtally import` of `count` event objects into a new workspace of the store that
    `store_args` name (`--data DIR` or `--store URL`, a database not used yet): events/s,
    and when it was stopped after `limit` seconds, how many events it had stored by then
    (`stored()`: every group it committed)."""
    subprocess.run(
        [sys.executable, "-m", "eventtally.cli", "init", *store_args, "--json"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    source = import_source(work, count)
    command = [sys.executable, "-m", "eventtally.cli", "import", str(source), *store_args]
    began = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    try:
        _, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        took = time.perf_counter() - began
        process.terminate()
        process.communicate(timeout=60)
        done = stored()
        return done / took, done
    if process.returncode:
        raise RuntimeError(f"eventtally import failed: {err.decode(errors='replace')[-2000:]}")
    return count / (time.perf_counter() - began), None


@dataclass
class Run:
    """What every store's part of the benchmark shares."""

    work: Path
    events: int
    seconds: int
    quick: bool
    log: Path
    bodies: list[str]  # the ingest load's request bodies, the same for every store
    results: Results = field(default_factory=Results)
    versions: dict[str, str] = field(default_factory=dict)  # store -> engine and version


@dataclass
class Target:
    """One store, built and ready to be driven."""

    name: str  # one of STORES
    fixture: Fixture
    store_args: list[str]  # how the eventtally command names it: --data DIR, --store URL
    import_args: list[str]  # a new store of the same kind, for the import
    baseline: Callable[[int], float]  # the GROUP BY over raw events: median ms of n runs
    open_store: Callable[[], Store]
    imported: Callable[[], int]  # events the import has stored so far
    engine_pid: int | None = None  # clickhouse-server's process


@contextmanager
def peak_rss(pids: list[int]) -> Iterator[dict[int, float]]:
    """The highest RSS of each process while the block runs, sampled twice a second."""
    peaks = {pid: rss_mb(pid) for pid in pids}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            for pid in pids:
                peaks[pid] = max(peaks[pid], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peaks
    finally:
        stop.set()
        sampler.join()


def add_ingest(
    results: Results, store: str, rate_row: str, p99_row: str, report: dict[str, float]
) -> None:
    """An ingest phase's rate and p99 (none when wrk gave up waiting on some answers)."""
    results.add(
        rate_row,
        store,
        f"{report['rate'] * 75:,.0f} events/s",
        report["rate"] * 75,
        f"{report['rate']:.0f} req/s, non-2xx {report['non2xx']:.0f}{errors(report)}",
    )
    if report["timeouts"]:
        # wrk leaves answers later than its timeout out of the percentiles: they would lie.
        results.add(
            p99_row,
            store,
            f"> {WRK_TIMEOUT} s",
            None,
            f"wrk counted {report['timeouts']:.0f} timeouts (no answer within {WRK_TIMEOUT} s); "
            f"p50 of the answers within it {latency(report, 'p50')}",
        )
    elif report["requests"]:
        results.add(
            p99_row, store, f"{report['p99']:.1f} ms", report["p99"], f"p50 {report['p50']:.1f} ms"
        )
    else:
        results.add(
            p99_row,
            store,
            f"> {report['seconds']:.0f} s",
            None,
            f"no request answered within the {report['seconds']:.0f} s phase",
        )


def drive(run: Run, target: Target) -> None:
    """Series, the GROUP BY baseline, ingest, segmented ingest and import on one store."""
    results, store, label, fixture = run.results, target.name, LABELS[target.name], target.fixture
    series_lua, track_lua = run.work / f"series-{store}.lua", run.work / f"track-{store}.lua"
    write_series_lua(series_lua, fixture.key, series_paths(fixture))
    write_track_lua(track_lua, fixture.key, run.bodies)
    port = free_port()
    url = f"http://{HOST}:{port}"
    with eventtally_serve(target.store_args, port, run.log) as process:
        print(f"{label}: series latency, idle ...", flush=True)
        idle = wrk(url, series_lua, run.seconds, connections=1)
        results.add(
            "series p99 over HTTP, idle",
            store,
            f"{idle['p99']:.2f} ms",
            idle["p99"],
            f"p50 {idle['p50']:.2f} ms, {idle['rate']:.0f} req/s",
        )
        pids = [process.pid] + ([target.engine_pid] if target.engine_pid else [])
        rest = {pid: rss_mb(pid) for pid in pids}
        print(f"{label}: GROUP BY baseline ...", flush=True)
        baseline = target.baseline(3 if run.events >= 50_000_000 else 7)
        results.add(
            "same series by GROUP BY over raw events (median)",
            store,
            f"{baseline:.1f} ms",
            baseline,
            faster("eventtally p50", baseline / idle["p50"]),
        )
        print(f"{label}: ingest load ...", flush=True)
        under: dict[str, float] = {}

        def series_under_load() -> None:
            time.sleep(1)
            under.update(wrk(url, series_lua, max(1, run.seconds - 2), connections=2))

        with peak_rss(pids) as peaks:
            alone = wrk(url, track_lua, run.seconds, connections=32, threads=2)
            print(f"{label}: ingest beside a series load ...", flush=True)
            side = threading.Thread(target=series_under_load)
            side.start()
            beside = wrk(url, track_lua, run.seconds, connections=32, threads=2)
            side.join()
    add_ingest(results, store, "durable ingest, 75-event bodies", "ingest latency p99", alone)
    add_ingest(
        results,
        store,
        "the same beside a series load (2 connections)",
        "ingest latency p99 beside that series load",
        beside,
    )
    p99 = under.get("p99", float("nan"))
    results.add("series p99 under ingest load", store, f"{p99:.2f} ms", p99)
    results.add(
        "server RSS at rest / peak under ingest",
        store,
        f"{rest[process.pid]:.0f} / {peaks[process.pid]:.0f} MB",
        peaks[process.pid],
        "the server and its ingest process" if store == "sqlite" else "",
    )
    if target.engine_pid:
        pid = target.engine_pid
        results.add(
            "clickhouse-server RSS at rest / peak under ingest",
            store,
            f"{rest[pid]:.0f} / {peaks[pid]:.0f} MB",
            peaks[pid],
        )

    print(f"{label}: ingest with 10 tracked segments ...", flush=True)
    began = time.perf_counter()
    opened = target.open_store()
    try:
        add_segments(opened, fixture, 10)
    finally:
        opened.close()
    made = time.perf_counter() - began
    port = free_port()
    with eventtally_serve(target.store_args, port, run.log):
        segmented = wrk(f"http://{HOST}:{port}", track_lua, run.seconds, connections=32, threads=2)
    results.add(
        "durable ingest, 10 tracked segments",
        store,
        f"{segmented['rate'] * 75:,.0f} events/s",
        segmented["rate"] * 75,
        f"p99 {latency(segmented)}, non-2xx {segmented['non2xx']:.0f}"
        f"{errors(segmented)}, the 9 new segments made in {made:.0f} s",
    )

    print(f"{label}: bulk import ...", flush=True)
    limit = 4 * run.seconds
    count = 20_000 if run.quick else 1_000_000
    imported, stored = import_rate(target.import_args, run.work, count, limit, target.imported)
    results.add(
        "eventtally import (JSONL of event objects)",
        store,
        f"{imported:,.0f} events/s",
        imported,
        "" if stored is None else f"stopped after {limit} s, {stored:,} of {count:,} stored",
    )


def sqlite_count(data: Path) -> int:
    with closing(sqlite3.connect(f"file:{data / DB_FILE}?mode=ro", uri=True)) as conn:
        count: int = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return count


def sqlite_target(run: Run) -> Target:
    print(f"SQLite: building a store of {run.events:,} events in {run.work} ...", flush=True)
    fixture = build(run.work / "data", run.events)
    run.versions["sqlite"] = f"SQLite {sqlite3.sqlite_version}"
    run.results.add("fixture build", "sqlite", f"{fixture.seconds:.0f} s", fixture.seconds)
    disk = sum(f.stat().st_size for f in fixture.data.iterdir())
    run.results.add(
        "disk per stored event",
        "sqlite",
        f"{disk / run.events:.0f} bytes",
        disk / run.events,
        "raw + aggregates + indexes",
    )
    return Target(
        "sqlite",
        fixture,
        ["--data", str(fixture.data)],
        ["--data", str(run.work / "import-data")],
        lambda runs: sqlite_group_by_baseline(fixture, runs),
        lambda: SqliteStore.open(fixture.data),
        lambda: sqlite_count(run.work / "import-data"),
    )


@contextmanager
def clickhouse_target(run: Run) -> Iterator[Target]:
    """A clickhouse-server of the benchmark's own, stopped by its PID when the block ends,
    holding the same data set as the SQLite store."""
    # The test suite's launcher, not a copy: bench/ and tests/ are both the repository's
    # tooling, and the server runs as in the tests (deploy/clickhouse/server.xml).
    from bench import clickhouse_fixture
    from eventtally.store.clickhouse import ClickHouseStore
    from tests import clickhouse_server, processes

    directory = run.work / "clickhouse"
    print(f"ClickHouse: starting clickhouse-server in {directory} ...", flush=True)
    server = clickhouse_server.start(directory)
    try:
        url, imports = server.url("bench"), server.url("bench_import")
        with server.client() as client:
            run.versions["clickhouse"] = f"ClickHouse {client.execute('SELECT version()')[0][0]}"
        print(f"ClickHouse: building a store of {run.events:,} events ...", flush=True)
        fixture = clickhouse_fixture.build(directory, url, run.events)
        run.results.add("fixture build", "clickhouse", f"{fixture.seconds:.0f} s", fixture.seconds)
        database = directory / "data" / "data" / "bench"
        disk = sum(f.stat().st_size for f in database.rglob("*") if f.is_file())
        tables = clickhouse_fixture.table_bytes(url)
        biggest = ", ".join(f"{name} {size / run.events:.0f}" for name, size, _ in tables[:3])
        run.results.add(
            "disk per stored event",
            "clickhouse",
            f"{disk / run.events:.0f} bytes",
            disk / run.events,
            f"the database's directory as built (parts not all merged); by table: {biggest}",
        )
        yield Target(
            "clickhouse",
            fixture,
            ["--store", url],
            ["--store", imports],
            lambda runs: clickhouse_fixture.group_by_baseline(url, fixture, runs),
            lambda: ClickHouseStore.open(url),
            lambda: clickhouse_fixture.count_events(imports),
            server.process.pid,
        )
    finally:
        processes.stop(server.process)


def parse_only(run: Run, store: str) -> float:
    """The same ingest load against a server that decodes and validates, storing nothing;
    events/s."""
    print("parse-only baseline ...", flush=True)
    port = free_port()
    with server([sys.executable, "-m", "bench.parse_only", "--port", str(port)], port, run.log):
        found = wrk(
            f"http://{HOST}:{port}",
            run.work / f"track-{store}.lua",
            run.seconds,
            connections=32,
            threads=2,
        )
    return found["rate"] * 75


def share_of_parse_only(run: Run, stores: tuple[str, ...], rate: float) -> None:
    what = "parse-only endpoint (decode + validate, no store)"
    run.results.notes[what] = f"{rate:,.0f} events/s; each store's durable ingest as a share of it"
    for store in stores:
        ingest = run.results.value("durable ingest, 75-event bodies", store)
        if ingest is not None:
            share = ingest / rate
            run.results.add(what, store, f"{share:.0%}" if share >= 0.01 else f"{share:.2%}", None)


def faster(who: str, ratio: float) -> str:
    return f"{who} {times(ratio)} faster" if ratio >= 1 else f"{who} {times(1 / ratio)} slower"


def times(ratio: float) -> str:
    """A ratio as "380x", "2.5x" or "0.0042x"."""
    if ratio >= 10:
        return f"{ratio:.0f}x"
    return f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2g}x"


def parse_scale(text: str) -> int:
    units = {"K": 1_000, "M": 1_000_000}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description="eventtally's benchmark")
    parser.add_argument("--scale", default="10M", help="stored events (default: 10M)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (CI)")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per load phase")
    parser.add_argument("--work", type=Path, default=None, help="keep the data here")
    parser.add_argument(
        "--store",
        choices=(*STORES, "both"),
        default="both",
        help="the store(s) to measure, each with the same data set and load (default: both)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install -y wrk)")
    stores = STORES if args.store == "both" else (args.store,)
    if "clickhouse" in stores:
        from tests.clickhouse_server import BINARY

        if not BINARY.exists():
            sys.exit(
                f"bench: {BINARY} is not installed (apt-get install -y clickhouse-server); "
                "--store sqlite measures SQLite alone"
            )
    events = 100_000 if args.quick else parse_scale(args.scale)
    seconds = args.seconds or (3 if args.quick else 15)
    work = args.work or Path(tempfile.mkdtemp(prefix="eventtally-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    run = Run(
        work,
        events,
        seconds,
        args.quick,
        work / "servers.log",
        track_bodies(100 if args.quick else 400),
    )
    load = os.getloadavg()
    began = time.perf_counter()
    try:
        for i, store in enumerate(stores):
            if store == "sqlite":
                drive(run, sqlite_target(run))
            else:
                with clickhouse_target(run) as target:
                    drive(run, target)
            if i == 0:  # once, between the stores: the machine's speed drifts
                parsed = parse_only(run, store)
        share_of_parse_only(run, stores, parsed)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(run, stores, load, time.perf_counter() - began)


def print_table(
    run: Run, stores: tuple[str, ...], load: tuple[float, float, float], took: float
) -> None:
    print()
    print(
        f"eventtally benchmark: {run.events:,} stored events per store, {run.seconds} s per load "
        f"phase, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{', '.join(run.versions[s] for s in stores if s in run.versions)}; "
        f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; {took:.0f} s"
    )
    both = len(stores) == 2
    header = ["what", *(LABELS[s] for s in stores)]
    if both:
        header.append(f"{LABELS[stores[1]]} / {LABELS[stores[0]]}")
    header += ["target", "note"]
    lines = []
    for what, target in ROWS.items():
        cells = run.results.cells.get(what)
        if not cells:
            continue
        row = [what, *(cells[s].figure if s in cells else "-" for s in stores)]
        if both:
            first, second = (cells.get(s) for s in stores)
            ratio = ""
            if first and second and first.value and second.value is not None:
                ratio = times(second.value / first.value)
            row.append(ratio)
        notes = [
            f"{LABELS[s]}: {cells[s].note}" if both else cells[s].note
            for s in stores
            if s in cells and cells[s].note
        ]
        if what in run.results.notes:
            notes.insert(0, run.results.notes[what])
        row += [target, "; ".join(notes)]
        lines.append(row)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header) - 1)]
    right = range(1, len(header) - 2)  # figures and the ratio

    def cell(i: int, text: str) -> str:
        return f"{text:>{widths[i]}}" if i in right else f"{text:<{widths[i]}}"

    print("| " + " | ".join(cell(i, h) for i, h in enumerate(header[:-1])) + " | note |")
    print(
        "|"
        + "|".join("-" * (w + 1) + (":" if i in right else "-") for i, w in enumerate(widths))
        + "|------|"
    )
    for row in lines:
        print("| " + " | ".join(cell(i, t) for i, t in enumerate(row[:-1])) + f" | {row[-1]} |")


if __name__ == "__main__":
    main()
