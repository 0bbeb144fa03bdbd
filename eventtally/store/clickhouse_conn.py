"""Talking to ClickHouse: the store URL, connections, driver errors as eventtally's own,
and the schema migrations."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from clickhouse_driver import Client
from clickhouse_driver import errors as driver_errors

from eventtally.errors import StoreError, StoreFull
from eventtally.store.clickhouse_schema import MIGRATIONS, Layout

# The driver logs a warning with a traceback for every failed connection attempt; the
# error it raises is translated below and reported once by whoever called.
logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)

SCHEME = "clickhouse"
DEFAULT_PORT = 9000
# Seconds a statement may wait for ClickHouse before the request gets 503 (a hung server
# answers nothing); bulk work (segment rebuilds, migrations) gets BULK_TIMEOUT.
DEFAULT_TIMEOUT = 30.0
BULK_TIMEOUT = 3600.0
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Settings every connection runs with. `insert_distributed_sync`: an insert into a
# Distributed table returns once every shard has its rows, so the next query sees them.
# `insert_deduplicate` off: Replicated tables would otherwise drop a block identical to
# one of the last hundred, and two groups can legitimately hold the same rows (the same
# event sent twice without an Idempotency-Key counts twice, as Braze counts it).
_SETTINGS = {"insert_distributed_sync": 1, "insert_deduplicate": 0}


@dataclass(frozen=True)
class ClickHouseUrl:
    """`clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE`, the native protocol's port."""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""

    @classmethod
    def parse(cls, text: str) -> ClickHouseUrl:
        try:
            parts = urlsplit(text)
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise StoreError(f"store URL {_shown(text)!r}: {exc}") from None
        if parts.scheme != SCHEME or not parts.hostname:
            raise StoreError(
                f"store URL {_shown(text)!r}: expected clickhouse://HOST:PORT/DATABASE"
            )
        database = parts.path.strip("/") or "eventtally"
        if not _IDENTIFIER.fullmatch(database):
            raise StoreError(
                f"store URL {_shown(text)!r}: the database name must be letters, digits "
                "and underscores, not starting with a digit"
            )
        return cls(
            host=parts.hostname,
            port=port,
            database=database,
            user=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
        )

    def __str__(self) -> str:  # never the password
        return f"{SCHEME}://{self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        return f"ClickHouseUrl({str(self)!r})"

    def client(self, timeout: float) -> Client:
        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            connect_timeout=min(timeout, 5),
            send_receive_timeout=timeout,
            settings=_SETTINGS,
        )


def _shown(text: str) -> str:
    """A URL as it may appear in a message: without its password."""
    try:
        parts = urlsplit(text)
        if parts.password:
            return text.replace(f":{parts.password}@", ":***@")
    except ValueError:
        pass
    return text


def translate(exc: BaseException, url: ClickHouseUrl) -> StoreError:
    """A driver or socket error as eventtally's own (the web layer answers 503)."""
    if isinstance(exc, driver_errors.ServerException):
        first = str(exc).split("Stack trace", 1)[0].strip()
        if any(s in first.lower() for s in ("no space left", "not enough space")):
            return StoreFull(
                "ClickHouse's disk is full, so the store cannot write now; retry later"
            )
        return StoreError(f"ClickHouse at {url} refused: {first}")
    return StoreError(f"ClickHouse at {url} is unreachable: {exc}")


DRIVER_ERRORS = (driver_errors.Error, OSError, EOFError)


class Connections:
    """One client per thread (a driver client is not thread-safe), errors translated."""

    def __init__(self, url: ClickHouseUrl, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.db = url.database
        self.settings: dict[str, Any] = {}  # on top of _SETTINGS, for every statement
        self._local = threading.local()
        self._all: list[Client] = []
        self._lock = threading.Lock()

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self.url.client(self.timeout)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a statement; `{db}` in it names the store's database."""
        try:
            rows: list[tuple[Any, ...]] = self._client().execute(
                sql.replace("{db}", self.db), params, settings=self.settings
            )
        except DRIVER_ERRORS as exc:
            self._drop()
            raise translate(exc, self.url) from None
        return rows

    def insert(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            self._client().execute(sql.replace("{db}", self.db), rows, settings=self.settings)
        except DRIVER_ERRORS as exc:
            self._drop()
            raise translate(exc, self.url) from None

    def _drop(self) -> None:
        """Forget this thread's client after a failure: the next query reconnects."""
        client: Client | None = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.disconnect()

    def close(self) -> None:
        with self._lock:
            for client in self._all:
                client.disconnect()
            self._all.clear()
        self._local = threading.local()


def layout_of(conn: Connections, cluster: str | None) -> tuple[Layout, list[ClickHouseUrl]]:
    """The layout of the store and the servers its tables live on: the one `conn` talks
    to, or every server of `cluster` (replicated when ZooKeeper is configured)."""
    if cluster is None:
        return Layout(), [conn.url]
    if not _IDENTIFIER.fullmatch(cluster):
        raise StoreError(f"--cluster {cluster!r}: a cluster name is letters, digits and _")
    rows = conn.query(
        "SELECT host_address, port, shard_num FROM system.clusters WHERE cluster = %(c)s "
        "ORDER BY shard_num, replica_num",
        {"c": cluster},
    )
    if not rows:
        raise StoreError(
            f"ClickHouse at {conn.url} has no cluster {cluster!r} in its remote_servers"
        )
    try:
        conn.query("SELECT count() FROM system.zookeeper WHERE path = '/'")
        replicated = True
    except StoreError:  # no ZooKeeper configured: shards without replicas
        replicated = False
    servers = [replace(conn.url, host=host, port=port) for host, port, _ in rows]
    replicas = min(Counter(shard for _, _, shard in rows).values())
    if replicated and replicas > 1:
        # An insert is acknowledged once two replicas of its shard have it (a host lost
        # with its disk loses nothing acknowledged), and a read never comes from a
        # replica that lacks an acknowledged insert. The price: with two replicas, ingest
        # waits (503) while one of them is down; with three or more it goes on.
        conn.settings |= {"insert_quorum": 2, "select_sequential_consistency": 1}
    return Layout(cluster, replicated), servers


SETTLE_TIMEOUT = 60.0


def settle(conn: Connections, servers: Sequence[ClickHouseUrl]) -> None:
    """Wait until no insert into this store's journal is still running on any server.

    A client that dies while ClickHouse applies its insert does not stop it: the server
    finishes pushing the block through the views. Whoever takes over (a restarted node,
    a resumed migration) must not read what that insert will have written (idempotency
    keys, progress markers) before it has: it would apply the same rows again.
    """
    pattern = f"INSERT INTO {conn.db}.journal %"
    deadline = time.monotonic() + SETTLE_TIMEOUT
    for url in servers:
        here = conn if url == conn.url else Connections(url)
        try:
            while here.query(
                "SELECT count() FROM system.processes WHERE query LIKE %(p)s", {"p": pattern}
            )[0][0]:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"an insert into {conn.db}.journal on {url} has run for over "
                        f"{SETTLE_TIMEOUT:.0f} s; try again once it is done"
                    )
                time.sleep(0.05)
        finally:
            if here is not conn:
                here.close()


def migrate(
    conn: Connections,
    layout: Layout | None = None,
    servers: Sequence[ClickHouseUrl] | None = None,
) -> int:
    """Create the database and bring its schema up to date on every server (by default
    the one `conn` talks to); returns the schema version."""
    layout = layout or Layout()
    for url in servers or [conn.url]:
        here = conn if url == conn.url else Connections(url)
        try:
            _migrate_server(here, layout)
        finally:
            if here is not conn:
                here.close()
    return len(MIGRATIONS)


def _migrate_server(conn: Connections, layout: Layout) -> None:
    conn.query("CREATE DATABASE IF NOT EXISTS {db}")
    # Which migrations ran is kept per server: each runs them on its own tables.
    conn.query(
        "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, applied_at Int64) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {version for (version,) in conn.query("SELECT version FROM {db}.schema_migrations")}
    for version, items in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        for item in items:
            for statement in layout.create(item):
                conn.query(statement)
        conn.insert(
            "INSERT INTO {db}.schema_migrations (version, applied_at) VALUES",
            [(version, time.time_ns() // 1000)],
        )
