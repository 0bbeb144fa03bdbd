"""A real `eventtally serve` process on a free loopback port, cleaned up by its PID.

Every helper takes an optional store URL (`clickhouse://...`); without one the store is
SQLite in the data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def eventtally(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventtally.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def store_args(data: Path, store: str | None = None) -> list[str]:
    """The options that name the store to a CLI command."""
    return ["--store", store] if store else ["--data", str(data)]


def init(data: Path, time_zone: str, store: str | None = None) -> dict[str, str]:
    done = eventtally("init", *store_args(data, store), "--time-zone", time_zone, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening in time")


@contextmanager
def serving(
    data: Path, port: int | None = None, log: Path | None = None, store: str | None = None
) -> Iterator[Server]:
    """Start `eventtally serve`; on exit stop it by PID (SIGTERM, then SIGKILL).

    The server's log goes to `log` (default: beside the data directory).
    """
    port = port or free_port()
    with (log or data.parent / "server.log").open("ab") as log_file:
        command = [sys.executable, "-m", "eventtally.cli", "serve"]
        process = subprocess.Popen(
            [*command, *store_args(data, store), "--port", str(port)],
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        _wait_ready(port, process)
        yield Server(process, f"http://{HOST}:{port}")
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> int:
    """Stop the process and everything in its session; returns its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    return process.returncode
