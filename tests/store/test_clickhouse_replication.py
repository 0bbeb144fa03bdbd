"""The ClickHouse store on a replicated cluster: one shard, two replicas, ZooKeeper
(Debian's), all real processes on loopback. A replica stopped and started again loses
nothing; while it is down, reads go on and ingest waits (inserts need two replicas)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from eventtally.domain.model import Segment, SeriesQuery
from eventtally.domain.track import parse_track
from eventtally.errors import StoreError
from eventtally.store.clickhouse import ClickHouseStore
from tests.clickhouse_cluster import running_cluster
from tests.zookeeper_server import running_zookeeper

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
DAY = ((NOW - 86_400_000_000, NOW),)

pytestmark = pytest.mark.slow


def _body(user: str, n: int) -> dict[str, object]:
    event = {"external_id": user, "name": "e", "time": "2025-12-31T12:00:00Z"}
    return {
        "attributes": [{"external_id": user, "visits": {"inc": n}}],
        "events": [event] * n,
    }


def _track(store: ClickHouseStore, ws: int, user: str, n: int) -> None:
    outcome = store.track(ws, parse_track(_body(user, n), NOW), NOW).result()
    assert outcome.events_processed == n


def test_a_replica_stopped_and_started_again_loses_nothing(tmp_path: Path) -> None:
    database = f"t_{secrets.token_hex(6)}"
    with (
        running_zookeeper(tmp_path / "zookeeper") as zookeeper,
        running_cluster(tmp_path / "clickhouse", shards=1, replicas=2, zookeeper=zookeeper) as c,
    ):
        first = ClickHouseStore.open(c.servers[0].url(database), cluster=c.name)
        try:
            assert first.layout.replicated
            ws = first.create_workspace("w", "UTC", NOW).id
            _track(first, ws, "u1", 10)
            c.stop_server(1)
            # Reads go on from the replica that is up.
            assert first.count_series(SeriesQuery(ws, "e", DAY)) == [10]
            # An insert needs both replicas: it waits, and the request is answered 503.
            with pytest.raises(StoreError):
                _track(first, ws, "u2", 5)
            c.start_server(1)
            _track(first, ws, "u2", 7)
        finally:
            first.close()
        # The restarted replica has everything, read on its own.
        second = ClickHouseStore.open(c.servers[1].url(database), cluster=c.name)
        try:
            assert second.count_series(SeriesQuery(ws, "e", DAY)) == [17]
            _track(second, ws, "u1", 1)
            assert second.count_series(SeriesQuery(ws, "e", DAY)) == [18]
            # u1's profile came across too: visits 10 + 1.
            eleven = {"attribute": "visits", "op": "eq", "value": 11}
            made = second.create_segment(ws, Segment(0, ws, "", "11", eleven, False), NOW + 1)
            assert second.segment_sizes(made.id, [NOW + 2]) == [1]
        finally:
            second.close()
