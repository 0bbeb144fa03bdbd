"""bench.stages runs end to end on a small input, so it cannot rot. No time is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_stages_prints_every_stage_and_the_bound(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--lines", "3000", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [
        line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ")
    ]
    assert rows[1:] == [
        "read the lines",
        "decode them (JSON)",
        "fill 75-item requests",
        "validate (parse_track)",
        "idempotency keys",
        "encode for the ingest process",
        "decode the requests",
        "apply, write, commit, fold: a first import (users created)",
        "the same lines again (users exist)",
        "**all, a first import**",
        "**all, the same lines again**",
        "stage",
        "decode the requests",
        "apply, write, commit, fold (users exist)",
        "**the ingest process, in all**",
    ]
    assert "events/s on" in done.stdout
    assert "its one writer thread, at most" in done.stdout
    # The input was made in the work directory and the store in a temporary one.
    assert [p.name for p in tmp_path.iterdir()] == ["import-3000.jsonl"]
