from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventtally.domain.instants import MAX_INSTANT, MIN_INSTANT, from_us, to_us
from eventtally.domain.names import clean_text, name_problem, normalize_name
from eventtally.domain.timeparse import TimeParseError, parse_instant
from eventtally.domain.track import (
    IDENTIFIER_REQUIRED,
    INVALID_CURRENCY,
    INVALID_EMAIL,
    INVALID_PRICE,
    INVALID_QUANTITY,
    INVALID_TIME,
    ArrayName,
    AttributeItem,
    EventItem,
    Identity,
    ItemError,
    PurchaseItem,
    TrackRequest,
    parse_track,
)
from eventtally.errors import BadRequest

NOW = to_us(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
TIME = "2024-05-01T12:00:00Z"
TIME_US = to_us(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
DROP = object()  # a field value meaning "leave the field out"

EMPTY_NAME = "the name is empty once whitespace and newlines are removed"
DOLLAR_NAME = "the name must not start with '$'"


def required(field: str) -> str:
    return f"The property '#/' did not contain a required property of '{field}'"


def _with(base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **fields}
    return {key: value for key, value in merged.items() if value is not DROP}


def event(**fields: Any) -> dict[str, Any]:
    return _with({"external_id": "u1", "name": "played", "time": TIME}, fields)


def purchase(**fields: Any) -> dict[str, Any]:
    base = {"external_id": "u1", "product_id": "p1", "currency": "USD", "price": 9.5}
    return _with({**base, "time": TIME}, fields)


def attributes(**fields: Any) -> dict[str, Any]:
    return _with({"external_id": "u1"}, fields)


def parse(array: ArrayName, *items: object) -> TrackRequest:
    return parse_track({array: list(items)}, NOW)


def refusal(array: ArrayName, item: object) -> str:
    """The error type of a single refused item."""
    parsed = parse(array, item)
    assert (parsed.attributes, parsed.events, parsed.purchases) == ([], [], [])
    assert len(parsed.errors) == 1
    error = parsed.errors[0]
    assert (error.input_array, error.index) == (array, 0)
    return error.type


def one_event(**fields: Any) -> EventItem:
    parsed = parse("events", event(**fields))
    assert parsed.errors == []
    (item,) = parsed.events
    return item


def one_purchase(**fields: Any) -> PurchaseItem:
    parsed = parse("purchases", purchase(**fields))
    assert parsed.errors == []
    (item,) = parsed.purchases
    return item


def one_attributes(**fields: Any) -> AttributeItem:
    parsed = parse("attributes", attributes(**fields))
    assert parsed.errors == []
    (item,) = parsed.attributes
    return item


# --- the body ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "events", None, 3, [{"events": []}]])
def test_body_must_be_an_object(body: object) -> None:
    with pytest.raises(BadRequest, match="JSON object") as caught:
        parse_track(body, NOW)
    assert caught.value.status == 400


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
@pytest.mark.parametrize("value", [{}, "x", 1, True, {"0": {}}])
def test_array_must_be_a_list(array: str, value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_track({array: value}, NOW)
    assert caught.value.message == f"'{array}' must be an array"


@pytest.mark.parametrize(
    ("array", "item"),
    [("attributes", attributes()), ("events", event()), ("purchases", purchase())],
)
def test_75_items_per_array_are_accepted(array: ArrayName, item: dict[str, Any]) -> None:
    parsed = parse_track({array: [item] * 75}, NOW)
    accepted: list[Any] = getattr(parsed, array)
    assert len(accepted) == 75
    assert [a.index for a in accepted] == list(range(75))
    assert parsed.errors == []


@pytest.mark.parametrize(
    ("array", "item"),
    [("attributes", attributes()), ("events", event()), ("purchases", purchase())],
)
def test_76_items_refuse_the_request(array: ArrayName, item: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_track({"events": [event()], array: [item] * 76}, NOW)
    message = caught.value.message
    assert message.startswith("Max Input Length Exceeded")
    assert f"'{array}'" in message
    assert "75" in message


def test_limit_is_per_array() -> None:
    body = {"attributes": [attributes()] * 75, "events": [event()] * 75}
    body["purchases"] = [purchase()] * 75
    parsed = parse_track(body, NOW)
    assert (len(parsed.attributes), len(parsed.events), len(parsed.purchases)) == (75, 75, 75)


def test_a_fatal_array_error_wins_over_item_errors() -> None:
    with pytest.raises(BadRequest, match="'purchases' must be an array"):
        parse_track({"events": [{}], "purchases": "no"}, NOW)


@pytest.mark.parametrize(
    ("body", "present"),
    [
        ({}, set()),
        ({"events": [event()]}, {"events"}),
        ({"events": []}, {"events"}),
        ({"events": None, "purchases": []}, {"purchases"}),
        ({"attributes": [], "events": [], "purchases": []}, {"attributes", "events", "purchases"}),
        ({"partner": "RudderStack", "api_key": "x", "attributes": []}, {"attributes"}),
    ],
)
def test_present_names_the_arrays_sent(body: dict[str, Any], present: set[str]) -> None:
    parsed = parse_track(body, NOW)
    assert parsed.present == frozenset(present)


def test_unknown_top_level_keys_are_ignored() -> None:
    parsed = parse_track({"partner": "RudderStack", "events": [event()]}, NOW)
    assert [e.name for e in parsed.events] == ["played"]
    assert parsed.errors == []


def test_items_keep_their_order_and_refused_ones_leave_gaps() -> None:
    items = [event(name="a"), event(name=""), event(name="c"), "junk", event(name="e")]
    parsed = parse("events", *items)
    assert [(e.index, e.name) for e in parsed.events] == [(0, "a"), (2, "c"), (4, "e")]
    assert parsed.errors == [
        ItemError(f"'name' is not valid: {EMPTY_NAME}", "events", 1),
        ItemError("the item must be a JSON object", "events", 3),
    ]


def test_errors_are_listed_attributes_then_events_then_purchases() -> None:
    body: dict[str, Any] = {"purchases": [{}], "events": [{}], "attributes": [{}]}
    parsed = parse_track(body, NOW)
    assert [(e.input_array, e.index) for e in parsed.errors] == [
        ("attributes", 0),
        ("events", 0),
        ("purchases", 0),
    ]


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
@pytest.mark.parametrize("item", [None, "x", 3, [], [{"external_id": "u1"}], True])
def test_an_item_must_be_an_object(array: ArrayName, item: object) -> None:
    assert refusal(array, item) == "the item must be a JSON object"


# --- identity ----------------------------------------------------------------------------


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
def test_an_identifier_is_required(array: ArrayName) -> None:
    item = {"attributes": attributes, "events": event, "purchases": purchase}[array](
        external_id=DROP
    )
    assert refusal(array, item) == IDENTIFIER_REQUIRED


def test_identifier_required_sentence_is_brazes() -> None:
    assert IDENTIFIER_REQUIRED == (
        "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
    )


def test_null_identifiers_count_as_absent() -> None:
    item = event(external_id=None, user_alias=None, braze_id=None, email=None, phone=None)
    assert refusal("events", item) == IDENTIFIER_REQUIRED


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"external_id": "u-1"}, Identity("external_id", "u-1")),
        ({"external_id": "x" * 511}, Identity("external_id", "x" * 511)),
        ({"external_id": " spaced "}, Identity("external_id", " spaced ")),
        (
            {"external_id": DROP, "user_alias": {"alias_name": "n", "alias_label": "l"}},
            Identity("user_alias", "l\x00n"),
        ),
        ({"external_id": DROP, "braze_id": "abc123"}, Identity("braze_id", "abc123")),
        ({"external_id": DROP, "email": " Ann@Example.COM "}, Identity("email", "ann@example.com")),
        (
            {"external_id": DROP, "email": "a.b+c@sub.example.co"},
            Identity("email", "a.b+c@sub.example.co"),
        ),
        ({"external_id": DROP, "phone": "+15555550100"}, Identity("phone", "+15555550100")),
        # The first identifier present decides.
        (
            {"external_id": "u1", "user_alias": {"alias_name": "n", "alias_label": "l"}},
            Identity("external_id", "u1"),
        ),
        (
            {"external_id": None, "user_alias": {"alias_name": "n", "alias_label": "l"}},
            Identity("user_alias", "l\x00n"),
        ),
        ({"external_id": DROP, "braze_id": "b", "email": "a@b.co"}, Identity("braze_id", "b")),
        ({"external_id": DROP, "email": "a@b.co", "phone": "+1"}, Identity("email", "a@b.co")),
        ({"external_id": DROP, "email": None, "phone": "+1"}, Identity("phone", "+1")),
    ],
)
def test_identity(fields: dict[str, Any], expected: Identity) -> None:
    assert one_event(**fields).identity == expected


NON_EMPTY = "must be a non-empty string"


def alias(**fields: object) -> dict[str, Any]:
    return {"external_id": DROP, "user_alias": fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"external_id": ""}, f"'external_id' {NON_EMPTY}"),
        ({"external_id": 42}, f"'external_id' {NON_EMPTY}"),
        ({"external_id": ["u1"]}, f"'external_id' {NON_EMPTY}"),
        ({"external_id": "x" * 512}, "'external_id' must be shorter than 512 characters"),
        (
            {"external_id": DROP, "user_alias": "l:n"},
            "'user_alias' must be an object with 'alias_name' and 'alias_label'",
        ),
        (alias(alias_name="n"), f"'user_alias.alias_label' {NON_EMPTY}"),
        (alias(alias_label="l"), f"'user_alias.alias_name' {NON_EMPTY}"),
        (alias(alias_name="", alias_label="l"), f"'user_alias.alias_name' {NON_EMPTY}"),
        (alias(alias_name="n", alias_label=5), f"'user_alias.alias_label' {NON_EMPTY}"),
        (
            alias(alias_name="n", alias_label="a\x00b"),
            "'user_alias.alias_label' must not contain a NUL character",
        ),
        ({"external_id": DROP, "braze_id": ""}, f"'braze_id' {NON_EMPTY}"),
        ({"external_id": DROP, "braze_id": 7}, f"'braze_id' {NON_EMPTY}"),
        ({"external_id": DROP, "phone": ""}, f"'phone' {NON_EMPTY}"),
        ({"external_id": DROP, "phone": 15555550100}, f"'phone' {NON_EMPTY}"),
        # A bad first identifier is not rescued by a later good one.
        ({"external_id": "", "braze_id": "b"}, f"'external_id' {NON_EMPTY}"),
    ],
)
def test_bad_identifier(fields: dict[str, Any], expected: str) -> None:
    assert refusal("events", event(**fields)) == expected


@pytest.mark.parametrize(
    "email",
    ["nope", "a@b", "a@b.", "a@.b", "@b.co", "a b@c.co", "a@b@c.co", "a@b..co", "", 5, [], {}],
)
def test_bad_email_identifier(email: object) -> None:
    assert refusal("events", event(external_id=DROP, email=email)) == INVALID_EMAIL


def test_email_sentence_is_brazes() -> None:
    assert INVALID_EMAIL == "The value provided for the 'email' field is not a valid email."


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, False),
        ({"external_id": DROP, "braze_id": "b"}, False),
        ({"external_id": DROP, "email": "a@b.co"}, False),
        ({"external_id": DROP, "phone": "+1"}, False),
        ({"external_id": DROP, "user_alias": {"alias_name": "n", "alias_label": "l"}}, True),
        (
            {
                "external_id": DROP,
                "user_alias": {"alias_name": "n", "alias_label": "l"},
                "_update_existing_only": False,
            },
            False,
        ),
        (
            {
                "external_id": DROP,
                "user_alias": {"alias_name": "n", "alias_label": "l"},
                "_update_existing_only": None,
            },
            True,
        ),
        ({"_update_existing_only": True}, True),
        ({"_update_existing_only": False}, False),
        ({"_update_existing_only": None}, False),
    ],
)
def test_update_existing_only(fields: dict[str, Any], expected: bool) -> None:
    assert one_event(**fields).update_existing_only is expected
    assert one_purchase(**fields).update_existing_only is expected
    assert one_attributes(**fields).update_existing_only is expected


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
@pytest.mark.parametrize("flag", ["true", 1, 0, [], {}])
def test_update_existing_only_must_be_a_bool(array: ArrayName, flag: object) -> None:
    item = {"attributes": attributes, "events": event, "purchases": purchase}[array](
        _update_existing_only=flag
    )
    assert refusal(array, item) == "'_update_existing_only' must be true or false"


# --- events ------------------------------------------------------------------------------


def test_event_fields() -> None:
    item = one_event(app_id="app-1", properties={"k": "v"})
    assert item == EventItem(
        index=0,
        identity=Identity("external_id", "u1"),
        update_existing_only=False,
        name="played",
        time=TIME_US,
        app_id="app-1",
        properties={"k": "v"},
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  Added to cart \n", "Added to cart"),
        ("multi\r\nline", "multiline"),
        ("x" * 255, "x" * 255),
        ("x" * 256, "x" * 255),
        ("é" * 300, "é" * 255),
        ("bad\udc80utf8", "badutf8"),
        ("a$", "a$"),
    ],
)
def test_event_name_is_normalised(name: str, expected: str) -> None:
    assert one_event(name=name).name == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (DROP, required("name")),
        (None, required("name")),
        (5, "'name' must be a string"),
        (["played"], "'name' must be a string"),
        ("", f"'name' is not valid: {EMPTY_NAME}"),
        (" \r\n\t", f"'name' is not valid: {EMPTY_NAME}"),
        ("$played", f"'name' is not valid: {DOLLAR_NAME}"),
        ("  $played", f"'name' is not valid: {DOLLAR_NAME}"),
        ("\n$played", f"'name' is not valid: {DOLLAR_NAME}"),
    ],
)
def test_bad_event_name(name: object, expected: str) -> None:
    assert refusal("events", event(name=name)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123Z", datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00.1234567Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00+00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.5+00:00", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T07:00:00-0500", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00:250Z", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 12:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        # No offset means UTC for event times (contract 8.21).
        ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("1800-01-01T00:00:00Z", datetime(1800, 1, 1, tzinfo=UTC)),
    ],
)
def test_event_time(text: str, expected: datetime) -> None:
    assert one_event(time=text).time == to_us(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TIME, TIME_US),
        ("2024-06-01T12:00:00Z", NOW),
        ("2024-06-01T11:59:59.999999Z", NOW - 1),
        ("2024-06-01T12:00:00.000001Z", NOW),
        ("2030-01-01T00:00:00Z", NOW),
        ("8999-12-31T23:59:59Z", NOW),
        ("2024-06-01T13:00:00+02:00", NOW - 3_600_000_000),
    ],
)
def test_future_times_are_clamped_to_now(text: str, expected: int) -> None:
    assert one_event(time=text).time == expected
    assert one_purchase(time=text).time == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00+24:00",
        "1799-12-31T23:59:59Z",
        "9000-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2024-W18-3T12:00:00Z",
        "20240501T120000Z",
        "1714564800",
    ],
)
def test_bad_time(text: str) -> None:
    cases: list[tuple[ArrayName, dict[str, Any]]] = [
        ("events", event(time=text)),
        ("purchases", purchase(time=text)),
    ]
    for array, item in cases:
        message = refusal(array, item)
        assert message.startswith(f"{INVALID_TIME}: the value ")
        with pytest.raises(TimeParseError) as caught:
            parse_instant(text, None)
        assert message == f"{INVALID_TIME}: the value {caught.value}"


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (DROP, required("time")),
        (None, required("time")),
        (1714564800, f"{INVALID_TIME}: it must be a string"),
        (["2024-05-01"], f"{INVALID_TIME}: it must be a string"),
    ],
)
def test_time_is_a_required_string(time: object, expected: str) -> None:
    assert refusal("events", event(time=time)) == expected
    assert refusal("purchases", purchase(time=time)) == expected


def test_time_sentence() -> None:
    assert INVALID_TIME == "'time' is not a valid ISO 8601 datetime"


@st.composite
def common_times(draw: st.DrawFn) -> str:
    lowest = to_us(datetime(1799, 12, 31, tzinfo=UTC))
    highest = to_us(datetime(9000, 1, 1, 23, tzinfo=UTC))
    moment = from_us(draw(st.integers(lowest, highest)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = draw(st.sampled_from(["", ".%03d", ".%06d", ".%d"]))
    if fraction:
        text += fraction % draw(st.integers(0, 999_999) if "6" in fraction else st.integers(0, 999))
    return text + draw(st.sampled_from(["Z", "+00:00", "z", "", "+01:00", "-00:00"]))


@given(
    st.one_of(
        common_times(),
        st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z", fullmatch=True),
    )
)
def test_event_time_agrees_with_parse_instant(text: str) -> None:
    """Whatever path reads a time, the result is `parse_instant`'s."""
    far_future = to_us(datetime(9999, 1, 1, tzinfo=UTC))
    parsed = parse_track({"events": [event(time=text)]}, far_future)
    try:
        expected = to_us(parse_instant(text, None))
    except TimeParseError:
        assert [e.type.startswith(INVALID_TIME) for e in parsed.errors] == [True]
    else:
        assert [e.time for e in parsed.events] == [expected]


@pytest.mark.parametrize(("app_id", "expected"), [(DROP, None), (None, None), ("app-1", "app-1")])
def test_app_id(app_id: object, expected: str | None) -> None:
    assert one_event(app_id=app_id).app_id == expected
    assert one_purchase(app_id=app_id).app_id == expected


@pytest.mark.parametrize("app_id", [5, True, ["a"], {"id": "a"}])
def test_app_id_must_be_a_string(app_id: object) -> None:
    assert refusal("events", event(app_id=app_id)) == "'app_id' must be a string"
    assert refusal("purchases", purchase(app_id=app_id)) == "'app_id' must be a string"


def test_unknown_event_fields_are_ignored() -> None:
    assert one_event(extra=1, user_id="x").name == "played"


# --- properties --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (DROP, {}),
        (None, {}),
        ({}, {}),
        (
            {"n": 1, "f": 1.5, "t": True, "no": None, "s": "x", "l": [1, "a"], "o": {"a": [1]}},
            {"n": 1, "f": 1.5, "t": True, "no": None, "s": "x", "l": [1, "a"], "o": {"a": [1]}},
        ),
        ({" key \n": 1}, {"key": 1}),
        ({"k" * 300: 1}, {"k" * 255: 1}),
        ({"s": "v" * 255}, {"s": "v" * 255}),
        ({"s": "v" * 256}, {"s": "v" * 255}),
        ({"s": "ü" * 400}, {"s": "ü" * 255}),
        ({"s": "  kept \n"}, {"s": "  kept \n"}),
        ({"s": "bad\ud800"}, {"s": "bad"}),
        # Nested values are kept as they are, long strings included.
        ({"l": ["v" * 300]}, {"l": ["v" * 300]}),
        # Keys that normalise alike are one key; the last value wins, as in JSON.
        ({"a": 1, " a": 2}, {"a": 2}),
        # `product_id` and friends are reserved on purchases only.
        (
            {"product_id": "p", "price": 1, "quantity": 2, "currency": "EUR"},
            {"product_id": "p", "price": 1, "quantity": 2, "currency": "EUR"},
        ),
    ],
)
def test_event_properties(properties: object, expected: dict[str, Any]) -> None:
    assert one_event(properties=properties).properties == expected


def test_nested_property_values_are_not_copied() -> None:
    nested = {"a": [1, {"b": 2}]}
    listed = [1, 2]
    item = one_event(properties={"o": nested, "l": listed})
    assert item.properties["o"] is nested
    assert item.properties["l"] is listed


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ([], "'properties' must be an object"),
        ("k=v", "'properties' must be an object"),
        (3, "'properties' must be an object"),
        ({"": 1}, f"property key '' is not valid: {EMPTY_NAME}"),
        ({" \n": 1}, f"property key '' is not valid: {EMPTY_NAME}"),
        ({"$k": 1}, f"property key '$k' is not valid: {DOLLAR_NAME}"),
        ({" $k": 1}, f"property key '$k' is not valid: {DOLLAR_NAME}"),
        ({"time": 1}, "property key 'time' is reserved"),
        ({"event_name": "x"}, "property key 'event_name' is reserved"),
        ({" time\n": 1}, "property key 'time' is reserved"),
        ({"ok": 1, "time": 1}, "property key 'time' is reserved"),
        ({"k": {1, 2}}, "property 'k' is not a JSON value"),
        ({"k": b"bytes"}, "property 'k' is not a JSON value"),
        ({"k": ["\ud800"]}, "'properties' holds a value that cannot be encoded as JSON"),
        ({1: "v"}, "property keys must be strings"),
    ],
)
def test_bad_event_properties(properties: object, expected: str) -> None:
    assert refusal("events", event(properties=properties)) == expected


@pytest.mark.parametrize(
    "key", ["time", "event_name", "product_id", "quantity", "price", "currency"]
)
def test_purchase_reserved_property_keys(key: str) -> None:
    message = refusal("purchases", purchase(properties={key: 1}))
    assert message == f"property key '{key}' is reserved"


def test_purchase_properties_follow_event_rules() -> None:
    item = one_purchase(properties={" k ": "v" * 300, "l": [1]})
    assert item.properties == {"k": "v" * 255, "l": [1]}
    message = refusal("purchases", purchase(properties={"$k": 1}))
    assert message == f"property key '$k' is not valid: {DOLLAR_NAME}"


def test_256_distinct_property_keys_are_kept() -> None:
    properties = {f"k{i}": i for i in range(256)}
    assert one_event(properties=properties).properties == properties


def test_property_keys_past_256_are_silently_dropped() -> None:
    properties = {f"k{i}": i for i in range(300)}
    kept = one_event(properties=properties).properties
    assert list(kept) == [f"k{i}" for i in range(256)]


def test_dropped_property_keys_are_not_checked() -> None:
    properties: dict[str, Any] = {f"k{i}": i for i in range(256)}
    properties["time"] = 1
    properties["$late"] = 2
    assert len(one_event(properties=properties).properties) == 256


def test_a_repeated_key_past_the_limit_still_updates() -> None:
    properties: dict[str, Any] = {f"k{i}": i for i in range(256)}
    properties[" k0"] = "last"
    kept = one_event(properties=properties).properties
    assert len(kept) == 256
    assert kept["k0"] == "last"


# Each list below encodes as `["xxx…"]`, that is its string length + 4 bytes of JSON.
@pytest.mark.parametrize(
    ("properties", "accepted"),
    [
        ({"l": ["x" * (102_400 - 4)]}, True),
        ({"l": ["x" * (102_400 - 3)]}, False),
        # The limit is on all nested values together, not on each.
        ({"a": ["x" * 60_000], "b": ["y" * (42_400 - 8)]}, True),
        ({"a": ["x" * 60_000], "b": ["y" * (42_400 - 7)]}, False),
        # `{"k":"…"}` is the string length + 8 bytes.
        ({"a": ["x" * 60_000], "o": {"k": "y" * (42_400 - 4 - 8)}}, True),
        ({"a": ["x" * 60_000], "o": {"k": "y" * (42_400 - 4 - 7)}}, False),
        # Top-level strings are cut to 255 and do not count towards the nested limit.
        ({"l": ["x" * (102_400 - 4)], "s": "z" * 200_000}, True),
    ],
)
def test_nested_properties_limit_is_100_kb(properties: dict[str, Any], accepted: bool) -> None:
    parsed = parse("events", event(properties=properties))
    if accepted:
        assert parsed.errors == []
        assert len(parsed.events) == 1
    else:
        assert parsed.events == []
        (error,) = parsed.errors
        assert error.type.startswith("nested 'properties' values take 102401 bytes of JSON")
        assert "102400 (100 KB)" in error.type


# --- purchases ---------------------------------------------------------------------------


def test_purchase_fields() -> None:
    item = one_purchase(quantity=3, app_id="app-1", properties={"k": 1})
    assert item == PurchaseItem(
        index=0,
        identity=Identity("external_id", "u1"),
        update_existing_only=False,
        product_id="p1",
        currency="USD",
        price=9.5,
        quantity=3,
        time=TIME_US,
        app_id="app-1",
        properties={"k": 1},
    )


@pytest.mark.parametrize(
    ("product_id", "expected"),
    [
        ("sku-1", "sku-1"),
        ("  sku\n1 ", "sku1"),
        ("p" * 255, "p" * 255),
        ("p" * 256, "p" * 255),
        ("$gift", "$gift"),
    ],
)
def test_product_id(product_id: str, expected: str) -> None:
    assert one_purchase(product_id=product_id).product_id == expected


@pytest.mark.parametrize(
    ("product_id", "expected"),
    [
        (DROP, required("product_id")),
        (None, required("product_id")),
        (12, "'product_id' must be a string"),
        ("", "'product_id' must not be empty"),
        (" \n ", "'product_id' must not be empty"),
    ],
)
def test_bad_product_id(product_id: object, expected: str) -> None:
    assert refusal("purchases", purchase(product_id=product_id)) == expected


@pytest.mark.parametrize(("currency", "expected"), [("USD", "USD"), ("eur", "EUR"), ("JpY", "JPY")])
def test_currency(currency: str, expected: str) -> None:
    assert one_purchase(currency=currency).currency == expected


@pytest.mark.parametrize(
    "currency", ["US", "USDT", "", "U$D", "U D", "840", 840, "ÄBC", ["USD"], True]
)
def test_bad_currency(currency: object) -> None:
    assert refusal("purchases", purchase(currency=currency)) == INVALID_CURRENCY


@pytest.mark.parametrize(
    ("price", "expected"), [(9.5, 9.5), (10, 10.0), (0, 0.0), (-3.25, -3.25), (10**20, 1e20)]
)
def test_price(price: float, expected: float) -> None:
    item = one_purchase(price=price)
    assert item.price == expected
    assert type(item.price) is float


@pytest.mark.parametrize(
    "price", ["9.99", True, False, [1], {"amount": 1}, float("nan"), float("inf"), 10**400]
)
def test_bad_price(price: object) -> None:
    assert refusal("purchases", purchase(price=price)) == INVALID_PRICE


@pytest.mark.parametrize("field", ["currency", "price"])
def test_currency_and_price_are_required(field: str) -> None:
    assert refusal("purchases", purchase(**{field: DROP})) == required(field)
    assert refusal("purchases", purchase(**{field: None})) == required(field)


@pytest.mark.parametrize(
    ("quantity", "expected"), [(DROP, 1), (None, 1), (1, 1), (42, 42), (100, 100)]
)
def test_quantity(quantity: object, expected: int) -> None:
    assert one_purchase(quantity=quantity).quantity == expected


@pytest.mark.parametrize("quantity", [0, -1, 101, 1000, 1.5, 2.0, "2", True, False, [1]])
def test_bad_quantity(quantity: object) -> None:
    assert refusal("purchases", purchase(quantity=quantity)) == INVALID_QUANTITY


def test_purchase_sentences_are_brazes() -> None:
    assert INVALID_QUANTITY == "'quantity' is not valid"
    assert INVALID_CURRENCY == "'currency' is not valid"
    assert INVALID_PRICE == "'price' is not valid"


# --- attributes --------------------------------------------------------------------------


def test_an_identity_alone_is_a_valid_attributes_object() -> None:
    item = one_attributes()
    assert item == AttributeItem(0, Identity("external_id", "u1"), False, ())


@pytest.mark.parametrize(
    ("value", "op"),
    [
        (None, ("delete", None)),
        ({"inc": 2}, ("inc", 2)),
        ({"inc": -1.5}, ("inc", -1.5)),
        ({"inc": 0}, ("inc", 0)),
        ({"add": ["a", 1]}, ("add", ["a", 1])),
        ({"add": []}, ("add", [])),
        ({"remove": ["a"]}, ("remove", ["a"])),
        ("v", ("set", "v")),
        ("v" * 255, ("set", "v" * 255)),
        ("v" * 256, ("set", "v" * 255)),
        ("  padded  ", ("set", "  padded  ")),
        (5, ("set", 5)),
        (2.5, ("set", 2.5)),
        (False, ("set", False)),
        ([1, "two"], ("set", [1, "two"])),
        ({}, ("set", {})),
        ({"city": "Paris"}, ("set", {"city": "Paris"})),
        ({"inc": 1, "by": 2}, ("set", {"inc": 1, "by": 2})),
        ({"add": ["a"], "remove": ["b"]}, ("set", {"add": ["a"], "remove": ["b"]})),
    ],
)
def test_attribute_ops(value: object, op: tuple[str, object]) -> None:
    assert one_attributes(level=value).ops == (("level", op),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"inc": "1"}, "attribute 'level': 'inc' must be a number"),
        ({"inc": True}, "attribute 'level': 'inc' must be a number"),
        ({"inc": None}, "attribute 'level': 'inc' must be a number"),
        ({"inc": float("nan")}, "attribute 'level': 'inc' must be a number"),
        ({"add": "a"}, "attribute 'level': 'add' must be an array"),
        ({"add": None}, "attribute 'level': 'add' must be an array"),
        ({"remove": {"a": 1}}, "attribute 'level': 'remove' must be an array"),
    ],
)
def test_bad_attribute_ops(value: object, expected: str) -> None:
    assert refusal("attributes", attributes(level=value)) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", f"attribute '' is not valid: {EMPTY_NAME}"),
        ("\r\n ", f"attribute '' is not valid: {EMPTY_NAME}"),
        ("$level", f"attribute '$level' is not valid: {DOLLAR_NAME}"),
        (" $level", f"attribute '$level' is not valid: {DOLLAR_NAME}"),
    ],
)
def test_bad_attribute_key(key: str, expected: str) -> None:
    assert refusal("attributes", attributes(**{key: 1})) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [(" level\n", "level"), ("a" * 300, "a" * 255), ("First Name", "First Name")],
)
def test_attribute_key_is_normalised(key: str, expected: str) -> None:
    assert one_attributes(**{key: 1}).ops == ((expected, ("set", 1)),)


def test_control_keys_are_not_attributes() -> None:
    item = one_attributes(
        user_alias={"alias_name": "n", "alias_label": "l"},
        braze_id="b",
        _update_existing_only=True,
        push_token_import=True,
        first_name="Ann",
    )
    assert item.identity == Identity("external_id", "u1")
    assert item.ops == (("first_name", ("set", "Ann")),)


def test_attributes_keep_their_order() -> None:
    item = one_attributes(b=1, a=None, c={"inc": 1})
    assert item.ops == (("b", ("set", 1)), ("a", ("delete", None)), ("c", ("inc", 1)))


@pytest.mark.parametrize(
    ("email", "op"),
    [
        (" Ann@Example.COM ", ("set", "ann@example.com")),
        ("a@b.co", ("set", "a@b.co")),
        (None, ("delete", None)),
    ],
)
def test_email_attribute(email: object, op: tuple[str, object]) -> None:
    assert one_attributes(email=email).ops == (("email", op),)


@pytest.mark.parametrize("email", ["nope", "", 5, {"add": ["a@b.co"]}])
def test_bad_email_attribute(email: object) -> None:
    assert refusal("attributes", attributes(email=email)) == INVALID_EMAIL


def test_email_attribute_key_is_normalised_before_the_check() -> None:
    assert refusal("attributes", attributes(**{" email": "nope"})) == INVALID_EMAIL


def test_identifying_email_is_not_also_an_attribute() -> None:
    item = one_attributes(external_id=DROP, email="A@b.co", phone="+1", city="Paris")
    assert item.identity == Identity("email", "a@b.co")
    assert item.ops == (("phone", ("set", "+1")), ("city", ("set", "Paris")))


def test_identifying_phone_is_not_also_an_attribute() -> None:
    item = one_attributes(external_id=DROP, phone="+1", city="Paris")
    assert item.identity == Identity("phone", "+1")
    assert item.ops == (("city", ("set", "Paris")),)


def test_events_and_purchases_ignore_attribute_like_fields() -> None:
    assert one_event(first_name="Ann").properties == {}
    assert one_purchase(first_name="Ann").properties == {}


def test_a_refused_attributes_object_is_not_applied_in_part() -> None:
    parsed = parse("attributes", attributes(a=1, b={"inc": "x"}), attributes(c=2))
    assert [(item.index, item.ops) for item in parsed.attributes] == [(1, (("c", ("set", 2)),))]
    assert parsed.errors == [ItemError("attribute 'b': 'inc' must be a number", "attributes", 0)]


# --- the inlined event path and its caches -------------------------------------------------
#
# `parse_track` builds the usual event inline and caches accepted names and the halves of
# common times; everything else takes the general path. The tests below compare it, on
# generated events full of edge cases, with `_oracle_event`: a frozen copy of how events
# were parsed before that fast path existed (one helper per field, no caches). The tests
# above pin what the oracle does.


class _OracleRefused(Exception):
    def __init__(self, type_: str) -> None:
        super().__init__(type_)
        self.type = type_


_ORACLE_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_ORACLE_COMMON_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3}(?:[0-9]{3})?)?(?:Z|\+00:00)"
)


def _oracle_event(raw: object, index: int, now: int) -> EventItem:
    if not isinstance(raw, dict):
        raise _OracleRefused("the item must be a JSON object")
    identity = _oracle_identity(raw)
    only_existing = raw.get("_update_existing_only")
    if only_existing is None:
        only_existing = identity.kind == "user_alias"
    elif not isinstance(only_existing, bool):
        raise _OracleRefused("'_update_existing_only' must be true or false")
    name = _oracle_required(raw, "name")
    if not isinstance(name, str):
        raise _OracleRefused("'name' must be a string")
    name = normalize_name(name)
    problem = name_problem(name)
    if problem is not None:
        raise _OracleRefused(f"'name' is not valid: {problem}")
    time = _oracle_time(_oracle_required(raw, "time"), now)
    app_id = raw.get("app_id")
    if app_id is not None and not isinstance(app_id, str):
        raise _OracleRefused("'app_id' must be a string")
    properties = _oracle_properties(raw.get("properties"))
    return EventItem(index, identity, only_existing, name, time, app_id, properties)


def _oracle_required(item: dict[str, Any], field: str) -> object:
    value = item.get(field)
    if value is None:
        raise _OracleRefused(required(field))
    return value


def _oracle_identity(item: dict[str, Any]) -> Identity:
    for kind in ("external_id", "user_alias", "braze_id", "email", "phone"):
        value = item.get(kind)
        if value is None:
            continue
        if kind == "user_alias":
            if not isinstance(value, dict):
                raise _OracleRefused(
                    "'user_alias' must be an object with 'alias_name' and 'alias_label'"
                )
            name = _oracle_non_empty(value.get("alias_name"), "user_alias.alias_name")
            label = _oracle_non_empty(value.get("alias_label"), "user_alias.alias_label")
            if "\x00" in label:
                raise _OracleRefused("'user_alias.alias_label' must not contain a NUL character")
            return Identity("user_alias", f"{label}\x00{name}")
        if kind == "email":
            if isinstance(value, str) and _ORACLE_EMAIL.fullmatch(value.strip().lower()):
                return Identity("email", value.strip().lower())
            raise _OracleRefused(INVALID_EMAIL)
        text = _oracle_non_empty(value, kind)
        if kind == "external_id" and len(text) > 511:
            raise _OracleRefused("'external_id' must be shorter than 512 characters")
        return Identity(kind, text)
    raise _OracleRefused(IDENTIFIER_REQUIRED)


def _oracle_non_empty(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _OracleRefused(f"'{field}' must be a non-empty string")
    return value


def _oracle_time(value: object, now: int) -> int:
    if not isinstance(value, str):
        raise _OracleRefused(f"{INVALID_TIME}: it must be a string")
    moment = None
    if _ORACLE_COMMON_TIME.fullmatch(value):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value)
        if moment is not None and not MIN_INSTANT <= moment < MAX_INSTANT:
            moment = None
    if moment is None:
        try:
            moment = parse_instant(value, None)
        except TimeParseError as exc:
            raise _OracleRefused(f"{INVALID_TIME}: the value {exc}") from None
    return min(to_us(moment), now)


def _oracle_properties(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _OracleRefused("'properties' must be an object")
    kept: dict[str, Any] = {}
    for raw_key, raw_value in value.items():
        if type(raw_key) is not str:
            raise _OracleRefused("property keys must be strings")
        key = normalize_name(raw_key)
        if len(kept) >= 256 and key not in kept:
            continue
        problem = name_problem(key)
        if problem is not None:
            raise _OracleRefused(f"property key '{key}' is not valid: {problem}")
        if key in ("time", "event_name"):
            raise _OracleRefused(f"property key '{key}' is reserved")
        if type(raw_value) is str:
            raw_value = clean_text(raw_value)
        elif type(raw_value) not in (list, dict, int, float, bool, type(None)):
            raise _OracleRefused(f"property '{key}' is not a JSON value")
        kept[key] = raw_value
    size = 0
    for nested in kept.values():
        if isinstance(nested, (list, dict)):
            try:
                size += len(msgspec.json.encode(nested))
            except (TypeError, UnicodeEncodeError):
                raise _OracleRefused(
                    "'properties' holds a value that cannot be encoded as JSON"
                ) from None
    if size > 100 * 1024:
        raise _OracleRefused(
            f"nested 'properties' values take {size} bytes of JSON,"
            " at most 102400 (100 KB) are allowed"
        )
    return kept


def _oracle_parse_events(items: list[object], now: int) -> TrackRequest:
    request = TrackRequest(present=frozenset({"events"}))
    for index, raw in enumerate(items):
        try:
            request.events.append(_oracle_event(raw, index, now))
        except _OracleRefused as refused:
            request.errors.append(ItemError(refused.type, "events", index))
    return request


class _DictSubclass(dict[str, Any]):
    pass


class _StrSubclass(str):
    __slots__ = ()


def _some(*values: object) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


_IDENTIFIER_CASES = (
    "u1", "user-42", "", " ", "x" * 511, "x" * 512, _StrSubclass("u1"), 5, True, ["u1"]
)  # fmt: skip
# Edge cases for each field of an event; few, so that examples repeat names and times
# and the caches are hit.
_EDGE_CASES: dict[str, tuple[object, ...]] = {
    "external_id": _IDENTIFIER_CASES,
    "user_alias": (
        {"alias_name": "n", "alias_label": "l"}, {"alias_name": "n"}, {"alias_label": "l"},
        {"alias_name": "", "alias_label": "l"}, {"alias_name": "n", "alias_label": "a\x00b"},
        {"alias_name": 5, "alias_label": "l"}, {"alias_name": "n", "alias_label": None},
        "n", ["n"],
    ),
    "braze_id": _IDENTIFIER_CASES,
    "email": ("a@b.co", " A@B.Co ", "a@b", "a b@c.d", "", 5),
    "phone": _IDENTIFIER_CASES,
    "_update_existing_only": (True, False, "true", 1, 0),
    "name": (
        "played", "Added to cart", " played ", "played\n", "pla\r\nyed", "$played", "", " \n",
        "x" * 255, "x" * 256, "x" * 254 + " y", "é" * 300, "bad\udc80utf8", "a$", "Ünï",
        _StrSubclass("played"), 5, ["played"],
    ),
    "time": (
        TIME, "2024-05-01T12:00:00+00:00", "2024-05-01T12:00:59.999Z", "2024-05-01T12:01:00Z",
        "2024-06-01T12:00:00Z", "2024-06-01T11:59:59.999999+00:00", "2024-06-01T12:00:00.000001Z",
        "8999-12-31T23:59:59.999999Z", "9000-01-01T00:00:00Z", "1800-01-01T00:00:00Z",
        "1799-12-31T23:59:59.999Z", "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z",
        "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:00:60Z",
        "2024-05-01T12:00:00.1234Z", "2024-05-01T12:00:00z", "2024-05-01T12:00:00+02:00",
        "2024-05-01T12:00", "2024-05-01T12:00:", "2024-05-01", "2024-05-01X12:00:00Z",
        "2024-05-01T12:00:00Z ", "２０２４-05-01T12:00:00Z", "", "yesterday",
        _StrSubclass(TIME), 1714564800, ["2024-05-01"],
    ),
    "app_id": ("app-1", "", _StrSubclass("app-1"), 5, True, ["a"]),
    "properties": (
        {}, {"k": "v"}, {" k\n": 1}, {"K": [1, {"a": None}], "n": None, "b": True, "f": 1.5},
        {"$k": 1}, {"": 1}, {" ": 1}, {"time": 1}, {"event_name": 1}, {" time": 1},
        {"product_id": 1}, {"é" * 300: "x" * 300}, {1: "v"}, {"k": {1, 2}}, {"k": b"b"},
        {"k": "bad\udc80"}, {"k": ["\ud800"]}, {"l": ["x" * 102_396]}, {"l": ["x" * 102_397]},
        {f"k{i}": i for i in range(300)}, [], "k=v", 3,
    ),
    "first_name": ("Ann",),
}  # fmt: skip
_TIME_STRINGS = [t for t in _EDGE_CASES["time"] if type(t) is str]
_OTHER_IDENTIFIERS = ("user_alias", "braze_id", "email", "phone")


@pytest.mark.parametrize("field", list(_EDGE_CASES))
def test_each_edge_case_parses_as_before(field: str) -> None:
    for value in (*_EDGE_CASES[field], None, DROP):
        changed = [event(**{field: value})]
        if field in _OTHER_IDENTIFIERS:
            changed.append(event(external_id=DROP, **{field: value}))
        items: list[object] = [event(), *changed, *map(_DictSubclass, changed)]
        for now in (NOW, 0):
            _assert_parses_as_before(items, now)


_PROPERTY_KEYS = _some(
    "k", " k\n", "K", "$k", "", " ", "time", "event_name", " time", "product_id", "é" * 300, 1
)
_PROPERTY_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    _some("x" * 300, "bad\udc80", ["\ud800"], ["x" * 102_396], ["x" * 102_397], {1, 2}, b"b"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_EVENT_FIELDS = {field: _some(*cases) for field, cases in _EDGE_CASES.items()} | {
    "external_id": st.one_of(_some(*_IDENTIFIER_CASES), st.text(max_size=3)),
    "name": st.one_of(_some(*_EDGE_CASES["name"]), st.text(max_size=3)),
    "time": st.one_of(_some(*_EDGE_CASES["time"]), common_times(), st.text(max_size=3)),
    "properties": st.one_of(
        _some(*_EDGE_CASES["properties"]),
        st.dictionaries(_PROPERTY_KEYS, _PROPERTY_VALUES, max_size=4),
    ),
}


@st.composite
def generated_events(draw: st.DrawFn) -> object:
    """A usual event with some fields left out, made null or replaced by edge cases."""
    item: dict[str, Any] = {"external_id": "u1", "name": "played", "time": TIME}
    # A few changes each, so that most events are still valid apart from one edge case.
    changes = draw(st.dictionaries(_some(*_EVENT_FIELDS), _some("draw", "drop", "null")))
    for field, change in changes.items():
        if change == "drop":
            item.pop(field, None)
        elif change == "null":
            item[field] = None
        else:
            item[field] = draw(_EVENT_FIELDS[field])
    shape = draw(_some("dict", "dict", "dict", "subclass", "not a dict"))
    if shape == "subclass":
        return _DictSubclass(item)
    if shape == "not a dict":
        return draw(_some(None, "event", 5, [item]))
    return item


_NOWS = st.one_of(_some(NOW, to_us(datetime(9999, 1, 1, tzinfo=UTC)), 0), st.integers())


@given(st.lists(generated_events(), max_size=6), _NOWS)
@settings(max_examples=300)
def test_events_parse_as_before(items: list[object], now: int) -> None:
    _assert_parses_as_before(items, now)


def _assert_parses_as_before(items: list[object], now: int) -> None:
    expected = _oracle_parse_events(items, now)
    # Twice: the caches are filled by the first parse, if not already.
    for _ in range(2):
        parsed = parse_track({"events": items}, now)
        assert parsed == expected
        for got, want in zip(parsed.events, expected.events, strict=True):
            assert type(got.name) is type(want.name)
            assert type(got.identity.value) is type(want.identity.value)
            assert type(got.app_id) is type(want.app_id)


def test_the_usual_event_parses_as_before() -> None:
    items: list[object] = [
        {"external_id": f"user-{i}", "name": "played", "time": f"2024-05-01T12:{i:02}:{i:02}Z"}
        for i in range(60)
    ]
    for now in (NOW, TIME_US + 30 * 60_000_000, 0):
        _assert_parses_as_before(items, now)


def test_accepted_range_is_whole_days() -> None:
    """The time caches combine a known day, minute and seconds: this keeps them in range."""
    assert to_us(MIN_INSTANT) % 86_400_000_000 == 0
    assert to_us(MAX_INSTANT) % 86_400_000_000 == 0


@given(st.lists(st.one_of(common_times(), _some(*_TIME_STRINGS)), min_size=2, max_size=8))
def test_cached_time_halves_recombine_as_parse_instant_reads_them(texts: list[str]) -> None:
    """Times built from the day of one seen time, the minute of another and the seconds
    of a third."""
    far_future = to_us(datetime(9999, 1, 1, tzinfo=UTC))
    parse_track({"events": [event(time=text) for text in texts]}, far_future)
    for text in {a[:11] + b[11:16] + c[16:] for a in texts for b in texts for c in texts}:
        parsed = parse_track({"events": [event(time=text)]}, far_future)
        assert [e.time for e in parsed.events] + [e.type for e in parsed.errors] == [
            _parse_instant_us_or_error(text)
        ]


def _parse_instant_us_or_error(text: str) -> int | str:
    try:
        return to_us(parse_instant(text, None))
    except TimeParseError as exc:
        return f"{INVALID_TIME}: the value {exc}"
