"""GET /events/data_series: parameter rules and window shape (contract section 2, 8.3-8.9, 8.20)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.support import Api, running_api

NOW = datetime(2024, 3, 10, 15, 30, 12, tzinfo=UTC)
NOW_US = int(NOW.timestamp()) * 1_000_000


@pytest.fixture
def fixed(tmp_path: Path) -> Iterator[Api]:
    """An API whose clock always reads NOW."""
    with running_api(tmp_path / "fixed", clock=lambda: NOW_US) as api:
        yield api


def track(api: Api, name: str, *times: str, app_id: str | None = None) -> None:
    items: list[dict[str, Any]] = []
    for time in times:
        item: dict[str, Any] = {"external_id": "u", "name": name, "time": time}
        if app_id is not None:
            item["app_id"] = app_id
        items.append(item)
    response = api.track({"events": items})
    assert response.status_code == 201, response.text
    assert response.json()["events_processed"] == len(times)


def data(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["message"] == "success"
    points: list[dict[str, Any]] = body["data"]
    return points


def labels(response: httpx.Response) -> list[str]:
    return [p["time"] for p in data(response)]


def counts(response: httpx.Response) -> list[int]:
    return [p["count"] for p in data(response)]


def bad_request(response: httpx.Response, parameter: str) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message"}  # no `errors` array off /users/track (8.6)
    message: str = body["message"]
    assert parameter in message
    return message


def get_raw(api: Api, query: str) -> httpx.Response:
    response: httpx.Response = api.client.get(f"/events/data_series?{query}", headers=api.auth)
    return response


# --- refused parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"length": 3}, "event"),
        ({"event": "", "length": 3}, "event"),
        ({"event": "e"}, "length"),
        ({"event": "e", "length": ""}, "length"),
        ({}, "event"),
    ],
    ids=["no-event", "empty-event", "no-length", "empty-length", "nothing"],
)
def test_missing_required_parameter_is_a_400(
    api: Api, params: dict[str, Any], parameter: str
) -> None:
    bad_request(api.series(**params), parameter)


@pytest.mark.parametrize(
    "length",
    [
        "0",
        "101",
        "-1",
        "abc",
        "1.5",
        "1e2",
        "+5",
        "0x10",
        "٣",
        "99999999999999",
        "--5",
    ],
)
def test_invalid_length_is_a_400(api: Api, length: str) -> None:
    bad_request(api.series(event="e", length=length), "length")


@pytest.mark.parametrize("unit", ["week", "month", "Day", "HOUR", "hours", "minute"])
def test_unit_other_than_day_or_hour_is_a_400(api: Api, unit: str) -> None:
    bad_request(api.series(event="e", length=3, unit=unit), "unit")


@pytest.mark.parametrize(
    "ending_at",
    [
        "yesterday",
        "12/10/2014",
        "2014-13-01",
        "2014-02-30",
        "2014-12-10T25:00:00Z",
        "2014-12-10T23:60:00Z",
        "2014-12-10T23:59:59+24:00",
        "2014-12-10T23:59:59Zjunk",
        "2014-12-10 garbage",
        "0001-01-01",
        "9999-12-31",
        "1418255999",
    ],
)
def test_unparseable_ending_at_is_a_400(api: Api, ending_at: str) -> None:
    bad_request(api.series(event="e", length=3, ending_at=ending_at), "ending_at")


@pytest.mark.parametrize(
    ("parameter", "values"),
    [
        ("event", ["a", "b"]),
        ("length", ["3", "3"]),
        ("unit", ["day", "hour"]),
        ("ending_at", ["2024-01-01", "2024-01-02"]),
        ("app_id", ["x", "y"]),
        ("segment_id", ["s", "s"]),
    ],
)
def test_parameter_given_twice_is_a_400_naming_it(
    api: Api, parameter: str, values: list[str]
) -> None:
    pairs = [(k, v) for k, v in {"event": "e", "length": "3"}.items() if k != parameter]
    pairs += [(parameter, v) for v in values]
    params = httpx.QueryParams(tuple(pairs))
    response = api.client.get("/events/data_series", params=params, headers=api.auth)
    bad_request(response, parameter)


def test_unknown_app_id_is_a_400(api: Api) -> None:
    bad_request(
        api.series(event="e", length=3, app_id="00000000-0000-0000-0000-000000000000"), "app_id"
    )


@pytest.mark.parametrize("segment_id", ["any-segment", "00000000-0000-0000-0000-000000000000"])
def test_segment_id_is_a_400_while_no_segment_exists(api: Api, segment_id: str) -> None:
    bad_request(api.series(event="e", length=3, segment_id=segment_id), "segment_id")


# --- window shape -----------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 7, 24, 100])
def test_unknown_event_is_zero_filled_with_exactly_length_points(api: Api, length: int) -> None:
    response = api.series(event="never-sent", length=length, ending_at="2024-03-10")
    points = data(response)
    assert len(points) == length
    assert all(p["count"] == 0 for p in points)
    first = date(2024, 3, 10) - timedelta(days=length)
    assert [p["time"] for p in points] == [
        (first + timedelta(days=i)).isoformat() for i in range(length)
    ]


@pytest.mark.parametrize("length", [1, 3, 24, 100])
@pytest.mark.parametrize("unit", ["day", "hour"])
def test_points_are_exactly_length_ascending_and_consecutive(
    api: Api, unit: str, length: int
) -> None:
    ending_at = datetime(2024, 3, 10, 12, tzinfo=UTC)
    got = labels(api.series(event="e", length=length, unit=unit, ending_at=ending_at.isoformat()))
    assert len(got) == length
    if unit == "day":
        last = date(2024, 3, 10)  # the bucket holding ending_at - 1us is the last (8.3)
        expected = [(last - timedelta(days=length - 1 - i)).isoformat() for i in range(length)]
    else:
        last_hour = datetime(2024, 3, 10, 11, tzinfo=UTC)
        expected = [
            (last_hour - timedelta(hours=length - 1 - i)).isoformat() for i in range(length)
        ]
    assert got == expected
    assert got == sorted(got)


def test_default_unit_is_day(api: Api) -> None:
    got = labels(api.series(event="e", length=3, ending_at="2024-03-10T12:00:00Z"))
    assert got == ["2024-03-08", "2024-03-09", "2024-03-10"]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("day", ["2024-03-08", "2024-03-09", "2024-03-10"]),
        (
            "hour",
            ["2024-03-10T13:00:00+00:00", "2024-03-10T14:00:00+00:00", "2024-03-10T15:00:00+00:00"],
        ),
    ],
)
def test_default_ending_at_is_now(fixed: Api, unit: str, expected: list[str]) -> None:
    track(fixed, "now", "2024-03-10T15:05:00Z", "2024-03-10T15:29:59Z")
    response = fixed.series(event="now", length=3, unit=unit)
    assert labels(response) == expected
    assert counts(response) == [0, 0, 2]


def test_empty_ending_at_means_now(fixed: Api) -> None:
    assert labels(fixed.series(event="e", length=1, ending_at="")) == ["2024-03-10"]


@pytest.mark.parametrize(
    ("unit", "ending_at", "expected"),
    [
        (
            "day",
            "2024-03-13",
            [("2024-03-09", 0), ("2024-03-10", 1), ("2024-03-11", 0), ("2024-03-12", 0)],
        ),
        (
            "hour",
            "2024-03-10T18:00:00Z",
            [
                ("2024-03-10T14:00:00+00:00", 0),
                ("2024-03-10T15:00:00+00:00", 1),
                ("2024-03-10T16:00:00+00:00", 0),
                ("2024-03-10T17:00:00+00:00", 0),
            ],
        ),
    ],
)
def test_future_ending_at_is_not_clamped(
    fixed: Api, unit: str, ending_at: str, expected: list[tuple[str, int]]
) -> None:
    track(fixed, "soon", "2024-03-10T15:10:00Z")
    response = fixed.series(event="soon", length=4, unit=unit, ending_at=ending_at)
    assert [(p["time"], p["count"]) for p in data(response)] == expected


def test_app_id_filter_counts_only_that_apps_events(api: Api) -> None:
    app_a, app_b = api.app_ids
    track(api, "open", "2024-03-10T01:00:00Z", "2024-03-10T02:00:00Z", app_id=app_a)
    track(api, "open", "2024-03-10T03:00:00Z", app_id=app_b)
    track(api, "open", "2024-03-10T04:00:00Z", "2024-03-09T04:00:00Z")
    params = {"event": "open", "length": 2, "ending_at": "2024-03-11"}
    assert counts(api.series(**params)) == [1, 4]
    assert counts(api.series(**params, app_id=app_a)) == [0, 2]
    assert counts(api.series(**params, app_id=app_b)) == [0, 1]


def test_plus_in_ending_at_may_arrive_raw_or_encoded(api: Api) -> None:
    track(api, "tz", "2014-12-10T18:30:00Z", "2014-12-10T23:30:00Z")
    base = "event=tz&length=2&unit=hour"
    raw = get_raw(api, f"{base}&ending_at=2014-12-10T23:59:59+05:00")
    encoded = get_raw(api, f"{base}&ending_at=2014-12-10T23:59:59%2B05:00")
    expected = [
        {"time": "2014-12-10T17:00:00+00:00", "count": 0},
        {"time": "2014-12-10T18:00:00+00:00", "count": 1},
    ]
    assert data(raw) == expected
    assert data(encoded) == expected


@pytest.mark.parametrize(
    "ending_at",
    [
        "2014-12-10T18:30:00Z",
        "2014-12-10T18:30:00z",
        "2014-12-10T18:30:00+00:00",
        "2014-12-10T13:30:00-05:00",
        "2014-12-10T13:30:00-5:00",
        "2014-12-10T13:30:00-0500",
        "2014-12-10T23:30:00+05",
        "2014-12-10T18:30:00.123456Z",
        "2014-12-10T18:30:00,5Z",
        "2014-12-10T18:30:00",
        "2014-12-10 18:30:00Z",
        "2014-12-10T18:30Z",
    ],
)
def test_lenient_ending_at_forms(api: Api, ending_at: str) -> None:
    got = labels(api.series(event="e", length=2, unit="hour", ending_at=ending_at))
    assert got == ["2014-12-10T17:00:00+00:00", "2014-12-10T18:00:00+00:00"]


def test_ending_at_is_exclusive(api: Api) -> None:
    track(api, "edge", "2014-12-10T19:00:00Z")
    response = api.series(event="edge", length=2, unit="hour", ending_at="2014-12-10T19:00:00Z")
    assert data(response) == [
        {"time": "2014-12-10T17:00:00+00:00", "count": 0},
        {"time": "2014-12-10T18:00:00+00:00", "count": 0},
    ]


def test_last_point_counts_its_whole_bucket(api: Api) -> None:
    track(api, "late", "2014-12-10T23:59:59Z", "2014-12-10T23:10:00Z")
    response = api.series(event="late", length=1, unit="hour", ending_at="2014-12-10T23:30:00Z")
    assert data(response) == [{"time": "2014-12-10T23:00:00+00:00", "count": 2}]


@pytest.mark.parametrize(
    ("ending_at", "length", "first", "last"),
    [("2022-12-09", 99, "2022-09-01", "2022-12-08"), ("2022-12-15", 6, "2022-12-09", "2022-12-14")],
)
def test_bare_date_ending_at_matches_the_airbyte_recordings(
    api: Api, ending_at: str, length: int, first: str, last: str
) -> None:
    got = labels(api.series(event="e", length=length, ending_at=ending_at))
    assert (len(got), got[0], got[-1]) == (length, first, last)


def test_braze_doc_example_in_new_york(tmp_path: Path) -> None:
    with running_api(tmp_path / "ny", time_zone="America/New_York") as api:
        track(
            api,
            "doc",
            "2014-12-10T05:00:00Z",  # 00:00 local: the first point
            "2014-12-10T04:59:59Z",  # 23:59:59 on Dec 9 local: outside
            "2014-12-11T04:59:59Z",  # 23:59:59 on Dec 10 local: the last point
            "2014-12-10T17:15:00",  # no offset is UTC: 12:15 local
        )
        response = api.series(
            event="doc", length=24, unit="hour", ending_at="2014-12-10T23:59:59-05:00"
        )
        points = data(response)
        assert [p["time"] for p in points] == [
            f"2014-12-10T{hour:02d}:00:00-05:00" for hour in range(24)
        ]
        by_label = {p["time"]: p["count"] for p in points}
        assert by_label["2014-12-10T00:00:00-05:00"] == 1
        assert by_label["2014-12-10T12:00:00-05:00"] == 1
        assert by_label["2014-12-10T23:00:00-05:00"] == 1
        assert sum(by_label.values()) == 3
        days = api.series(event="doc", length=2, ending_at="2014-12-10T23:59:59-05:00")
        assert data(days) == [
            {"time": "2014-12-09", "count": 1},
            {"time": "2014-12-10", "count": 3},
        ]


def test_read_your_writes(api: Api) -> None:
    params = {"event": "rw", "length": 1, "ending_at": "2024-03-11"}
    assert counts(api.series(**params)) == [0]
    for expected in range(1, 6):
        track(api, "rw", "2024-03-10T08:00:00Z")
        assert counts(api.series(**params)) == [expected]
