"""A throwaway ClickHouse cluster on one machine for the tests: shards × replicas
clickhouse-server processes (tests/clickhouse_server.py), each in its own directory under
one the caller owns, on free loopback ports, with ZooKeeper (tests/zookeeper_server.py)
when the tables are to replicate.

Each server gets the config of deploy/clickhouse/server.xml, plus config.d/cluster.xml
rendered from deploy/clickhouse/cluster.xml (the cluster: every server's native port; and
this server's shard and replica macros) and, with ZooKeeper, config.d/zookeeper.xml from
deploy/clickhouse/zookeeper.xml: the files an operator copies.

    with (
        running_zookeeper(tmp_path / "zk") as zk,
        running_cluster(tmp_path / "ch", shards=1, replicas=2, zookeeper=zk) as cluster,
    ):
        first, second = cluster.servers
        cluster.stop_server(1)
        ...  # write to the first replica alone
        second = cluster.start_server(1)  # a new process: cluster.servers[1] from now on

Give each cluster a ZooKeeper of its own (they start in well under a second). Clusters
sharing one would share the replicated tables' paths (every cluster's macros say shard 1,
replica r1) and the queue of ON CLUSTER statements, whose tasks name their servers by
host and port: a server on a port an earlier cluster used would take that cluster's
unfinished tasks for its own.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tests.clickhouse_server import (
    BINARY,
    HOST,
    START_TIMEOUT,
    ClickHouseServer,
    Ports,
    free_ports,
    restart,
    start,
    stop,
)
from tests.zookeeper_server import ZooKeeperServer

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "clickhouse"
CLUSTER_TEMPLATE = DEPLOY / "cluster.xml"
ZOOKEEPER_TEMPLATE = DEPLOY / "zookeeper.xml"
# The cluster's element in the template, renamed to the cluster's name.
TEMPLATE_NAME = "eventtally"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterServer(ClickHouseServer):
    """One server of the cluster: its shard (from 1) and its replica in the shard (from 1,
    named "r1", "r2"... in its macros)."""

    shard: int
    replica: int

    @property
    def replica_name(self) -> str:
        return replica_name(self.replica)


def replica_name(replica: int) -> str:
    return f"r{replica}"


class Cluster:
    """The running servers of one cluster, in order: shard 1's replicas, shard 2's, ..."""

    def __init__(
        self,
        name: str,
        directory: Path,
        servers: list[ClusterServer],
        zookeeper: ZooKeeperServer | None,
        binary: Path,
    ) -> None:
        self.name = name
        self.directory = directory
        self.servers = servers
        self.zookeeper = zookeeper
        self._binary = binary

    def url(self, database: str) -> str:
        """The first server's URL for `database`."""
        return self.servers[0].url(database)

    def server(self, shard: int, replica: int = 1) -> ClusterServer:
        for server in self.servers:
            if (server.shard, server.replica) == (shard, replica):
                return server
        raise KeyError(f"no server for shard {shard}, replica {replica}")

    def stop_server(self, index: int) -> int:
        """Stop `servers[index]` (SIGTERM, then SIGKILL if it lingers); its exit status."""
        return stop(self.servers[index].process)

    def start_server(self, index: int, *, timeout: float = START_TIMEOUT) -> ClusterServer:
        """Start `servers[index]` again, stopped by `stop_server`: the same directory,
        config, data and ports. `servers[index]` is the new process from then on."""
        old = self.servers[index]
        new = restart(old, binary=self._binary, timeout=timeout)
        self.servers[index] = dataclasses.replace(old, process=new.process)
        return self.servers[index]

    def stop(self) -> None:
        """Stop every server still running, all at once; ZooKeeper is the caller's."""
        _in_parallel([partial(stop, server.process) for server in self.servers])


@contextmanager
def running_cluster(
    directory: Path,
    *,
    name: str = "eventtally",
    shards: int = 2,
    replicas: int = 1,
    zookeeper: ZooKeeperServer | None = None,
    binary: Path = BINARY,
    timeout: float = START_TIMEOUT,
) -> Iterator[Cluster]:
    """Run a cluster in `directory` (empty or new) until the block ends; the directory is
    left in place (its servers' logs are worth keeping when a test failed)."""
    cluster = start_cluster(
        directory,
        name=name,
        shards=shards,
        replicas=replicas,
        zookeeper=zookeeper,
        binary=binary,
        timeout=timeout,
    )
    try:
        yield cluster
    finally:
        cluster.stop()


def start_cluster(
    directory: Path,
    name: str = "eventtally",
    shards: int = 2,
    replicas: int = 1,
    zookeeper: ZooKeeperServer | None = None,
    *,
    binary: Path = BINARY,
    timeout: float = START_TIMEOUT,
) -> Cluster:
    """Start shards × replicas servers, all at once, in directory/s{shard}r{replica}.

    With `zookeeper`, the shards replicate themselves (internal_replication is true) and
    ON CLUSTER statements work; without it, a Distributed table writes to every replica.
    If any server fails to start, the others are stopped and its error is raised.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a cluster name clickhouse-server accepts")
    if shards < 1 or replicas < 1:
        raise ValueError(f"a cluster needs shards and replicas, not {shards} × {replicas}")
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty")
    layout = [
        (shard, replica) for shard in range(1, shards + 1) for replica in range(1, replicas + 1)
    ]
    ports = _distinct_ports(len(layout))
    topology = {place: port.tcp for place, port in zip(layout, ports, strict=True)}
    started = _in_parallel(
        [
            partial(
                _start_one,
                directory / f"s{place[0]}r{place[1]}",
                binary=binary,
                ports=port,
                timeout=timeout,
                config_d=config_files(name, topology, place, zookeeper),
            )
            for place, port in zip(layout, ports, strict=True)
        ]
    )
    servers = [
        ClusterServer(server.directory, server.ports, server.process, shard, replica)
        for server, (shard, replica) in zip(started, layout, strict=True)
    ]
    return Cluster(name, directory, servers, zookeeper, binary)


def _start_one(directory: Path, **kwargs: Any) -> ClickHouseServer:
    # `start` looked up when called: a test may replace it.
    return start(directory, **kwargs)


def config_files(
    name: str,
    topology: dict[tuple[int, int], int],
    place: tuple[int, int],
    zookeeper: ZooKeeperServer | None,
) -> dict[str, str]:
    """The config.d files of the server at `place` (shard, replica) of the cluster whose
    servers' native ports `topology` gives by place."""
    files = {"cluster.xml": render_cluster(name, topology, place, replicated=zookeeper is not None)}
    if zookeeper is not None:
        files["zookeeper.xml"] = render_zookeeper(zookeeper.host, zookeeper.port)
    return files


def render_cluster(
    name: str,
    topology: dict[tuple[int, int], int],
    place: tuple[int, int],
    *,
    replicated: bool,
) -> str:
    root = _parse(CLUSTER_TEMPLATE)
    cluster = root.find(f"remote_servers/{TEMPLATE_NAME}")
    model_shard = cluster.find("shard") if cluster is not None else None
    model_replica = model_shard.find("replica") if model_shard is not None else None
    if cluster is None or model_shard is None or model_replica is None:
        raise ValueError(
            f"{CLUSTER_TEMPLATE}: no remote_servers/{TEMPLATE_NAME}/shard/replica to repeat"
        )
    cluster.tag = name
    for element in cluster.findall("shard"):
        cluster.remove(element)
    for element in model_shard.findall("replica"):
        model_shard.remove(element)
    internal = "true" if replicated else "false"
    for shard in sorted({shard for shard, _ in topology}):
        element = copy.deepcopy(model_shard)
        _fill(element, {"internal_replication": internal})
        for (in_shard, _replica), tcp_port in sorted(topology.items()):
            if in_shard == shard:
                address = copy.deepcopy(model_replica)
                _fill(address, {"host": HOST, "tcp_port": str(tcp_port)})
                element.append(address)
        cluster.append(element)
    shard, replica = place
    _fill(root, {"shard": str(shard), "replica": replica_name(replica)})
    return _serialize(root, CLUSTER_TEMPLATE)


def render_zookeeper(host: str, port: int) -> str:
    root = _parse(ZOOKEEPER_TEMPLATE)
    _fill(root, {"zookeeper_host": host, "zookeeper_port": str(port), "interserver_host": HOST})
    return _serialize(root, ZOOKEEPER_TEMPLATE)


def _parse(template: Path) -> ET.Element:
    # Comments inside <yandex> are kept; the template's header, outside it, is not: the
    # rendered file's header says where it comes from instead.
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    return ET.fromstring(template.read_text(), parser=parser)


def _fill(root: ET.Element, values: dict[str, str]) -> None:
    """Replace the placeholders in the text of `root` and of the elements in it."""
    for element in root.iter():
        # A comment's tag is a function, not a name.
        if not isinstance(element.tag, str) or not element.text:
            continue
        for key, value in values.items():
            element.text = element.text.replace("{" + key + "}", value)


def _serialize(root: ET.Element, template: Path) -> str:
    left = sorted(
        {
            found
            for element in root.iter()
            if isinstance(element.tag, str) and element.text
            for found in PLACEHOLDER.findall(element.text)
        }
    )
    if left:
        raise ValueError(f"{template}: placeholders without a value: {', '.join(left)}")
    ET.indent(root, space="  ")
    header = f"<!-- Rendered by tests/clickhouse_cluster.py from {template.relative_to(ROOT)}. -->"
    return f'<?xml version="1.0"?>\n{header}\n{ET.tostring(root, encoding="unicode")}\n'


def _distinct_ports(count: int) -> list[Ports]:
    """`count` sets of free ports, no port in two of them."""
    chosen: list[Ports] = []
    used: set[int] = set()
    for _ in range(count * 10):
        if len(chosen) == count:
            break
        ports = free_ports()
        if used.isdisjoint({ports.tcp, ports.http, ports.interserver}):
            chosen.append(ports)
            used |= {ports.tcp, ports.http, ports.interserver}
    if len(chosen) < count:
        raise RuntimeError(f"could not find {3 * count} distinct free loopback ports")
    return chosen


def _in_parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in a thread of its own and return their results in order; if any
    raised, stop the servers the others started (a result that has a process) and raise
    the first error."""
    if not calls:
        return []
    futures: list[Future[T]] = []
    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            for call in calls:
                futures.append(pool.submit(call))
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is None:
                result = future.result()
                if isinstance(result, ClickHouseServer):
                    stop(result.process)
        raise
