"""Running the API: granian's embedded server in this process, so one PID is the server to
signal (the SQLite store's ingest process is its child and ends with it).

SIGTERM and SIGINT stop accepting connections, let in-flight requests finish, then the
store's writer commits what it holds and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from starlette.types import ASGIApp

from eventtally import logs
from eventtally.gc_tuning import relax_collections
from eventtally.settings import Settings
from eventtally.store.base import Store
from eventtally.web.app import create_app


def run(store: Store, settings: Settings, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then close the store."""
    logs.configure()
    try:
        serve_asgi(create_app(store, settings), settings.host, settings.port, on_ready)
    finally:
        store.close()


def serve_asgi(
    app: ASGIApp, host: str, port: int, on_ready: Callable[[], None] | None = None
) -> None:
    """Serve an ASGI app on granian's embedded server until SIGTERM or SIGINT."""
    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        log_access=False,
        # granian warns on every start that embedding is experimental; that is what we use.
        log_level=LogLevels.error,
        backlog=2048,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        serving = asyncio.ensure_future(server.serve())
        if on_ready is not None:
            await _wait_listening(host, port)
            on_ready()
        await serving

    relax_collections()
    asyncio.run(main())


async def _wait_listening(host: str, port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
