"""SQLite ingest internals: the raw-count index holds only old events, event_counts is
caught up lazily, and a group is applied optimistically, then again isolated if a job
fails. (The per-user counts: test_sqlite_user_counts.py.)"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventtally.domain.model import Segment, SegmentChanges, SeriesQuery
from eventtally.domain.track import parse_track
from eventtally.store.base import SLOT_US
from eventtally.store.migrations import MIGRATIONS, RAW_INDEX_BEFORE_US, migrate
from eventtally.store.sqlite import DB_FILE, SqliteStore
from eventtally.store.sqlite_tx import SERIES_FOLD_SECONDS
from tests.support import held

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SECOND = 1_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore.open(tmp_path)
    yield store
    store.close()


def rows(store: SqliteStore, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / SECOND, UTC).isoformat().replace("+00:00", "Z")


def track(store: SqliteStore, ws: int, events: list[dict[str, object]]) -> None:
    outcome = store.track(ws, parse_track({"events": events}, NOW), NOW).result()
    assert outcome.events_processed == len(events), outcome


@pytest.mark.parametrize(
    "around",
    [RAW_INDEX_BEFORE_US - 40 * 86_400 * SECOND, NOW - 40 * 86_400 * SECOND],
    ids=["indexed", "after-the-index"],
)
def test_off_grid_ranges_count_exactly_on_both_sides_of_the_raw_index(
    store: SqliteStore, around: int
) -> None:
    ws = store.create_workspace("w", "UTC", NOW)
    app = store.create_app(ws.id, "a", NOW)
    rng = random.Random(7)
    times = [around + rng.randrange(-3 * 3600, 3 * 3600) * SECOND for _ in range(300)]
    apps = [rng.choice([None, app.app_id]) for _ in times]
    events = [
        {"external_id": f"u{i % 7}", "name": "e", "time": iso(t)} | ({"app_id": a} if a else {})
        for i, (t, a) in enumerate(zip(times, apps, strict=True))
    ]
    for start in range(0, len(events), 75):
        track(store, ws.id, events[start : start + 75])
    # Ranges with edges off the 15-minute grid (whole seconds, as historic offsets are),
    # some within one slot, some spanning many; and one on the grid.
    ranges = [
        (around - 7_321 * SECOND, around + 5_003 * SECOND),
        (around + 17 * SECOND, around + 400 * SECOND),
        (around - SLOT_US * 3 + 1, around + SLOT_US * 2 - 1),
        (around - around % SLOT_US, around - around % SLOT_US + 4 * SLOT_US),
    ]
    for app_key, wanted in ((None, lambda a: True), (app.id, lambda a: a is not None)):
        query = SeriesQuery(ws.id, "e", tuple(ranges), app=app_key)
        expected = [
            sum(1 for t, a in zip(times, apps, strict=True) if lo <= t < hi and wanted(a))
            for lo, hi in ranges
        ]
        assert store.count_series(query) == expected


def test_new_events_skip_the_raw_index(store: SqliteStore) -> None:
    ws = store.create_workspace("w", "UTC", NOW)
    track(store, ws.id, [{"external_id": "u", "name": "e", "time": iso(NOW - SECOND)}])
    track(store, ws.id, [{"external_id": "u", "name": "e", "time": "2001-02-03T04:05:06Z"}])
    indexed = rows(
        store,
        "SELECT count(*) FROM events INDEXED BY events_type_time_before "
        f"WHERE time < {RAW_INDEX_BEFORE_US}",
    )
    assert indexed == [(1,)]


def test_a_failing_job_reruns_its_group_isolated_and_nothing_twice(store: SqliteStore) -> None:
    store.series_fold_events = 1  # event_counts folded at every commit
    ws = store.create_workspace("w", "UTC", NOW)
    body = {"events": [{"external_id": "u", "name": "e", "time": iso(NOW - 1)}] * 5}
    with held(store):
        first = store.track(ws.id, parse_track(body, NOW), NOW)
        broken = store._submit(lambda conn: 1 / 0)
        second = store.track(ws.id, parse_track(body, NOW), NOW)
    assert first.result(10).events_processed == 5
    assert second.result(10).events_processed == 5
    with pytest.raises(ZeroDivisionError):
        broken.result(10)
    assert rows(store, "SELECT count(*) FROM events") == [(10,)]
    assert rows(store, "SELECT sum(n) FROM event_counts WHERE segment = 0 AND app = 0") == [(10,)]


HOURS = tuple((NOW - (h + 1) * 3600 * SECOND, NOW - h * 3600 * SECOND) for h in range(48))


def hourly(store: SqliteStore, ws: int, name: str, app: int | None = None) -> list[int]:
    return store.count_series(SeriesQuery(ws, name, HOURS, app))


def spread(n: int, seed: int, app: str | None = None) -> list[dict[str, object]]:
    rng = random.Random(seed)
    events: list[dict[str, object]] = []
    for _ in range(n):
        event = {"external_id": "u", "name": "e", "time": iso(NOW - rng.randrange(1, 48 * 3600))}
        events.append(event if app is None else {**event, "app_id": app})
    return events


def by_hour(events: list[dict[str, object]]) -> list[int]:
    """The oracle: each event's hour counted from its ISO time text, not from the store."""
    counts = [0] * len(HOURS)
    for event in events:
        at = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        us = int(at.timestamp()) * SECOND
        counts[next(i for i, (lo, hi) in enumerate(HOURS) if lo <= us < hi)] += 1
    return counts


@pytest.fixture
def no_idle_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer waits an hour, not SERIES_FOLD_SECONDS, before it folds when idle: the
    lag a test sees is then what commits left, however slow the machine."""
    monkeypatch.setattr("eventtally.store.sqlite.SERIES_FOLD_SECONDS", 3600.0)


def lagging(store: SqliteStore) -> int:
    ((n,),) = rows(
        store,
        "SELECT count(*) FROM events WHERE id >= "
        "coalesce((SELECT series_from FROM counts_pending), 1 << 62)",
    )
    assert isinstance(n, int)
    return n


@pytest.mark.usefixtures("no_idle_fold")
def test_series_counts_lag_by_at_most_the_bound_and_reads_count_the_lagging_events(
    store: SqliteStore,
) -> None:
    store.series_fold_events = 100
    ws = store.create_workspace("w", "UTC", NOW)
    app = store.create_app(ws.id, "a", NOW)
    sent: list[dict[str, object]] = []
    seen_lagging = seen_folded = False
    for batch in range(6):
        events = spread(40, batch, app.app_id if batch % 2 else None)
        track(store, ws.id, events)
        sent += events
        lag = lagging(store)
        assert lag < 100  # past the bound, the commit folded every lagging event
        seen_lagging |= lag > 0
        seen_folded |= rows(store, "SELECT count(*) FROM event_counts") != [(0,)]
        assert hourly(store, ws.id, "e") == by_hour(sent)
        with_app = [e for e in sent if "app_id" in e]
        assert hourly(store, ws.id, "e", app.id) == by_hour(with_app)
    assert seen_lagging
    assert seen_folded


def test_the_writer_folds_every_lagging_event_once_ingest_pauses(store: SqliteStore) -> None:
    ws = store.create_workspace("w", "UTC", NOW)
    events = spread(60, 1)
    track(store, ws.id, events)
    assert lagging(store) == 60
    deadline = time.monotonic() + 20 * SERIES_FOLD_SECONDS
    while lagging(store) and time.monotonic() < deadline:
        time.sleep(SERIES_FOLD_SECONDS / 5)
    assert lagging(store) == 0
    assert rows(store, "SELECT series_from FROM counts_pending") == [(None,)]
    assert rows(store, "SELECT sum(n) FROM event_counts WHERE segment = 0 AND app = 0") == [(60,)]
    assert hourly(store, ws.id, "e") == by_hour(events)


@pytest.mark.usefixtures("no_idle_fold")
def test_a_segment_change_folds_the_lagging_events_first(store: SqliteStore) -> None:
    """The events lagging when a segment is untracked must not come back as its counts."""
    ws = store.create_workspace("w", "UTC", NOW)
    draft = Segment(0, ws.id, "", "all", {"attribute": "plan", "op": "eq", "value": "pro"}, True)
    segment = store.create_segment(ws.id, draft, NOW)
    store.track(ws.id, parse_track({"attributes": [{"external_id": "u", "plan": "pro"}]}, NOW), NOW)
    events = spread(30, 2)
    track(store, ws.id, events)
    assert lagging(store) == 30
    query = SeriesQuery(ws.id, "e", HOURS, segment=segment.id)
    assert store.count_series(query) == by_hour(events)
    store.update_segment(ws.id, segment.segment_id, SegmentChanges(tracking=False), NOW)
    assert lagging(store) == 0
    assert rows(store, f"SELECT count(*) FROM event_counts WHERE segment = {segment.id}") == [(0,)]
    store.update_segment(ws.id, segment.segment_id, SegmentChanges(tracking=True), NOW)
    assert store.count_series(query) == by_hour(events)  # rebuilt from the stored events


def test_migration_6_keeps_counts_of_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        for number, script in enumerate(MIGRATIONS[:5], start=1):
            for statement in (s.strip() for s in script.split(";") if s.strip()):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
        migrate(conn)
        assert conn.execute("SELECT series_from FROM counts_pending").fetchall() == [(None,)]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "events_type_time" not in names
        assert "events_type_time_before" in names
