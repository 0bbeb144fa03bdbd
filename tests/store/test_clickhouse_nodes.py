"""Several nodes on one ClickHouse store sharing one Redis (eventtally.shared_state): two
ClickHouseStore objects in one process stand for two API nodes, each with its own writer
thread and caches, against a real clickhouse-server and a real redis-server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from eventtally.domain.idempotency import Idempotency, body_hash
from eventtally.domain.model import Segment, SeriesQuery
from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.domain.track import TrackOutcome, parse_track
from eventtally.store.clickhouse import ClickHouseStore

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000_000
REQUESTS = 60


@pytest.fixture
def nodes(clickhouse_url: str, redis_url: str) -> Iterator[tuple[ClickHouseStore, ...]]:
    pair = (
        ClickHouseStore.open(clickhouse_url, redis=redis_url),
        ClickHouseStore.open(clickhouse_url, redis=redis_url),
    )
    yield pair
    for node in pair:
        node.close()


def _body(i: int) -> dict[str, object]:
    """One `inc` of u's counter, then one event of u: the event sees the new value."""
    return {
        "attributes": [{"external_id": "u", "counter": {"inc": 1}}],
        "events": [{"external_id": "u", "name": "e", "time": "2025-12-31T12:00:00Z"}],
    }


def _track(node: ClickHouseStore, ws: int, i: int) -> TrackOutcome:
    return node.track(ws, parse_track(_body(i), NOW), NOW).result()


def test_updates_of_one_user_on_two_nodes_lose_nothing(
    nodes: tuple[ClickHouseStore, ClickHouseStore],
) -> None:
    a, b = nodes
    ws = a.create_workspace("w", "UTC", NOW).id
    # Tracked before any event: an event counts for it once its user's counter is >= 10.
    draft = Segment(0, ws, "", "ten", {"attribute": "counter", "op": "gte", "value": 10}, True)
    ten = b.create_segment(ws, draft, NOW)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda i: _track(nodes[i % 2], ws, i), range(REQUESTS)))
    assert all(o.events_processed == 1 and not o.errors for o in outcomes)
    # Requests applied one after another whichever node took them: the k-th inc makes the
    # counter k, so the events of requests 10..REQUESTS count for the segment.
    day = ((NOW - DAY, NOW),)
    for node in nodes:
        assert node.count_series(SeriesQuery(ws, "e", day)) == [REQUESTS]
        assert node.count_series(SeriesQuery(ws, "e", day, segment=ten.id)) == [REQUESTS - 9]
    exact = Segment(
        0, ws, "", "exact", {"attribute": "counter", "op": "eq", "value": REQUESTS}, False
    )
    made = a.create_segment(ws, exact, NOW + 1)
    assert a.segment_sizes(made.id, [NOW + 2]) == [1]


def test_one_idempotency_key_sent_to_both_nodes_applies_once(
    nodes: tuple[ClickHouseStore, ClickHouseStore],
) -> None:
    a, _ = nodes
    ws = a.create_workspace("w", "UTC", NOW).id
    body = _body(0)
    keyed = Idempotency("k1", body_hash(body), 3600 * 1_000_000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(lambda n: n.track(ws, parse_track(body, NOW), NOW, keyed).result(), node)
            for node in itertools.islice(itertools.cycle(nodes), 6)
        ]
        outcomes = [f.result() for f in futures]
    assert sum(not o.replayed for o in outcomes) == 1
    assert {(o.events_processed, o.attributes_processed) for o in outcomes} == {(1, 1)}
    for node in nodes:
        assert node.count_series(SeriesQuery(ws, "e", ((NOW - DAY, NOW),))) == [1]


def test_rate_limit_windows_are_counted_across_nodes(
    nodes: tuple[ClickHouseStore, ClickHouseStore],
) -> None:
    counters = [node.window_counter() for node in nodes]
    limit = Limit(10, 60)
    decisions = [counters[i % 2].hit(7, RateBucket.TRACK, limit, NOW + i) for i in range(15)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 5
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    # The next window starts afresh, on either node.
    assert counters[1].hit(7, RateBucket.TRACK, limit, NOW + 60 * 1_000_000).remaining == 9
