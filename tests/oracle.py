"""A brute-force oracle for series buckets and counts (contract 8.1-8.4, 8.9).

It shares no code with `eventtally`: it asks `zoneinfo` what the wall clock shows at
instants and searches, so a mistake in the bucketing module cannot hide in both.

Every instant has a label: its local date (unit `day`) or its local date, local hour
and UTC offset (unit `hour`). A bucket is the set of instants sharing a label, so the
oracle walks backwards from `ending_at - 1us` over *runs* (maximal stretches of
constant label and constant offset), collecting `length` distinct labels, and counts
each event under its own label.

Runs are found by stepping (1 minute for hours, 15 minutes for days) and bisecting at
1-second resolution once the run key differs. That is exact given two facts of tzdata:
zone transitions (and so local-hour and local-date changes) fall on whole UTC seconds,
and no two transitions are closer than one step. A run of constant offset has a
monotonic wall clock, so inside one step the key changes at most twice, in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

ONE_US = timedelta(microseconds=1)
ONE_SECOND = timedelta(seconds=1)
HOUR_STEP = timedelta(minutes=1)
DAY_STEP = timedelta(minutes=15)
# Looking this many runs past either end of the window tells whether a bucket's instants
# are contiguous (they are not where a clock goes back across local midnight).
EXTRA_RUNS = 3
# Farther from UTC than any offset in tzdata (local mean times included, all within 16h).
MAX_ABS_OFFSET = timedelta(hours=26)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Zones the property tests draw from: DST, :30/:45 offsets, half-hour DST (Lord Howe),
# :45 with DST (Chatham), a skipped date (Apia), 00:01 switches (St_Johns), no DST (Tehran now).
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Eucla",
    "America/St_Johns",
    "Pacific/Apia",
    "Asia/Tehran",
)

DAY = "day"
HOUR = "hour"

LabelKey = tuple[object, ...]


class RawEvent(NamedTuple):
    """One ingested occurrence: its (aware) time and the app it was sent with, if any."""

    at: datetime
    app: str | None = None


@dataclass(frozen=True, slots=True)
class OracleBucket:
    """One expected point.

    `start`/`end` span the runs of the label that the walk saw (the window and a few
    runs either side); `contiguous` is False when another label interrupts them.
    """

    label: str
    count: int
    start: datetime
    end: datetime
    contiguous: bool


@dataclass(frozen=True, slots=True)
class _Run:
    label: LabelKey
    offset: timedelta
    start: datetime
    end: datetime


def _zone(zone: str | ZoneInfo) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def _label(zone: ZoneInfo, unit: str, moment: datetime) -> LabelKey:
    local = moment.astimezone(zone)
    if unit == DAY:
        return (local.date(),)
    return (local.date(), local.hour, local.utcoffset())


def _run_key(zone: ZoneInfo, unit: str, moment: datetime) -> tuple[LabelKey, timedelta | None]:
    local = moment.astimezone(zone)
    if unit == DAY:
        return (local.date(),), local.utcoffset()
    return (local.date(), local.hour, local.utcoffset()), local.utcoffset()


def _floor_second(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down."""
    return (moment - EPOCH) // ONE_SECOND


def _at_second(second: int) -> datetime:
    return EPOCH + timedelta(seconds=second)


def _run_start(zone: ZoneInfo, unit: str, moment: datetime) -> datetime:
    """The first instant of the run containing `moment`."""
    step = HOUR_STEP if unit == HOUR else DAY_STEP
    key = _run_key(zone, unit, moment)
    hi = moment
    lo = hi - step
    while _run_key(zone, unit, lo) == key:
        hi, lo = lo, lo - step
    # The key is constant within a whole second, so the seconds holding lo and hi
    # keep their keys: false at lo_s, true at hi_s.
    lo_s, hi_s = _floor_second(lo), _floor_second(hi)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _run_key(zone, unit, _at_second(mid)) == key:
            hi_s = mid
        else:
            lo_s = mid
    return _at_second(hi_s)


def _run_end(zone: ZoneInfo, unit: str, moment: datetime) -> datetime:
    """The first instant after the run containing `moment`."""
    step = HOUR_STEP if unit == HOUR else DAY_STEP
    key = _run_key(zone, unit, moment)
    lo = moment
    hi = lo + step
    while _run_key(zone, unit, hi) == key:
        lo, hi = hi, hi + step
    lo_s, hi_s = _floor_second(lo), _floor_second(hi)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _run_key(zone, unit, _at_second(mid)) == key:
            lo_s = mid
        else:
            hi_s = mid
    return _at_second(hi_s)


def _make_run(
    zone: ZoneInfo,
    unit: str,
    moment: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> _Run:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return _Run(
        label=_label(zone, unit, moment),
        offset=offset,
        start=start if start is not None else _run_start(zone, unit, moment),
        end=end if end is not None else _run_end(zone, unit, moment),
    )


def _runs_before(zone: ZoneInfo, unit: str, run: _Run) -> Iterator[_Run]:
    while True:
        run = _make_run(zone, unit, run.start - ONE_US, end=run.start)
        yield run


def _runs_after(zone: ZoneInfo, unit: str, run: _Run) -> Iterator[_Run]:
    while True:
        run = _make_run(zone, unit, run.end, start=run.end)
        yield run


def expected_buckets(
    zone: str | ZoneInfo,
    unit: str,
    ending_at: datetime,
    length: int,
    events: Iterable[tuple[datetime, str | None]] = (),
    app: str | None = None,
) -> list[OracleBucket]:
    """The `length` buckets ending with the one holding `ending_at - 1us`, ascending.

    Counts are by label: an event counts in the bucket whose label its own time has,
    and, given `app`, only if it was sent with that app (without `app`, every event
    counts, including those with no app).

    Where a clock goes back across local midnight (America/St_Johns 1987-2010 fell back
    from 00:01 to 23:01 of the day before), a local date's instants are not contiguous.
    The series is then the `length` distinct dates up to the date of `ending_at - 1us`,
    in date order; a later date met while walking back is not a point of this series.
    """
    if unit not in (DAY, HOUR):
        raise ValueError(f"unit must be 'day' or 'hour', not {unit!r}")
    if length < 1:
        raise ValueError("length must be positive")
    if ending_at.utcoffset() is None:
        raise ValueError("ending_at must be aware")
    tz = _zone(zone)
    last = _make_run(tz, unit, ending_at.astimezone(UTC) - ONE_US)
    runs: dict[LabelKey, list[_Run]] = {last.label: [last]}
    order = [last.label]  # newest first
    extra = 0
    for run in _runs_before(tz, unit, last):
        if run.label in runs:
            runs[run.label].append(run)
            continue
        if unit == DAY and run.label > min(order):
            continue  # a later date again: not part of this series
        if len(order) == length:
            extra += 1
            if extra > EXTRA_RUNS:
                break
            continue
        runs[run.label] = [run]
        order.append(run.label)
    for count, run in enumerate(_runs_after(tz, unit, last)):
        if count >= EXTRA_RUNS:
            break
        if run.label in runs:
            runs[run.label].append(run)

    counts: dict[LabelKey, int] = {}
    for at, event_app in events:
        if app is not None and event_app != app:
            continue
        key = _label(tz, unit, at)
        counts[key] = counts.get(key, 0) + 1

    buckets = []
    for key in reversed(order):
        spans = sorted(runs[key], key=lambda r: r.start)
        contiguous = all(a.end == b.start for a, b in pairwise(spans))
        first = spans[0].start
        label = key[0].isoformat() if unit == DAY else first.astimezone(tz).isoformat()
        buckets.append(
            OracleBucket(
                label=label,
                count=counts.get(key, 0),
                start=first,
                end=spans[-1].end,
                contiguous=contiguous,
            )
        )
    return buckets


def expected_series(
    events: Iterable[tuple[datetime, str | None]],
    zone: str | ZoneInfo,
    unit: str,
    ending_at: datetime,
    length: int,
    app: str | None = None,
) -> list[tuple[str, int]]:
    """The expected `(time, count)` points of a series (see `expected_buckets`)."""
    buckets = expected_buckets(zone, unit, ending_at, length, events, app)
    return [(b.label, b.count) for b in buckets]


def _wall(zone: ZoneInfo, moment: datetime) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _first_second_where_wall_reaches(
    zone: ZoneInfo, wall: datetime, lo: datetime, hi: datetime
) -> datetime:
    """First whole second in (lo, hi] whose wall clock shows `wall` or later.

    The wall clock must be below `wall` at lo and at or above it at hi, and jump over
    it at most once in between (lo and hi are one step apart).
    """
    lo_s, hi_s = _floor_second(lo), _floor_second(hi)
    if _wall(zone, _at_second(hi_s)) < wall:
        hi_s += 1
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _wall(zone, _at_second(mid)) >= wall:
            hi_s = mid
        else:
            lo_s = mid
    return _at_second(hi_s)


def resolve_local_oracle(zone: str | ZoneInfo, wall: datetime) -> datetime:
    """The instant a naive wall-clock time names in `zone`, by search (contract 8.4).

    Every offset the zone uses within a day either side is tried; a wall time shown
    twice is the earlier instant. One never shown (clocks going forward) is the
    instant the gap ends: the first instant whose wall clock is past it.
    """
    if wall.tzinfo is not None:
        raise ValueError("wall must be naive")
    tz = _zone(zone)
    around = wall.replace(tzinfo=UTC)
    lo, hi = around - MAX_ABS_OFFSET, around + MAX_ABS_OFFSET
    offsets: set[timedelta] = set()
    moment = lo
    while moment <= hi:
        offset = moment.astimezone(tz).utcoffset()
        assert offset is not None
        offsets.add(offset)
        moment += HOUR_STEP
    shown = [around - offset for offset in offsets if _wall(tz, around - offset) == wall]
    if shown:
        return min(shown)
    previous = lo
    moment = lo + HOUR_STEP
    while _wall(tz, moment) < wall:
        previous, moment = moment, moment + HOUR_STEP
    return _first_second_where_wall_reaches(tz, wall, previous, moment)


def first_instant_of_local_date_oracle(zone: str | ZoneInfo, day: date) -> datetime:
    """The first instant whose local date in `zone` is `day` or later, by search.

    That is local midnight, or the end of the gap where midnight (or the whole date,
    Pacific/Apia 2011-12-30) is skipped.
    """
    tz = _zone(zone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    previous = midnight - MAX_ABS_OFFSET
    moment = previous + DAY_STEP
    while moment.astimezone(tz).date() < day:
        previous, moment = moment, moment + DAY_STEP
    lo_s, hi_s = _floor_second(previous), _floor_second(moment)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _at_second(mid).astimezone(tz).date() >= day:
            hi_s = mid
        else:
            lo_s = mid
    return _at_second(hi_s)


def offset_transitions(
    zone: str | ZoneInfo, start: datetime, end: datetime, step: timedelta = timedelta(days=1)
) -> list[datetime]:
    """Instants in [start, end) where the zone's offset changes, found by stepping.

    An offset that lasts less than `step` may be missed; fine for choosing test inputs.
    """
    tz = _zone(zone)
    found = []
    lo = start
    before = lo.astimezone(tz).utcoffset()
    while lo < end:
        hi = lo + step
        after = hi.astimezone(tz).utcoffset()
        if after != before:
            lo_s, hi_s = _floor_second(lo), _floor_second(hi)
            while hi_s - lo_s > 1:
                mid = (lo_s + hi_s) // 2
                if _at_second(mid).astimezone(tz).utcoffset() == before:
                    lo_s = mid
                else:
                    hi_s = mid
            if _at_second(hi_s) < end:
                found.append(_at_second(hi_s))
        lo, before = hi, after
    return found
