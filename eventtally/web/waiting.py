"""Awaiting a store's `concurrent.futures.Future` with one loop wake-up per burst.

`asyncio.wrap_future` wakes the event loop once per future: its done-callback calls
`call_soon_threadsafe`, which writes to the loop's self-pipe. A store resolves the
futures of a committed group (~16 track requests) one after another, so under load
those writes and the reads that drain them were a tenth of the server's samples.
Here the done-callbacks of a burst share one wake-up: the first to find nothing
waiting schedules a drain, the rest only append to the list that drain will empty.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from typing import Any, TypeVar

T = TypeVar("T")

_Pair = tuple["concurrent.futures.Future[Any]", "asyncio.Future[Any]"]


class _Deliveries:
    """Completed futures waiting for one loop's next drain."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak, because `_by_loop` keys on the loop: a strong reference here would keep
        # every loop a test suite ever ran alive.
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._waiting: list[_Pair] = []

    def add(self, source: concurrent.futures.Future[Any], dest: asyncio.Future[Any]) -> None:
        """Queue a completed pair; runs on the thread that resolved `source`."""
        with self._lock:
            self._waiting.append((source, dest))
            if len(self._waiting) > 1:
                return  # a drain is already scheduled and will see this pair
        loop = self._loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._drain)
                return
            except RuntimeError:
                pass
        # The loop is closed or gone (server shutdown): nobody is left to wait for answers.
        with self._lock:
            self._waiting.clear()

    def _drain(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for source, dest in waiting:
            if dest.cancelled():
                continue  # its task was cancelled (the client went away)
            if source.cancelled():
                dest.cancel()
            elif (exc := source.exception()) is not None:
                dest.set_exception(exc)
            else:
                dest.set_result(source.result())


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deliveries] = (
    weakref.WeakKeyDictionary()
)


async def result_of(future: concurrent.futures.Future[T]) -> T:
    """The result of `future`, awaited on the running loop (like `asyncio.wrap_future`).

    Cancelling the awaiting task cancels `future` as `wrap_future` does, which only
    succeeds while the store has not started the job; a job once started is applied
    and resolved whether or not anyone still waits.
    """
    if future.done():
        return future.result()  # no thread hop for a store that answered at once
    loop = asyncio.get_running_loop()
    # Only this loop's thread reads or adds its entry, so no lock is needed here.
    deliveries = _by_loop.get(loop)
    if deliveries is None:
        deliveries = _by_loop[loop] = _Deliveries(loop)
    dest: asyncio.Future[T] = loop.create_future()
    future.add_done_callback(lambda source: deliveries.add(source, dest))
    try:
        return await dest
    except asyncio.CancelledError:
        future.cancel()
        raise
