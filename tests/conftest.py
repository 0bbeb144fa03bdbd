from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clickhouse_cluster import Cluster, start_cluster
from tests.clickhouse_server import ClickHouseServer, ClickHouseUnavailable, start, stop
from tests.redis_server import RedisServer, RedisUnavailable
from tests.redis_server import start as start_redis
from tests.redis_server import stop as stop_redis
from tests.stores import Stores
from tests.support import Api, running_api


@pytest.fixture(autouse=True)
def _no_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's EVENTTALLY_STORE must not send the suite's writes to their ClickHouse.
    monkeypatch.delenv("EVENTTALLY_STORE", raising=False)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path / "data") as api:
        yield api


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """One clickhouse-server for the whole session, started when a test first needs it.

    A missing or broken server fails the tests that need it: the ClickHouse store is
    tested on every run, CI included, and a skip would pass for a success.
    """
    try:
        server = start(tmp_path_factory.mktemp("clickhouse"))
    except ClickHouseUnavailable as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        # Outside the except block, so the report shows the reason once, not chained.
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="session")
def clickhouse_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two clickhouse-server processes as the two shards of cluster `eventtally`, for the
    whole session, started when a test first needs them."""
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("cluster"), shards=2)
    except ClickHouseUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def clickhouse_url(clickhouse_server: ClickHouseServer) -> Iterator[str]:
    """`clickhouse://127.0.0.1:PORT/t_<hex>`: a database name no other test uses, dropped
    afterwards. The database does not exist yet; the store creates it."""
    database = f"t_{secrets.token_hex(8)}"
    yield clickhouse_server.url(database)
    clickhouse_server.drop_database(database)


@pytest.fixture(scope="session")
def stores(request: pytest.FixtureRequest) -> Stores:
    """Opens a fresh store of any kind (tests.stores.KINDS); for hypothesis examples too."""
    return Stores(request)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session, started when a test first needs it (a missing
    one fails the tests that need it, as ClickHouse does)."""
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        stop_redis(server.process)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL whose database is flushed before the test."""
    import redis

    url = redis_server.url(0)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url
