"""The benchmark's quick mode runs end to end on both stores, so it cannot rot. No timing
is asserted."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.processes import run_module

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("wrk") is None, reason="wrk is not installed (make installs it as root)"
    ),
]

# Rows with a figure for each store.
BOTH = [
    "fixture build",
    "disk per stored event",
    "series p99 over HTTP, idle",
    "same series by GROUP BY over raw events",
    "durable ingest, 75-event bodies",
    "ingest latency p99",
    "the same beside a series load",
    "ingest latency p99 beside that series load",
    "series p99 under ingest load",
    "server RSS at rest / peak under ingest",
    "parse-only endpoint",
    "durable ingest, 10 tracked segments",
    "eventtally import",
]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_quick_benchmark_prints_both_stores_side_by_side(tmp_path: Path) -> None:
    # The ClickHouse half starts its own clickhouse-server: like the ClickHouse store's
    # tests, it fails rather than skips when the server is not installed.
    out = run_module("bench.run", "--quick", "--seconds", "2", "--work", str(tmp_path), timeout=600)
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert cells(table[0])[:4] == ["what", "SQLite", "ClickHouse", "ClickHouse / SQLite"]
    rows = {cells(line)[0]: cells(line) for line in table[1:]}
    for name in BOTH:
        row = next((r for what, r in rows.items() if what.startswith(name)), None)
        assert row is not None, name
        assert row[1] not in ("", "-"), row
        assert row[2] not in ("", "-"), row
    engine = rows["clickhouse-server RSS at rest / peak under ingest"]
    assert engine[1] == "-", engine
    assert engine[2].endswith(" MB"), engine
    # No ingest phase of either store was refused anything (alone, beside the series
    # load, with segments).
    refused = re.findall(r"non-2xx (\d+)", out)
    assert len(refused) == 6, refused
    assert set(refused) == {"0"}, refused
