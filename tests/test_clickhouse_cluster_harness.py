"""The test suite's ClickHouse cluster and ZooKeeper launchers (tests/clickhouse_cluster.py,
tests/zookeeper_server.py), proved with plain SQL through clickhouse_driver: shards that a
Distributed table writes to and reads from, replicas that share their inserts through
ZooKeeper and catch up after a restart, and DDL ON CLUSTER.

What ClickHouse 18.16 does here, as these tests pin it down:
- a Distributed insert with insert_distributed_sync=1 has reached every shard when it
  returns, materialized views on a shard's tables included; one shard down fails it;
- with replicas, that insert has reached one replica of each shard: a read through the
  Distributed table may go to another, unless the insert also had insert_quorum;
- a replicated table drops a block identical to one it took lately (insert_deduplicate),
  through a materialized view too;
- SYSTEM SYNC REPLICA exists; SYSTEM FLUSH DISTRIBUTED does not;
- ON CLUSTER works once ZooKeeper and <distributed_ddl> are configured, and is refused
  without them ("DDL background thread is not initialized").
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from clickhouse_driver.errors import ServerException

import tests.clickhouse_cluster as clickhouse_cluster
from tests.clickhouse_cluster import (
    Cluster,
    ClusterServer,
    render_cluster,
    running_cluster,
    start_cluster,
)
from tests.clickhouse_server import ClickHouseServer, ClickHouseUnavailable, start
from tests.zookeeper_server import (
    ZooKeeperServer,
    ZooKeeperUnavailable,
    running_zookeeper,
)
from tests.zookeeper_server import start as start_zookeeper

pytestmark = pytest.mark.slow

T = TypeVar("T")
POLL_TIMEOUT = 30.0
SYNC = {"insert_distributed_sync": 1}
NO_DEDUP = {"insert_deduplicate": 0}


@pytest.fixture
def zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A ZooKeeper for one cluster (see tests/clickhouse_cluster.py on sharing one)."""
    with running_zookeeper(tmp_path / "zookeeper") as server:
        yield server


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("two-shards"), shards=2) as cluster:
        yield cluster


@pytest.fixture
def database() -> str:
    """A database name no other test uses (the ZooKeeper paths of its tables too)."""
    return f"t_{secrets.token_hex(8)}"


def _query(server: ClickHouseServer, sql: str, *args: Any, **kwargs: Any) -> list[Any]:
    with server.client() as client:
        rows: list[Any] = client.execute(sql, *args, **kwargs)
    return rows


def _on_each(cluster: Cluster, *statements: str) -> None:
    for server in cluster.servers:
        with server.client() as client:
            for sql in statements:
                client.execute(sql)


def _listening_on(port: int) -> set[str]:
    """The addresses of the sockets listening on TCP `port`, from /proc/net (an IPv6 socket
    listening on an IPv4 address shows that address)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path("/proc/net", table).read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel writes the address as 32-bit words in host (little-endian) order.
            ip = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.add(str(mapped or ip))
    return found


def _eventually(read: Callable[[], T], expected: T, timeout: float = POLL_TIMEOUT) -> T:
    """Poll `read` until it returns `expected` or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# --- Two shards, no ZooKeeper ----------------------------------------------------------


def test_every_server_knows_the_whole_cluster_and_its_own_place(two_shards: Cluster) -> None:
    assert [(server.shard, server.replica) for server in two_shards.servers] == [(1, 1), (2, 1)]
    for server in two_shards.servers:
        clusters = "SELECT count() FROM system.clusters WHERE cluster = 'eventtally'"
        assert _query(server, clusters) == [(2,)]
        ports = "SELECT port FROM system.clusters WHERE cluster = 'eventtally' ORDER BY shard_num"
        assert _query(server, ports) == [(s.ports.tcp,) for s in two_shards.servers]
        macros = dict(_query(server, "SELECT macro, substitution FROM system.macros"))
        assert macros == {"shard": str(server.shard), "replica": "r1"}
        config = (server.directory / "config.d" / "cluster.xml").read_text()
        assert "<internal_replication>false</internal_replication>" in config
        assert not (server.directory / "config.d" / "zookeeper.xml").exists()
        for port in (server.ports.tcp, server.ports.http, server.ports.interserver):
            assert _listening_on(port) == {"127.0.0.1"}
    assert two_shards.url("db") == f"clickhouse://127.0.0.1:{two_shards.servers[0].ports.tcp}/db"


def test_a_distributed_insert_lands_on_both_shards(two_shards: Cluster, database: str) -> None:
    _on_each(
        two_shards,
        f"CREATE DATABASE {database}",
        f"CREATE TABLE {database}.t_local (x UInt64) ENGINE = MergeTree ORDER BY x",
        f"CREATE TABLE {database}.t AS {database}.t_local "
        f"ENGINE = Distributed(eventtally, {database}, t_local, x)",
    )
    first = two_shards.servers[0]
    rows = [(x,) for x in range(20)]
    _query(first, f"INSERT INTO {database}.t (x) VALUES", rows, settings=SYNC)
    # The sharding key modulo the shards' total weight picks the shard: 0 the first.
    for server in two_shards.servers:
        local = _query(server, f"SELECT x FROM {database}.t_local ORDER BY x")
        assert local == [(x,) for x in range(20) if x % 2 == server.shard - 1]
        assert _query(server, f"SELECT count(), sum(x) FROM {database}.t") == [(20, 190)]
    _on_each(two_shards, f"DROP DATABASE {database}")


def test_a_distributed_journal_feeds_the_materialized_views_of_its_shards(
    two_shards: Cluster, database: str
) -> None:
    """The ClickHouse store's shape: inserts into a Null journal, which materialized views
    copy into the tables that keep the rows. Through a Distributed journal, a synchronous
    insert has passed through the views on every shard by the time it returns."""
    _on_each(
        two_shards,
        f"CREATE DATABASE {database}",
        f"CREATE TABLE {database}.journal_local (user UInt64, name String) ENGINE = Null",
        f"CREATE TABLE {database}.events_local (user UInt64, name String) "
        "ENGINE = MergeTree ORDER BY user",
        f"CREATE MATERIALIZED VIEW {database}.events_mv TO {database}.events_local "
        f"AS SELECT user, name FROM {database}.journal_local",
        f"CREATE TABLE {database}.journal AS {database}.journal_local "
        f"ENGINE = Distributed(eventtally, {database}, journal_local, user)",
    )
    rows = [(user, f"e{user}") for user in range(10)]
    _query(two_shards.servers[1], f"INSERT INTO {database}.journal VALUES", rows, settings=SYNC)
    for server in two_shards.servers:
        # No polling: the rows are there as soon as the insert has returned.
        local = _query(server, f"SELECT user, name FROM {database}.events_local ORDER BY user")
        assert local == [row for row in rows if row[0] % 2 == server.shard - 1]
        assert _query(server, f"SELECT count() FROM {database}.journal_local") == [(0,)]
    _on_each(two_shards, f"DROP DATABASE {database}")


def test_on_cluster_is_refused_without_zookeeper(two_shards: Cluster) -> None:
    with pytest.raises(ServerException, match="DDL background thread is not initialized"):
        _query(two_shards.servers[0], "CREATE DATABASE t_never ON CLUSTER eventtally")


# --- Replicas, through ZooKeeper ------------------------------------------------------


def test_zookeeper_answers_on_loopback_only(zookeeper: ZooKeeperServer) -> None:
    assert zookeeper.four_letter_word("ruok") == "imok"
    assert "Mode: standalone" in zookeeper.four_letter_word("stat")
    assert _listening_on(zookeeper.port) == {"127.0.0.1"}


def test_replicas_share_their_inserts_and_a_stopped_one_catches_up(
    tmp_path: Path, zookeeper: ZooKeeperServer, database: str
) -> None:
    with running_cluster(tmp_path / "ch", shards=1, replicas=2, zookeeper=zookeeper) as cluster:
        assert [(s.shard, s.replica_name) for s in cluster.servers] == [(1, "r1"), (1, "r2")]
        _on_each(
            cluster,
            f"CREATE DATABASE {database}",
            f"CREATE TABLE {database}.t (x UInt64) ENGINE = ReplicatedMergeTree("
            f"'/clickhouse/tables/{{shard}}/{database}/t', '{{replica}}') ORDER BY x",
        )
        first, _ = cluster.servers
        count = f"SELECT count(), sum(x) FROM {database}.t"
        _query(first, f"INSERT INTO {database}.t (x) VALUES", [(x,) for x in range(100)])
        _query(cluster.servers[1], f"SYSTEM SYNC REPLICA {database}.t")
        assert _query(cluster.servers[1], count) == [(100, sum(range(100)))]

        status = cluster.stop_server(1)
        assert status == 0
        old_pid = cluster.servers[1].process.pid
        # The first replica takes writes alone meanwhile.
        _query(first, f"INSERT INTO {database}.t (x) VALUES", [(x,) for x in range(100, 200)])
        second = cluster.start_server(1)
        assert second.process.pid != old_pid
        assert second.ports == cluster.servers[1].ports
        _query(second, f"SYSTEM SYNC REPLICA {database}.t")
        everything = [(200, sum(range(200)))]
        assert _eventually(lambda: _query(second, count), everything) == everything

        # And the other way round: what the restarted replica takes, the first one gets.
        _query(second, f"INSERT INTO {database}.t (x) VALUES", [(x,) for x in range(200, 250)])
        _query(first, f"SYSTEM SYNC REPLICA {database}.t")
        assert _query(first, count) == [(250, sum(range(250)))]

        # A replicated table drops a block of rows identical to one of the last 100 it
        # took (insert_deduplicate), even when the rows are new ones that look the same.
        again = [(x,) for x in range(200, 250)]
        _query(first, f"INSERT INTO {database}.t (x) VALUES", again)
        assert _query(first, count) == [(250, sum(range(250)))]
        _query(first, f"INSERT INTO {database}.t (x) VALUES", again, settings=NO_DEDUP)
        assert _query(first, count) == [(300, sum(range(250)) + sum(range(200, 250)))]
    assert all(server.process.returncode is not None for server in cluster.servers)


def test_on_cluster_ddl_and_a_distributed_table_over_replicated_shards(
    tmp_path: Path, zookeeper: ZooKeeperServer, database: str
) -> None:
    with running_cluster(tmp_path / "ch", shards=2, replicas=2, zookeeper=zookeeper) as cluster:
        config = (cluster.servers[0].directory / "config.d" / "cluster.xml").read_text()
        assert "<internal_replication>true</internal_replication>" in config
        first = cluster.servers[0]
        on_cluster = [
            f"CREATE DATABASE {database} ON CLUSTER eventtally",
            f"CREATE TABLE {database}.events_local ON CLUSTER eventtally "
            "(user UInt64, name String) ENGINE = ReplicatedMergeTree("
            f"'/clickhouse/tables/{{shard}}/{database}/events_local', '{{replica}}') "
            "ORDER BY user",
            f"CREATE TABLE {database}.journal_local ON CLUSTER eventtally "
            "(user UInt64, name String) ENGINE = Null",
            f"CREATE MATERIALIZED VIEW {database}.events_mv ON CLUSTER eventtally "
            f"TO {database}.events_local AS SELECT user, name FROM {database}.journal_local",
            f"CREATE TABLE {database}.journal ON CLUSTER eventtally AS {database}.journal_local "
            f"ENGINE = Distributed(eventtally, {database}, journal_local, user)",
            f"CREATE TABLE {database}.events ON CLUSTER eventtally AS {database}.events_local "
            f"ENGINE = Distributed(eventtally, {database}, events_local, user)",
        ]
        for sql in on_cluster:
            # One row per server: (host, port, status, error, hosts left, hosts active).
            done = _query(first, sql)
            assert sorted((port, status) for _, port, status, *_ in done) == sorted(
                (server.ports.tcp, 0) for server in cluster.servers
            )
        rows = [(user, "e") for user in range(40)]
        # insert_distributed_sync waits for one replica of each shard, and a read through
        # the Distributed table may go to the other before it has fetched the rows: the
        # quorum makes the insert wait for both.
        settings = {**SYNC, "insert_quorum": 2}
        _query(first, f"INSERT INTO {database}.journal VALUES", rows, settings=settings)
        for server in cluster.servers:
            assert _query(server, f"SELECT count() FROM {database}.events") == [(40,)]
            users = _query(server, f"SELECT user FROM {database}.events_local ORDER BY user")
            assert users == [(user,) for user, _ in rows if user % 2 == server.shard - 1]


# --- The harness itself --------------------------------------------------------------


def test_the_config_lists_every_replica_of_every_shard() -> None:
    topology = {(1, 1): 9001, (1, 2): 9002, (2, 1): 9003, (2, 2): 9004}
    text = render_cluster("sales", topology, (2, 2), replicated=True)
    assert "{" not in text
    assert text.count("<shard>") == 2 + 1  # two in remote_servers, one in the macros
    assert text.count("<replica>") == 4 + 1
    for port in topology.values():
        assert f"<port>{port}</port>" in text
    assert "<sales>" in text
    assert "<eventtally>" not in text
    assert "<shard>2</shard>" in text
    assert "<replica>r2</replica>" in text


def test_a_cluster_refuses_a_directory_in_use_and_a_bad_name(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        start_cluster(tmp_path / "used")
    with pytest.raises(ValueError, match="cluster name"):
        start_cluster(tmp_path / "new", name="no-dashes")


def test_a_server_that_fails_to_start_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ClickHouseServer] = []

    def start_but_not_s2r1(directory: Path, **kwargs: Any) -> ClickHouseServer:
        if directory.name == "s2r1":
            raise ClickHouseUnavailable("s2r1 would not start")
        server = start(directory, **kwargs)
        started.append(server)
        return server

    monkeypatch.setattr(clickhouse_cluster, "start", start_but_not_s2r1)
    with pytest.raises(ClickHouseUnavailable, match="s2r1 would not start"):
        start_cluster(tmp_path, shards=3)
    assert len(started) == 2
    assert all(server.process.returncode is not None for server in started)


def test_a_running_server_cannot_be_started_again(tmp_path: Path) -> None:
    with running_cluster(tmp_path, shards=1) as cluster:
        with pytest.raises(ValueError, match="still running"):
            cluster.start_server(0)
        server: ClusterServer = cluster.server(1, 1)
        assert server is cluster.servers[0]
        with pytest.raises(KeyError):
            cluster.server(2, 1)


def test_zookeeper_without_java_or_its_jar_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ZooKeeperUnavailable, match="Debian package zookeeper"):
        start_zookeeper(tmp_path / "a", java="no-such-java")
    with pytest.raises(ZooKeeperUnavailable, match="Debian package zookeeper"):
        start_zookeeper(tmp_path / "b", jar=tmp_path / "no-such.jar")


def test_zookeeper_on_a_taken_port_reports_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with (
            pytest.raises(ZooKeeperUnavailable) as failure,
            running_zookeeper(tmp_path / "zk", port=port),
        ):
            pass
    message = str(failure.value)
    assert "exited with status" in message
    assert "Address already in use" in message
