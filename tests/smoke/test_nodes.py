"""Two API nodes: two `eventtally serve` processes on one ClickHouse store, sharing one
Redis (`EVENTTALLY_REDIS`), all on loopback. They serve the same counts, apply updates of
one user from both without losing any, count rate limits together, and a node killed
under load loses nothing acknowledged and counts nothing twice."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.smoke.server import Server, eventtally, init, serving, store_args

pytestmark = pytest.mark.slow

TIME = "2025-12-31T12:00:00Z"
DAY = {"event": "e", "length": 1, "unit": "day", "ending_at": "2026-01-01T00:00:00Z"}


@dataclass
class Nodes:
    key: str
    store: str
    data: Path
    servers: list[Server]

    def client(self, i: int, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.servers[i].url, headers=headers, timeout=timeout)

    def cli(self, *args: str) -> Any:
        done = eventtally(*args, *store_args(self.data, self.store), "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def nodes(
    tmp_path: Path, clickhouse_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Nodes]:
    # The nodes and every CLI command share the Redis (the environment is inherited).
    monkeypatch.setenv("EVENTTALLY_REDIS", redis_url)
    data = tmp_path / "data"
    key = init(data, "UTC", clickhouse_url)["api_key"]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(serving(data, log=tmp_path / f"node{i}.log", store=clickhouse_url))
            for i in range(2)
        ]
        yield Nodes(key, clickhouse_url, data, servers)


def body(n: int = 1) -> dict[str, Any]:
    """One `inc` of u's counter, then n events of u (they see the new counter)."""
    return {
        "attributes": [{"external_id": "u", "counter": {"inc": 1}}],
        "events": [{"external_id": "u", "name": "e", "time": TIME}] * n,
    }


def day_count(http: httpx.Client, **params: Any) -> int:
    response = http.get("/events/data_series", params=DAY | params)
    assert response.status_code == 200, response.text
    count: int = response.json()["data"][0]["count"]
    return count


def test_two_nodes_serve_the_same_counts_and_lose_no_update(nodes: Nodes) -> None:
    made = nodes.cli(
        "segments", "create", "--name", "ten", "--filter",
        '{"attribute": "counter", "op": "gte", "value": 10}',
    )  # fmt: skip
    requests = 40
    clients = [nodes.client(0), nodes.client(1)]
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(
                    lambda i: clients[i % 2].post("/users/track", json=body()).status_code,
                    range(requests),
                )
            )
        assert statuses == [201] * requests
        # Applied one after another whichever node took them: the k-th inc makes the
        # counter k, so the events of requests 10..40 count for the segment.
        for http in clients:
            assert day_count(http) == requests
            assert day_count(http, segment_id=made["id"]) == requests - 9
    finally:
        for http in clients:
            http.close()
    exact = nodes.cli(
        "segments", "create", "--name", "forty", "--no-tracking", "--filter",
        json.dumps({"attribute": "counter", "op": "eq", "value": requests}),
    )  # fmt: skip
    with nodes.client(1) as http:
        response = http.get(
            "/segments/data_series",
            params={"segment_id": exact["id"], "length": 1, "unit": "day"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"][-1]["size"] == 1


def test_rate_limits_are_counted_across_nodes(nodes: Nodes) -> None:
    done = eventtally(
        "workspaces", "update", "default", "--rate-limit", "track=10/86400",
        *store_args(nodes.data, nodes.store),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with nodes.client(0) as first, nodes.client(1) as second:
        answers = [(first, second)[i % 2].post("/users/track", json=body()) for i in range(16)]
    assert [a.status_code for a in answers] == [201] * 10 + [429] * 6
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"10"}
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:10]] == [
        str(n) for n in range(9, -1, -1)
    ]


def test_a_node_killed_under_load_loses_nothing_and_counts_nothing_twice(nodes: Nodes) -> None:
    """Requests with Idempotency-Keys go to node 0, retried on node 1 once node 0 is gone
    (a client behind a load balancer does just this); node 0 is killed mid-load."""
    requests, per_request = 120, 5
    acknowledged: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def send(i: int) -> None:
        headers = {"Idempotency-Key": f"request-{i}"}
        deadline = time.monotonic() + 60
        attempt = 0
        while time.monotonic() < deadline:
            if attempt:
                time.sleep(0.2)  # as the client's backoff would
            node = 1 if killed.is_set() or attempt else 0
            attempt += 1
            try:
                with nodes.client(node, timeout=10) as http:
                    response = http.post("/users/track", json=body(per_request), headers=headers)
            except httpx.TransportError:
                continue
            if response.status_code == 201:
                with lock:
                    acknowledged.add(i)
                    if len(acknowledged) == requests // 3 and not killed.is_set():
                        os.kill(nodes.servers[0].pid, signal.SIGKILL)
                        killed.set()
                return
            assert response.status_code in (409, 503), response.text
        raise AssertionError(f"request {i} never acknowledged")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, range(requests)))
    assert killed.is_set()
    assert acknowledged == set(range(requests))
    with nodes.client(1) as http:
        assert day_count(http) == requests * per_request
