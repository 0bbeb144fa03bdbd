"""Hour and day buckets of a reporting zone, and the window rule of a series (contract 8.1-8.3).

A day bucket holds the instants sharing one local date; an hour bucket those sharing
local date, local hour and UTC offset, so the repeated hour when clocks go back is two
buckets and a shift that is not a whole hour makes a short one. Buckets are ranges of
UTC instants [start, end); labels name the first instant.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from eventtally.domain.instants import (
    first_instant_of_date,
    first_second_where,
    offset_at,
    to_us,
)

ONE_US = timedelta(microseconds=1)
ONE_HOUR = timedelta(hours=1)
ONE_DAY = timedelta(days=1)
MIN_LENGTH = 1
MAX_LENGTH = 100


class Unit(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One point of a series: its `time` label and its instants, as [start, end) ranges of
    microseconds. Almost always one range; a day that a zone's clock returns to after the
    next day began (America/St_Johns 1987-2010 fell back from 00:01 to 23:01) has two."""

    label: str
    ranges: tuple[tuple[int, int], ...]

    @property
    def start(self) -> int:
        return self.ranges[0][0]

    @property
    def end(self) -> int:
        return self.ranges[-1][1]

    def contains(self, instant: int) -> bool:
        return any(start <= instant < end for start, end in self.ranges)


def _hour_bounds(zone: ZoneInfo, moment: datetime) -> tuple[datetime, datetime]:
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    floor = local.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    start = (floor - offset).replace(tzinfo=UTC)
    end = start + ONE_HOUR
    # A transition inside the hour ends the bucket of one offset and starts another.
    if offset_at(zone, start) != offset:
        start = first_second_where(lambda m: offset_at(zone, m) == offset, start, moment)
    if offset_at(zone, end - ONE_US) != offset:
        end = first_second_where(lambda m: offset_at(zone, m) != offset, moment, end - ONE_US)
    return start, end


def _set_back_into(
    zone: ZoneInfo, start: datetime, end: datetime
) -> tuple[datetime, datetime] | None:
    """The stretch of [start, end) whose local date is earlier than at `start`, if any.

    That happens only when clocks go back across local midnight: the earlier date comes
    back until the wall clock reaches midnight again. One transition a day at most.
    """
    before, after = offset_at(zone, start), offset_at(zone, end - ONE_US)
    if after >= before:
        return None
    moment = first_second_where(lambda m: offset_at(zone, m) == after, start, end - ONE_US)
    day = start.astimezone(zone).date()
    if moment.astimezone(zone).date() >= day:
        return None
    midnight = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - a wall-clock time
    return moment, min((midnight - after).replace(tzinfo=UTC), end)


def _day_ranges(
    zone: ZoneInfo, start: datetime, end: datetime, after: datetime
) -> list[tuple[datetime, datetime]]:
    """The instants of the date that begins at `start`: [start, end) where the next date
    begins at `end` and the one after at `after`, less what a set-back clock gives to the
    date before, plus what the next date gives back to this one."""
    ranges = [(start, end)]
    lost = _set_back_into(zone, start, end)
    if lost is not None:
        ranges = [(start, lost[0]), (lost[1], end)]
    if end < after and (gained := _set_back_into(zone, end, after)) is not None:
        ranges.append(gained)
    return [(a, b) for a, b in ranges if a < b]


def _hour_label(zone: ZoneInfo, start: datetime) -> str:
    """An hour point's `time`: its first instant in the zone, with its numeric offset."""
    return start.astimezone(zone).isoformat()


def series_buckets(zone: ZoneInfo, unit: Unit, ending_at: datetime, length: int) -> list[Bucket]:
    """The `length` buckets ending with the one containing `ending_at` - 1us, ascending.

    Each bucket is whole: instants at or after `ending_at` inside the last bucket count.
    Walking back bucket by bucket means a date a zone skipped is never a point.
    """
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between {MIN_LENGTH} and {MAX_LENGTH}")
    moment = ending_at - ONE_US
    # A series depends only on its last bucket: find that, then walk back (or reuse a walk:
    # queries ending "now" ask for the same series all hour, or all day).
    if unit is Unit.DAY:
        return list(_day_series(zone, moment.astimezone(zone).date(), length))
    start, end = _hour_bounds(zone, moment)
    return list(_hour_series(zone, start, end, length))


@lru_cache(maxsize=1024)
def _hour_series(zone: ZoneInfo, start: datetime, end: datetime, length: int) -> tuple[Bucket, ...]:
    buckets = []
    for _ in range(length):
        buckets.append(Bucket(_hour_label(zone, start), ((to_us(start), to_us(end)),)))
        end = start
        start, _ = _hour_bounds(zone, start - ONE_US)
    return tuple(reversed(buckets))


@lru_cache(maxsize=1024)
def _day_series(zone: ZoneInfo, day: date, length: int) -> tuple[Bucket, ...]:
    firsts: dict[date, datetime] = {}

    def first(day: date) -> datetime:
        # Each date's first instant serves it and its two neighbours: compute it once.
        if day not in firsts:
            firsts[day] = first_instant_of_date(zone, day)
        return firsts[day]

    buckets = []
    for _ in range(length):
        start = first(day)
        ranges = _day_ranges(zone, start, first(day + ONE_DAY), first(day + 2 * ONE_DAY))
        buckets.append(Bucket(day.isoformat(), tuple((to_us(a), to_us(b)) for a, b in ranges)))
        day = (start - ONE_US).astimezone(zone).date()
    return tuple(reversed(buckets))
