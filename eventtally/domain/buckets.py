"""Hour and day buckets of a reporting zone, and the window rule of a series (contract 8.1-8.3).

A day bucket holds the instants sharing one local date; an hour bucket those sharing
local date, local hour and UTC offset, so the repeated hour when clocks go back is two
buckets and a shift that is not a whole hour makes a short one. Buckets are ranges of
UTC instants [start, end); labels name the first instant.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    """One point of a series: instants in [start, end) microseconds, and its `time` label."""

    start: int
    end: int
    label: str


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


def _day_bounds(zone: ZoneInfo, moment: datetime) -> tuple[datetime, datetime]:
    day = moment.astimezone(zone).date()
    return first_instant_of_date(zone, day), first_instant_of_date(zone, day + ONE_DAY)


def bucket_of(zone: ZoneInfo, unit: Unit, moment: datetime) -> tuple[datetime, datetime]:
    """The [start, end) instants of the bucket that contains `moment`."""
    if unit is Unit.HOUR:
        return _hour_bounds(zone, moment)
    return _day_bounds(zone, moment)


def label_of(zone: ZoneInfo, unit: Unit, start: datetime) -> str:
    """A point's `time`: the local date, or the first instant with its numeric offset."""
    local = start.astimezone(zone)
    if unit is Unit.DAY:
        return local.date().isoformat()
    return local.isoformat()


def series_buckets(zone: ZoneInfo, unit: Unit, ending_at: datetime, length: int) -> list[Bucket]:
    """The `length` buckets ending with the one containing `ending_at` - 1us, ascending.

    Each bucket is whole: instants at or after `ending_at` inside the last bucket count.
    Walking back bucket by bucket means a date a zone skipped is never a point.
    """
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between {MIN_LENGTH} and {MAX_LENGTH}")
    moment = ending_at - ONE_US
    start, end = bucket_of(zone, unit, moment)
    buckets = []
    for _ in range(length):
        buckets.append(Bucket(to_us(start), to_us(end), label_of(zone, unit, start)))
        end = start
        start, _ = bucket_of(zone, unit, start - ONE_US)
    buckets.reverse()
    return buckets
