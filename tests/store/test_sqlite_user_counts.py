"""The per-user event counts of the SQLite store, in a file of their own: folded beside the
writer without its lock, exact for every reader however far the folds lag, moved from a
schema-8 store, and counted again from the events when the file is lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventtally.domain.model import Segment
from eventtally.domain.track import parse_track
from eventtally.store.migrations import MIGRATIONS
from eventtally.store.sqlite import DB_FILE, SqliteStore
from eventtally.store.sqlite_user_counts import FILE, UserCounts
from tests.support import held

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SECOND = 1_000_000
BUYERS = {"event": "buy", "op": "gte", "count": 10}
BY_EVENTS = "SELECT user_id, event_type, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2"


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / SECOND, UTC).isoformat().replace("+00:00", "Z")


def track(store: SqliteStore, ws: int, events: list[dict[str, object]]) -> None:
    for start in range(0, len(events), 75):
        part = events[start : start + 75]
        outcome = store.track(ws, parse_track({"events": part}, NOW), NOW).result()
        assert outcome.events_processed == len(part), outcome


def buys_and_views(users: int, buys: int, views: int) -> list[dict[str, object]]:
    """`buys` "buy" and `views` "view" events for each of users u0 .. u<users-1>."""
    return [
        {"external_id": f"u{u}", "name": name, "time": iso(NOW - (i + 1) * SECOND)}
        for u in range(users)
        for i, name in enumerate(["buy"] * buys + ["view"] * views)
    ]


def events_rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{data / DB_FILE}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def counts_rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{data / FILE}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def through(data: Path) -> int:
    value = counts_rows(data, "SELECT through FROM folded")[0][0]
    assert isinstance(value, int)
    return value


def members(data: Path, segment: int) -> int:
    value = events_rows(data, f"SELECT count(*) FROM segment_members WHERE segment = {segment}")
    assert isinstance(value[0][0], int)
    return value[0][0]


def lose_counts_file(data: Path) -> None:
    for name in (FILE, FILE + "-wal", FILE + "-shm"):
        (data / name).unlink(missing_ok=True)


def wait_folded(data: Path) -> None:
    """Until the folder has counted every stored event (or 20 s passed)."""
    (last,) = events_rows(data, "SELECT max(id) FROM events")[0]
    deadline = time.monotonic() + 20
    while through(data) <= last and time.monotonic() < deadline:
        time.sleep(0.01)
    assert through(data) == last + 1


def no_background_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("eventtally.store.sqlite.FOLD_SECONDS", 3600.0)


def test_the_folder_catches_up_with_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("eventtally.store.sqlite.FOLD_SECONDS", 0.01)
    monkeypatch.setattr("eventtally.store.sqlite_user_counts.FOLD_CHUNK", 7)  # many chunks
    store = SqliteStore.open(tmp_path)
    try:
        ws = store.create_workspace("w", "UTC", NOW).id
        for users in (3, 5, 1):
            track(store, ws, buys_and_views(users, 4, 3))
        wait_folded(tmp_path)
        folded = "SELECT user_id, event_type, n FROM user_event_counts ORDER BY 1, 2"
        assert counts_rows(tmp_path, folded) == events_rows(tmp_path, BY_EVENTS)
    finally:
        store.close()


def test_with_an_ingest_process_only_its_writer_folds(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path, ingest_process=True)
    try:
        # The parent's writer thread adds no events: a folder of its own would only take
        # turns with the child's on the counts file's lock.
        assert "eventtally-counts" not in {thread.name for thread in threading.enumerate()}
        ws = store.create_workspace("w", "UTC", NOW).id
        track(store, ws, buys_and_views(4, 3, 2))
        wait_folded(tmp_path)
    finally:
        store.close()


@pytest.mark.parametrize("scan", [True, False], ids=["lagging-counted", "lagging-folded"])
def test_profiles_count_the_events_not_yet_folded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scan: bool
) -> None:
    no_background_folds(monkeypatch)
    if not scan:  # a read folds what lags first
        monkeypatch.setattr("eventtally.store.sqlite_tx.PENDING_SCAN", 0)
    store = SqliteStore.open(tmp_path)
    try:
        ws = store.create_workspace("w", "UTC", NOW).id
        track(store, ws, buys_and_views(3, 10, 5) + buys_and_views(5, 9, 0))
        assert through(tmp_path) == 1  # ingest leaves them to the folder
        segment = store.create_segment(ws, Segment(0, ws, "", "buyers", BUYERS, True), NOW)
        assert members(tmp_path, segment.id) == 3  # u0, u1 and u2 bought 10 times
        (last,) = events_rows(tmp_path, "SELECT max(id) FROM events")[0]
        assert through(tmp_path) == (1 if scan else last + 1)
        # A profile loaded now (the writer's cache dropped) still counts every event.
        store._caches.clear()
        track(store, ws, [{"external_id": "u4", "name": "buy", "time": iso(NOW - SECOND)}])
        assert members(tmp_path, segment.id) == 4
    finally:
        store.close()


def test_a_fold_takes_no_write_lock_on_the_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_background_folds(monkeypatch)
    store = SqliteStore.open(tmp_path)
    try:
        ws = store.create_workspace("w", "UTC", NOW).id
        track(store, ws, buys_and_views(4, 2, 2))
        counts = UserCounts(tmp_path, tmp_path / DB_FILE)
        counts.conn.execute("PRAGMA busy_timeout = 100")  # a wait for the lock fails
        try:
            with held(store):  # the writer holds the events' write lock meanwhile
                assert counts.fold() == 16
        finally:
            counts.close()
        assert through(tmp_path) == 17
    finally:
        store.close()


def schema_8(data: Path, folded_before: int | None) -> None:
    """Make a closed store look as schema 8 left it: the per-user counts in the events'
    file, those of the events from `folded_before` on (None: none) not yet folded in."""
    lose_counts_file(data)
    with closing(sqlite3.connect(data / DB_FILE, isolation_level=None)) as conn:
        conn.execute(
            "CREATE TABLE user_event_counts (user_id INTEGER NOT NULL, event_type INTEGER "
            "NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (user_id, event_type)) WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO user_event_counts SELECT user_id, event_type, count(*) FROM events "
            "WHERE id < ? GROUP BY 1, 2",
            (folded_before or 1 << 62,),
        )
        conn.execute("ALTER TABLE counts_pending ADD COLUMN from_event INTEGER")
        conn.execute("UPDATE counts_pending SET from_event = ?", (folded_before,))
        conn.execute("PRAGMA user_version = 8")


@pytest.mark.parametrize("folded_before", [None, 12], ids=["all-folded", "some-lagging"])
def test_the_counts_of_a_schema_8_store_move_to_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folded_before: int | None
) -> None:
    no_background_folds(monkeypatch)
    store = SqliteStore.open(tmp_path)
    ws = store.create_workspace("w", "UTC", NOW).id
    track(store, ws, buys_and_views(3, 10, 2) + buys_and_views(2, 4, 0))
    store.close()
    schema_8(tmp_path, folded_before)
    legacy = events_rows(tmp_path, "SELECT * FROM user_event_counts ORDER BY 1, 2")
    (last,) = events_rows(tmp_path, "SELECT max(id) FROM events")[0]
    store = SqliteStore.open(tmp_path)
    try:
        assert events_rows(tmp_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        tables = {r[0] for r in events_rows(tmp_path, "SELECT name FROM sqlite_master")}
        assert "user_event_counts" not in tables
        assert counts_rows(tmp_path, "SELECT * FROM user_event_counts ORDER BY 1, 2") == legacy
        assert through(tmp_path) == (folded_before or last + 1)
        segment = store.create_segment(ws, Segment(0, ws, "", "buyers", BUYERS, True), NOW)
        assert members(tmp_path, segment.id) == 3
    finally:
        store.close()


def test_a_lost_counts_file_is_counted_again_from_the_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("eventtally.store.sqlite.FOLD_SECONDS", 0.01)
    store = SqliteStore.open(tmp_path)
    ws = store.create_workspace("w", "UTC", NOW).id
    track(store, ws, buys_and_views(4, 10, 1))
    store.close()
    lose_counts_file(tmp_path)
    no_background_folds(monkeypatch)
    store = SqliteStore.open(tmp_path)
    try:
        assert through(tmp_path) == 1
        segment = store.create_segment(ws, Segment(0, ws, "", "buyers", BUYERS, True), NOW)
        assert members(tmp_path, segment.id) == 4
    finally:
        store.close()
