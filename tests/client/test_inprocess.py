"""AsyncClient against the real app in process (httpx.ASGITransport over a SQLite store)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from eventtally import (
    APIError,
    AsyncClient,
    AuthenticationError,
    CatalogueEvent,
    PermissionDeniedError,
    SeriesPoint,
    TrackResult,
    ValidationError,
)
from eventtally.domain.model import EventUpdate
from tests.client.conftest import BASE_URL, ZONE, InProcess, ScriptedAsync, Waits, event, run

NEW_YORK = ZoneInfo(ZONE)


def test_track_1000_events_in_14_requests_with_errors_rebased(served: InProcess) -> None:
    start = datetime(2024, 3, 5, tzinfo=UTC)
    events = [
        event("open", (start + timedelta(minutes=17 * i)).isoformat(), user=f"u{i % 37}")
        for i in range(1000)
    ]
    # Requests hold events 0-74, 75-149, 150-224, ...: the third is refused whole (a 400
    # listing its items), the others in part.
    missing_user = {7, 999, *range(150, 225)}
    for i in missing_user:
        del events[i]["external_id"]
    events[500]["app_id"] = "no-such-app"
    attributes = [{"external_id": f"u{i}", "plan": "pro"} for i in range(100)]
    progress: list[int] = []
    transport = ScriptedAsync(served.transport(), [])

    async def scenario() -> tuple[TrackResult, list[SeriesPoint]]:
        async with AsyncClient(BASE_URL, served.key, transport=transport) as client:
            result = await client.track(
                attributes=iter(attributes), events=iter(events), on_progress=progress.append
            )
            series = await client.data_series("open", 14, ending_at=date(2024, 3, 18))
        return result, series

    result, series = run(scenario())

    posts = [r for r in transport.requests if r.url.path == "/users/track"]
    assert result.requests == len(posts) == 14
    bodies = [json.loads(r.content) for r in posts]
    assert all(len(items) <= 75 for body in bodies for items in body.values())
    assert sorted(len(body.get("events", [])) for body in bodies) == [25] + [75] * 13
    assert sorted(len(body.get("attributes", [])) for body in bodies) == [0] * 12 + [25, 75]
    assert sorted(progress) == sorted([150, 100, 25] + [75] * 11)
    assert transport.max_in_flight == 4  # concurrency=4 by default, and never more
    keys = [r.headers["idempotency-key"] for r in posts]
    assert len(set(keys)) == 14
    assert all(uuid.UUID(key).version == 4 for key in keys)

    assert result.attributes_processed == 100
    assert result.events_processed == 1000 - 78
    assert result.purchases_processed == 0
    assert [(e.input_array, e.index) for e in result.errors] == [
        ("events", i) for i in sorted([*missing_user, 500])
    ]
    types = {e.index: e.type for e in result.errors}
    assert types[500] == "'app_id' is not a known app"
    assert types[7] == types[150] == types[999]
    assert "is required" in types[7]

    accepted = [e for i, e in enumerate(events) if i not in missing_user and i != 500]
    per_day = Counter(
        datetime.fromisoformat(e["time"]).astimezone(NEW_YORK).date() for e in accepted
    )
    days = [date(2024, 3, 4) + timedelta(days=k) for k in range(14)]
    assert series == [SeriesPoint(day, per_day[day]) for day in days]
    assert sum(p.count for p in series) == result.events_processed


def test_data_series_points_are_dates_or_aware_datetimes(served: InProcess) -> None:
    times = [
        "2024-03-09T12:00:00Z",  # 07:00 EST on the 9th
        "2024-03-10T06:30:00Z",  # 01:30 EST; 02:00-03:00 does not exist on the 10th
        "2024-03-10T07:10:00Z",  # 03:10 EDT
        "2024-03-10T07:20:00Z",
    ]
    transport = ScriptedAsync(served.transport(), [])
    end = datetime(2024, 3, 10, 8, tzinfo=UTC)
    hour_labels = [
        "2024-03-09T23:00:00-05:00",
        "2024-03-10T00:00:00-05:00",
        "2024-03-10T01:00:00-05:00",
        "2024-03-10T03:00:00-04:00",
    ]

    async def scenario() -> None:
        async with AsyncClient(BASE_URL, served.key, transport=transport) as client:
            result = await client.track(events=[event("tick", t) for t in times])
            assert result.events_processed == 4

            days = await client.data_series("tick", 3, ending_at=date(2024, 3, 11))
            assert days == [
                SeriesPoint(date(2024, 3, 8), 0),
                SeriesPoint(date(2024, 3, 9), 1),
                SeriesPoint(date(2024, 3, 10), 3),
            ]
            assert all(type(p.time) is date for p in days)

            # The same instant as UTC, as +01:00 (a "+" in the query), and as a string.
            plus_one = end.astimezone(timezone(timedelta(hours=1)))
            for ending_at in (end, plus_one, end.astimezone(NEW_YORK), "2024-03-10T08:00:00Z"):
                hours = await client.data_series("tick", 4, unit="hour", ending_at=ending_at)
                assert [p.count for p in hours] == [0, 0, 1, 2]
                for point, label in zip(hours, hour_labels, strict=True):
                    assert isinstance(point.time, datetime)
                    assert point.time.tzinfo is not None
                    assert point.time.isoformat() == label
                    assert point.time.utcoffset() == point.time.astimezone(NEW_YORK).utcoffset()

            sent = len(transport.requests)
            with pytest.raises(ValueError, match="time zone"):
                await client.data_series("tick", 4, ending_at=datetime(2024, 3, 10))  # noqa: DTZ001
            assert len(transport.requests) == sent  # refused before sending

    run(scenario())
    sent_ending_at = [r.url.params.get("ending_at") for r in transport.requests[1:]]
    assert sent_ending_at[:3] == ["2024-03-11", end.isoformat(), "2024-03-10T09:00:00+01:00"]


def test_list_events_pages_and_events_follows_link(served: InProcess) -> None:
    names = [f"event-{i:03d}" for i in range(260)]
    served.store.update_event(
        served.workspace.id,
        "event-042",
        EventUpdate(description="the answer", tags=("t1", "t2"), included_in_analytics_report=True),
    )
    served.store.update_event(served.workspace.id, "event-043", EventUpdate(blocklisted=True))
    transport = ScriptedAsync(served.transport(), [])

    async def scenario() -> tuple[list[str], list[CatalogueEvent]]:
        async with AsyncClient(BASE_URL, served.key, transport=transport) as client:
            result = await client.track(events=[event(n, "2024-03-10T12:00:00Z") for n in names])
            assert result.events_processed == 260
            listed = [name async for name in client.list_events()]
            catalogue = [entry async for entry in client.events()]
        return listed, catalogue

    listed, catalogue = run(scenario())

    blocklisted = "event-043"
    assert listed == [n for n in names if n != blocklisted]
    pages = [r.url.params["page"] for r in transport.requests if r.url.path == "/events/list"]
    assert pages == ["0", "1"]

    assert [e.name for e in catalogue] == names
    catalogue_requests = [r for r in transport.requests if r.url.path == "/events"]
    assert len(catalogue_requests) == 6  # 50 a page
    assert "cursor" not in catalogue_requests[0].url.params
    assert all("cursor" in r.url.params for r in catalogue_requests[1:])
    by_name = {e.name: e for e in catalogue}
    assert by_name["event-042"] == CatalogueEvent(
        name="event-042",
        description="the answer",
        included_in_analytics_report=True,
        status="Active",
        tag_names=("t1", "t2"),
    )
    assert by_name[blocklisted].status == "Blocklisted"
    assert by_name["event-000"].description is None
    assert by_name["event-000"].tag_names == ()


def test_each_error_type_from_the_real_app(served: InProcess) -> None:
    waits = Waits()
    bad_key = "not-a-key-" + "x" * 40
    track_only = served.new_key("users.track")

    async def scenario() -> None:
        async with AsyncClient(
            BASE_URL, bad_key, transport=served.transport(), sleep=waits.asleep
        ) as client:
            with pytest.raises(AuthenticationError) as unknown:
                await client.data_series("open", 7)
            assert unknown.value.status == 401
            assert unknown.value.message == "Invalid API key: non-existent"
            assert bad_key not in str(unknown.value)
            assert bad_key not in repr(unknown.value)
            assert bad_key not in repr(client)

        async with AsyncClient(
            BASE_URL, track_only, transport=served.transport(), sleep=waits.asleep
        ) as client:
            with pytest.raises(PermissionDeniedError) as denied:
                await client.data_series("open", 7)
            assert denied.value.status == 403
            assert denied.value.message == "this API key lacks the 'events.data_series' permission"
            with pytest.raises(PermissionDeniedError, match=r"events\.list"):
                [name async for name in client.list_events()]
            with pytest.raises(PermissionDeniedError, match=r"events\.get"):
                [entry async for entry in client.events()]

        async with AsyncClient(
            BASE_URL, served.key, transport=served.transport(), sleep=waits.asleep
        ) as client:
            with pytest.raises(ValidationError) as invalid:
                await client.data_series("open", 0)
            assert invalid.value.status == 400
            assert invalid.value.message == "length must be between 1 and 100, not 0"
            assert str(invalid.value) == "400: length must be between 1 and 100, not 0"
            with pytest.raises(ValidationError, match="unit must be 'day' or 'hour'"):
                await client.data_series("open", 1, unit="week")
            with pytest.raises(ValidationError, match="app_id"):
                await client.data_series("open", 1, app_id="nope")

        async with AsyncClient(
            BASE_URL + "/no/such/prefix", served.key, transport=served.transport()
        ) as client:
            with pytest.raises(APIError) as missing:
                await client.data_series("open", 1)
            assert type(missing.value) is APIError
            assert missing.value.status == 404

    run(scenario())
    assert waits.seconds == []  # none of these is retried
