"""Where an endpoint's store reads run: on the event loop, or on a worker thread.

A store that reads local files (SQLite) answers in microseconds, less than a hop to a
thread costs, so its reads run on the loop. A store that waits on a network (ClickHouse)
would stall the loop for as long as its server takes, and with it every other request,
/healthz included; its reads run on a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from eventtally.store.base import Store

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, on a worker thread when the app's store reads may block."""
    store: Store = request.app.state.store
    if store.blocking_reads:
        return await run_in_threadpool(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def reads_store(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint made of store reads, run where the store's reads belong (`off_loop`)."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        return await off_loop(request, handler, request)

    return endpoint
