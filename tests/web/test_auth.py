"""Authentication and permissions (contract 1.2, 1.6, 8.17)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from eventtally.domain.model import PERMISSIONS, ApiKey, Workspace
from eventtally.store.base import new_secret
from eventtally.store.memory import MemoryStore
from eventtally.web.app import now_us
from eventtally.web.auth import KnownKeys
from tests.support import Api

TRACK_BODY = {"events": [{"external_id": "u", "name": "secret", "time": "2024-03-10T12:00:00Z"}]}

# (permission, method, path, query or JSON body): one call per endpoint, valid once authorised.
ENDPOINTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("users.track", "POST", "/users/track", TRACK_BODY),
    ("events.data_series", "GET", "/events/data_series", {"event": "secret", "length": 1}),
    ("events.list", "GET", "/events/list", {}),
    ("events.get", "GET", "/events", {}),
]
ENDPOINT_IDS = [e[0] for e in ENDPOINTS]


def call(api: Api, method: str, path: str, data: dict[str, Any], headers: dict[str, str]) -> Any:
    if method == "POST":
        return api.client.post(path, json=data, headers=headers)
    return api.client.get(path, params=data, headers=headers)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message"}
    message: str = body["message"]
    assert message
    return message


@pytest.mark.parametrize(("permission", "method", "path", "data"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_the_all_permission_key_is_served(
    api: Api, permission: str, method: str, path: str, data: dict[str, Any]
) -> None:
    response = call(api, method, path, data, api.auth)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(("permission", "method", "path", "data"), ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token et_abc"},
    ],
    ids=["absent", "empty", "no-value", "blank-value", "basic", "other-scheme"],
)
def test_missing_key_is_a_401(
    api: Api,
    permission: str,
    method: str,
    path: str,
    data: dict[str, Any],
    headers: dict[str, str],
) -> None:
    error(call(api, method, path, data, headers), 401)


@pytest.mark.parametrize(("permission", "method", "path", "data"), ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize("secret", ["et_unknown", "not-a-key", "x" * 2000])
def test_unknown_key_is_a_401(
    api: Api, permission: str, method: str, path: str, data: dict[str, Any], secret: str
) -> None:
    message = error(call(api, method, path, data, bearer(secret)), 401)
    assert secret not in message  # the key is never echoed back


def test_scheme_is_case_insensitive(api: Api) -> None:
    response = api.client.get("/events/list", headers={"Authorization": f"bearer {api.key}"})
    assert response.status_code == 200, response.text


def test_legacy_api_key_query_parameter_is_off_by_default(api: Api) -> None:
    error(api.client.get("/events/list", params={"api_key": api.key}), 401)


@pytest.mark.parametrize(("permission", "method", "path", "data"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_key_without_the_permission_is_a_403_naming_it(
    api: Api, permission: str, method: str, path: str, data: dict[str, Any]
) -> None:
    others = [p for p in PERMISSIONS if p != permission]
    message = error(call(api, method, path, data, bearer(api.new_key(*others))), 403)
    assert permission in message
    # The same key does get in with just that permission.
    allowed = call(api, method, path, data, bearer(api.new_key(permission)))
    assert allowed.status_code in (200, 201), allowed.text


def test_403_is_checked_before_the_request_is_read(api: Api) -> None:
    key = api.new_key("events.list")
    response = api.client.post(
        "/users/track", content=b"not json", headers={**bearer(key), "Content-Type": "text/plain"}
    )
    assert "users.track" in error(response, 403)
    assert "events.data_series" in error(
        api.client.get("/events/data_series", headers=bearer(key)), 403
    )


def test_a_forbidden_track_stores_nothing(api: Api) -> None:
    key = api.new_key("events.list", "events.data_series", "events.get")
    error(api.client.post("/users/track", json=TRACK_BODY, headers=bearer(key)), 403)
    assert api.get("/events/list").json()["events"] == []


@pytest.mark.parametrize(("permission", "method", "path", "data"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_revoked_key_is_a_401_on_the_next_request(
    api: Api, permission: str, method: str, path: str, data: dict[str, Any]
) -> None:
    secret = api.new_key(permission)
    assert call(api, method, path, data, bearer(secret)).status_code in (200, 201)
    (key,) = [k for k in api.store.list_keys(api.workspace.id) if k.name == "test"]
    revoked = api.store.revoke_key(api.workspace.id, key.id, now_us())
    assert revoked.revoked
    error(call(api, method, path, data, bearer(secret)), 401)
    # Other keys are untouched.
    assert call(api, method, path, data, api.auth).status_code in (200, 201)


def test_another_workspaces_key_never_sees_this_workspace(api: Api) -> None:
    both = "2024-03-10T12:00:00Z"
    mine = {"events": [{"external_id": "u", "name": "secret", "time": both}] * 2}
    assert api.track(mine).json() == {"message": "success", "events_processed": 2}

    other = api.store.create_workspace("other", "UTC", now_us())
    secret = new_secret()
    api.store.add_key(other.id, "other", secret, frozenset(PERMISSIONS), now_us())
    theirs = bearer(secret)
    get: Callable[..., httpx.Response] = api.client.get

    assert get("/events/list", headers=theirs).json() == {"message": "success", "events": []}
    assert get("/events", headers=theirs).json() == {"message": "success", "events": []}
    series = {"event": "secret", "length": 1, "ending_at": "2024-03-11"}
    assert get("/events/data_series", params=series, headers=theirs).json()["data"] == [
        {"time": "2024-03-10", "count": 0}
    ]
    # This workspace's apps are unknown there, for the series and for ingest.
    app_id = api.app_ids[0]
    response = get("/events/data_series", params={**series, "app_id": app_id}, headers=theirs)
    assert "app_id" in error(response, 400)
    foreign_app = {
        "events": [{"external_id": "u", "name": "secret", "time": both, "app_id": app_id}]
    }
    refused = api.client.post("/users/track", json=foreign_app, headers=theirs)
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {"type": "'app_id' is not a known app", "input_array": "events", "index": 0}
    ]

    # The same name tracked there counts there only, and the same external_id is another user.
    one = {"events": [{"external_id": "u", "name": "secret", "time": both}]}
    assert api.client.post("/users/track", json=one, headers=theirs).status_code == 201
    assert get("/events/data_series", params=series, headers=theirs).json()["data"] == [
        {"time": "2024-03-10", "count": 1}
    ]
    assert api.series(**series).json()["data"] == [{"time": "2024-03-10", "count": 2}]
    assert api.get("/events/list").json()["events"] == ["secret"]


class CountingStore(MemoryStore):
    """Counts how often the web layer asks the store about a key."""

    asked = 0

    def authenticate(self, secret: str) -> tuple[Workspace, ApiKey] | None:
        self.asked += 1
        return super().authenticate(secret)


def known_keys(seconds: float) -> tuple[CountingStore, KnownKeys, Workspace, str]:
    store = CountingStore()
    workspace = store.create_workspace("w", "UTC", 0)
    secret = new_secret()
    store.add_key(workspace.id, "k", secret, PERMISSIONS, 0)
    return store, KnownKeys(store, seconds), workspace, secret


def test_a_checked_key_is_trusted_for_a_while_without_asking_the_store() -> None:
    store, known, workspace, secret = known_keys(60)
    assert known.authenticate(secret) == store.authenticate(secret)
    store.asked = 0
    for _ in range(5):
        found = known.authenticate(secret)
        assert found is not None
        assert found[0] == workspace
    assert store.asked == 0


def test_what_this_process_changes_applies_at_once() -> None:
    store, known, workspace, secret = known_keys(60)
    assert known.authenticate(secret) is not None
    store.update_workspace("w", "Asia/Kolkata")
    found = known.authenticate(secret)
    assert found is not None
    assert found[0].time_zone == "Asia/Kolkata"
    key_id = found[1].id
    store.revoke_key(workspace.id, key_id, 1)
    assert known.authenticate(secret) is None


def test_what_another_process_changes_applies_once_the_time_is_up() -> None:
    store, known, _, secret = known_keys(0.05)
    assert known.authenticate(secret) is not None
    store.asked = 0
    time.sleep(0.1)
    assert known.authenticate(secret) is not None
    assert store.asked == 1


def test_unknown_keys_are_not_remembered_and_zero_seconds_always_asks() -> None:
    store, known, workspace, secret = known_keys(60)
    later = new_secret()
    assert known.authenticate(later) is None
    store.add_key(workspace.id, "later", later, PERMISSIONS, 0)
    assert known.authenticate(later) is not None  # a key just created works at once
    store, known, _, secret = known_keys(0)
    store.asked = 0
    known.authenticate(secret)
    known.authenticate(secret)
    assert store.asked == 2
