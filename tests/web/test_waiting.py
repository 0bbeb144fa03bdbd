"""Awaiting store futures with one loop wake-up per burst (eventtally.web.waiting)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from eventtally.web.waiting import result_of


async def awaiting(futures: list[Future[int]]) -> list[asyncio.Task[int]]:
    """Tasks awaiting `futures`, each already past the point of registering its callback."""
    tasks = [asyncio.create_task(result_of(f)) for f in futures]
    await asyncio.sleep(0)
    return tasks


def in_thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn)
    thread.start()
    return thread


def count_wakeups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the running loop's `call_soon_threadsafe` calls (each one a wake-up)."""
    loop = asyncio.get_running_loop()
    calls = [0]
    original = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    return calls


def test_result_and_exception_are_delivered() -> None:
    async def main() -> None:
        good: Future[int] = Future()
        bad: Future[int] = Future()

        def resolve() -> None:
            good.set_result(7)
            bad.set_exception(ValueError("no"))

        got, failed = await awaiting([good, bad])
        thread = in_thread(resolve)
        assert await got == 7
        with pytest.raises(ValueError, match="no"):
            await failed
        thread.join()

    asyncio.run(main())


def test_a_burst_wakes_the_loop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        calls = count_wakeups(monkeypatch)
        futures: list[Future[int]] = [Future() for _ in range(100)]

        def resolve() -> None:
            for i, future in enumerate(futures):
                future.set_result(i)

        tasks = await awaiting(futures)
        # Blocking the loop until all are resolved makes the burst whole: one wake-up.
        in_thread(resolve).join()
        assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == list(range(100))
        assert calls[0] == 1

    asyncio.run(main())


def test_a_done_future_is_answered_without_a_thread_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        calls = count_wakeups(monkeypatch)
        done: Future[int] = Future()
        done.set_result(3)
        failed: Future[int] = Future()
        failed.set_exception(KeyError("k"))
        assert await result_of(done) == 3
        with pytest.raises(KeyError):
            await result_of(failed)
        assert calls[0] == 0

    asyncio.run(main())


def test_a_cancelled_wait_does_not_break_later_deliveries() -> None:
    async def main() -> None:
        running: Future[int] = Future()
        running.set_running_or_notify_cancel()  # as a store does once a job is sent
        others: list[Future[int]] = [Future() for _ in range(5)]
        gone, *waiting = await awaiting([running, *others])
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert not running.cancelled()  # a started job is left to finish

        def resolve() -> None:
            running.set_result(-1)
            for i, future in enumerate(others):
                future.set_result(i)

        # Resolved in one burst, so the cancelled wait is drained along with the others.
        in_thread(resolve).join()
        assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == list(range(5))

    asyncio.run(main())


def test_a_cancelled_wait_cancels_a_job_not_yet_started() -> None:
    # As asyncio.wrap_future does: a store skips a job whose caller gave up before it ran.
    async def main() -> None:
        pending: Future[int] = Future()
        (task,) = await awaiting([pending])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pending.cancelled()

    asyncio.run(main())


def test_a_closed_loop_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    future: Future[int] = Future()
    future.set_running_or_notify_cancel()
    task = loop.create_task(result_of(future))
    loop.run_until_complete(asyncio.sleep(0))
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    loop.close()
    future.set_result(1)
    # concurrent.futures logs an exception raised by a done-callback rather than raising it.
    assert not caplog.records
