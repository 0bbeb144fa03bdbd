"""The OpenAPI document is whole: every reference resolves and every route is described."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from eventtally.store.memory import MemoryStore
from eventtally.web.app import create_app
from eventtally.web.openapi import document


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_every_reference_resolves() -> None:
    doc = document()
    assert _refs(doc) <= set(doc["components"]["schemas"])


def test_every_api_route_is_documented() -> None:
    app = create_app(MemoryStore())
    api_paths = {
        route.path
        for route in app.routes
        if isinstance(route, Route)
        and route.path not in ("/", "/dashboard", "/metrics")
        and not route.path.startswith("/dashboard")
    }
    assert api_paths - {"/openapi.json"} <= set(document()["paths"])
