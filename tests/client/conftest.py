"""Client tests: an in-process app over a real SQLite store, and scripted faulty transports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette

from eventtally.domain.model import PERMISSIONS, Workspace
from eventtally.store.base import new_secret
from eventtally.store.sqlite import SqliteStore
from eventtally.web.app import create_app, now_us

T = TypeVar("T")
BASE_URL = "http://eventtally.test"
ZONE = "America/New_York"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """pytest-asyncio is not installed: each async test body runs in its own loop."""
    return asyncio.run(coroutine)


@dataclass
class InProcess:
    """A workspace (reporting zone New York) with one app and an all-permission key."""

    store: SqliteStore
    workspace: Workspace
    app_id: str
    key: str
    app: Starlette

    def new_key(self, *permissions: str) -> str:
        secret = new_secret()
        self.store.add_key(self.workspace.id, "test", secret, frozenset(permissions), now_us())
        return secret

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[InProcess]:
    store = SqliteStore.open(tmp_path / "data")
    try:
        now = now_us()
        workspace = store.create_workspace("test", ZONE, now)
        app = store.create_app(workspace.id, "app", now)
        key = new_secret()
        store.add_key(workspace.id, "all", key, frozenset(PERMISSIONS), now)
        yield InProcess(store, workspace, app.app_id, key, create_app(store))
    finally:
        store.close()


@dataclass
class Waits:
    """A fake `sleep` (sync and async) that records the waits and never sleeps."""

    seconds: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


# A script step: "pass" (to the real app), "drop" (the real app answers, then the
# connection drops before the answer arrives), "connect" (refused before anything is
# sent), "timeout" (a read timeout before anything is sent), a status, or
# (status, headers) for an answer made up without asking the app.
Step = str | int | tuple[int, dict[str, str]]

MESSAGES = {
    409: "a request with this Idempotency-Key is still in flight; retry later",
    422: "this Idempotency-Key was used with another body",
    429: "Rate limit exceeded",
    500: "internal error; the server log has the details",
    503: "the store is unavailable now; retry later",
}


def made_up(step: int | tuple[int, dict[str, str]], request: httpx.Request) -> httpx.Response:
    status, headers = step if isinstance(step, tuple) else (step, {})
    body = {"message": MESSAGES.get(status, f"made-up {status}")}
    return httpx.Response(status, json=body, headers=headers, request=request)


def fault(step: str, request: httpx.Request) -> Exception:
    if step == "connect":
        return httpx.ConnectError("[Errno 111] Connection refused", request=request)
    if step == "timeout":
        return httpx.ReadTimeout("timed out", request=request)
    if step == "drop":
        return httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body", request=request
        )
    raise AssertionError(f"unknown step {step!r}")


class ScriptedAsync(httpx.AsyncBaseTransport):
    """Plays `script` one step per request, then passes everything to `inner`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, script: list[Step]) -> None:
        self.inner = inner
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else "pass"
        if not isinstance(step, str):
            return made_up(step, request)
        if step not in ("pass", "drop"):
            raise fault(step, request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
        finally:
            self.in_flight -= 1
        if step == "drop":
            raise fault(step, request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class ScriptedSync(httpx.BaseTransport):
    """The thread-safe, blocking twin of `ScriptedAsync`."""

    def __init__(self, inner: httpx.BaseTransport, script: list[Step]) -> None:
        self.inner = inner
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.barrier: threading.Barrier | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else "pass"
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            barrier, number = self.barrier, len(self.requests)
        try:
            if barrier is not None and number <= barrier.parties:
                barrier.wait(timeout=10)  # the first requests must all be in flight at once
            if not isinstance(step, str):
                return made_up(step, request)
            if step not in ("pass", "drop"):
                raise fault(step, request)
            response = self.inner.handle_request(request)
            response.read()
            if step == "drop":
                raise fault(step, request)
            return response
        finally:
            with self.lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.inner.close()


def event(name: str, time: str, user: str = "u", **extra: Any) -> dict[str, Any]:
    return {"external_id": user, "name": name, "time": time, **extra}
