"""Braze's rate limits (contract 1.5, 8.13): fixed, clock-aligned windows per workspace.

Three buckets: `default` (250,000 requests an hour, shared by the series and segment
endpoints), `catalogue` (1,000 an hour, shared by `/events/list` and `/events`) and
`track` (3,000 requests per 3 seconds, `/users/track`). A workspace may override any of
them. Failed requests count too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from eventtally.domain.instants import US_PER_SECOND


class RateBucket(enum.StrEnum):
    DEFAULT = "default"
    CATALOGUE = "catalogue"
    TRACK = "track"


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds}s"


DEFAULT_LIMITS: dict[RateBucket, Limit] = {
    RateBucket.DEFAULT: Limit(250_000, 3600),
    RateBucket.CATALOGUE: Limit(1_000, 3600),
    RateBucket.TRACK: Limit(3_000, 3),
}


def parse_limit(text: str) -> tuple[RateBucket, Limit]:
    """`BUCKET=REQUESTS/SECONDS`, e.g. `track=3000/3`; ValueError names what is wrong."""
    name, _, value = text.partition("=")
    try:
        bucket = RateBucket(name.strip())
    except ValueError:
        known = ", ".join(b.value for b in RateBucket)
        raise ValueError(f"unknown rate-limit bucket {name!r} (known: {known})") from None
    requests, _, seconds = value.partition("/")
    if not (requests.strip().isdigit() and seconds.strip().isdigit()):
        raise ValueError(f"rate limit {text!r} is not BUCKET=REQUESTS/SECONDS")
    limit = Limit(int(requests), int(seconds))
    if limit.requests < 1 or limit.seconds < 1:
        raise ValueError(f"rate limit {text!r} needs at least 1 request and 1 second")
    return bucket, limit


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }

    def retry_after(self, now: int) -> int:
        """Whole seconds until the window ends, at least 1."""
        return max(1, -(-(self.reset * US_PER_SECOND - now) // US_PER_SECOND))


EMPTY_HEADERS = {"X-RateLimit-Limit": "", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": ""}


def window_end(now: int, seconds: int) -> int:
    """The end (epoch seconds) of the clock-aligned window of `seconds` holding `now` (µs)."""
    return (now // US_PER_SECOND // seconds + 1) * seconds


class WindowCounter(Protocol):
    def hit(self, workspace_id: int, bucket: RateBucket, limit: Limit, now: int) -> Decision:
        """Count one request in its window; the decision and headers for it."""


class FixedWindowCounter:
    """Counts requests per (workspace, bucket) in the current window. Not thread-safe:
    one event loop owns it, so every check-and-count is atomic without a lock."""

    def __init__(self) -> None:
        self._windows: dict[tuple[int, RateBucket], tuple[int, int]] = {}

    def hit(self, workspace_id: int, bucket: RateBucket, limit: Limit, now: int) -> Decision:
        end = window_end(now, limit.seconds)
        key = (workspace_id, bucket)
        window, used = self._windows.get(key, (end, 0))
        if window != end:
            used = 0
        used += 1
        self._windows[key] = (end, used)
        return Decision(used <= limit.requests, limit.requests, max(0, limit.requests - used), end)
