"""The benchmark's quick mode runs end to end, so it cannot rot. No timing is asserted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("wrk") is None, reason="wrk is not installed (make installs it as root)"
    ),
]

ROWS = [
    "disk per stored event",
    "series p99 over HTTP, idle",
    "same series by GROUP BY over raw events",
    "durable ingest, 75-event bodies",
    "ingest latency p99",
    "series p99 under ingest load",
    "server RSS at rest / peak under ingest",
    "parse-only endpoint",
    "durable ingest, 10 tracked segments",
    "eventtally import",
]


def test_quick_benchmark_prints_its_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--seconds", "2", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    for row in ROWS:
        assert any(line.startswith(f"| {row}") for line in table), row
    # Every load phase got answers and no refusals.
    assert "non-2xx 0" in done.stdout
