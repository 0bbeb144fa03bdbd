"""The cyclic garbage collector of eventtally's long-running processes.

A full collection walks every object a process holds. Under ingest load the ingest
process's caches (100,000 users and their profiles) made each walk 50-120 ms and the
server's 20-45 ms, each about twice a second, and every request in flight waited out
each walk: 10M-event store, 32 connections, ingest p99 82-90 ms. The walks found nothing
(what these processes drop is freed by reference counting as it goes); with full
collections a hundred times rarer, p99 was 42-45 ms and 110,000-131,000 events/s
against 87,000-95,000. Young collections, too, walk every young object still alive
(a request's parsed events, in flight): one per 20,000 allocations rather than 700 gave
another 5-7% (149,000-160,000 -> 156,000-171,000 events/s, p99 38 -> 34-37 ms).
"""

from __future__ import annotations

import gc

# Allocations per young collection (Python's default is 700), and collections of the
# middle generation per full collection (default 10).
YOUNG_EVERY = 20_000
FULL_EVERY = 1000


def relax_collections() -> None:
    """Call once a process has started up: what it made so far (modules, settings, the
    app) is never walked again, and collections come more seldom."""
    gc.freeze()
    gc.set_threshold(YOUNG_EVERY, gc.get_threshold()[1], FULL_EVERY)
