"""The server and the ingest process relax full garbage collections once started."""

from __future__ import annotations

import subprocess
import sys

from eventtally.gc_tuning import FULL_EVERY, YOUNG_EVERY

PROBE = """
import gc
from eventtally.gc_tuning import relax_collections
relax_collections()
print(gc.get_threshold()[0], gc.get_threshold()[2], gc.get_freeze_count() > 0)
"""


def test_collections_come_seldom_and_start_up_objects_are_never_walked() -> None:
    # In a process of its own: the test run's collector stays as it is.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == [str(YOUNG_EVERY), str(FULL_EVERY), "True"]
