"""SQLite's idempotency-key table: written with the events, purged a batch per commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from eventtally.domain.idempotency import Idempotency, body_hash
from eventtally.domain.track import parse_track
from eventtally.store.sqlite import PURGE_BATCH, SqliteStore

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000
BODY = {"events": [{"external_id": "u", "name": "e", "time": "2025-06-01T12:00:00Z"}]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore.open(tmp_path)
    yield store
    store.close()


def rows(store: SqliteStore, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def test_the_key_is_stored_with_its_outcome_and_expiry(store: SqliteStore) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    idempotency = Idempotency("k", body_hash(BODY), HOUR)
    store.track(ws.id, parse_track(BODY, NOW), NOW, idempotency).result()
    columns = "workspace_id, key, body_hash, created_at, expires_at"
    assert rows(store, f"SELECT {columns} FROM idempotency_keys") == [
        (ws.id, "k", body_hash(BODY), NOW, NOW + HOUR)
    ]
    assert rows(store, "SELECT count(*) FROM events") == [(1,)]


def test_expired_keys_are_purged_a_bounded_batch_per_commit(store: SqliteStore) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    stale = PURGE_BATCH + 10
    for i in range(stale):
        idempotency = Idempotency(f"old-{i}", body_hash(BODY), HOUR)
        store.track(ws.id, parse_track(BODY, NOW), NOW, idempotency).result()
    later = NOW + 2 * HOUR
    live = Idempotency("live", body_hash(BODY), HOUR)
    store.track(ws.id, parse_track(BODY, later), later, live).result()
    assert rows(store, "SELECT count(*) FROM idempotency_keys") == [(11,)]
    store.track(ws.id, parse_track(BODY, later), later).result()  # any track request purges
    assert rows(store, "SELECT key FROM idempotency_keys") == [("live",)]
