"""`eventtally import`: a file of Braze objects (JSONL, or CSV rows of events) straight
into the store.

Items go through exactly the API's path (parse_track, then the store's ingest rules:
validation, clamping, catalogue, profiles), 75 items per array per request as the API
takes them, many requests in flight so the store's writer commits them in groups.

Each request carries an idempotency key made of its first line and its items (contract
8.24, the store's own mechanism): an import cut short (Ctrl-C, a crash, a full disk)
and run again within the retention stores only what the first run had not committed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventtally import jsonl
from eventtally.domain.idempotency import Idempotency, body_hash
from eventtally.domain.track import MAX_ITEMS_PER_ARRAY, TrackOutcome, parse_track
from eventtally.errors import EventtallyError
from eventtally.store.base import Store

IN_FLIGHT = 64  # requests waiting on the writer at once: enough to fill a group commit


class ImportAborted(EventtallyError):
    """A strict import met an unusable line; what came before it is stored."""


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    input_array: str
    error: str


@dataclass
class ImportSummary:
    attributes: int = 0
    events: int = 0
    purchases: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    bad_lines: list[jsonl.BadLine] = field(default_factory=list)
    # Items of requests an earlier run of the same import had committed (stored, or
    # rejected and reported then): not applied again.
    already_processed: int = 0


def now_us() -> int:
    return time.time_ns() // 1000


class Chunk:
    """Items for one request, with the line of each."""

    def __init__(self) -> None:
        self.body: dict[str, list[Any]] = {}
        self.lines: dict[str, list[int]] = {}

    def add(self, array: jsonl.Array, value: Any, line: int) -> bool:
        """Add an item; whether its array is now full (the request is ready)."""
        values = self.body.get(array)
        if values is None:
            values = self.body[array] = []
            self.lines[array] = []
        values.append(value)
        self.lines[array].append(line)
        return len(values) >= MAX_ITEMS_PER_ARRAY

    def size(self) -> int:
        return sum(len(values) for values in self.body.values())


def requests(
    entries: Iterable[jsonl.Entry], unusable: Callable[[jsonl.BadLine], None]
) -> Iterator[Chunk]:
    """The input's items as the requests the import sends, each as soon as it is full;
    every unusable line goes to `unusable` (which may raise)."""
    chunk = Chunk()
    for entry in entries:
        if isinstance(entry, jsonl.BadLine):
            unusable(entry)
            continue
        number, found = entry
        for array, values in found.items():
            for value in values:
                if chunk.add(array, value, number):
                    yield chunk
                    chunk = Chunk()
    if chunk.size():
        yield chunk


def import_entries(
    store: Store,
    workspace_id: int,
    entries: Iterable[jsonl.Entry],
    *,
    strict: bool = False,
    on_progress: Callable[[int], None] | None = None,
    retention_s: int,
    clock: Callable[[], int] = now_us,
) -> ImportSummary:
    """Import every item of the input (`jsonl.by_line`, `csv_events.CsvEvents`); unusable
    lines are skipped (or, with `strict`, stop the import). The requests' idempotency keys
    are kept `retention_s` seconds."""
    summary = ImportSummary()
    pending: deque[tuple[Chunk, Future[TrackOutcome], list[Rejection]]] = deque()

    def settle(chunk: Chunk, future: Future[TrackOutcome], parse_errors: list[Rejection]) -> None:
        outcome = future.result()
        if on_progress is not None:
            on_progress(chunk.size())
        if outcome.replayed:
            summary.already_processed += chunk.size()
            return
        summary.attributes += outcome.attributes_processed
        summary.events += outcome.events_processed
        summary.purchases += outcome.purchases_processed
        summary.rejected += parse_errors
        summary.rejected += [
            Rejection(chunk.lines[e.input_array][e.index], e.input_array, e.type)
            for e in outcome.errors
        ]

    def submit(chunk: Chunk) -> None:
        now = clock()
        request = parse_track(chunk.body, now)
        parse_errors = [
            Rejection(chunk.lines[e.input_array][e.index], e.input_array, e.type)
            for e in request.errors
        ]
        digest = body_hash(chunk.body)
        first = min(lines[0] for lines in chunk.lines.values())
        key = Idempotency(f"import:{first}:{digest[:32]}", digest, retention_s * 1_000_000)
        pending.append((chunk, store.track(workspace_id, request, now, key), parse_errors))
        while len(pending) > IN_FLIGHT or (pending and pending[0][1].done()):
            settle(*pending.popleft())

    def unusable(line: jsonl.BadLine) -> None:
        if strict:
            raise ImportAborted(f"line {line.line}: {line.reason}")
        summary.bad_lines.append(line)

    try:
        for chunk in requests(entries, unusable):
            submit(chunk)
    finally:
        while pending:
            settle(*pending.popleft())
    summary.rejected.sort(key=lambda r: r.line)
    return summary
