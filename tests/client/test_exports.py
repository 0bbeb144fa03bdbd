"""`eventtally.__all__`: exactly the client's public names, each documented, and light to import."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import eventtally
import eventtally.client

EXPECTED = {
    "Client",
    "AsyncClient",
    "Segment",
    "SegmentDetails",
    "SeriesPoint",
    "SizePoint",
    "TrackResult",
    "TrackError",
    "CatalogueEvent",
    "EventtallyClientError",
    "APIError",
    "AuthenticationError",
    "PermissionDeniedError",
    "ValidationError",
    "ConflictError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
}

# child -> parent, as drawn in eventtally.client's docstring
TREE = {
    "APIError": "EventtallyClientError",
    "AuthenticationError": "APIError",
    "PermissionDeniedError": "APIError",
    "ValidationError": "APIError",
    "ConflictError": "APIError",
    "RateLimitedError": "APIError",
    "ServerError": "APIError",
    "TransportError": "EventtallyClientError",
}


def test_all_is_exactly_the_public_api() -> None:
    assert len(eventtally.__all__) == len(set(eventtally.__all__))
    assert set(eventtally.__all__) == EXPECTED
    assert set(eventtally.client.__all__) == EXPECTED
    assert set(dir(eventtally)) >= EXPECTED


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in eventtally.__all__:
        value = getattr(eventtally, name)
        assert value is getattr(eventtally.client, name)
        assert inspect.isclass(value), name
        doc = value.__dict__.get("__doc__")  # its own, not inherited
        assert isinstance(doc, str), f"{name} has no docstring"
        assert doc.strip(), f"{name} has an empty docstring"
        assert not doc.startswith(f"{name}("), f"{name} has only dataclass's generated docstring"
        assert "Example::" in doc, f"{name}'s docstring has no example"


def test_errors_form_the_documented_tree() -> None:
    assert issubclass(eventtally.EventtallyClientError, Exception)
    for child, parent in TREE.items():
        assert getattr(eventtally, child).__bases__ == (getattr(eventtally, parent),), child
    tree = eventtally.client.__doc__ or ""
    assert all(f"── {name}" in tree for name in TREE)


def test_importing_eventtally_loads_no_server_code() -> None:
    code = (
        "import json, sys\n"
        "import eventtally\n"
        "bare = sorted(sys.modules)\n"
        "from eventtally import *\n"
        "print(json.dumps([bare, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    bare, loaded = json.loads(done.stdout)
    server = ("starlette", "granian", "sqlite3", "_sqlite3", "msgspec", "eventtally.")
    allowed = {"eventtally.client"}
    for modules in (bare, loaded):
        offenders = [m for m in modules if m.startswith(server) and m not in allowed]
        assert offenders == []
    assert "httpx" not in bare  # the client is loaded on first use
    assert "httpx" in loaded
