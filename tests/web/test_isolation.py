"""A key of one workspace never reads or changes anything of another, on any endpoint."""

from __future__ import annotations

from eventtally.domain.model import PERMISSIONS, EventUpdate
from eventtally.store.base import new_secret
from tests.support import Api

WHEN = "2025-03-01T12:00:00Z"


def other_workspace(api: Api) -> tuple[dict[str, str], str]:
    """An all-permission key of a second workspace, and that workspace's app id."""
    other = api.store.create_workspace("other", "UTC", 0)
    app = api.store.create_app(other.id, "theirs", 0)
    secret = new_secret()
    api.store.add_key(other.id, "k", secret, frozenset(PERMISSIONS), 0)
    return {"Authorization": f"Bearer {secret}"}, app.app_id


def test_every_endpoint_keeps_workspaces_apart(api: Api) -> None:
    mine = {"external_id": "same-user", "name": "shared_name", "time": WHEN}
    assert api.track({"events": [mine, {**mine, "app_id": api.app_ids[0]}]}).status_code == 201
    api.store.update_event(api.workspace.id, "shared_name", EventUpdate(description="mine"))
    theirs, their_app = other_workspace(api)
    client = api.client
    series = {"event": "shared_name", "length": 1, "ending_at": "2025-03-02"}

    # Reads: the other workspace sees none of this one's events or catalogue.
    response = client.get("/events/data_series", params=series, headers=theirs)
    assert response.json()["data"] == [{"time": "2025-03-01", "count": 0}]
    assert client.get("/events/list", headers=theirs).json()["events"] == []
    assert client.get("/events", headers=theirs).json()["events"] == []
    # This workspace's app is unknown there, for reading and for writing.
    response = client.get(
        "/events/data_series", params={**series, "app_id": api.app_ids[0]}, headers=theirs
    )
    assert response.status_code == 400
    tracked = client.post(
        "/users/track",
        json={"events": [{**mine, "app_id": api.app_ids[0]}]},
        headers=theirs,
    )
    assert tracked.status_code == 400
    assert tracked.json()["errors"][0]["type"] == "'app_id' is not a known app"

    # Writes: the same user id and event name in the other workspace change nothing here.
    more = {"events": [{**mine, "app_id": their_app}, mine, mine]}
    assert client.post("/users/track", json=more, headers=theirs).status_code == 201
    assert api.series(**series).json()["data"] == [{"time": "2025-03-01", "count": 2}]
    assert api.get("/events").json()["events"][0]["description"] == "mine"
    response = api.series(**{**series, "app_id": their_app})
    assert response.status_code == 400
    # And the other workspace counts only its own.
    response = client.get("/events/data_series", params=series, headers=theirs)
    assert response.json()["data"] == [{"time": "2025-03-01", "count": 3}]


def test_braze_ids_do_not_cross_workspaces(api: Api) -> None:
    assert api.track({"attributes": [{"external_id": "u", "plan": "pro"}]}).status_code == 201
    braze_id = api.store._reader().execute("SELECT braze_id FROM users").fetchone()[0]
    theirs, _ = other_workspace(api)
    response = api.client.post(
        "/users/track",
        json={"events": [{"braze_id": braze_id, "name": "e", "time": WHEN}]},
        headers=theirs,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "'braze_id' does not match any user"
