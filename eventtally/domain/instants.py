"""Instants as integer microseconds since the Unix epoch, and the zone arithmetic on them.

Everything stored or compared is an integer count of microseconds (UTC); aware
datetimes exist only at the edges, where zoneinfo is asked what a wall clock shows.
Zone transitions in tzdata fall on whole seconds, so searches for them step in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

US_PER_SECOND = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The range of instants eventtally accepts anywhere (event times, ending_at). It keeps
# every series walk and every local-date lookup inside what datetime can represent.
MIN_INSTANT = datetime(1800, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(us: int) -> datetime:
    """The aware UTC datetime of an instant."""
    return EPOCH + timedelta(microseconds=us)


def offset_at(zone: ZoneInfo, moment: datetime) -> timedelta:
    """The zone's UTC offset at an instant."""
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def first_second_where(pred: Callable[[datetime], bool], lo: datetime, hi: datetime) -> datetime:
    """The first whole second in (lo, hi] where `pred` holds (false at lo, true at hi).

    `pred` must change once between them; zone transitions are on whole seconds,
    so the answer is exact.
    """
    lo_s = to_us(lo) // US_PER_SECOND
    hi_s = -(-to_us(hi) // US_PER_SECOND)  # ceil, still a point where pred holds
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if pred(from_us(mid * US_PER_SECOND)):
            hi_s = mid
        else:
            lo_s = mid
    return from_us(hi_s * US_PER_SECOND)


def resolve_local(zone: ZoneInfo, wall: datetime) -> datetime:
    """The instant a naive wall-clock time names in a zone (contract 8.4).

    A time that occurs twice (clocks going back) is the earlier instant; one that
    does not occur (clocks going forward) is the instant the gap ends.
    """
    candidates = []
    for fold in (0, 1):
        moment = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if moment.astimezone(zone).replace(tzinfo=None) == wall:
            candidates.append(moment)
    if candidates:
        return min(candidates)
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    lo, hi = min(before, after), max(before, after)
    return first_second_where(lambda m: m.astimezone(zone).replace(tzinfo=None) >= wall, lo, hi)


def first_instant_of_date(zone: ZoneInfo, day: date) -> datetime:
    """The first instant whose local date is `day` or later (a skipped midnight starts later)."""
    return resolve_local(zone, datetime(day.year, day.month, day.day))  # noqa: DTZ001
