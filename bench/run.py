"""The benchmark: one command, a real server, a real load generator, baselines in the same run.

    .venv/bin/python -m bench.run              # 10M events (under 10 minutes here)
    .venv/bin/python -m bench.run --scale 100M
    .venv/bin/python -m bench.run --quick      # seconds; what CI runs so this never rots

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.fixture import EVENT_NAMES, USERS, Fixture, build
from eventtally.domain.model import Segment
from eventtally.store.sqlite import DB_FILE, SqliteStore

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    what: str
    figure: str
    target: str = ""
    note: str = ""


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
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def eventtally_serve(data: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "eventtally.cli", "serve", "--data", str(data)]
    return server([*command, "--port", str(port)], port, log)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# wrk ------------------------------------------------------------------------------------
_LUA_REPORT = """
done = function(summary, latency, requests)
  local out = string.format('{"requests": %d, "seconds": %f, "non2xx": %d, "errors": %d',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout)
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
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(script), url,
        ],
        capture_output=True, text=True, timeout=seconds + 120, check=True,
    )  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("WRK-JSON "))
    report: dict[str, float] = json.loads(line.removeprefix("WRK-JSON "))
    report["rate"] = report["requests"] / report["seconds"]
    return report


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


def group_by_baseline(fixture: Fixture, runs: int) -> float:
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


def add_segments(fixture: Fixture, total: int) -> None:
    """More tracked segments, overlapping, so ingest counts each event for several."""
    store = SqliteStore.open(fixture.data)
    try:
        workspace = store.workspace("bench")
        assert workspace is not None
        filters: list[object] = [
            {"attribute": "plan", "op": "eq", "value": "free"},
            {"event": "checkout", "op": "gte", "count": 1},
            {"not": {"attribute": "plan", "op": "eq", "value": "pro"}},
            {"used_app": fixture.app_ids[0]},
            {"any": [{"used_app": fixture.app_ids[1]}, {"attribute": "plan", "op": "exists"}]},
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
        now = time.time_ns() // 1000
        for i, rule in enumerate(filters[: total - 1]):
            draft = Segment(0, workspace.id, "", f"bench-{i}", rule, True)
            store.create_segment(workspace.id, draft, now)
    finally:
        store.close()


def import_rate(work: Path, count: int) -> float:
    data = work / "import-data"
    subprocess.run(
        [sys.executable, "-m", "eventtally.cli", "init", "--data", str(data), "--json"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    source = work / "import.jsonl"
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
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "eventtally.cli", "import", str(source),
         "--data", str(data), "--quiet"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    return count / (time.perf_counter() - began)


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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install -y wrk)")
    events = 100_000 if args.quick else parse_scale(args.scale)
    seconds = args.seconds or (3 if args.quick else 15)
    work = args.work or Path(tempfile.mkdtemp(prefix="eventtally-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "servers.log"
    rows: list[Row] = []
    try:
        print(f"building a store of {events:,} events in {work} ...", flush=True)
        fixture = build(work / "data", events)
        rows.append(Row("fixture build", f"{fixture.seconds:.0f} s", note=f"{events:,} events"))
        disk = sum(f.stat().st_size for f in (work / "data").iterdir())
        rows.append(
            Row(
                "disk per stored event",
                f"{disk / events:.0f} bytes",
                note="raw + aggregates + indexes",
            )
        )

        series_lua, track_lua = work / "series.lua", work / "track.lua"
        write_series_lua(series_lua, fixture.key, series_paths(fixture))
        write_track_lua(track_lua, fixture.key, track_bodies(100 if args.quick else 400))
        port = free_port()
        url = f"http://{HOST}:{port}"
        with eventtally_serve(fixture.data, port, log) as process:
            print("series latency, idle ...", flush=True)
            idle = wrk(url, series_lua, seconds, connections=1)
            rows.append(
                Row(
                    "series p99 over HTTP, idle",
                    f"{idle['p99']:.2f} ms",
                    "<= 5 ms",
                    f"p50 {idle['p50']:.2f} ms, {idle['rate']:.0f} req/s",
                )
            )
            rss_rest = rss_mb(process.pid)
            print("GROUP BY baseline ...", flush=True)
            baseline = group_by_baseline(fixture, 3 if events >= 50_000_000 else 7)
            rows.append(
                Row(
                    "same series by GROUP BY over raw events (median)",
                    f"{baseline:.1f} ms",
                    "",
                    f"eventtally p50 {baseline / idle['p50']:.0f}x faster (target >= 100x at 100M)",
                )
            )
            print("ingest load ...", flush=True)
            samples: list[float] = []
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(0.5):
                    samples.append(rss_mb(process.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            under: dict[str, float] = {}

            def series_under_load() -> None:
                time.sleep(1)
                under.update(wrk(url, series_lua, max(1, seconds - 2), connections=2))

            side = threading.Thread(target=series_under_load)
            side.start()
            ingest = wrk(url, track_lua, seconds, connections=32, threads=2)
            side.join()
            sampling.set()
            sampler.join()
            rows.append(
                Row(
                    "durable ingest, 75-event bodies",
                    f"{ingest['rate'] * 75:,.0f} events/s",
                    ">= 150,000",
                    f"{ingest['rate']:.0f} req/s, non-2xx {ingest['non2xx']:.0f}",
                )
            )
            rows.append(
                Row(
                    "ingest latency p99",
                    f"{ingest['p99']:.1f} ms",
                    "<= 50 ms",
                    f"p50 {ingest['p50']:.1f} ms",
                )
            )
            rows.append(
                Row(
                    "series p99 under ingest load",
                    f"{under.get('p99', float('nan')):.2f} ms",
                    "(reported)",
                )
            )
            rows.append(
                Row(
                    "server RSS at rest / peak under ingest",
                    f"{rss_rest:.0f} / {max(samples, default=rss_rest):.0f} MB",
                    "<= 300 MB",
                )
            )

        print("parse-only baseline ...", flush=True)
        port = free_port()
        with server([sys.executable, "-m", "bench.parse_only", "--port", str(port)], port, log):
            parse_only = wrk(f"http://{HOST}:{port}", track_lua, seconds, connections=32, threads=2)
        ratio = ingest["rate"] / parse_only["rate"]
        rows.append(
            Row(
                "parse-only endpoint (decode + validate, no store)",
                f"{parse_only['rate'] * 75:,.0f} events/s",
                "",
                f"eventtally is {ratio:.0%} of it (target >= 50%)",
            )
        )

        print("ingest with 10 tracked segments ...", flush=True)
        add_segments(fixture, 10)
        port = free_port()
        with eventtally_serve(fixture.data, port, log):
            segmented = wrk(f"http://{HOST}:{port}", track_lua, seconds, connections=32, threads=2)
        rows.append(
            Row(
                "durable ingest, 10 tracked segments",
                f"{segmented['rate'] * 75:,.0f} events/s",
                ">= 100,000",
                f"p99 {segmented['p99']:.1f} ms",
            )
        )

        print("bulk import ...", flush=True)
        imported = import_rate(work, 20_000 if args.quick else 300_000)
        rows.append(
            Row(
                "eventtally import (JSONL of event objects)",
                f"{imported:,.0f} events/s",
                ">= 500,000",
            )
        )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, events, seconds)


def print_table(rows: list[Row], events: int, seconds: int) -> None:
    print()
    print(
        f"eventtally benchmark: {events:,} stored events, {seconds} s per load phase, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("what", "figure", "target")]
    header = ("what", "figure", "target", "note")
    print(
        f"| {header[0]:<{widths[0]}} | {header[1]:>{widths[1]}} | {header[2]:<{widths[2]}} | note |"
    )
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}:|{'-' * (widths[2] + 2)}|------|")
    for r in rows:
        cells = f"| {r.what:<{widths[0]}} | {r.figure:>{widths[1]}} | {r.target:<{widths[2]}}"
        print(f"{cells} | {r.note} |")


if __name__ == "__main__":
    main()
