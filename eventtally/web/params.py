"""Query parameters: each read once, each rule's failure a 400 that names the parameter."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request

from eventtally.domain.buckets import MAX_LENGTH, MIN_LENGTH
from eventtally.domain.instants import from_us
from eventtally.domain.timeparse import TimeParseError, parse_instant
from eventtally.errors import BadRequest

_INTEGER = re.compile(r"-?[0-9]{1,12}")


class Params:
    def __init__(self, request: Request) -> None:
        self._query = request.query_params

    def text(self, name: str, *, required: bool = False) -> str | None:
        values = self._query.getlist(name)
        if len(values) > 1:
            raise BadRequest(f"{name} was given {len(values)} times; give it once")
        if not values or values[0] == "":
            if required:
                raise BadRequest(f"{name} is required")
            return None
        return values[0]

    def integer(
        self, name: str, *, required: bool = False, minimum: int, maximum: int | None = None
    ) -> int | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        if _INTEGER.fullmatch(raw) is None:
            raise BadRequest(f"{name} must be an integer, not {raw[:40]!r}")
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise BadRequest(f"{name} must be {bounds}, not {value}")
        return value

    def ending_at(self, zone: ZoneInfo, now: int) -> datetime:
        """`ending_at`, read in the reporting zone (contract 8.4); now when absent."""
        text = self.text("ending_at")
        if text is None:
            return from_us(now)
        try:
            return parse_instant(text, zone)
        except TimeParseError as exc:
            raise BadRequest(f"ending_at {text[:64]!r} {exc}") from None

    def length(self) -> int:
        length = self.integer("length", required=True, minimum=MIN_LENGTH, maximum=MAX_LENGTH)
        assert length is not None  # required=True
        return length
