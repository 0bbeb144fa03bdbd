"""A throwaway ZooKeeper for the tests: Debian's ZooKeeper 3.8, standalone, as a plain java
process with its config and data in a directory the caller owns, on a free loopback port,
stopped by its PID.

ClickHouse needs it for replicated tables (ReplicatedMergeTree) and for distributed DDL
(`ON CLUSTER`): see tests/clickhouse_cluster.py.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port, launch, stop

JAR = Path("/usr/share/java/zookeeper.jar")
# The jar's manifest brings in the rest of the class path, slf4j's API among them but no
# binding for it; slf4j-simple, from the same Debian package as the API, writes ZooKeeper's
# warnings and errors to its log (a port already taken, say), where the NOP default would
# write nothing.
CONF = Path("/etc/zookeeper/conf")
SLF4J_BINDING = Path("/usr/share/java/slf4j-simple.jar")
MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20
# ZooKeeper's own default is 2000 ms; sessions may last from 2 to 20 ticks.
TICK_MS = 2000


class ZooKeeperUnavailable(RuntimeError):
    """java or ZooKeeper is missing, or ZooKeeper did not start; the message says why."""


@dataclass(frozen=True)
class ZooKeeperServer:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return HOST

    def four_letter_word(self, word: str, timeout: float = 2.0) -> str:
        """ZooKeeper's answer to `ruok`, `stat` or `conf` (those it is started to accept)."""
        return _four_letter_word(self.port, word, timeout)


def render_config(directory: Path, port: int) -> str:
    return "\n".join(
        [
            f"tickTime={TICK_MS}",
            f"dataDir={directory / 'data'}",
            f"clientPort={port}",
            # Loopback only: given just a port, ZooKeeper listens on every address.
            f"clientPortAddress={HOST}",
            # No limit on connections, from one address (every client here is 127.0.0.1) or
            # in all (unset, ZooKeeper warns that it has none).
            "maxClientCnxns=0",
            "maxCnxns=0",
            "",
        ]
    )


@contextmanager
def running_zookeeper(
    directory: Path, *, port: int | None = None, timeout: float = START_TIMEOUT
) -> Iterator[ZooKeeperServer]:
    """Run ZooKeeper in `directory` (empty or new) until the block ends; the directory is
    left in place (its log is worth keeping when a test failed)."""
    server = start(directory, port=port, timeout=timeout)
    try:
        yield server
    finally:
        stop(server.process)


def start(
    directory: Path,
    *,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
    java: str = "java",
    jar: Path = JAR,
) -> ZooKeeperServer:
    java_path = shutil.which(java)
    if java_path is None:
        raise ZooKeeperUnavailable(
            f"{java} not found: install the Debian package zookeeper, which brings a Java "
            "runtime (`make test` does, as root, through scripts/system-deps.sh)"
        )
    if not jar.exists():
        raise ZooKeeperUnavailable(
            f"{jar} not found: install the Debian package zookeeper "
            "(`make test` does, as root, through scripts/system-deps.sh)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty")
    (directory / "data").mkdir()
    port = port or free_port()
    config = directory / "zoo.cfg"
    config.write_text(render_config(directory, port))
    args = [
        java_path,
        # Small and quick to start: a test's ZooKeeper holds a few hundred nodes.
        "-Xms32m",
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dzookeeper.4lw.commands.whitelist=ruok,stat,conf",
        # The admin server would listen on 8080, on every address, one ZooKeeper at most.
        "-Dzookeeper.admin.enableServer=false",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        ":".join(str(path) for path in (CONF, jar, SLF4J_BINDING) if path.exists()),
        MAIN,
        str(config),
    ]
    process = launch(args, directory, "zookeeper.log")
    server = ZooKeeperServer(directory, port, process)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        stop(process)
        raise
    return server


def _four_letter_word(port: int, word: str, timeout: float) -> str:
    with socket.create_connection((HOST, port), timeout=timeout) as conn:
        conn.sendall(word.encode())
        chunks = []
        # ZooKeeper answers, then closes the connection.
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _wait_ready(server: ZooKeeperServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    problem = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ZooKeeperUnavailable(
                f"ZooKeeper exited with status {server.process.returncode} while starting\n"
                f"{_log(server.directory)}"
            )
        try:
            problem = _not_ready(server)
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if not problem:
            return
        time.sleep(0.05)
    raise ZooKeeperUnavailable(
        f"ZooKeeper did not answer ruok with imok on {HOST}:{server.port} within "
        f"{timeout:g}s (last: {problem})\n{_log(server.directory)}"
    )


def _not_ready(server: ZooKeeperServer) -> str:
    """What is still missing, or "" once this server serves requests."""
    answer = server.four_letter_word("ruok", timeout=1.0)
    if answer != "imok":
        return f"ruok answered {answer!r}"
    # ruok says the process runs; stat, that it serves requests (it answers "This ZooKeeper
    # instance is not currently serving requests" until then)...
    stat = server.four_letter_word("stat", timeout=1.0)
    if "Mode: standalone" not in stat:
        return f"stat answered {stat.strip()!r}"
    # ...and conf, that it is ours, not another one that had the port first.
    conf = server.four_letter_word("conf", timeout=1.0)
    if f"dataDir={server.directory / 'data'}" not in conf:
        return f"another ZooKeeper answers on port {server.port}: {conf.strip()!r}"
    return ""


def _log(directory: Path) -> str:
    path = directory / "zookeeper.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    tail = "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
    return f"--- {path} (last {LOG_TAIL_LINES} lines) ---\n{tail}"
