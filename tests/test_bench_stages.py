"""bench.stages runs end to end on a small input, so it cannot rot. No time is asserted."""

from __future__ import annotations

from pathlib import Path

from tests.processes import run_module


def test_stages_prints_every_stage_and_the_bound(tmp_path: Path) -> None:
    out = run_module("bench.stages", "--lines", "3000", "--work", str(tmp_path), timeout=300)
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
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
    assert "events/s on" in out
    assert "its one writer thread, at most" in out
    # The input was made in the work directory and the store in a temporary one.
    assert [p.name for p in tmp_path.iterdir()] == ["import-3000.jsonl"]
