"""Lenient ISO 8601 parsing for `ending_at` and event `time` (contract 8.4, 8.21).

Accepted: a bare date; a date and time (`T` or a space between them) with optional
fractional seconds (`.`, `,` or Braze's `:SSS`), and an optional offset written `Z`,
`+HH:MM`, `+H:MM`, `+HHMM` or `+HH`. A `+` that arrived unencoded in a query string
reads as a space, so a space before the offset means `+`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from eventtally.domain.instants import (
    MAX_INSTANT,
    MIN_INSTANT,
    first_instant_of_date,
    resolve_local,
)

_PATTERN = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:
        [Tt\ ](?P<hour>\d{2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,:](?P<fraction>\d{1,9}))?)?
        (?:
            (?P<zulu>[Zz])
            | (?P<sign>[+\-\ ])(?P<off_h>\d{1,2})(?::?(?P<off_m>\d{2}))?
        )?
    )?
    """,
    re.VERBOSE,
)


class TimeParseError(ValueError):
    """A time string eventtally cannot read; the message says what is accepted."""


def parse_instant(text: str, local_zone: ZoneInfo | None) -> datetime:
    """Parse `text` to an aware UTC datetime.

    A value without an offset is wall-clock time in `local_zone` (for `ending_at`,
    the reporting zone); with `local_zone=None` it is UTC (event `time`).
    """
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise TimeParseError("is not an ISO 8601 date or datetime")
    g = match.groupdict()
    try:
        day = date(int(g["year"]), int(g["month"]), int(g["day"]))
        if g["hour"] is None:
            moment = (
                first_instant_of_date(local_zone, day)
                if local_zone is not None
                else datetime(day.year, day.month, day.day, tzinfo=UTC)
            )
            return _in_range(moment)
        fraction = (g["fraction"] or "0")[:6].ljust(6, "0")
        wall = datetime(  # noqa: DTZ001 - the zone is applied just below
            day.year,
            day.month,
            day.day,
            int(g["hour"]),
            int(g["minute"]),
            int(g["second"] or 0),
            int(fraction),
        )
    except ValueError as exc:
        raise TimeParseError(f"is not a valid date or time ({exc})") from None
    if g["zulu"]:
        return _in_range(wall.replace(tzinfo=UTC))
    if g["sign"] is not None:
        hours, minutes = int(g["off_h"]), int(g["off_m"] or 0)
        if hours > 23 or minutes > 59:
            raise TimeParseError("has an offset out of range")
        offset = timedelta(hours=hours, minutes=minutes)
        if g["sign"] == "-":
            offset = -offset
        return _in_range(wall.replace(tzinfo=timezone(offset)).astimezone(UTC))
    if local_zone is None:
        return _in_range(wall.replace(tzinfo=UTC))
    return _in_range(resolve_local(local_zone, wall))


def _in_range(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    if not MIN_INSTANT <= moment < MAX_INSTANT:
        raise TimeParseError(
            f"must be between {MIN_INSTANT.year} and {MAX_INSTANT.year - 1} (years)"
        )
    return moment
