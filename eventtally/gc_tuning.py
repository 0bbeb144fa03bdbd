"""The cyclic garbage collector of eventtally's long-running processes.

A full collection walks every object a process holds. Under ingest load the ingest
process's caches (100,000 users and their profiles) made each walk 50-120 ms and the
server's 20-45 ms, each about twice a second, and every request in flight waited out
each walk: 10M-event store, 32 connections, ingest p99 82-90 ms. The walks found nothing
(what these processes drop is freed by reference counting as it goes); with full
collections a hundred times rarer, p99 was 42-45 ms and 110,000-131,000 events/s
against 87,000-95,000. Young objects are still collected as often as before.
"""

from __future__ import annotations

import gc

# Collections of the middle generation per full collection (Python's default is 10).
FULL_EVERY = 1000


def relax_full_collections() -> None:
    """Call once a process has started up: what it made so far (modules, settings, the
    app) is never walked again, and full collections come FULL_EVERY times more seldom."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
