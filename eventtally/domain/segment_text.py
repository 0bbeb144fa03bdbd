"""A segment filter in words, for `/segments/details`' `description` (Braze's summary)."""

from __future__ import annotations

import json

from eventtally.domain.segments import (
    All,
    Any_,
    AttributeCondition,
    EventCount,
    Filter,
    Not,
    filter_to_json,
)

_ATTRIBUTE_WORDS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "contains": "contains",
    "starts_with": "starts with",
    "includes": "includes",
}
_COUNT_WORDS = {"gte": "at least", "lte": "at most", "eq": "exactly"}


def describe(f: Filter) -> str:
    """E.g. `plan is "pro" and (used app 1f3... or performed signup at least 2 times)`."""
    if isinstance(f, All | Any_):
        joiner = " and " if isinstance(f, All) else " or "
        parts = [_nested(child) for child in f.filters]
        return joiner.join(parts)
    if isinstance(f, Not):
        return f"not ({describe(f.filter)})"
    if isinstance(f, AttributeCondition):
        if f.op == "exists":
            return f"{f.attribute} is set"
        if f.op == "not_exists":
            return f"{f.attribute} is not set"
        value = filter_to_json(f)
        assert isinstance(value, dict)
        return f"{f.attribute} {_ATTRIBUTE_WORDS[f.op]} {json.dumps(value['value'])}"
    if isinstance(f, EventCount):
        times = "time" if f.count == 1 else "times"
        return f"performed {f.event} {_COUNT_WORDS[f.op]} {f.count} {times}"
    return f"used app {f.app_id}"


def _nested(f: Filter) -> str:
    text = describe(f)
    return f"({text})" if isinstance(f, All | Any_) and len(f.filters) > 1 else text
