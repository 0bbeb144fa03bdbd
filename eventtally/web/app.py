"""The ASGI application: routes, authentication, and the one error shape on every path."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventtally.errors import ApiError, StoreError, StoreFull
from eventtally.metrics import Metrics
from eventtally.settings import Settings
from eventtally.store.base import Store
from eventtally.web import dashboard, events, openapi, segments, track, workspace
from eventtally.web.auth import KnownKeys, parse_proxies
from eventtally.web.responses import error_response

log = logging.getLogger("eventtally.web")
access = logging.getLogger("eventtally.access")
# Request ids must be unique, not unpredictable: uuid4() reads the system's random
# source, a system call that hands the interpreter lock to other threads on every request.
_request_ids = random.Random()


def now_us() -> int:
    return time.time_ns() // 1000


class Observe:
    """Around every request: an `X-Request-Id` UUID on the response (Braze sends one), the
    headers a handler left in `request.state.response_headers` (rate limits) however the
    response was made, the request counted in the metrics, and one access-log line (path
    only: a query string could hold a legacy `api_key`)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths  # the API's own paths; anything else is "other" in the metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = str(uuid.UUID(int=_request_ids.getrandbits(128), version=4))
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = scope.get("state", {}).get("response_headers", {})
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *((k.lower().encode(), v.encode()) for k, v in extra.items()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            path = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.requests.inc(endpoint=path, method=scope["method"], status=str(status))
            client = scope.get("client")
            access.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"][:200],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": client[0] if client else None,
                    }
                },
            )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: f"no such endpoint: {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    message = messages.get(exc.status_code, exc.detail)
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


async def _store_error(request: Request, exc: Exception) -> Response:
    log.error("store failure on %s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, StoreFull):  # the operator's to fix; say what it is
        return error_response(503, exc.message)
    return error_response(503, "the store is unavailable now; retry later")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the server log has the details")


async def healthz(request: Request) -> Response:
    return error_response(200, "ok")


async def metrics_text(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(
    store: Store, settings: Settings | None = None, clock: Callable[[], int] = now_us
) -> Starlette:
    """The eventtally API over `store`. `clock` gives now in microseconds (tests fix it)."""
    app = Starlette(
        routes=[
            Route("/users/track", track.users_track, methods=["POST"]),
            Route("/events/data_series", events.data_series, methods=["GET"]),
            Route("/events/list", events.events_list, methods=["GET"]),
            Route("/events", events.events_catalogue, methods=["GET"]),
            Route("/segments/list", segments.segments_list, methods=["GET"]),
            Route("/segments/details", segments.segment_details, methods=["GET"]),
            Route("/segments/data_series", segments.segment_data_series, methods=["GET"]),
            Route("/workspace", workspace.workspace_get, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
            *dashboard.routes(),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreError: _store_error,
            Exception: _unexpected,
        },
    )
    app.state.store = store
    app.state.settings = settings = settings or Settings()
    app.state.trusted_proxies = parse_proxies(settings.trusted_proxies)
    app.state.known_keys = KnownKeys(store, settings.key_cache_seconds)
    app.state.clock = clock
    app.state.limiter = store.window_counter()
    # (workspace id, Idempotency-Key) of /users/track requests not yet answered.
    app.state.idempotency_in_flight = set()
    app.state.metrics = metrics = Metrics()
    store.commit_observer = metrics.commit_seconds.observe
    paths = frozenset(route.path for route in app.routes if isinstance(route, Route))
    app.add_middleware(Observe, metrics=metrics, paths=paths)
    return app
