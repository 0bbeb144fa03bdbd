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
from eventtally.store.base import DEFAULT_TRACKED_LIMIT, SLOT_US
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
        store._caches.clear()  # as create_segment does: rules and memberships change
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


@pytest.mark.parametrize("lagging", [False, True], ids=["folded-meanwhile", "lagging"])
def test_a_segment_of_most_users_counts_everyone_less_the_others_exactly(
    store: SqliteStore, lagging: bool
) -> None:
    """With most users members, a build takes everyone's counts up to its last event and
    subtracts the others' events (count_build): exact whether the events ingested since
    are folded into event_counts before it reads or still lag."""
    ws, u_events = workspace_with_events(store)  # u: plan pro; v: no plan
    created = store.create_app(ws, "a", NOW)
    app = created.app_id
    body = {"attributes": [{"external_id": "w", "plan": "pro"}]}
    store.track(ws, parse_track(body, NOW), NOW).result()
    w_events = [{**e, "external_id": "w"} for e in spread(30, 4, app)]
    track(store, ws, w_events)
    segment = first_transaction_only(store, ws, Segment(0, ws, "", "pro", PRO, True))
    during = spread(7, 5, app) + [{**e, "external_id": "v"} for e in spread(9, 6, app)]
    track(store, ws, during)  # u counts for the segment as it is ingested, v does not
    if not lagging:
        store._write(store._fold_series)
    with store._reading() as conn:
        (pending,) = conn.execute("SELECT series_from FROM counts_pending").fetchone()
    assert (pending is None) is not lagging
    store._build_segments(wait=True)
    counted = u_events + w_events + during[:7]
    for on_app in (None, created.id):
        query = SeriesQuery(ws, "e", HOURS, on_app, segment=segment.id)
        expected = [e for e in counted if on_app is None or e.get("app_id") == app]
        assert store.count_series(query) == by_hour(expected)


def test_everyone_up_to_an_event_counts_the_folded_and_the_lagging_exactly(
    store: SqliteStore,
) -> None:
    """`_everyone` for every `through`, with some events folded into event_counts and the
    rest lagging: what the raw events say, each event's slot worked out here."""
    ws, _ = workspace_with_events(store)
    app = store.create_app(ws, "a", NOW).app_id
    store._write(store._fold_series)
    track(store, ws, spread(12, 7, app) + spread(5, 8))  # these lag
    events = rows(store, "SELECT id, event_type, coalesce(app, 0), time FROM events")
    with store._reading() as conn:
        (lag_from,) = conn.execute("SELECT series_from FROM counts_pending").fetchone()
    assert lag_from is not None
    for through in sorted({0, lag_from - 1, lag_from, *(int(e[0]) for e in events[::7])}):
        expected: dict[tuple[int, int, int], int] = {}
        for key, event_type, on_app, time in events:
            if int(key) <= through:
                slot = (event_type, on_app, int(time) // SLOT_US)
                expected[slot] = expected.get(slot, 0) + 1
        with store._reading() as conn:
            got = sqlite_segments._everyone(conn, sqlite_segments.Build(0, ws, through, 0))
        assert {k: n for k, n in got.items() if n} == expected, through
