"""Property test over HTTP: what `/users/track` took in, `/events/data_series` counts
exactly as the brute-force oracle does, in any reporting zone, with or without `app_id`,
for `ending_at` sent with an offset, with `Z`, as a bare date or as a naive local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import (
    ZONES,
    expected_buckets,
    first_instant_of_local_date_oracle,
    offset_transitions,
    resolve_local_oracle,
)
from tests.stores import DURABLE, FOLDS, Stores
from tests.support import running_api

# Event times must be in the past (future ones are clamped to now at ingest).
FIRST = datetime(1990, 1, 1, tzinfo=UTC)
LAST = datetime(2025, 12, 1, tzinfo=UTC)
EVENTS_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = "e"
OTHER_EVENT = "other"
MAX_EVENTS_PER_REQUEST = 75
NUDGES = tuple(
    timedelta(microseconds=us) for us in (0, 0, 1, -1, 1000, -1000, 1_000_000, -1_000_000)
)
ENDING_AT_FORMATS = ("offset", "z", "space for +", "bare date", "naive local")
TIME_FORMATS = ("zone offset", "z", "braze :SSS+0000", "naive utc")


@cache
def all_transitions() -> tuple[tuple[str, datetime], ...]:
    return tuple(
        (zone, moment) for zone in ZONES for moment in offset_transitions(zone, FIRST, LAST)
    )


@st.composite
def series_requests(draw: st.DrawFn) -> tuple[str, str, int, str, datetime]:
    """Zone, unit, length, `ending_at` as sent, and the instant it names."""
    unit = draw(st.sampled_from(["day", "hour"]))
    length = draw(st.integers(1, 100) | st.integers(1, 5))
    if draw(st.integers(0, 3)) > 0:
        zone, base = draw(st.sampled_from(all_transitions()))
        span = timedelta(hours=length + 2) if unit == "hour" else timedelta(days=length + 1)
        base += timedelta(minutes=draw(st.integers(-180, span // timedelta(minutes=1))))
    else:
        zone = draw(st.sampled_from(ZONES))
        seconds = draw(st.integers(0, (LAST - FIRST) // timedelta(seconds=1)))
        base = FIRST + timedelta(seconds=seconds)
    tz = ZoneInfo(zone)
    match draw(st.sampled_from(ENDING_AT_FORMATS)):
        case "offset":
            ending_at = base + draw(st.sampled_from(NUDGES))
            text = ending_at.astimezone(tz).isoformat()
        case "z":
            ending_at = base + draw(st.sampled_from(NUDGES))
            text = ending_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        case "space for +":
            # What an unencoded `+` in a query string turns into.
            ending_at = base.replace(microsecond=0)
            text = ending_at.astimezone(tz).isoformat()
            text = text[:19] + text[19:].replace("+", " ")
        case "bare date":
            day = base.astimezone(tz).date()
            ending_at = first_instant_of_local_date_oracle(tz, day)
            text = day.isoformat()
        case _:
            wall = base.astimezone(tz).replace(tzinfo=None, microsecond=0)
            wall = wall.replace(minute=draw(st.sampled_from([0, 0, wall.minute, 30, 45])))
            ending_at = resolve_local_oracle(tz, wall)
            text = wall.isoformat()
    return zone, unit, length, text, ending_at


def event_time_text(moment: datetime, zone: ZoneInfo, form: str) -> tuple[str, datetime]:
    """An event `time` string and the instant it names (Braze's form keeps milliseconds)."""
    utc = moment.astimezone(UTC)
    if form == "zone offset":
        return moment.astimezone(zone).isoformat(), moment
    if form == "z":
        return utc.isoformat().replace("+00:00", "Z"), moment
    if form == "naive utc":  # an event time with no offset is UTC (contract 8.21)
        return utc.replace(tzinfo=None).isoformat(), moment
    utc = utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    return f"{utc:%Y-%m-%dT%H:%M:%S}:{utc.microsecond // 1000:03d}+0000", utc


@settings(max_examples=60, deadline=None)
@given(case=series_requests(), data=st.data())
@pytest.mark.parametrize("kind", DURABLE)
def test_data_series_matches_oracle(
    kind: str, stores: Stores, case: tuple[str, str, int, str, datetime], data: st.DataObject
) -> None:
    zone, unit, length, ending_at_text, ending_at = case
    tz = ZoneInfo(zone)
    window = expected_buckets(zone, unit, ending_at, length)

    margin = timedelta(hours=2) if unit == "hour" else timedelta(days=1)
    lo, hi = window[0].start - margin, min(window[-1].end + margin, EVENTS_BEFORE)
    span_us = (hi - lo) // timedelta(microseconds=1)
    edges = [b.start for b in window] + [window[-1].end, ending_at]
    count = data.draw(st.integers(0, 160) | st.integers(0, 10), label="events")
    moments = data.draw(
        st.lists(
            st.builds(lambda us: lo + timedelta(microseconds=us), st.integers(0, span_us - 1))
            | st.builds(datetime.__add__, st.sampled_from(edges), st.sampled_from(NUDGES)),
            min_size=count,
            max_size=count,
        ),
        label="event instants",
    )
    moments = [m for m in moments if m < EVENTS_BEFORE]
    n = len(moments)
    apps = data.draw(st.lists(st.sampled_from([None, 0, 1]), min_size=n, max_size=n))
    names = data.draw(
        st.lists(st.sampled_from([EVENT, EVENT, EVENT, OTHER_EVENT]), min_size=n, max_size=n)
    )
    forms = data.draw(st.lists(st.sampled_from(TIME_FORMATS), min_size=n, max_size=n))
    app_filter = data.draw(st.sampled_from([0, 1]), label="app_id filter")
    send_unit = unit == "hour" or data.draw(st.booleans(), label="send unit=day")

    fold = data.draw(FOLDS, label="series_fold_events")
    with (
        stores.open(kind, fold) as store,
        running_api(Path(), time_zone=zone, store=store) as api,
    ):
        objects: list[dict[str, Any]] = []
        counted: list[tuple[datetime, str | None]] = []
        for moment, app, name, form in zip(moments, apps, names, forms, strict=True):
            text, instant = event_time_text(moment, tz, form)
            item: dict[str, Any] = {"external_id": "u1", "name": name, "time": text}
            if app is not None:
                item["app_id"] = api.app_ids[app]
            objects.append(item)
            if name == EVENT:
                counted.append((instant, None if app is None else str(app)))
        for first in range(0, len(objects), MAX_EVENTS_PER_REQUEST):
            chunk = objects[first : first + MAX_EVENTS_PER_REQUEST]
            response = api.track({"events": chunk})
            assert response.status_code == 201, response.text
            assert response.json()["events_processed"] == len(chunk)

        for app in (None, app_filter):
            params: dict[str, Any] = {"event": EVENT, "length": length, "ending_at": ending_at_text}
            if send_unit:  # day is the default
                params["unit"] = unit
            if app is not None:
                params["app_id"] = api.app_ids[app]
            key = None if app is None else str(app)
            expected = expected_buckets(zone, unit, ending_at, length, counted, key)
            response = api.series(**params)
            assert response.status_code == 200, response.text
            assert response.json()["data"] == [
                {"time": b.label, "count": b.count} for b in expected
            ]
