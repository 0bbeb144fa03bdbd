"""Every kind of store, opened fresh for a test or a hypothesis example, and closed after."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from eventtally.store.base import Store
from eventtally.store.clickhouse import ClickHouseStore
from eventtally.store.memory import MemoryStore
from eventtally.store.sqlite import SqliteStore
from tests.clickhouse_server import ClickHouseServer

KINDS = ("memory", "sqlite", "clickhouse")
DURABLE = ("sqlite", "clickhouse")  # the real stores, checked against the reference


class Stores:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    @contextmanager
    def open(self, kind: str) -> Iterator[Store]:
        if kind == "memory":
            yield MemoryStore()
        elif kind == "sqlite":
            with (
                tempfile.TemporaryDirectory() as tmp,
                _closing(SqliteStore.open(Path(tmp))) as store,
            ):
                yield store
        elif kind == "clickhouse":
            # The server starts with the first test that needs it (a session fixture).
            server: ClickHouseServer = self._request.getfixturevalue("clickhouse_server")
            database = f"t_{secrets.token_hex(8)}"
            try:
                with _closing(ClickHouseStore.open(server.url(database))) as store:
                    yield store
            finally:
                server.drop_database(database)
        else:
            raise ValueError(f"no store kind {kind!r}")


@contextmanager
def _closing(store: Store) -> Iterator[Store]:
    try:
        yield store
    finally:
        store.close()
