"""Property test over HTTP: random users, attributes, events, purchases and segments, in
random order across `/users/track` requests at increasing `now`s; every tracked segment's
`/events/data_series` (day and hour, with and without `app_id`) and every segment's
`/segments/data_series` equal what the brute-force replay oracle (tests/segment_oracle.py)
works out from the same script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventtally.domain.model import Segment, SegmentChanges
from tests.oracle import OracleBucket, expected_buckets, first_instant_of_local_date_oracle
from tests.segment_oracle import (
    EPOCH,
    EVENT_NAMES,
    SYMBOLIC_APPS,
    Op,
    Replay,
    requests,
    scripts,
    substitute_apps,
    track_body,
)
from tests.stores import DURABLE, FOLDS, Stores
from tests.support import Api, running_api

ZONES = ("UTC", "America/New_York", "Asia/Kolkata")
# 2026-01-10 (no clock change near) and 2026-03-05 (New York springs forward on 03-08).
STARTS = (1_768_003_200_000_000, 1_772_668_800_000_000)
HOUR_POINTS = 100


@dataclass
class Clock:
    """A clock the test moves: each request is served at the `now` the script gives it."""

    now: int

    def __call__(self) -> int:
        return self.now


def at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def apply(api: Api, clock: Clock, script: list[Op]) -> dict[str, str]:
    """Run the script against the API and the store; the segment_id of each segment."""
    segment_ids: dict[str, str] = {}
    for step in requests(script):
        kind, now = step[0][0], step[0][-1]
        clock.now = now
        if kind == "create_segment":
            _, seg, filter_json, tracked, _ = step[0]
            draft = Segment(
                id=0,
                workspace_id=api.workspace.id,
                segment_id="",
                name=seg,
                filter=filter_json,
                tracking=tracked,
            )
            segment_ids[seg] = api.store.create_segment(api.workspace.id, draft, now).segment_id
        elif kind in ("change_filter", "set_tracking", "archive"):
            seg = step[0][1]
            if kind == "change_filter":
                changes = SegmentChanges(filter=step[0][2])
            elif kind == "set_tracking":
                changes = SegmentChanges(tracking=step[0][2])
            else:
                changes = SegmentChanges(archived=True)
            api.store.update_segment(api.workspace.id, segment_ids[seg], changes, now)
        else:
            response = api.track(track_body(step))
            assert response.status_code == 201, response.text
            assert response.json().get("errors") is None, response.text
    return segment_ids


def bucket_of(buckets: list[OracleBucket], instant: int) -> int | None:
    for i, b in enumerate(buckets):
        if to_us(b.start) <= instant < to_us(b.end):
            return i
    return None


def expected_counts(
    replay: Replay, seg: str, name: str, app: str | None, buckets: list[OracleBucket]
) -> list[int]:
    counts = [0] * len(buckets)
    for e in replay.counted_events(seg):
        if e.name == name and (app is None or e.app == app):
            i = bucket_of(buckets, e.time)
            if i is not None:
                counts[i] += 1
    return counts


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(STARTS),
    data=st.data(),
)
@pytest.mark.parametrize("kind", DURABLE)
def test_segment_series_and_sizes_match_the_replay_oracle(
    kind: str, stores: Stores, zone: str, start: int, data: st.DataObject
) -> None:
    lifecycle = data.draw(st.booleans(), label="tracking switched, segments archived")
    symbolic = data.draw(scripts(start, zone, lifecycle), label="script")
    after = data.draw(st.sampled_from([1, 60 * 1_000_000, 5 * 3600 * 1_000_000]), label="after")
    fold = data.draw(FOLDS, label="series_fold_events")
    clock = Clock(start)
    with (
        stores.open(kind, fold) as store,
        running_api(Path(), time_zone=zone, clock=clock, store=store) as api,
    ):
        apps = dict(zip(SYMBOLIC_APPS, api.app_ids, strict=True))
        script: list[Op] = substitute_apps(symbolic, apps)
        segment_ids = apply(api, clock, script)
        replay = Replay(script)
        now = replay.last_now + after
        clock.now = now
        check_event_series(api, replay, segment_ids, zone, now, apps)
        check_sizes(api, replay, segment_ids, zone, now, start)


def check_event_series(
    api: Api,
    replay: Replay,
    segment_ids: dict[str, str],
    zone: str,
    now: int,
    apps: dict[str, str],
) -> None:
    oldest = min((e.time for e in replay.events), default=now)
    days = min(100, (now - oldest) // (24 * 3600 * 1_000_000) + 3)
    ending_at = at(now)
    windows = {
        "day": (days, expected_buckets(zone, "day", ending_at, days)),
        "hour": (HOUR_POINTS, expected_buckets(zone, "hour", ending_at, HOUR_POINTS)),
    }
    for buckets in (w[1] for w in windows.values()):
        assert all(b.contiguous for b in buckets)
    for seg, segment_id in segment_ids.items():
        if not replay.tracked(seg):
            response = api.series(event="buy", length=1, segment_id=segment_id)
            assert response.status_code == 400, response.text
            live = replay.segments[seg].live
            assert ("not tracked" if live else "archived") in response.json()["message"]
            continue
        for name in EVENT_NAMES:
            for unit, (length, buckets) in windows.items():
                for app in (None, *apps.values()):
                    params: dict[str, Any] = {
                        "event": name,
                        "length": length,
                        "unit": unit,
                        "segment_id": segment_id,
                    }
                    if app is not None:
                        params["app_id"] = app
                    response = api.series(**params)
                    assert response.status_code == 200, response.text
                    expected = expected_counts(replay, seg, name, app, buckets)
                    got = response.json()["data"]
                    assert [p["time"] for p in got] == [b.label for b in buckets]
                    assert [p["count"] for p in got] == expected, (seg, name, unit, app)


def check_sizes(
    api: Api,
    replay: Replay,
    segment_ids: dict[str, str],
    zone: str,
    now: int,
    start: int,
) -> None:
    tz = ZoneInfo(zone)
    days = (now - start) // (24 * 3600 * 1_000_000) + 3
    # A window ending now (today is sized at now), and one ending at a bare date in the
    # middle of the script (its last point is the day before that date).
    middle = at((start + now) // 2).astimezone(tz).date()
    windows: list[tuple[dict[str, Any], datetime]] = [
        ({}, at(now)),
        ({"ending_at": middle.isoformat()}, first_instant_of_local_date_oracle(tz, middle)),
    ]
    for seg, segment_id in segment_ids.items():
        if not replay.segments[seg].live:
            response = api.get("/segments/data_series", segment_id=segment_id, length=1)
            assert response.status_code == 400, response.text
            assert "archived" in response.json()["message"]
            continue
        for extra, ending_at in windows:
            buckets = expected_buckets(zone, "day", ending_at.astimezone(UTC), days)
            response = api.get("/segments/data_series", segment_id=segment_id, length=days, **extra)
            assert response.status_code == 200, response.text
            expected = [
                {"time": b.label, "size": replay.size_at(seg, min(to_us(b.end), now))}
                for b in buckets
            ]
            assert response.json()["data"] == expected, (seg, extra)
