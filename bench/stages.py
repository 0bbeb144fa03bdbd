"""Where the CPU goes, stage by stage, in µs of CPU an event: of `eventtally import`, with
what this machine's cores could import at best were the stages spread perfectly over them;
and of the ingest process under the benchmark's load, with what its one writer thread
could apply at best.

    .venv/bin/python -m bench.stages                  # 1,000,000 lines, about a minute
    .venv/bin/python -m bench.stages --lines 3000     # what the test suite runs

The stages are eventtally's own code (jsonl, the importer's requests and keys,
parse_track, the ingest process's pipe encoding, the SQLite store's writer loop); only
the order differs: each runs over the whole input before the next. The writer loop runs
on a new store (the import creates its users), then on the same lines again (its users
exist), in groups of 64 requests as an import fills them; then on the benchmark's fixture
with the load's bodies, in groups of 32 as its 32 connections send them. Its CPU includes
the thread that folds the per-user counts. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from bench.fixture import build
from bench.run import import_source, track_bodies
from eventtally import importer, jsonl
from eventtally.domain.idempotency import Idempotency, body_hash
from eventtally.domain.track import TrackRequest, parse_track
from eventtally.gc_tuning import relax_collections
from eventtally.store.ingest_process import _decode_batch, _encode_batch, _join
from eventtally.store.sqlite import Job, SqliteStore, Taken

T = TypeVar("T")
CORES = os.cpu_count() or 1
HOUR_US = 3_600_000_000


def cpu_us(work: Callable[[], T]) -> tuple[T, float]:
    """What `work` returns, and the process's CPU time it took, in µs."""
    began = time.process_time()
    done = work()
    return done, (time.process_time() - began) * 1e6


def refuse(line: jsonl.BadLine) -> None:
    raise SystemExit(f"line {line.line} of the generated input is unusable: {line.reason}")


def writer_us(
    data: Path,
    workspace_name: str,
    jobs: list[tuple[TrackRequest, Idempotency | None]],
    per_group: int,
    now: int,
) -> float:
    """CPU of the store's writer loop (and its folder) applying and committing the
    requests in groups of `per_group`."""
    store = SqliteStore(data, writer_thread=False)
    workspace = store.workspace(workspace_name)
    assert workspace is not None
    groups = [jobs[i : i + per_group] for i in range(0, len(jobs), per_group)]
    groups.reverse()

    def take(timeout: float | None) -> Taken:
        if not groups:
            return [], True
        group = groups.pop()
        return [Job(store.ingest_job(workspace.id, r, now, k)) for r, k in group], False

    _, spent = cpu_us(lambda: store.run_writer(take))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, help="a directory to keep the input in")
    args = parser.parse_args()
    relax_collections()  # as the import and ingest processes run
    with tempfile.TemporaryDirectory(prefix="eventtally-stages-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        text = import_source(work, args.lines).read_text()
        n = args.lines
        now = time.time_ns() // 1000
        rows: list[tuple[str, str, float]] = []

        def stage(what: str, process: str, fn: Callable[[], T]) -> T:
            done, spent = cpu_us(fn)
            rows.append((what, process, spent / n))
            return done

        lines = stage("read the lines", "import", text.splitlines)
        entries = stage("decode them (JSON)", "import", lambda: list(jsonl.by_line(lines)))
        chunks = stage(
            "fill 75-item requests", "import", lambda: list(importer.requests(entries, refuse))
        )
        requests = stage(
            "validate (parse_track)", "import", lambda: [parse_track(c.body, now) for c in chunks]
        )
        keys = stage(
            "idempotency keys",
            "import",
            lambda: [
                Idempotency(f"import:{i}", body_hash(c.body), HOUR_US) for i, c in enumerate(chunks)
            ],
        )
        sent = stage(
            "encode for the ingest process",
            "import",
            lambda: [
                _encode_batch([(i, 1, r, now, k)])
                for i, (r, k) in enumerate(zip(requests, keys, strict=True))
            ],
        )
        messages = [
            _join(sent[i : i + importer.IN_FLIGHT]) for i in range(0, len(sent), importer.IN_FLIGHT)
        ]
        stage("decode the requests", "ingest", lambda: [_decode_batch(m) for m in messages])
        data = Path(scratch) / "data"
        opened = SqliteStore.open(data)
        opened.create_workspace("default", "UTC", now)
        opened.close()
        in_flight = importer.IN_FLIGHT
        first = writer_us(data, "default", list(zip(requests, keys, strict=True)), in_flight, now)
        first /= n
        # Keys of their own: the same keys would make the import's resume skip every request.
        anew = [Idempotency(f"again:{i}", k.body_hash, HOUR_US) for i, k in enumerate(keys)]
        again = writer_us(data, "default", list(zip(requests, anew, strict=True)), in_flight, now)
        again /= n

        # The ingest load's bodies on the benchmark's own fixture (its users, a quarter of
        # them in its tracked segment), as its 32 connections send them: at most 32
        # requests a group, no idempotency keys.
        fixture = build(Path(scratch) / "load", n, progress=False)
        bodies = [parse_track(msgspec.json.decode(b), now) for b in track_bodies(400)]
        load = [bodies[i % len(bodies)] for i in range(n // 75)]
        count = 75 * len(load)
        wire = [
            _join([_encode_batch([(i, 1, r, now, None)]) for i, r in enumerate(load[j : j + 32])])
            for j in range(0, len(load), 32)
        ]
        _, decoding = cpu_us(lambda: [_decode_batch(m) for m in wire])
        applying = writer_us(fixture.data, "bench", [(r, None) for r in load], 32, now)

    shared = sum(us for _, _, us in rows)
    print(f"{n:,} event lines; µs of CPU an event, each stage alone\n")
    print("| stage | process | µs an event |\n|---|---|---:|")
    for what, process, us in rows:
        print(f"| {what} | {process} | {us:.2f} |")
    print(f"| apply, write, commit, fold: a first import (users created) | ingest | {first:.2f} |")
    print(f"| the same lines again (users exist) | ingest | {again:.2f} |")
    for label, writer in (("a first import", first), ("the same lines again", again)):
        total = shared + writer
        print(
            f"| **all, {label}** | | **{total:.2f}**: at best {CORES * 1e6 / total:,.0f} "
            f"events/s on {CORES} cores |"
        )
    ingest = (decoding + applying) / count
    print(
        f"\nThe ingest load's bodies, {count:,} events in groups of 32 requests, on the "
        f"benchmark's fixture of {n:,} events\n"
    )
    print("| stage | process | µs an event |\n|---|---|---:|")
    print(f"| decode the requests | ingest | {decoding / count:.2f} |")
    print(f"| apply, write, commit, fold (users exist) | ingest | {applying / count:.2f} |")
    print(
        f"| **the ingest process, in all** | | **{ingest:.2f}**: its one writer thread, "
        f"at most {1e6 / ingest:,.0f} events/s |"
    )


if __name__ == "__main__":
    main()
