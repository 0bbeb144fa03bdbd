"""`GET /workspace` (eventtally extension, docs/dashboard.md), in process."""

from __future__ import annotations

from eventtally.domain.model import PERMISSIONS
from eventtally.domain.ratelimit import DEFAULT_LIMITS, Limit, RateBucket
from eventtally.store.base import new_secret
from eventtally.web.openapi import document
from tests.support import Api


def test_fields(api: Api) -> None:
    response = api.get("/workspace")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    apps = api.store.list_apps(api.workspace.id)
    assert response.json() == {
        "message": "success",
        "name": "test",
        "time_zone": "UTC",
        "apps": [{"app_id": app.app_id, "name": app.name} for app in apps],
    }
    assert [app["app_id"] for app in response.json()["apps"]] == api.app_ids


def test_follows_zone_changes_and_new_apps(api: Api) -> None:
    api.store.update_workspace("test", "America/New_York")
    made = api.store.create_app(api.workspace.id, "web", 0)
    body = api.get("/workspace").json()
    assert body["time_zone"] == "America/New_York"
    assert body["apps"][-1] == {"app_id": made.app_id, "name": "web"}


def test_default_rate_bucket(api: Api) -> None:
    response = api.get("/workspace")
    limit = DEFAULT_LIMITS[RateBucket.DEFAULT]
    assert response.headers["x-ratelimit-limit"] == str(limit.requests)
    assert int(response.headers["x-ratelimit-remaining"]) == limit.requests - 1
    # It shares the default bucket with the series endpoints (not the catalogue's): with
    # 3 an hour, the request above, this one and one series leave none.
    api.store.update_workspace("test", rate_limits={RateBucket.DEFAULT: Limit(3, 3600)})
    assert api.get("/workspace").status_code == 200
    assert api.series(event="e", length=1).status_code == 200
    refused = api.get("/workspace")
    assert refused.status_code == 429
    assert refused.json() == {"message": "Rate limit exceeded"}
    assert int(refused.headers["retry-after"]) >= 0
    assert api.get("/events/list").status_code == 200  # the catalogue bucket is apart


def test_needs_workspace_get(api: Api) -> None:
    others = [p for p in PERMISSIONS if p != "workspace.get"]
    key = api.new_key(*others)
    response = api.client.get("/workspace", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert response.json() == {"message": "this API key lacks the 'workspace.get' permission"}
    key = api.new_key("workspace.get")
    response = api.client.get("/workspace", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


def test_no_key_or_an_unknown_one(api: Api) -> None:
    response = api.client.get("/workspace")
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API key: undefined"}
    assert response.headers["x-ratelimit-limit"] == ""
    wrong = api.client.get("/workspace", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"message": "Invalid API key: non-existent"}


def test_revoked_key(api: Api) -> None:
    key = api.new_key("workspace.get")
    keys = {k.name: k for k in api.store.list_keys(api.workspace.id) if k.name == "test"}
    api.store.revoke_key(api.workspace.id, keys["test"].id, 0)
    response = api.client.get("/workspace", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_isolation(api: Api) -> None:
    other = api.store.create_workspace("other", "Asia/Tokyo", 0)
    theirs = api.store.create_app(other.id, "theirs", 0)
    secret = new_secret()
    api.store.add_key(other.id, "k", secret, frozenset(PERMISSIONS), 0)
    response = api.client.get("/workspace", headers={"Authorization": f"Bearer {secret}"})
    assert response.json() == {
        "message": "success",
        "name": "other",
        "time_zone": "Asia/Tokyo",
        "apps": [{"app_id": theirs.app_id, "name": "theirs"}],
    }
    mine = api.get("/workspace").json()
    assert mine["name"] == "test"
    assert theirs.app_id not in {app["app_id"] for app in mine["apps"]}
    # Rate limits are per workspace too: exhausting one leaves the other untouched.
    api.store.update_workspace("other", rate_limits={RateBucket.DEFAULT: Limit(1, 3600)})
    assert (
        api.client.get("/workspace", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 429
    )
    assert api.get("/workspace").status_code == 200


def test_documented_in_openapi() -> None:
    operation = document()["paths"]["/workspace"]["get"]
    assert operation["security"] == [{"bearer": []}]
    assert set(operation["responses"]) == {"200", "401", "403", "429"}
    schema = document()["components"]["schemas"]["Workspace"]
    assert schema["required"] == ["message", "name", "time_zone", "apps"]
