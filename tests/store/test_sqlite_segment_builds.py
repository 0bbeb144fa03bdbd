"""A tracked segment's counts of the stored events are read without the write lock and
written in a transaction of their own (SqliteStore._build_segments); meanwhile ingest
goes on and the segment's series answer 503; a build a process left is finished later."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventtally.domain.model import Segment, SegmentChanges, SeriesQuery
from eventtally.domain.track import parse_track
from eventtally.errors import Unavailable
from eventtally.store import sqlite_segments
from eventtally.store.base import DEFAULT_TRACKED_LIMIT
from eventtally.store.sqlite import SqliteStore
from tests.store.test_sqlite_ingest import HOURS, NOW, by_hour, rows, spread, track

PRO = {"attribute": "plan", "op": "eq", "value": "pro"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore.open(tmp_path)
    yield store
    store.close()


def workspace_with_events(store: SqliteStore) -> tuple[int, list[dict[str, object]]]:
    """A workspace whose user "u" (plan pro) has 40 events, and "v" (no plan) 10 more."""
    ws = store.create_workspace("w", "UTC", NOW).id
    body = {"attributes": [{"external_id": "u", "plan": "pro"}]}
    store.track(ws, parse_track(body, NOW), NOW).result()
    events = spread(40, 1)
    track(store, ws, events)
    track(store, ws, [{**e, "external_id": "v"} for e in spread(10, 2)])
    return ws, events


def first_transaction_only(store: SqliteStore, ws: int, draft: Segment) -> Segment:
    """What create_segment commits before it counts: the segment, members, snapshot."""

    def create(conn: sqlite3.Connection) -> Segment:
        return sqlite_segments.create(
            conn, store._user_counts, ws, draft, DEFAULT_TRACKED_LIMIT, NOW
        )

    return store._write(create)


def test_the_series_answer_503_until_the_build_is_written_then_count_exactly(
    store: SqliteStore,
) -> None:
    ws, events = workspace_with_events(store)
    segment = first_transaction_only(store, ws, Segment(0, ws, "", "pro", PRO, True))
    query = SeriesQuery(ws, "e", HOURS, segment=segment.id)
    with pytest.raises(Unavailable, match="being built"):
        store.count_series(query)
    store._build_segments(wait=True)
    assert store.count_series(query) == by_hour(events)


def test_ingest_commits_while_the_stored_events_are_counted(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counting pass holds no write lock: a track request commits during it, and its
    event is counted once, by ingest (it is after the build's last event)."""
    ws, events = workspace_with_events(store)
    during = spread(5, 3)
    count_build = sqlite_segments.count_build

    def count_while_tracking(conn: sqlite3.Connection, build: sqlite_segments.Build) -> object:
        rows = count_build(conn, build)
        body = parse_track({"events": during}, NOW)
        assert store.track(ws, body, NOW).result(timeout=30).events_processed == 5
        return rows

    monkeypatch.setattr(sqlite_segments, "count_build", count_while_tracking)
    segment = store.create_segment(ws, Segment(0, ws, "", "pro", PRO, True), NOW)
    query = SeriesQuery(ws, "e", HOURS, segment=segment.id)
    assert store.count_series(query) == by_hour(events + during)


def test_a_build_left_unfinished_is_finished_when_the_store_is_next_opened(
    tmp_path: Path,
) -> None:
    store = SqliteStore.open(tmp_path)
    ws, events = workspace_with_events(store)
    segment = first_transaction_only(store, ws, Segment(0, ws, "", "pro", PRO, True))
    store.close()  # as if the process had died before counting
    reopened = SqliteStore.open(tmp_path)
    try:
        query = SeriesQuery(ws, "e", HOURS, segment=segment.id)
        assert reopened.count_series(query) == by_hour(events)
    finally:
        reopened.close()


def test_counts_of_a_build_superseded_before_they_are_written_are_dropped(
    store: SqliteStore,
) -> None:
    """A re-filter while a build's counts are being read: those counts belong to no build."""
    ws, events = workspace_with_events(store)
    segment = first_transaction_only(store, ws, Segment(0, ws, "", "pro", PRO, True))
    with store._reading() as conn:
        (stale,) = sqlite_segments.builds(conn)
        stale_rows = sqlite_segments.count_build(conn, stale)
    everyone = {"event": "e", "op": "gte", "count": 0}
    store.update_segment(ws, segment.segment_id, SegmentChanges(filter=everyone), NOW)
    store._write(lambda conn: sqlite_segments.finish_build(conn, stale, stale_rows))
    query = SeriesQuery(ws, "e", HOURS, segment=segment.id)
    v_events = [{**e, "external_id": "v"} for e in spread(10, 2)]
    assert store.count_series(query) == by_hour(events + v_events)


def test_untracking_during_a_build_leaves_nothing_to_finish(store: SqliteStore) -> None:
    ws, _ = workspace_with_events(store)
    segment = first_transaction_only(store, ws, Segment(0, ws, "", "pro", PRO, True))
    store.update_segment(ws, segment.segment_id, SegmentChanges(tracking=False), NOW)
    assert rows(store, "SELECT count(*) FROM segments WHERE building IS NOT NULL") == [(0,)]
    assert rows(store, f"SELECT count(*) FROM event_counts WHERE segment = {segment.id}") == [(0,)]
