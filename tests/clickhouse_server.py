"""A throwaway clickhouse-server for the tests: its own config, data and logs in a directory
the caller owns, on free loopback ports, stopped by its PID.

The config is rendered from deploy/clickhouse/server.xml, so the tests run the server the
way it is meant to be deployed.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

from tests.processes import launch, stop

BINARY = Path("/usr/sbin/clickhouse-server")
TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "clickhouse" / "server.xml"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 20


class ClickHouseUnavailable(RuntimeError):
    """clickhouse-server is missing, or did not start; the message says why."""


@dataclass(frozen=True)
class Ports:
    tcp: int
    http: int
    interserver: int


@dataclass(frozen=True)
class ClickHouseServer:
    directory: Path
    ports: Ports
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"clickhouse://{HOST}:{self.ports.tcp}/{database}"

    @contextmanager
    def client(self, timeout: float = 30.0) -> Iterator[Client]:
        # The driver waits 300 s for an answer by default: too long for a test to hang.
        client = Client(
            HOST,
            port=self.ports.tcp,
            connect_timeout=min(timeout, 2.0),
            send_receive_timeout=timeout,
            sync_request_timeout=timeout,
        )
        try:
            yield client
        finally:
            client.disconnect()

    def drop_database(self, name: str) -> None:
        with self.client() as client:
            client.execute(f"DROP DATABASE IF EXISTS `{name}`")


def render_config(directory: Path, ports: Ports) -> str:
    text = TEMPLATE.read_text()
    for name, value in {
        # The directory is the only value that could hold a character XML gives meaning to.
        "dir": escape(str(directory)),
        "tcp_port": str(ports.tcp),
        "http_port": str(ports.http),
        "interserver_port": str(ports.interserver),
    }.items():
        text = text.replace("{" + name + "}", value)
    left = re.findall(r"\{[a-z_]+\}", text)
    if left:
        raise ValueError(f"{TEMPLATE}: placeholders without a value: {', '.join(left)}")
    return text


def free_ports() -> Ports:
    """Three distinct free loopback ports: all are held open until all are chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(3)]
        for sock in sockets:
            sock.bind((HOST, 0))
        tcp, http, interserver = (sock.getsockname()[1] for sock in sockets)
    return Ports(tcp, http, interserver)


@contextmanager
def running_clickhouse(
    directory: Path,
    *,
    binary: Path = BINARY,
    ports: Ports | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[ClickHouseServer]:
    """Run clickhouse-server in `directory` (empty or new) until the block ends.

    Nothing is removed afterwards: the directory is the caller's, and its logs are worth
    keeping when a test failed.
    """
    server = start(directory, binary=binary, ports=ports, timeout=timeout)
    try:
        yield server
    finally:
        stop(server.process)


def start(
    directory: Path,
    *,
    binary: Path = BINARY,
    ports: Ports | None = None,
    timeout: float = START_TIMEOUT,
    config_d: Mapping[str, str] | None = None,
) -> ClickHouseServer:
    """`config_d` maps file names to the text of extra config files, written to config.d/
    beside config.xml: the server merges them into it (a cluster's, say)."""
    _check_binary(binary)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        # Never start on someone else's data: the directory must be ours alone.
        raise ValueError(f"{directory} is not empty")
    ports = ports or free_ports()
    config = directory / "config.xml"
    config.write_text(render_config(directory, ports))
    if config_d:
        (directory / "config.d").mkdir()
        for name, text in config_d.items():
            (directory / "config.d" / name).write_text(text)
    return _launch(directory, ports, binary, timeout)


def restart(
    server: ClickHouseServer, *, binary: Path = BINARY, timeout: float = START_TIMEOUT
) -> ClickHouseServer:
    """Start again a server that `stop` stopped: the same directory, config, data and ports
    (which someone else may have taken meanwhile: it fails then, saying so)."""
    if server.process.poll() is None:
        raise ValueError(f"clickhouse-server {server.process.pid} is still running")
    _check_binary(binary)
    return _launch(server.directory, server.ports, binary, timeout)


def _check_binary(binary: Path) -> None:
    if not binary.exists():
        raise ClickHouseUnavailable(
            f"{binary} not found: install the Debian package clickhouse-server "
            "(`make test` does, as root, through scripts/system-deps.sh)"
        )


def _launch(directory: Path, ports: Ports, binary: Path, timeout: float) -> ClickHouseServer:
    # Appended to: a restarted server's console follows the previous one's.
    process = launch(
        [str(binary), f"--config-file={directory / 'config.xml'}"], directory, "console.log"
    )
    server = ClickHouseServer(directory, ports, process)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        stop(process)
        raise
    return server


def _wait_ready(server: ClickHouseServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    problem: str | None = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ClickHouseUnavailable(
                f"clickhouse-server exited with status {server.process.returncode} "
                f"while starting\n{_logs(server.directory)}"
            )
        problem = _answer(server)
        if problem is None:
            return
        time.sleep(0.05)
    raise ClickHouseUnavailable(
        f"clickhouse-server did not answer SELECT 1 on {HOST}:{server.ports.tcp} within "
        f"{timeout:g}s (last: {problem})\n{_logs(server.directory)}"
    )


def _answer(server: ClickHouseServer) -> str | None:
    """None once the server answers SELECT 1; else what went wrong."""
    try:
        # A bare connect first: the driver logs a traceback for every refused connection.
        with socket.create_connection((HOST, server.ports.tcp), timeout=1.0):
            pass
        with server.client(timeout=2.0) as client:
            client.execute("SELECT 1")
    except (DriverError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _logs(directory: Path) -> str:
    """The tail of what the server wrote: its error log, and its console for errors that
    come before the logger is set up (a bad config, say)."""
    parts = []
    for name in ("server.err.log", "console.log"):
        path = directory / name
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        tail = "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
        parts.append(f"--- {path} (last {LOG_TAIL_LINES} lines) ---\n{tail}")
    return "\n".join(parts)
