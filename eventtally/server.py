"""Running the API: granian's embedded server in this process, so one PID is the whole server.

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

from eventtally import logs
from eventtally.settings import Settings
from eventtally.store.base import Store
from eventtally.web.app import create_app


def run(store: Store, settings: Settings, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then close the store."""
    logs.configure()
    app = create_app(store, settings)
    server = Server(
        app,
        address=settings.host,
        port=settings.port,
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
            await _wait_listening(settings)
            on_ready()
        await serving

    try:
        asyncio.run(main())
    finally:
        store.close()


async def _wait_listening(settings: Settings) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection(settings.host, settings.port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
