"""Segment filters: the language's semantics, its error messages and its round trip."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventtally.domain.segments import (
    ATTRIBUTE_OPS,
    MAX_DEPTH,
    MAX_NODES,
    All,
    Any_,
    AttributeCondition,
    Dependencies,
    EventCount,
    Filter,
    FilterError,
    Not,
    UsedApp,
    UserState,
    filter_to_json,
    matches,
    parse_filter,
    referenced,
)

MISSING = object()  # an attribute value meaning "the profile does not have it"


def state(
    attributes: Mapping[str, Any] | None = None,
    events: Mapping[str, int] | None = None,
    apps: frozenset[str] = frozenset(),
) -> UserState:
    return UserState(attributes or {}, events or {}, apps)


def attr(op: str, value: object = MISSING) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": "x", "op": op}
    if value is not MISSING:
        node["value"] = value
    return node


def check(op: str, value: object, attribute: object) -> bool:
    """Whether the condition `x <op> value` holds for a profile whose `x` is `attribute`."""
    attributes = {} if attribute is MISSING else {"x": attribute}
    return matches(parse_filter(attr(op, value)), state(attributes))


# --- each operator -------------------------------------------------------------------------

OPERATOR_CASES = [
    # eq: JSON equality; 1 == 1.0, but a boolean is not a number and "1" is not 1.
    ("eq", "US", "US", True),
    ("eq", "US", "us", False),
    ("eq", "US", MISSING, False),
    ("eq", 1, 1, True),
    ("eq", 1, 1.0, True),
    ("eq", 1.5, 1.5, True),
    ("eq", 1, True, False),
    ("eq", True, 1, False),
    ("eq", True, True, True),
    ("eq", False, 0, False),
    ("eq", 1, "1", False),
    ("eq", [1, "a"], [1, "a"], True),
    ("eq", [1, "a"], ["a", 1], False),
    ("eq", [1], [True], False),
    ("eq", {"a": 1, "b": [2]}, {"b": [2.0], "a": 1}, True),
    ("eq", {"a": 1}, {"a": 1, "b": 2}, False),
    ("eq", "2024-01-01", "2024-01-01T00:00:00Z", False),  # eq compares JSON, not instants
    # ne: present and not equal; a missing attribute is not "not equal".
    ("ne", "US", "FR", True),
    ("ne", "US", "US", False),
    ("ne", "US", MISSING, False),
    ("ne", 1, True, True),
    ("ne", 1, 1.0, False),
    ("ne", 1, "1", True),
    # in: equal to one of the list.
    ("in", ["US", "FR"], "FR", True),
    ("in", ["US", "FR"], "DE", False),
    ("in", ["US", "FR"], MISSING, False),
    ("in", [1, 2], 2.0, True),
    ("in", [1, 2], True, False),
    ("in", [True], 1, False),
    ("in", [[1, 2], "a"], [1, 2], True),
    ("in", [{"k": 1}], {"k": 1}, True),
    # exists / not_exists: any present value, even empty ones.
    ("exists", MISSING, "", True),
    ("exists", MISSING, [], True),
    ("exists", MISSING, 0, True),
    ("exists", MISSING, False, True),
    ("exists", MISSING, MISSING, False),
    ("not_exists", MISSING, MISSING, True),
    ("not_exists", MISSING, "", False),
    ("not_exists", MISSING, False, False),
    # gt / gte / lt / lte on numbers: the attribute must be a number (not a boolean).
    ("gt", 10, 11, True),
    ("gt", 10, 10, False),
    ("gt", 10, 9.5, False),
    ("gte", 10, 10, True),
    ("gte", 10, 10.0, True),
    ("gte", 10, 9, False),
    ("lt", 10, 9, True),
    ("lt", 10, 10, False),
    ("lte", 10, 10, True),
    ("lte", 10, 11, False),
    ("gt", 0.5, 1, True),
    ("gt", -1, 0, True),
    ("gt", 2**53, 2**53 + 1, True),  # exact: no rounding through floats
    ("gt", 0, True, False),
    ("lt", 5, False, False),
    ("gt", 1, "2", False),
    ("gt", 1, [2], False),
    ("gt", 1, MISSING, False),
    ("lt", 1, MISSING, False),
    ("gte", 1, MISSING, False),
    ("lte", 1, MISSING, False),
    ("gte", 10, "2024-01-01", False),  # a number filter does not compare with dates
    # contains / starts_with: strings, case-sensitive.
    ("contains", "gmail", "bob@gmail.com", True),
    ("contains", "GMAIL", "bob@gmail.com", False),
    ("contains", "x", "abc", False),
    ("contains", "", "abc", True),
    ("contains", "1", 123, False),
    ("contains", "a", ["a"], False),
    ("contains", "a", MISSING, False),
    ("starts_with", "Jo", "John", True),
    ("starts_with", "jo", "John", False),
    ("starts_with", "hn", "John", False),
    ("starts_with", "1", 12, False),
    ("starts_with", "J", MISSING, False),
    # includes: the attribute is an array holding the value.
    ("includes", "vip", ["new", "vip"], True),
    ("includes", "vip", ["VIP"], False),
    ("includes", "vip", [], False),
    ("includes", "vip", "vip", False),
    ("includes", "vip", "a vip", False),
    ("includes", "vip", MISSING, False),
    ("includes", 1, [1.0, 2], True),
    ("includes", 1, [True], False),
    ("includes", True, [1], False),
    ("includes", True, [True], True),
    ("includes", None, [None, 1], True),
    ("includes", None, [0, False, ""], False),
    ("includes", "1", [1], False),
]


@pytest.mark.parametrize(("op", "value", "attribute", "expected"), OPERATOR_CASES)
def test_operator(op: str, value: object, attribute: object, expected: bool) -> None:
    assert check(op, value, attribute) is expected


@pytest.mark.parametrize("op", ATTRIBUTE_OPS)
def test_every_operator_has_cases(op: str) -> None:
    cases = [case for case in OPERATOR_CASES if case[0] == op]
    assert any(case[3] for case in cases), f"no true case for {op}"
    assert any(not case[3] for case in cases), f"no false case for {op}"
    assert any(case[2] is MISSING for case in cases), f"no missing case for {op}"


@pytest.mark.parametrize("op", ATTRIBUTE_OPS)
def test_not_of_a_condition_on_a_missing_attribute_is_true_except_not_exists(op: str) -> None:
    value = {"in": [1], "gt": 1, "gte": 1, "lt": 1, "lte": 1}.get(op, "v")
    condition = attr(op) if op in ("exists", "not_exists") else attr(op, value)
    negated = parse_filter({"not": condition})
    assert matches(negated, state()) is (op != "not_exists")


def test_standard_and_custom_attributes_live_in_one_dict() -> None:
    f = parse_filter(
        {
            "all": [
                {"attribute": "country", "op": "eq", "value": "US"},
                {"attribute": "email", "op": "contains", "value": "@example.com"},
                {"attribute": "plan", "op": "in", "value": ["pro", "team"]},
            ]
        }
    )
    profile = {"country": "US", "email": "ann@example.com", "plan": "pro", "first_name": "Ann"}
    assert matches(f, state(profile))
    assert not matches(f, state({**profile, "plan": "free"}))


def test_names_are_normalised_as_users_track_stores_them() -> None:
    f = parse_filter(
        {
            "all": [
                {"attribute": " plan\n", "op": "exists"},
                {"event": " played ", "op": "eq", "count": 0},
            ]
        }
    )
    assert f == parse_filter(
        {
            "all": [
                {"attribute": "plan", "op": "exists"},
                {"event": "played", "op": "eq", "count": 0},
            ]
        }
    )


# --- dates ---------------------------------------------------------------------------------

DATE_CASES = [
    # A bare date is 00:00 UTC; no offset means UTC; offsets are applied.
    ("gte", "1990-01-01", "1990-01-01", True),
    ("gt", "1990-01-01", "1990-01-01", False),
    ("gte", "1990-01-01", "1990-01-01T00:00:00Z", True),
    ("gt", "1990-01-01", "1990-01-01T00:00:00.000001Z", True),
    ("lt", "1990-01-01", "1989-12-31T23:59:59Z", True),
    ("gte", "1990-01-01T00:00:00", "1990-01-01", True),
    ("lte", "1990-01-01T00:00:00", "1990-01-01", True),
    # 1990-01-01T01:00+02:00 is 1989-12-31T23:00Z: before the date, as an instant.
    ("lt", "1990-01-01", "1990-01-01T01:00:00+02:00", True),
    ("gte", "1990-01-01", "1990-01-01T01:00:00+02:00", False),
    ("gt", "1990-01-01T00:00:00Z", "1989-12-31T20:00:00-05:00", True),
    ("gte", "2024-03-10T12:00:00+05:30", "2024-03-10T06:30:00Z", True),
    ("gt", "2024-03-10T12:00:00+05:30", "2024-03-10T06:30:00Z", False),
    ("lte", "2024-03-10T06:30:00Z", "2024-03-10 12:00:00+05:30", True),
    ("gt", "2024-01-01", "2024-06-01T10:00:00.5", True),
    # What is not a date string does not compare.
    ("gt", "2024-01-01", "2025", False),
    ("gt", "2024-01-01", "soon", False),
    ("gt", "2024-01-01", "2025-02-30", False),
    ("gt", "2024-01-01", 1_900_000_000, False),
    ("gt", "2024-01-01", ["2025-01-01"], False),
    ("gt", "2024-01-01", True, False),
    ("gt", "2024-01-01", "2025-01-01" + " " * 40, False),
    ("lt", "2024-01-01", "1700-01-01", False),  # outside the instants eventtally reads
    ("gt", "2024-01-01", MISSING, False),
]


@pytest.mark.parametrize(("op", "value", "attribute", "expected"), DATE_CASES)
def test_dates_compare_as_instants(op: str, value: str, attribute: object, expected: bool) -> None:
    assert check(op, value, attribute) is expected


def test_a_date_attribute_is_read_again_after_it_changes() -> None:
    f = parse_filter(attr("lt", "2000-01-01"))
    assert matches(f, state({"x": "1999-12-31"}))
    assert not matches(f, state({"x": "2000-01-01"}))
    assert matches(f, state({"x": "1999-12-31"}))


# --- events and apps -----------------------------------------------------------------------

EVENT_CASES = [
    ("gte", 3, 3, True),
    ("gte", 3, 2, False),
    ("lte", 3, 3, True),
    ("lte", 3, 4, False),
    ("eq", 3, 3, True),
    ("eq", 3, 4, False),
    ("eq", 0, None, True),
    ("lte", 0, None, True),
    ("lte", 2, None, True),
    ("gte", 0, None, True),
    ("gte", 1, None, False),
    ("eq", 1, None, False),
]


@pytest.mark.parametrize(("op", "count", "performed", "expected"), EVENT_CASES)
def test_event_count(op: str, count: int, performed: int | None, expected: bool) -> None:
    f = parse_filter({"event": "played", "op": op, "count": count})
    events = {"other": 9} if performed is None else {"played": performed, "other": 9}
    assert matches(f, state(events=events)) is expected


def test_used_app() -> None:
    f = parse_filter({"used_app": "app-1"})
    assert matches(f, state(apps=frozenset({"app-1", "app-2"})))
    assert not matches(f, state(apps=frozenset({"app-2"})))
    assert not matches(f, state(apps=frozenset()))
    assert not matches(f, state({"app-1": True}, {"app-1": 1}))
    assert matches(f, UserState({}, {}, {"app-1"}))  # any set will do


# --- nesting -------------------------------------------------------------------------------

NESTED = {
    "all": [
        {"attribute": "country", "op": "in", "value": ["US", "CA"]},
        {
            "any": [
                {"event": "purchased", "op": "gte", "count": 2},
                {"attribute": "tags", "op": "includes", "value": "vip"},
            ]
        },
        {"not": {"used_app": "legacy-app"}},
    ]
}


@pytest.mark.parametrize(
    ("attributes", "events", "apps", "expected"),
    [
        ({"country": "US"}, {"purchased": 2}, frozenset(), True),
        ({"country": "CA", "tags": ["vip"]}, {}, frozenset({"web"}), True),
        ({"country": "US"}, {"purchased": 1}, frozenset(), False),
        ({"country": "FR"}, {"purchased": 5}, frozenset(), False),
        ({}, {"purchased": 5}, frozenset(), False),
        ({"country": "US"}, {"purchased": 2}, frozenset({"legacy-app"}), False),
    ],
)
def test_nesting(
    attributes: dict[str, Any], events: dict[str, int], apps: frozenset[str], expected: bool
) -> None:
    assert matches(parse_filter(NESTED), state(attributes, events, apps)) is expected


def test_all_and_any_of_one() -> None:
    yes, no = {"used_app": "a"}, {"used_app": "b"}
    s = state(apps=frozenset({"a"}))
    assert matches(parse_filter({"all": [yes]}), s)
    assert not matches(parse_filter({"all": [yes, no]}), s)
    assert matches(parse_filter({"any": [no, yes]}), s)
    assert not matches(parse_filter({"any": [no]}), s)


def deep_not(depth: int) -> dict[str, Any]:
    """A chain of `depth` nodes: nots around one condition."""
    node: dict[str, Any] = {"used_app": "a"}
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def test_deepest_allowed_nesting() -> None:
    f = parse_filter(deep_not(MAX_DEPTH))
    # MAX_DEPTH - 1 nots: even keeps, odd inverts.
    assert matches(f, state(apps=frozenset({"a"}))) is ((MAX_DEPTH - 1) % 2 == 0)
    nested: dict[str, Any] = {"used_app": "a"}
    for i in range(MAX_DEPTH - 1):
        nested = {"all": [nested]} if i % 2 else {"any": [{"used_app": "z"}, nested]}
    assert matches(parse_filter(nested), state(apps=frozenset({"a"})))
    assert not matches(parse_filter(nested), state())


def test_most_nodes_allowed() -> None:
    f = parse_filter({"any": [{"used_app": str(i)} for i in range(MAX_NODES - 1)]})
    assert matches(f, state(apps=frozenset({str(MAX_NODES - 2)})))


# --- referenced ----------------------------------------------------------------------------


def test_referenced() -> None:
    assert referenced(parse_filter(NESTED)) == Dependencies(
        attributes=frozenset({"country", "tags"}),
        events=frozenset({"purchased"}),
        uses_apps=True,
    )
    assert referenced(parse_filter(attr("exists"))) == Dependencies(
        frozenset({"x"}), frozenset(), False
    )
    assert referenced(parse_filter({"event": "e", "op": "eq", "count": 0})) == Dependencies(
        frozenset(), frozenset({"e"}), False
    )


# --- errors --------------------------------------------------------------------------------

ERROR_CASES: list[tuple[object, str]] = [
    (
        {
            "all": [
                {"used_app": "a"},
                {"used_app": "b"},
                {"attribute": "x", "op": "gt=", "value": 1},
            ]
        },
        'filter.all[2].op: unknown operator "gt="',
    ),
    (None, "filter: must be an object, not null"),
    ([], "filter: must be an object, not an empty array"),
    ({"all": ["x"]}, "filter.all[0]: must be an object, not a string"),
    (
        {},
        'filter: needs one of the keys "all", "any", "not", "attribute", "used_app" or "event"',
    ),
    ({"all": [], "any": []}, 'filter: "all" and "any" cannot be in the same node'),
    (
        {"not": {"attribute": "x", "event": "e", "used_app": "a"}},
        'filter.not: "attribute", "used_app" and "event" cannot be in the same node',
    ),
    ({"all": []}, "filter.all: must be a non-empty array"),
    ({"any": {"used_app": "a"}}, "filter.any: must be a non-empty array, not an object"),
    ({"all": [{"used_app": "a"}], "extra": 1}, 'filter: unknown key "extra"'),
    (
        {"attribute": "x", "op": "eq", "value": 1, "vlaue": 1, "count": 2},
        'filter: unknown keys "vlaue", "count"',
    ),
    ({"not": {"used_app": "a", "op": "eq"}}, 'filter.not: unknown key "op"'),
    (
        {"any": [{"attribute": "x", "op": "eq", "vlaue": 1}]},
        'filter.any[0]: unknown key "vlaue"',
    ),
    ({"used_app": "a", "bad\nkey": 1}, 'filter: unknown key "bad\\nkey"'),
    ({"attribute": "", "op": "exists"}, "filter.attribute: must be a non-empty string"),
    (
        {"attribute": 3, "op": "exists"},
        "filter.attribute: must be a non-empty string, not a number",
    ),
    (
        {"attribute": " \n", "op": "exists"},
        "filter.attribute: the name is empty once whitespace and newlines are removed",
    ),
    ({"attribute": "$x", "op": "exists"}, "filter.attribute: the name must not start with '$'"),
    ({"attribute": "x"}, "filter.op: is required"),
    ({"attribute": "x", "op": None}, "filter.op: must be a string, not null"),
    ({"attribute": "x", "op": "GT", "value": 1}, 'filter.op: unknown operator "GT"'),
    ({"attribute": "x", "op": "eq"}, 'filter.value: is required for "eq"'),
    ({"any": [{"attribute": "x", "op": "gt"}]}, 'filter.any[0].value: is required for "gt"'),
    ({"not": attr("exists", True)}, 'filter.not.value: must be left out for "exists"'),
    (attr("not_exists", None), 'filter.value: must be left out for "not_exists"'),
    (attr("in", "US"), 'filter.value: must be a non-empty array for "in", not a string'),
    (attr("in", []), 'filter.value: must be a non-empty array for "in"'),
    (
        attr("in", ["a", None]),
        'filter.value[1]: must not be null for "in" (use "exists" or "not_exists")',
    ),
    (attr("eq", None), 'filter.value: must not be null for "eq" (use "exists" or "not_exists")'),
    (attr("ne", {"a": [1, math.inf]}), "filter.value.a[1]: must be a finite number"),
    (attr("eq", {"a b": math.nan}), 'filter.value["a b"]: must be a finite number'),
    (attr("eq", {1: "a"}), "filter.value: object keys must be strings, not a number"),
    (attr("eq", ("a",)), "filter.value: must be a JSON value, not tuple"),
    (
        attr("gt", True),
        'filter.value: must be a number or an ISO 8601 date or datetime string for "gt",'
        " not a boolean",
    ),
    (
        attr("lte", [1]),
        'filter.value: must be a number or an ISO 8601 date or datetime string for "lte",'
        " not an array",
    ),
    (attr("gte", math.nan), "filter.value: must be a finite number"),
    (attr("gt", "yesterday"), 'filter.value: "yesterday" is not an ISO 8601 date or datetime'),
    (
        attr("lt", "2024-02-30"),
        'filter.value: "2024-02-30" is not a valid date or time (day is out of range for month)',
    ),
    (
        attr("gt", "2024-01-01T10:00:00+24:00"),
        'filter.value: "2024-01-01T10:00:00+24:00" has an offset out of range',
    ),
    (
        attr("gt", "1500-01-01"),
        'filter.value: "1500-01-01" is not a valid date or time'
        " (must be between 1800 and 8999 (years))",
    ),
    (attr("contains", 1), 'filter.value: must be a string for "contains", not a number'),
    (attr("starts_with", None), 'filter.value: must be a string for "starts_with", not null'),
    (
        attr("includes", ["vip"]),
        'filter.value: must be a string, number, boolean or null for "includes", not an array',
    ),
    ({"used_app": ""}, "filter.used_app: must be a non-empty string"),
    ({"used_app": 7}, "filter.used_app: must be a non-empty string, not a number"),
    ({"event": "", "op": "eq", "count": 1}, "filter.event: must be a non-empty string"),
    (
        {"event": ["e"], "op": "eq", "count": 1},
        "filter.event: must be a non-empty string, not an array",
    ),
    ({"event": "e", "count": 1}, "filter.op: is required"),
    (
        {"event": "e", "op": "gt", "count": 1},
        'filter.op: "gt" does not apply to an event count; use "gte", "lte" or "eq"',
    ),
    ({"event": "e", "op": ">=", "count": 1}, 'filter.op: unknown operator ">="'),
    ({"event": "e", "op": "gte"}, "filter.count: is required"),
    (
        {"event": "e", "op": "gte", "count": -1},
        "filter.count: must be a non-negative integer, not -1",
    ),
    (
        {"event": "e", "op": "gte", "count": True},
        "filter.count: must be a non-negative integer, not a boolean",
    ),
    (
        {"event": "e", "op": "gte", "count": 2.0},
        "filter.count: must be a non-negative integer, not 2.0",
    ),
    (
        {"event": "e", "op": "gte", "count": "2"},
        "filter.count: must be a non-negative integer, not a string",
    ),
    (
        {"event": "e", "op": "gte", "count": 1, "value": 1},
        'filter: unknown key "value"',
    ),
    (
        deep_not(MAX_DEPTH + 1),
        "filter" + ".not" * MAX_DEPTH + ": filters nest more than 32 levels deep",
    ),
    (
        {"any": [{"used_app": str(i)} for i in range(MAX_NODES + 5)]},
        f"filter.any[{MAX_NODES - 1}]: the filter has more than {MAX_NODES} nodes",
    ),
    (
        {"all": [attr("eq", 1), {"not": {"any": [{"event": "e", "op": "lte", "count": 1.5}]}}]},
        "filter.all[1].not.any[0].count: must be a non-negative integer, not 1.5",
    ),
    (
        {"attribute": "x" * 100, "op": "x" * 100},
        f'filter.op: unknown operator "{"x" * 64}..."',
    ),
]


@pytest.mark.parametrize(("raw", "message"), ERROR_CASES)
def test_bad_filter_message(raw: object, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(raw)
    assert str(caught.value) == message
    assert len(str(caught.value).splitlines()) == 1
    assert isinstance(caught.value, ValueError)


def test_deep_values_are_refused() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(FilterError, match=r"^filter\.value(\[0\]){33}: values nest more than 32"):
        parse_filter(attr("eq", value))


# --- the canonical JSON --------------------------------------------------------------------


def test_canonical_json() -> None:
    raw = {
        "not": {
            "any": [
                {"attribute": "x", "op": "exists"},
                {"attribute": "y", "op": "eq", "value": {"a": [1, None]}},
                {"attribute": "z", "op": "gte", "value": "2024-01-01"},
                {"event": "e", "op": "eq", "count": 0},
                {"used_app": "app"},
            ]
        }
    }
    assert filter_to_json(parse_filter(raw)) == raw
    assert parse_filter(raw) == Not(
        Any_(
            (
                AttributeCondition("x", "exists", None),
                AttributeCondition("y", "eq", {"a": (1, None)}),
                AttributeCondition("z", "gte", "2024-01-01"),
                EventCount("e", "eq", 0),
                UsedApp("app"),
            )
        )
    )


def test_the_tree_follows_json_equality_and_is_immutable() -> None:
    one, true = parse_filter(attr("eq", 1)), parse_filter(attr("eq", True))
    assert one != true
    assert one == parse_filter(attr("eq", 1.0))
    assert hash(one) == hash(parse_filter(attr("eq", 1.0)))
    raw = attr("eq", {"list": [1]})
    f = parse_filter(raw)
    raw["value"]["list"].append(2)  # the caller's JSON is copied, not kept
    assert filter_to_json(f) == attr("eq", {"list": [1]})
    out = filter_to_json(f)
    assert isinstance(out, dict)
    out["value"]["list"].append(3)  # nor is the tree's handed out
    assert filter_to_json(f) == attr("eq", {"list": [1]})
    with pytest.raises(AttributeError):
        f.op = "ne"  # type: ignore[misc, union-attr]


# --- properties ----------------------------------------------------------------------------

NAMES = ["a", "b", "c"]
EVENTS = ["e1", "e2"]
APPS = ["app1", "app2"]

finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.integers(-5, 5) | st.sampled_from([0.5, -2.5, 1.0, 3.0]) | finite
texts = st.sampled_from(["", "a", "ab", "b", "ba", "A"]) | st.text(max_size=5)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("pq"), inner),
    max_leaves=6,
)
non_null = json_values.filter(lambda v: v is not None)


@st.composite
def date_strings(draw: st.DrawFn) -> str:
    moment = draw(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(1990, 1, 3))  # noqa: DTZ001
    )
    form = draw(st.sampled_from(["date", "naive", "z", "offset"]))
    if form == "date":
        return moment.date().isoformat()
    if form == "naive":
        return moment.isoformat()
    if form == "z":
        return moment.isoformat() + "Z"
    minutes = draw(st.sampled_from([-300, -90, 0, 330, 345, 600]))
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()


orderable = numbers | date_strings()


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    name = st.sampled_from(NAMES)

    def with_value(op: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(lambda n, v: {"attribute": n, "op": op, "value": v}, name, values)

    return st.one_of(
        with_value("eq", non_null),
        with_value("ne", non_null),
        with_value("in", st.lists(non_null, min_size=1, max_size=3)),
        st.builds(
            lambda n, op: {"attribute": n, "op": op},
            name,
            st.sampled_from(["exists", "not_exists"]),
        ),
        *(with_value(op, orderable) for op in ("gt", "gte", "lt", "lte")),
        with_value("contains", texts),
        with_value("starts_with", texts),
        with_value("includes", scalars),
        st.builds(lambda app: {"used_app": app}, st.sampled_from(APPS)),
        st.builds(
            lambda e, op, n: {"event": e, "op": op, "count": n},
            st.sampled_from(EVENTS),
            st.sampled_from(["gte", "lte", "eq"]),
            st.integers(0, 3),
        ),
    )


filters_json = st.recursive(
    conditions(),
    lambda inner: (
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda item: {"not": item}, inner)
    ),
    max_leaves=8,
)

attribute_values = json_values | date_strings() | st.lists(scalars, max_size=3)
states = st.builds(
    UserState,
    st.dictionaries(st.sampled_from(NAMES), attribute_values),
    st.dictionaries(st.sampled_from(EVENTS), st.integers(0, 4)),
    st.frozensets(st.sampled_from(APPS)),
)


@settings(max_examples=300)
@given(filters_json)
def test_round_trip(raw: dict[str, Any]) -> None:
    f = parse_filter(raw)
    canonical = filter_to_json(f)
    assert parse_filter(canonical) == f
    assert parse_filter(json.loads(json.dumps(canonical))) == f
    assert filter_to_json(parse_filter(canonical)) == canonical


@settings(max_examples=300)
@given(filters_json, states)
def test_not_inverts(raw: dict[str, Any], user: UserState) -> None:
    assert matches(parse_filter({"not": raw}), user) is not matches(parse_filter(raw), user)


# An independent reading of docs/segments.md, to check `matches` against.


def same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def instant(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def oracle(raw: dict[str, Any], user: UserState) -> bool:
    if "all" in raw:
        return all(oracle(item, user) for item in raw["all"])
    if "any" in raw:
        return any(oracle(item, user) for item in raw["any"])
    if "not" in raw:
        return not oracle(raw["not"], user)
    if "used_app" in raw:
        return bool(raw["used_app"] in user.used_apps)
    if "event" in raw:
        n, count = user.event_counts.get(raw["event"], 0), int(raw["count"])
        return {"gte": n >= count, "lte": n <= count, "eq": n == count}[raw["op"]]
    op: str = raw["op"]
    value: Any = raw.get("value")
    have: Any = user.attributes.get(raw["attribute"])
    if have is None:  # missing, or null (which /users/track turns into a removal)
        return op == "not_exists"
    if op in ("exists", "not_exists"):
        return op == "exists"
    if op in ("eq", "ne", "in"):
        options = value if op == "in" else [value]
        found = any(same(have, option) for option in options)
        return found if op != "ne" else not found
    if op in ("gt", "gte", "lt", "lte"):
        left: Any = instant(have) if isinstance(value, str) else have
        right: Any = instant(value) if isinstance(value, str) else value
        if left is None or isinstance(left, bool | str | list | dict):
            return False
        outcomes = {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }
        return bool(outcomes[op])
    if op == "includes":
        return isinstance(have, list) and any(same(item, value) for item in have)
    if not isinstance(have, str):
        return False
    return value in have if op == "contains" else have.startswith(value)


@settings(max_examples=500)
@given(filters_json, states)
def test_matches_the_oracle(raw: dict[str, Any], user: UserState) -> None:
    assert matches(parse_filter(raw), user) is oracle(raw, user)


@given(filters_json)
def test_referenced_names_every_leaf(raw: dict[str, Any]) -> None:
    text = json.dumps(raw)
    found = referenced(parse_filter(raw))
    assert found.uses_apps is ('"used_app"' in text)
    for name in NAMES:
        assert (name in found.attributes) is (f'"attribute": "{name}"' in text)
    for event in EVENTS:
        assert (event in found.events) is (f'"event": "{event}"' in text)


def test_public_names() -> None:
    f: Filter = All((Any_((UsedApp("a"),)),))
    assert matches(f, state(apps=frozenset({"a"})))


# --- docs/segments.md ----------------------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "segments.md").read_text()


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)


def test_every_example_in_the_docs_parses() -> None:
    examples = [json.loads(block) for block in doc_blocks("json")]
    assert len(examples) >= 20
    seen = {json.dumps(example) for example in examples}
    for op in ATTRIBUTE_OPS:
        assert any(f'"op": "{op}"' in text for text in seen), f"no example of {op}"
    for example in examples:
        assert filter_to_json(parse_filter(example)) == example  # examples are canonical


def test_every_error_in_the_docs_is_one_the_parser_gives() -> None:
    (block,) = doc_blocks("text")
    messages = {message for _, message in ERROR_CASES}
    lines = [line for line in block.splitlines() if " ... " not in line]
    assert len(lines) >= 10
    for line in lines:
        assert line in messages


def test_the_docs_end_with_the_endpoints_pointer() -> None:
    assert DOC.endswith("## Segment endpoints\n\nSee docs/api.md.\n")
