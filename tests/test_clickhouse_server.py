"""The test suite's clickhouse-server launcher and its fixtures (tests/clickhouse_server.py)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from clickhouse_driver import Client

from tests.clickhouse_server import (
    HOST,
    ClickHouseServer,
    ClickHouseUnavailable,
    free_ports,
    render_config,
    running_clickhouse,
)


def _client(url: str, database: str = "default") -> Client:
    parts = urlsplit(url)
    return Client(parts.hostname, port=parts.port, database=database)


def _exists(client: Client, database: str) -> bool:
    # ClickHouse 18.16 has no EXISTS DATABASE.
    found = client.execute(
        "SELECT count() FROM system.databases WHERE name = %(name)s", {"name": database}
    )
    return bool(found[0][0])


def test_clickhouse_url_names_a_fresh_database_that_works(clickhouse_url: str) -> None:
    parts = urlsplit(clickhouse_url)
    assert parts.scheme == "clickhouse"
    assert parts.hostname == HOST
    database = parts.path.removeprefix("/")
    assert re.fullmatch(r"t_[0-9a-f]{16}", database)
    admin = _client(clickhouse_url)
    try:
        assert not _exists(admin, database)
        admin.execute(f"CREATE DATABASE {database}")
    finally:
        admin.disconnect()
    inside = _client(clickhouse_url, database)
    try:
        assert inside.execute("SELECT 1, currentDatabase()") == [(1, database)]
    finally:
        inside.disconnect()


def test_drop_database_removes_it_and_tolerates_a_missing_one(
    clickhouse_server: ClickHouseServer,
) -> None:
    with clickhouse_server.client() as client:
        client.execute("CREATE DATABASE t_drop_me")
        clickhouse_server.drop_database("t_drop_me")
        assert not _exists(client, "t_drop_me")
    clickhouse_server.drop_database("t_drop_me")


def test_config_has_every_placeholder_filled(tmp_path: Path) -> None:
    ports = free_ports()
    text = render_config(tmp_path / "a&b", ports)
    assert "{" not in text
    assert f"<tcp_port>{ports.tcp}</tcp_port>" in text
    assert f"<interserver_http_port>{ports.interserver}</interserver_http_port>" in text
    assert f"<path>{tmp_path}/a&amp;b/data/</path>" in text
    assert len({ports.tcp, ports.http, ports.interserver}) == 3


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ClickHouseUnavailable, match="Debian package clickhouse-server"),
        running_clickhouse(tmp_path, binary=tmp_path / "no-such-clickhouse-server"),
    ):
        pass


def test_a_server_that_cannot_start_reports_its_error_log(tmp_path: Path) -> None:
    ports = free_ports()
    with socket.socket() as taken:
        # Bound but not listening: the server cannot bind the port, and no client can
        # connect to this socket instead of the server.
        taken.bind((HOST, ports.tcp))
        with (
            pytest.raises(ClickHouseUnavailable) as failure,
            running_clickhouse(tmp_path / "ch", ports=ports),
        ):
            pass
    message = str(failure.value)
    assert "exited with status" in message
    assert "Address already in use" in message
    assert str(tmp_path / "ch" / "server.err.log") in message
