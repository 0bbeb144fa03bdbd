"""eventtally: a self-hosted analytics server that speaks Braze's REST API, and its client.

    from eventtally import Client

    with Client("http://127.0.0.1:8080", api_key) as client:
        client.track(events=events)

The names below come from `eventtally.client` and are loaded on first use, so that
`import eventtally` stays light: it loads neither the server (starlette, granian, the
SQLite store) nor, until a client name is used, httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventtally.client import (
        APIError,
        AsyncClient,
        AuthenticationError,
        CatalogueEvent,
        Client,
        ConflictError,
        EventtallyClientError,
        PermissionDeniedError,
        RateLimitedError,
        Segment,
        SegmentDetails,
        SeriesPoint,
        ServerError,
        SizePoint,
        TrackError,
        TrackResult,
        TransportError,
        ValidationError,
    )

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "CatalogueEvent",
    "Client",
    "ConflictError",
    "EventtallyClientError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Segment",
    "SegmentDetails",
    "SeriesPoint",
    "ServerError",
    "SizePoint",
    "TrackError",
    "TrackResult",
    "TransportError",
    "ValidationError",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module("eventtally.client"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'eventtally' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
