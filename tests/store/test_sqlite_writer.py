"""The SQLite writer survives callers that give up and groups that fail."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from eventtally.errors import StoreError
from eventtally.store.sqlite import SqliteStore


def test_a_cancelled_request_is_skipped_and_the_writer_goes_on(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path)
    try:
        entered, release = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> str:
            entered.set()
            release.wait(10)
            return "held"

        first = store._submit(hold)
        assert entered.wait(10)
        abandoned = store._submit(lambda conn: conn.execute("SELECT 1").fetchone())
        assert abandoned.cancel()  # the caller gave up before the writer reached it
        running = store._submit(lambda conn: 42)
        release.set()
        assert first.result(10) == "held"
        assert running.result(10) == 42
        assert store.create_workspace("w", "UTC", 0).name == "w"
    finally:
        store.close()


def test_a_started_request_cannot_be_cancelled(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path)
    try:
        entered, release = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> str:
            entered.set()
            release.wait(10)
            return "done"

        future = store._submit(hold)
        assert entered.wait(10)
        assert not future.cancel()
        release.set()
        assert future.result(10) == "done"
    finally:
        store.close()


def test_an_unexpected_failure_fails_its_group_not_the_writer(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path)
    try:
        broken = store._submit(lambda conn: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            broken.result(10)
        original = store._caches.check

        def explode(conn: sqlite3.Connection) -> None:
            raise RuntimeError("cache check broke")

        store._caches.check = explode  # type: ignore[method-assign]
        with pytest.raises(StoreError, match="cache check broke"):
            store._submit(lambda conn: 1).result(10)
        store._caches.check = original  # type: ignore[method-assign]
        assert store._submit(lambda conn: 2).result(10) == 2
    finally:
        store.close()
