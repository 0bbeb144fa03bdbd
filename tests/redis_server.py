"""A throwaway redis-server for the tests: no persistence, a free loopback port, its files
in a directory the caller owns, stopped by its PID."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port, launch, stop

BINARY = Path("/usr/bin/redis-server")
HOST = "127.0.0.1"
START_TIMEOUT = 15.0


class RedisUnavailable(RuntimeError):
    """redis-server is missing or did not start; the message says why."""


@dataclass(frozen=True)
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"


def start(directory: Path) -> RedisServer:
    if not BINARY.exists():
        raise RedisUnavailable(
            f"{BINARY} not found: install the Debian package redis-server "
            "(`make test` does, as root, through scripts/system-deps.sh)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [str(BINARY), "--bind", HOST, "--port", str(port), "--dir", str(directory)]
    args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    process = launch(args, directory, "redis.log")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RedisUnavailable(
                f"redis-server exited with {process.returncode}: "
                + (directory / "redis.log").read_text()[-2000:]
            )
        try:
            with socket.create_connection((HOST, port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return RedisServer(port, process)
        except OSError:
            pass
        time.sleep(0.05)
    stop(process)
    raise RedisUnavailable(f"redis-server did not answer on {HOST}:{port}")
