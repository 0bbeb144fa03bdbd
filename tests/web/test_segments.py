"""`/segments/list`, `/segments/details`, `/segments/data_series` and `segment_id` on
`/events/data_series`: paging, fields, errors, permissions, isolation, and the membership
rules at ingest (architecture decision 5) seen through the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from eventtally.domain.model import PERMISSIONS, Segment, SegmentChanges
from eventtally.store.base import new_secret
from tests.support import Api, running_api

T0 = 1_768_003_200_000_000  # 2026-01-10T00:00:00Z
SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
PRO = {"attribute": "plan", "op": "eq", "value": "pro"}


@dataclass
class Clock:
    now: int

    def __call__(self) -> int:
        return self.now


@dataclass
class World:
    api: Api
    clock: Clock

    def at(self, now: int) -> World:
        self.clock.now = now
        return self

    def segment(
        self,
        filter_json: object = PRO,
        tracking: bool = True,
        name: str = "s",
        now: int | None = None,
        **fields: Any,
    ) -> Segment:
        draft = Segment(
            id=0,
            workspace_id=self.api.workspace.id,
            segment_id="",
            name=name,
            filter=filter_json,
            tracking=tracking,
            **fields,
        )
        when = self.clock.now if now is None else now
        return self.api.store.create_segment(self.api.workspace.id, draft, when)

    def change(self, segment: Segment, now: int | None = None, **changes: Any) -> Segment:
        when = self.clock.now if now is None else now
        return self.api.store.update_segment(
            self.api.workspace.id, segment.segment_id, SegmentChanges(**changes), when
        )

    def track(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.track(body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        assert "errors" not in result, result
        return result

    def hours(self, segment: Segment, event: str, start: int, n: int, **extra: Any) -> list[int]:
        """Hourly counts of `event` for the segment, for the n hours from `start` (UTC)."""
        response = self.api.series(
            event=event,
            unit="hour",
            length=n,
            ending_at=iso(start + n * HOUR),
            segment_id=segment.segment_id,
            **extra,
        )
        assert response.status_code == 200, response.text
        return [point["count"] for point in response.json()["data"]]

    def sizes(self, segment: Segment, length: int, **extra: Any) -> list[tuple[str, int]]:
        response = self.api.get(
            "/segments/data_series", segment_id=segment.segment_id, length=length, **extra
        )
        assert response.status_code == 200, response.text
        return [(point["time"], point["size"]) for point in response.json()["data"]]


def iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()


def event(user: str, name: str, at: int, **fields: Any) -> dict[str, Any]:
    return {"external_id": user, "name": name, "time": iso(at), **fields}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = Clock(T0)
    with running_api(tmp_path / "data", clock=clock) as api:
        yield World(api, clock)


def message(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message"}, body
    text: str = body["message"]
    return text


# --- /segments/list ------------------------------------------------------------------------


def test_list_pages_100_at_a_time_by_creation_and_leaves_archived_out(world: World) -> None:
    made = [
        world.segment(name=f"seg{i:03}", tracking=i % 20 == 3, now=T0 + i, tags=(f"t{i}",))
        for i in range(215)
    ]
    for i in (0, 7, 150):
        world.change(made[i], archived=True)
    live = [s for i, s in enumerate(made) if i not in (0, 7, 150)]

    def page(**params: Any) -> list[dict[str, Any]]:
        response = world.api.get("/segments/list", **params)
        assert response.status_code == 200, response.text
        assert response.json()["message"] == "success"
        segments: list[dict[str, Any]] = response.json()["segments"]
        return segments

    pages = [page(page=n) for n in range(4)]
    assert [len(p) for p in pages] == [100, 100, 12, 0]
    assert [s["id"] for p in pages for s in p] == [s.segment_id for s in live]
    assert page() == pages[0]  # page 0 and asc are the defaults
    assert page(sort_direction="asc", page=1) == pages[1]
    assert pages[0][0] == {
        "id": made[1].segment_id,
        "name": "seg001",
        "analytics_tracking_enabled": False,
        "tags": ["t1"],
    }
    assert pages[0][2]["analytics_tracking_enabled"] is True  # seg003
    newest_first = [s for n in range(3) for s in page(sort_direction="desc", page=n)]
    assert [s["id"] for s in newest_first] == [s.segment_id for s in reversed(live)]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"sort_direction": "up"}, "sort_direction"),
        ({"sort_direction": "DESC"}, "sort_direction"),
        ({"page": "-1"}, "page"),
        ({"page": "one"}, "page"),
    ],
)
def test_list_refuses_bad_parameters(world: World, params: dict[str, str], names: str) -> None:
    assert names in message(world.api.get("/segments/list", **params))


# --- /segments/details ---------------------------------------------------------------------


def test_details_give_times_with_offsets_summary_description_tags_and_teams(world: World) -> None:
    segment = world.segment(
        name="Pro users",
        filter_json={"all": [PRO, {"event": "signup", "op": "gte", "count": 2}]},
        description="everyone who pays",
        tags=("billing", "core"),
        teams=("growth",),
    )
    world.change(segment, now=T0 + 90 * SECOND, name="Paying users")
    response = world.api.get("/segments/details", segment_id=segment.segment_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "message",
        "created_at",
        "updated_at",
        "name",
        "description",
        "text_description",
        "tags",
        "teams",
    }
    assert body["message"] == "success"
    for field, expected in (("created_at", T0), ("updated_at", T0 + 90 * SECOND)):
        moment = datetime.fromisoformat(body[field])
        assert moment.utcoffset() is not None, body[field]
        assert moment == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=expected)
    assert body["created_at"] == "2026-01-10T00:00:00+00:00"
    assert body["name"] == "Paying users"
    assert body["description"] == 'plan is "pro" and performed signup at least 2 times'
    assert body["text_description"] == "everyone who pays"
    assert body["tags"] == ["billing", "core"]
    assert body["teams"] == ["growth"]


def test_details_without_description_tags_or_teams(world: World) -> None:
    segment = world.segment(filter_json={"not": {"used_app": world.api.app_ids[0]}}, tracking=False)
    body = world.api.get("/segments/details", segment_id=segment.segment_id).json()
    assert body["description"] == f"not (used app {world.api.app_ids[0]})"
    assert (body["text_description"], body["tags"], body["teams"]) == (None, [], [])


def test_details_refuse_missing_unknown_and_archived_segments(world: World) -> None:
    assert "segment_id" in message(world.api.get("/segments/details"))
    assert "not a segment" in message(world.api.get("/segments/details", segment_id="nope"))
    segment = world.segment()
    world.change(segment, archived=True)
    archived = world.api.get("/segments/details", segment_id=segment.segment_id)
    assert "archived" in message(archived)


# --- errors of the series endpoints --------------------------------------------------------


def test_event_series_refuse_unknown_archived_and_untracked_segments(world: World) -> None:
    series = {"event": "buy", "length": 3}
    unknown = message(world.api.series(**series, segment_id="0d9e6b8a-unknown"))
    assert "not a segment of this workspace" in unknown
    assert "0d9e6b8a-unknown" in unknown
    untracked = world.segment(tracking=False)
    assert "not tracked" in message(world.api.series(**series, segment_id=untracked.segment_id))
    archived = world.segment()
    world.change(archived, archived=True)
    assert "archived" in message(world.api.series(**series, segment_id=archived.segment_id))
    # Tracking switched off later: refused the same way.
    was_tracked = world.segment()
    world.change(was_tracked, tracking=False)
    response = world.api.series(**series, segment_id=was_tracked.segment_id)
    assert "not tracked" in message(response)
    tracked = world.segment()
    assert world.api.series(**series, segment_id=tracked.segment_id).status_code == 200
    twice = world.api.client.get(
        "/events/data_series?event=buy&length=1"
        f"&segment_id={tracked.segment_id}&segment_id={tracked.segment_id}",
        headers=world.api.auth,
    )
    assert "segment_id" in message(twice)


@pytest.mark.parametrize("length", ["0", "101", "-1", "seven", "1.5"])
def test_segment_sizes_refuse_a_bad_length(world: World, length: str) -> None:
    segment = world.segment()
    response = world.api.get("/segments/data_series", segment_id=segment.segment_id, length=length)
    assert "length" in message(response)


def test_segment_sizes_refuse_missing_unknown_and_archived_segments(world: World) -> None:
    assert "segment_id" in message(world.api.get("/segments/data_series", length=3))
    assert "length" in message(
        world.api.get("/segments/data_series", segment_id=world.segment().segment_id)
    )
    response = world.api.get("/segments/data_series", segment_id="nope", length=3)
    assert "not a segment" in message(response)
    archived = world.segment()
    world.change(archived, archived=True)
    response = world.api.get("/segments/data_series", segment_id=archived.segment_id, length=3)
    assert "archived" in message(response)
    bad_end = world.api.get(
        "/segments/data_series", segment_id=world.segment().segment_id, length=3, ending_at="x"
    )
    assert "ending_at" in message(bad_end)


def test_untracked_segments_have_sizes(world: World) -> None:
    world.track({"attributes": [{"external_id": "u1", "plan": "pro"}]})
    segment = world.segment(tracking=False)
    world.at(T0 + HOUR)
    assert world.sizes(segment, 2) == [("2026-01-09", 0), ("2026-01-10", 1)]


# --- membership at ingest ------------------------------------------------------------------


def test_an_event_count_condition_counts_the_event_being_processed(world: World) -> None:
    twice = world.segment({"event": "buy", "op": "gte", "count": 2}, name="twice")
    once = world.segment({"event": "buy", "op": "eq", "count": 1}, name="once")
    never = world.segment({"event": "buy", "op": "lte", "count": 0}, name="never")
    day = T0 - DAY  # events on 2026-01-09, hour by hour
    world.at(T0 + 1).track({"events": [event("u1", "buy", day)]})
    world.at(T0 + 2).track({"events": [event("u1", "buy", day + HOUR)]})
    # Two in one request: each sees the count with itself.
    world.at(T0 + 3).track(
        {"events": [event("u1", "buy", day + 2 * HOUR), event("u2", "buy", day + 3 * HOUR)]}
    )
    world.at(T0 + 4).track(
        {"events": [event("u2", "buy", day + 4 * HOUR), event("u2", "buy", day + 5 * HOUR)]}
    )
    assert world.hours(twice, "buy", day, 6) == [0, 1, 1, 0, 1, 1]
    assert world.hours(once, "buy", day, 6) == [1, 0, 0, 1, 0, 0]
    assert world.hours(never, "buy", day, 6) == [0, 0, 0, 0, 0, 0]
    # Without a segment every buy counts.
    response = world.api.series(event="buy", unit="hour", length=6, ending_at=iso(day + 6 * HOUR))
    assert [p["count"] for p in response.json()["data"]] == [1] * 6


def test_attributes_apply_before_the_same_requests_events(world: World) -> None:
    segment = world.segment()
    day = T0 - DAY
    # The events come first in the body; the attributes are still applied first.
    world.at(T0 + 1).track(
        {
            "events": [event("u1", "buy", day)],
            "attributes": [{"external_id": "u1", "plan": "pro"}],
        }
    )
    world.at(T0 + 2).track(
        {
            "events": [event("u1", "buy", day + HOUR)],
            "attributes": [{"external_id": "u1", "plan": "free"}],
        }
    )
    world.at(T0 + 3).track(
        {
            "attributes": [{"external_id": "u1", "plan": "pro"}],
            "events": [event("u1", "buy", day + 2 * HOUR)],
        }
    )
    assert world.hours(segment, "buy", day, 3) == [1, 0, 1]


def test_used_app_counts_a_purchase_with_that_app(world: World) -> None:
    app0, app1 = world.api.app_ids
    segment = world.segment({"used_app": app1})
    day = T0 - DAY
    purchase = {"product_id": "p", "currency": "USD", "price": 2, "app_id": app1}
    world.at(T0 + 1).track({"events": [event("u1", "buy", day, app_id=app0)]})
    # Events come before purchases in one request: this event is not yet by an app1 user.
    world.at(T0 + 2).track(
        {
            "events": [event("u1", "buy", day + HOUR)],
            "purchases": [{"external_id": "u1", "time": iso(T0), **purchase}],
        }
    )
    world.at(T0 + 3).track({"events": [event("u1", "buy", day + 2 * HOUR, app_id=app0)]})
    world.at(T0 + 4).track({"attributes": [{"external_id": "u2", "plan": "pro"}]})
    world.at(T0 + 5).track({"events": [event("u2", "buy", day + 3 * HOUR)]})
    assert world.hours(segment, "buy", day, 4) == [0, 0, 1, 0]
    assert world.hours(segment, "buy", day, 4, app_id=app0) == [0, 0, 1, 0]
    assert world.hours(segment, "buy", day, 4, app_id=app1) == [0, 0, 0, 0]
    world.at(T0 + HOUR)
    assert world.sizes(segment, 1) == [("2026-01-10", 1)]


def test_a_new_tracked_segment_counts_stored_events_of_users_who_match_now(world: World) -> None:
    day = T0 - DAY
    world.at(T0 + 1).track(
        {
            "attributes": [
                {"external_id": "u1", "plan": "free"},
                {"external_id": "u2", "plan": "pro"},
            ],
            "events": [
                event("u1", "buy", day),
                event("u2", "buy", day + HOUR),
                event("u3", "buy", day + 2 * HOUR),
                event("u3", "buy", day + 3 * HOUR),
            ],
        }
    )
    # u1 turns pro after buying: as the user is at creation, every stored event counts.
    world.at(T0 + 2).track({"attributes": [{"external_id": "u1", "plan": "pro"}]})
    world.at(T0 + 2 * DAY)
    pro = world.segment()
    # Event counts too are read as they are at creation: both of u3's buys count.
    twice = world.segment({"event": "buy", "op": "gte", "count": 2}, name="twice")
    untracked = world.segment(tracking=False, name="untracked")
    assert world.hours(pro, "buy", day, 4) == [1, 1, 0, 0]
    assert world.hours(twice, "buy", day, 4) == [0, 0, 1, 1]
    # Sizes start at creation: the days before are 0.
    world.at(T0 + 2 * DAY + HOUR)
    expected = [("2026-01-10", 0), ("2026-01-11", 0), ("2026-01-12", 2)]
    assert world.sizes(pro, 3) == expected
    assert world.sizes(untracked, 3) == expected
    assert world.sizes(twice, 3) == [(d, 0 if s == 0 else 1) for d, s in expected]


def test_a_filter_change_rebuilds_the_series(world: World) -> None:
    day = T0 - DAY
    world.at(T0 + 1).track(
        {
            "attributes": [
                {"external_id": "u1", "plan": "pro"},
                {"external_id": "u2", "plan": "free"},
            ],
            "events": [event("u1", "buy", day), event("u2", "buy", day + HOUR)],
        }
    )
    segment = world.at(T0 + 2).segment()
    assert world.hours(segment, "buy", day, 2) == [1, 0]
    world.change(segment, now=T0 + 3, filter={"attribute": "plan", "op": "eq", "value": "free"})
    assert world.hours(segment, "buy", day, 2) == [0, 1]
    world.at(T0 + HOUR)
    assert world.sizes(segment, 1) == [("2026-01-10", 1)]


def test_sizes_are_members_at_each_days_end_in_the_reporting_zone(tmp_path: Path) -> None:
    clock = Clock(T0)
    with running_api(tmp_path / "data", time_zone="Asia/Kolkata", clock=clock) as api:
        world = World(api, clock)
        midnight = T0 + 18 * HOUR + 30 * 60 * SECOND  # 2026-01-11T00:00+05:30
        segment = world.segment(now=T0 + 1)
        world.at(midnight - 1).track({"attributes": [{"external_id": "u1", "plan": "pro"}]})
        world.at(midnight).track({"attributes": [{"external_id": "u2", "plan": "pro"}]})
        world.at(midnight + DAY - 1).track({"attributes": [{"external_id": "u1", "plan": "x"}]})
        world.at(midnight + DAY).track({"attributes": [{"external_id": "u3", "plan": "pro"}]})
        world.at(midnight + DAY + HOUR)
        assert world.sizes(segment, 4) == [
            ("2026-01-09", 0),
            ("2026-01-10", 1),
            ("2026-01-11", 1),
            ("2026-01-12", 2),
        ]
        # A bare date ends the window with the day before it; the future stays out.
        assert world.sizes(segment, 2, ending_at="2026-01-12") == [
            ("2026-01-10", 1),
            ("2026-01-11", 1),
        ]


def test_todays_size_includes_a_change_made_at_now(world: World) -> None:
    world.at(T0 + HOUR)
    segment = world.segment()
    world.track({"attributes": [{"external_id": "u1", "plan": "pro"}]})  # at now
    assert world.sizes(segment, 1) == [("2026-01-10", 1)]


# --- permissions and isolation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "path"),
    [
        ("segments.list", "/segments/list"),
        ("segments.details", "/segments/details"),
        ("segments.data_series", "/segments/data_series"),
    ],
)
def test_each_segment_endpoint_needs_its_permission(
    world: World, permission: str, path: str
) -> None:
    segment = world.segment()
    params: dict[str, str | int] = {"segment_id": segment.segment_id, "length": 1}
    without = world.api.new_key(*(p for p in PERMISSIONS if p != permission))
    response = world.api.client.get(
        path, params=params, headers={"Authorization": f"Bearer {without}"}
    )
    assert permission in message(response, 403)
    only = world.api.new_key(permission)
    response = world.api.client.get(
        path, params=params, headers={"Authorization": f"Bearer {only}"}
    )
    assert response.status_code == 200, response.text


def test_segments_of_another_workspace_are_unknown(world: World) -> None:
    store = world.api.store
    other = store.create_workspace("other", "UTC", T0)
    secret = new_secret()
    store.add_key(other.id, "k", secret, frozenset(PERMISSIONS), T0)
    theirs = {"Authorization": f"Bearer {secret}"}
    draft = Segment(
        id=0, workspace_id=other.id, segment_id="", name="theirs", filter=PRO, tracking=True
    )
    their_segment = store.create_segment(other.id, draft, T0)
    mine = world.segment(name="mine")
    client = world.api.client
    # Their segment is no segment here, on every endpoint.
    queries: tuple[tuple[str, dict[str, str | int]], ...] = (
        ("/events/data_series", {"event": "buy", "length": 1}),
        ("/segments/details", {}),
        ("/segments/data_series", {"length": 1}),
    )
    for path, params in queries:
        response = world.api.get(path, segment_id=their_segment.segment_id, **params)
        assert "not a segment of this workspace" in message(response)
        response = client.get(
            path, params={"segment_id": mine.segment_id, **params}, headers=theirs
        )
        assert "not a segment of this workspace" in message(response)
    listed = world.api.get("/segments/list").json()["segments"]
    assert [s["name"] for s in listed] == ["mine"]
    listed = client.get("/segments/list", headers=theirs).json()["segments"]
    assert [s["name"] for s in listed] == ["theirs"]
    # Their events do not count for their segment's series through this workspace's users.
    world.track({"attributes": [{"external_id": "u1", "plan": "pro"}]})
    world.at(T0 + 1).track({"events": [event("u1", "buy", T0 - HOUR)]})
    response = client.get(
        "/events/data_series",
        params={"event": "buy", "length": 1, "segment_id": their_segment.segment_id},
        headers=theirs,
    )
    assert [p["count"] for p in response.json()["data"]] == [0]
    assert world.hours(mine, "buy", T0 - HOUR, 1) == [1]


def test_days_yet_to_begin_have_size_zero(world: World) -> None:
    world.at(T0 + HOUR)
    segment = world.segment()
    world.track({"attributes": [{"external_id": "u1", "plan": "pro"}]})
    # A window reaching two days into the future: today holds u1, tomorrow has not begun.
    assert world.sizes(segment, 3, ending_at="2026-01-12") == [
        ("2026-01-09", 0),
        ("2026-01-10", 1),
        ("2026-01-11", 0),
    ]
