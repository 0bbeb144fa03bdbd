"""Every error path answers JSON `{"message": ...}` (contract 1.3, 1.4, 8.6, 8.14)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from eventtally.domain.model import PERMISSIONS
from tests.support import Api

Call = Callable[[Api], httpx.Response]

EVENT = {"external_id": "u", "name": "e", "time": "2024-03-10T12:00:00Z"}
NO_KEY: dict[str, str] = {}
UNKNOWN_KEY = {"Authorization": "Bearer et_not-a-real-key"}


def track_raw(content: bytes, content_type: str = "application/json") -> Call:
    def run(api: Api) -> httpx.Response:
        headers = {**api.auth, "Content-Type": content_type}
        response: httpx.Response = api.client.post("/users/track", content=content, headers=headers)
        return response

    return run


def track(body: Any) -> Call:
    return lambda api: api.track(body)


def get(path: str, params: Any = None, headers: dict[str, str] | None = None) -> Call:
    def run(api: Api) -> httpx.Response:
        response: httpx.Response = api.client.get(
            path, params=params, headers=api.auth if headers is None else headers
        )
        return response

    return run


def series(**params: Any) -> Call:
    return get("/events/data_series", params)


def request(method: str, path: str, headers: dict[str, str] | None = None) -> Call:
    def run(api: Api) -> httpx.Response:
        response: httpx.Response = api.client.request(
            method, path, headers=api.auth if headers is None else headers
        )
        return response

    return run


def without(permission: str, method: str, path: str) -> Call:
    def run(api: Api) -> httpx.Response:
        key = api.new_key(*(p for p in PERMISSIONS if p != permission))
        headers = {"Authorization": f"Bearer {key}"}
        if method == "POST":
            response: httpx.Response = api.client.post(
                path, json={"events": [EVENT]}, headers=headers
            )
        else:
            response = api.client.get(path, params={"event": "e", "length": 1}, headers=headers)
        return response

    return run


def revoked(api: Api) -> httpx.Response:
    secret = api.new_key("events.list")
    (key,) = [k for k in api.store.list_keys(api.workspace.id) if k.name == "test"]
    api.store.revoke_key(api.workspace.id, key.id, 0)
    response: httpx.Response = api.client.get(
        "/events/list", headers={"Authorization": f"Bearer {secret}"}
    )
    return response


ENDPOINTS = [
    ("POST", "/users/track"),
    ("GET", "/events/data_series"),
    ("GET", "/events/list"),
    ("GET", "/events"),
]

CASES: list[Any] = [
    # 401
    *[
        pytest.param(
            request(method, path, NO_KEY), 401, id=f"401-no-key-{method}{path.replace('/', '-')}"
        )
        for method, path in ENDPOINTS
    ],
    *[
        pytest.param(
            request(method, path, UNKNOWN_KEY),
            401,
            id=f"401-unknown-key-{method}{path.replace('/', '-')}",
        )
        for method, path in ENDPOINTS
    ],
    pytest.param(revoked, 401, id="401-revoked"),
    # 403
    pytest.param(without("users.track", "POST", "/users/track"), 403, id="403-users.track"),
    pytest.param(
        without("events.data_series", "GET", "/events/data_series"), 403, id="403-data_series"
    ),
    pytest.param(without("events.list", "GET", "/events/list"), 403, id="403-events.list"),
    pytest.param(without("events.get", "GET", "/events"), 403, id="403-events.get"),
    # 400 /users/track
    pytest.param(track_raw(b"{"), 400, id="400-track-invalid-json"),
    pytest.param(track_raw(b""), 400, id="400-track-empty-body"),
    pytest.param(track([EVENT]), 400, id="400-track-array-body"),
    pytest.param(track({}), 400, id="400-track-empty-object"),
    pytest.param(track({"events": [{"name": "e"}]}), 400, id="400-track-nothing-valid"),
    pytest.param(track({"events": [EVENT] * 76}), 400, id="400-track-too-many"),
    pytest.param(track({"events": {"a": 1}}), 400, id="400-track-not-an-array"),
    pytest.param(
        track_raw(b"[" * 100_000 + b"]" * 100_000),
        400,
        id="400-track-deeply-nested",
    ),
    pytest.param(
        track_raw(b'{"events":[{"external_id":"u","name":"\xff","time":"2024-03-10"}]}'),
        400,
        id="400-track-invalid-utf8-only-in-name",
    ),
    # 400 /events/data_series
    pytest.param(series(length=1), 400, id="400-series-no-event"),
    pytest.param(series(event="e"), 400, id="400-series-no-length"),
    pytest.param(series(event="e", length=0), 400, id="400-series-length-0"),
    pytest.param(series(event="e", length=101), 400, id="400-series-length-101"),
    pytest.param(series(event="e", length="abc"), 400, id="400-series-length-abc"),
    pytest.param(series(event="e", length="1.5"), 400, id="400-series-length-float"),
    pytest.param(
        series(event="e", length="--5"),
        400,
        id="400-series-length-double-minus",
    ),
    pytest.param(series(event="e", length=1, unit="week"), 400, id="400-series-unit"),
    pytest.param(series(event="e", length=1, ending_at="soon"), 400, id="400-series-ending_at"),
    pytest.param(
        get("/events/data_series", [("event", "a"), ("event", "b"), ("length", "1")]),
        400,
        id="400-series-twice",
    ),
    pytest.param(series(event="e", length=1, app_id="nope"), 400, id="400-series-app_id"),
    pytest.param(series(event="e", length=1, segment_id="s"), 400, id="400-series-segment_id"),
    # 400 /events/list and /events
    pytest.param(get("/events/list", {"page": "-1"}), 400, id="400-list-negative-page"),
    pytest.param(get("/events/list", {"page": "x"}), 400, id="400-list-page-not-integer"),
    pytest.param(
        get("/events/list", {"page": "--1"}),
        400,
        id="400-list-page-double-minus",
    ),
    pytest.param(
        get("/events/list", [("page", "0"), ("page", "0")]), 400, id="400-list-page-twice"
    ),
    pytest.param(get("/events", {"cursor": "bad"}), 400, id="400-events-bad-cursor"),
    # 404
    pytest.param(request("GET", "/nope"), 404, id="404-unknown-path"),
    pytest.param(request("GET", "/nope", NO_KEY), 404, id="404-unknown-path-no-key"),
    pytest.param(request("GET", "/events/nope"), 404, id="404-under-events"),
    pytest.param(request("POST", "/users/track/extra"), 404, id="404-under-track"),
    # 405
    pytest.param(request("GET", "/users/track"), 405, id="405-get-track"),
    pytest.param(request("POST", "/events/list"), 405, id="405-post-list"),
    pytest.param(request("DELETE", "/events"), 405, id="405-delete-events"),
    pytest.param(request("PUT", "/events/data_series"), 405, id="405-put-series"),
    # 413, 415
    pytest.param(track_raw(b" " * (4 * 1024 * 1024 + 1)), 413, id="413-body-too-large"),
    pytest.param(track_raw(b"{}", "text/plain"), 415, id="415-text-plain"),
]


@pytest.mark.parametrize(("make", "status"), CASES)
def test_error_shape(api: Api, make: Call, status: int) -> None:
    response = make(api)
    assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/json"
    uuid.UUID(response.headers["x-request-id"])
    text = response.text
    assert "Traceback" not in text
    assert 'File "' not in text
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("message"), str)
    assert body["message"].strip()
    if response.request.url.path == "/users/track":
        assert set(body) <= {"message", "errors"}
        for item in body.get("errors", []):
            assert set(item) == {"type", "input_array", "index"}
            assert isinstance(item["type"], str)
            assert item["type"]
            assert item["input_array"] in ("attributes", "events", "purchases")
            assert isinstance(item["index"], int)
    else:
        assert set(body) == {"message"}
