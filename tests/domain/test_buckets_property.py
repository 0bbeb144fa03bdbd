"""Property tests: `series_buckets` and `parse_instant` against the brute-force oracle.

Zones, units, lengths and `ending_at` instants are random, with `ending_at` drawn
mostly near the zone's offset changes (1990-2035) and on or just off whole hours and
local midnights; events fall in and around the window, many on bucket edges.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from eventtally.domain.buckets import Unit, series_buckets
from eventtally.domain.instants import from_us, to_us
from eventtally.domain.timeparse import parse_instant
from tests.oracle import (
    ZONES,
    RawEvent,
    expected_buckets,
    first_instant_of_local_date_oracle,
    offset_transitions,
    resolve_local_oracle,
)

FIRST = datetime(1990, 1, 1, tzinfo=UTC)
LAST = datetime(2036, 1, 1, tzinfo=UTC)
US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
APPS = (None, "a", "b")
# Shifts that put an instant on, or just off, a boundary.
NUDGES_US = (0, 0, 1, -1, US_PER_SECOND, -US_PER_SECOND, 30 * 60 * US_PER_SECOND)


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    return tuple(offset_transitions(zone, FIRST, LAST))


@cache
def all_transitions() -> tuple[tuple[str, datetime], ...]:
    return tuple((zone, moment) for zone in ZONES for moment in transitions(zone))


# Minutes from an offset change: anywhere near it, or where shifted buckets begin and end.
AROUND_MINUTES = st.integers(-150, 150) | st.sampled_from(
    [m + d for m in (-60, -45, -30, -15, 0, 15, 30, 45, 60) for d in (-1, 0, 1)]
)


@st.composite
def series_cases(draw: st.DrawFn) -> tuple[str, Unit, datetime, int]:
    """A zone, unit, length and `ending_at`.

    `ending_at` is mostly just around an offset change (so the last buckets are the
    shifted ones), or up to `length` buckets after one (so the window spans it), and
    otherwise anywhere in 1990-2035, aligned to whole hours or local midnight or not.
    """
    unit = draw(st.sampled_from(Unit))
    length = draw(st.integers(1, 100) | st.integers(1, 5))
    kind = draw(st.sampled_from(["around", "around", "spanning", "spanning", "anywhere"]))
    if kind == "anywhere":
        zone = draw(st.sampled_from(ZONES))
        base = from_us(draw(st.integers(to_us(FIRST), to_us(LAST))))
    else:
        zone, base = draw(st.sampled_from(all_transitions()))
    if kind == "around":
        base += timedelta(minutes=draw(AROUND_MINUTES))
    else:
        if kind == "spanning":
            hours = length + 3 if unit is Unit.HOUR else 24 * (length + 2)
            base += timedelta(hours=draw(st.integers(-3, hours)))
        tz = ZoneInfo(zone)
        match draw(st.sampled_from(["as is", "utc hour", "local hour", "local midnight"])):
            case "utc hour":
                base = base.replace(minute=0, second=0, microsecond=0)
            case "local hour":
                local = base.astimezone(tz)
                base = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            case "local midnight":
                base = first_instant_of_local_date_oracle(tz, base.astimezone(tz).date())
            case _:
                pass
    ending_at = base + timedelta(microseconds=draw(st.sampled_from(NUDGES_US)))
    return zone, unit, ending_at, length


@st.composite
def shifted_bucket_cases(draw: st.DrawFn) -> tuple[str, Unit, datetime, int]:
    """A short series ending just around a change off the whole hour (:01, :30, :45)."""
    zone, base = draw(st.sampled_from(odd_transitions()))
    unit = draw(st.sampled_from([Unit.HOUR, Unit.HOUR, Unit.HOUR, Unit.DAY]))
    ending_at = base + timedelta(minutes=draw(AROUND_MINUTES))
    ending_at += timedelta(microseconds=draw(st.sampled_from(NUDGES_US)))
    return zone, unit, ending_at, draw(st.integers(1, 3))


@cache
def odd_transitions() -> tuple[tuple[str, datetime], ...]:
    def odd(zone: str, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(zone))
        return (local.minute, local.second) != (0, 0)

    return tuple((zone, moment) for zone, moment in all_transitions() if odd(zone, moment))


@settings(max_examples=150, deadline=None)
@given(case=series_cases(), data=st.data())
def test_series_buckets_match_oracle(
    case: tuple[str, Unit, datetime, int], data: st.DataObject
) -> None:
    check_against_oracle(*case, data)


@settings(max_examples=150, deadline=None)
@given(case=shifted_bucket_cases(), data=st.data())
def test_shifted_buckets_match_oracle(
    case: tuple[str, Unit, datetime, int], data: st.DataObject
) -> None:
    check_against_oracle(*case, data)


def check_against_oracle(
    zone: str, unit: Unit, ending_at: datetime, length: int, data: st.DataObject
) -> None:
    """Labels, edges and counts of `series_buckets` equal the oracle's."""
    oracle = expected_buckets(zone, unit.value, ending_at, length)
    buckets = series_buckets(ZoneInfo(zone), unit, ending_at, length)
    assert len(buckets) == length
    assert [b.label for b in buckets] == [b.label for b in oracle]
    # A local date the clock returns to after the next began (America/St_Johns fell back
    # from 00:01 to 23:01 until 2010) has two stretches; the oracle knows it by its runs.
    assert [len(b.ranges) == 1 for b in buckets] == [b.contiguous for b in oracle]
    assert [(from_us(b.start), from_us(b.end)) for b in buckets] == [
        (b.start, b.end) for b in oracle
    ]
    assert all(start < end for b in buckets for start, end in b.ranges)
    flat = sorted(r for b in buckets for r in b.ranges)
    assert all(a[1] <= b[0] for a, b in pairwise(flat)), "no instant in two buckets"
    assert buckets[-1].contains(to_us(ending_at) - 1)
    longest = US_PER_HOUR if unit is Unit.HOUR else 2 * US_PER_DAY
    assert all(end - start <= longest for b in buckets for start, end in b.ranges)

    lo, hi = flat[0][0], flat[-1][1]
    edges = [b.start for b in buckets] + [hi, to_us(ending_at)]
    margin = US_PER_HOUR if unit is Unit.HOUR else US_PER_DAY
    count = data.draw(st.integers(0, 60) | st.integers(0, 5), label="events")
    instants = data.draw(
        st.lists(
            st.integers(lo - margin, hi + margin)
            | st.builds(int.__add__, st.sampled_from(edges), st.sampled_from(NUDGES_US)),
            min_size=count,
            max_size=count,
        ),
        label="event instants (us)",
    )
    apps = data.draw(
        st.lists(st.sampled_from(APPS), min_size=len(instants), max_size=len(instants)),
        label="event apps",
    )
    events = [RawEvent(from_us(us), app) for us, app in zip(instants, apps, strict=True)]
    for app in (None, "a"):
        expected = expected_buckets(zone, unit.value, ending_at, length, events, app)
        counted = [
            sum(
                1
                for us, event_app in zip(instants, apps, strict=True)
                if b.contains(us) and (app is None or event_app == app)
            )
            for b in buckets
        ]
        assert counted == [b.count for b in expected]
        in_window = sum(
            1
            for us, event_app in zip(instants, apps, strict=True)
            if any(a <= us < b for a, b in flat) and (app is None or event_app == app)
        )
        assert sum(counted) == in_window


@st.composite
def local_walls(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and a naive wall time, often in or next to a gap or a repeated hour."""
    zone = draw(st.sampled_from(ZONES))
    near = transitions(zone)
    if near and draw(st.booleans()):
        base = draw(st.sampled_from(near))
    else:
        base = from_us(draw(st.integers(to_us(FIRST), to_us(LAST))))
    wall = base.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    wall += timedelta(minutes=draw(st.integers(-90, 90)))
    return zone, wall.replace(second=draw(st.sampled_from([0, 0, 59])), microsecond=0)


@settings(max_examples=100, deadline=None)
@given(case=local_walls())
def test_naive_ending_at_matches_oracle(case: tuple[str, datetime]) -> None:
    zone, wall = case
    assert parse_instant(wall.isoformat(), ZoneInfo(zone)) == resolve_local_oracle(zone, wall)


@settings(max_examples=100, deadline=None)
@given(case=local_walls())
def test_bare_date_ending_at_matches_oracle(case: tuple[str, datetime]) -> None:
    zone, wall = case
    day: date = wall.date()
    expected = first_instant_of_local_date_oracle(zone, day)
    assert parse_instant(day.isoformat(), ZoneInfo(zone)) == expected
