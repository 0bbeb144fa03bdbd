"""Every kind of store, opened fresh for a test or a hypothesis example, and closed after."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import strategies as st

from eventtally.store.base import Store
from eventtally.store.clickhouse import ClickHouseStore
from eventtally.store.memory import MemoryStore
from eventtally.store.sqlite import SqliteStore
from eventtally.store.sqlite_tx import SERIES_FOLD_EVENTS
from tests.clickhouse_cluster import Cluster
from tests.clickhouse_server import ClickHouseServer

# "sqlite-process": the SQLite store applying track requests in its own process (as
# `serve` and `import` do). "cluster": the ClickHouse store sharded over a cluster of
# two clickhouse-server processes (Distributed tables over local ones).
KINDS = ("memory", "sqlite", "sqlite-process", "clickhouse", "cluster")
DURABLE = ("sqlite", "clickhouse")  # the stores property tests check at full length
# How many events the SQLite store's event_counts may lag before a commit folds them in
# (SqliteStore.series_fold_events): property tests draw one, so that series are read
# from the counts alone, from the raw rows alone, and from both.
FOLDS = st.sampled_from([1, 3, 100, SERIES_FOLD_EVENTS])


class Stores:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    @contextmanager
    def open(self, kind: str, series_fold_events: int = SERIES_FOLD_EVENTS) -> Iterator[Store]:
        if kind == "memory":
            yield MemoryStore()
        elif kind in ("sqlite", "sqlite-process"):
            process = kind == "sqlite-process"
            with (
                tempfile.TemporaryDirectory() as tmp,
                _closing(SqliteStore.open(Path(tmp), ingest_process=process)) as store,
            ):
                store.series_fold_events = series_fold_events  # (the thread's, not a child's)
                yield store
        elif kind in ("clickhouse", "cluster"):
            # The servers start with the first test that needs them (session fixtures).
            database = f"t_{secrets.token_hex(8)}"
            if kind == "clickhouse":
                server: ClickHouseServer = self._request.getfixturevalue("clickhouse_server")
                servers, cluster_name = [server], None
            else:
                cluster: Cluster = self._request.getfixturevalue("clickhouse_cluster")
                servers, cluster_name = list(cluster.servers), cluster.name
            try:
                store = ClickHouseStore.open(servers[0].url(database), cluster=cluster_name)
                with _closing(store):
                    yield store
            finally:
                for each in servers:
                    each.drop_database(database)
        else:
            raise ValueError(f"no store kind {kind!r}")


@contextmanager
def _closing(store: Store) -> Iterator[Store]:
    try:
        yield store
    finally:
        store.close()
