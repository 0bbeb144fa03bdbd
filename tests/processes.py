"""What every launcher of a test server shares: a free loopback port, and stopping the
process it started by its PID; and running one of the project's modules to its end."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

HOST = "127.0.0.1"
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, then SIGKILL if it still runs after `timeout`; returns the exit status.
    Only this PID is signalled: the servers the tests start fork nothing."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


def launch(args: list[str], directory: Path, log: str) -> subprocess.Popen[bytes]:
    """Start a server in `directory`, its output appended to `directory/log`, in a session
    of its own: a Ctrl-C in pytest must not kill it before the fixtures' teardown has
    used and stopped it."""
    with (directory / log).open("ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            cwd=directory,
            start_new_session=True,
        )


def run_module(module: str, *args: str, timeout: float) -> str:
    """Run `python -m module args...` from the repository's root; its output, once it
    exited 0 (else the test fails with the end of what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout
