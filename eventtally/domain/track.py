"""The `POST /users/track` body, validated: what the store must apply, and what was refused.

Parsing is pure: `now` is an argument (future event times are clamped to it); the
caches of accepted event names and of times only save work. What needs the store
(does this user exist, is this app known) is decided by the store, which adds its
own item errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NoReturn, TypeGuard, TypeVar

import msgspec

from eventtally.domain.instants import MAX_INSTANT, MIN_INSTANT, US_PER_SECOND, to_us
from eventtally.domain.names import clean_text, name_problem, normalize_name
from eventtally.domain.timeparse import TimeParseError, parse_instant
from eventtally.errors import BadRequest

ArrayName = Literal["attributes", "events", "purchases"]
IdentityKind = Literal["external_id", "user_alias", "braze_id", "email", "phone"]

MAX_ITEMS_PER_ARRAY = 75

# The validated items are msgspec Structs rather than dataclasses: cheaper to build, per
# event, and the SQLite store's ingest process receives them over a pipe, where arrays
# decode fastest (store/ingest_process.py).


class Identity(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """How an item names its user: the first identifier present (contract 8.18).

    For `user_alias`, `value` is `alias_label + "\\x00" + alias_name`.
    """

    kind: IdentityKind
    value: str


class ItemError(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One refused item, as Braze reports it in `errors`."""

    type: str
    input_array: ArrayName
    index: int


# An attribute operation: ("set", value) | ("delete", None) | ("inc", number)
# | ("add", list) | ("remove", list).
AttributeOp = tuple[Literal["set", "delete", "inc", "add", "remove"], Any]


class AttributeItem(msgspec.Struct, frozen=True, array_like=True):
    index: int
    identity: Identity
    update_existing_only: bool
    ops: tuple[tuple[str, AttributeOp], ...]


class EventItem(msgspec.Struct, frozen=True, array_like=True):
    index: int
    identity: Identity
    update_existing_only: bool
    name: str
    time: int  # microseconds since the epoch, clamped to `now`
    app_id: str | None
    properties: dict[str, Any]


class PurchaseItem(msgspec.Struct, frozen=True, array_like=True):
    index: int
    identity: Identity
    update_existing_only: bool
    product_id: str
    currency: str
    price: float
    quantity: int
    time: int
    app_id: str | None
    properties: dict[str, Any]


class TrackRequest(msgspec.Struct, array_like=True):
    """A validated body: the items to apply in order, and the items refused while parsing."""

    attributes: list[AttributeItem] = msgspec.field(default_factory=list)
    events: list[EventItem] = msgspec.field(default_factory=list)
    purchases: list[PurchaseItem] = msgspec.field(default_factory=list)
    errors: list[ItemError] = msgspec.field(default_factory=list)
    # Which arrays the body held: only those get a `*_processed` key in the response.
    present: frozenset[ArrayName] = frozenset()


class TrackOutcome(msgspec.Struct, array_like=True):
    """What the store applied, and the items it refused (unknown user, unknown app...)."""

    attributes_processed: int = 0
    events_processed: int = 0
    purchases_processed: int = 0
    errors: list[ItemError] = msgspec.field(default_factory=list)
    # True when this is the recorded outcome of an earlier request with the same
    # `Idempotency-Key`, given again: nothing was applied this time.
    replayed: bool = False


IDENTIFIER_REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
INVALID_EMAIL = "The value provided for the 'email' field is not a valid email."
INVALID_QUANTITY = "'quantity' is not valid"
INVALID_CURRENCY = "'currency' is not valid"
INVALID_PRICE = "'price' is not valid"
INVALID_TIME = "'time' is not a valid ISO 8601 datetime"

MAX_EXTERNAL_ID_LENGTH = 511
MAX_PROPERTIES = 256
MAX_NESTED_PROPERTY_BYTES = 100 * 1024
MAX_QUANTITY = 100

_ARRAYS: tuple[ArrayName, ...] = ("attributes", "events", "purchases")
_IDENTIFIERS: tuple[IdentityKind, ...] = ("external_id", "user_alias", "braze_id", "email", "phone")
_EVENT_RESERVED = frozenset({"time", "event_name"})
_PURCHASE_RESERVED = _EVENT_RESERVED | {"product_id", "quantity", "price", "currency"}
# `email` and `phone` are absent on purpose: they are profile attributes whenever
# another identifier names the user.
_NOT_ATTRIBUTES = frozenset(
    {"external_id", "user_alias", "braze_id", "_update_existing_only", "push_token_import"}
)
# Deliberately loose: the aim is to catch typos and junk, not to implement RFC 5322.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")

# What SDKs and `datetime.isoformat()` send: UTC, whole seconds, ms or µs.
_COMMON_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3}(?:[0-9]{3})?)?(?:Z|\+00:00)"
)
_SCALAR_TYPES = frozenset({int, float, bool, type(None)})

_Item = TypeVar("_Item")


class _Refused(Exception):
    """One item is refused; raised from deep inside its parse, caught once per item."""

    def __init__(self, type_: str) -> None:
        super().__init__(type_)
        self.type = type_


def parse_track(body: object, now: int) -> TrackRequest:
    """Validate a `/users/track` body; `now` (µs since the epoch) caps event and purchase times.

    Raises `BadRequest` for what refuses the whole request (not an object, an array of
    the wrong type or too long); a bad item only adds an `ItemError`.
    """
    if not isinstance(body, dict):
        raise BadRequest(
            "the body must be a JSON object with 'attributes', 'events' or 'purchases' arrays"
        )
    # Check every array before parsing any item, so a fatal error is never masked.
    arrays = {name: items for name in _ARRAYS if (items := _array(body, name)) is not None}
    request = TrackRequest(present=frozenset(arrays))
    errors = request.errors
    _parse_items(
        arrays.get("attributes"), "attributes", _attribute_item, request.attributes, errors, now
    )
    events = arrays.get("events")
    if events:
        _parse_events(events, request.events, errors, now)
    _parse_items(
        arrays.get("purchases"), "purchases", _purchase_item, request.purchases, errors, now
    )
    return request


def _array(body: dict[Any, Any], name: ArrayName) -> list[Any] | None:
    items = body.get(name)
    if items is None:
        return None
    if not isinstance(items, list):
        raise BadRequest(f"'{name}' must be an array")
    if len(items) > MAX_ITEMS_PER_ARRAY:
        raise BadRequest(
            f"Max Input Length Exceeded: '{name}' holds {len(items)} items,"
            f" at most {MAX_ITEMS_PER_ARRAY} are allowed per array"
        )
    return items


def _parse_items(
    items: list[Any] | None,
    name: ArrayName,
    parse: Callable[[object, int, int], _Item],
    out: list[_Item],
    errors: list[ItemError],
    now: int,
) -> None:
    if not items:
        return
    for index, raw in enumerate(items):
        try:
            out.append(parse(raw, index, now))
        except _Refused as refused:
            errors.append(ItemError(refused.type, name, index))


def _parse_events(
    items: list[Any], out: list[EventItem], errors: list[ItemError], now: int
) -> None:
    """`_parse_items(items, "events", _event_item, ...)`, with the usual event inlined.

    This loop is the per-event validation cost of ingest, where plain function calls
    (several per field) cost more than the checks themselves. The event SDKs send (a
    plain object naming its user by a valid `external_id`, a name already accepted once,
    a time in the common UTC shape, plain or no properties) is built right here; any
    other event, valid or not, goes through `_event_item`, the general path, which also
    words the errors. The fast path only accepts what `_event_item` accepts, with the
    same result, and has no effect when it gives up.
    """
    append = out.append
    for index, raw in enumerate(items):
        try:
            # Exact types (what a JSON decoder produces); subclasses take the general path.
            if type(raw) is dict:
                # The same lookups in the same order as `_event_item`.
                external_id = raw.get("external_id")
                if type(external_id) is str and 0 < len(external_id) <= MAX_EXTERNAL_ID_LENGTH:
                    # Absent means False (the identity is not a `user_alias`); an explicit
                    # null means False too, but is left to the general path.
                    only_existing = raw.get("_update_existing_only", False)
                    name = raw.get("name")
                    time = raw.get("time")
                    if (
                        type(only_existing) is bool
                        and type(name) is str
                        and name in _ACCEPTED_NAMES
                        and type(time) is str
                        and (time_us := _common_time_us(time)) is not None
                    ):
                        if now < time_us:  # `min(time_us, now)` as in `_time`, without a call
                            time_us = now
                        app_id = raw.get("app_id")
                        if app_id is None or type(app_id) is str:
                            properties = raw.get("properties")
                            # Positional: keyword arguments cost a third more here.
                            append(
                                EventItem(
                                    index,
                                    Identity("external_id", external_id),
                                    only_existing,
                                    name,
                                    time_us,
                                    app_id,
                                    {}
                                    if properties is None
                                    else _properties(properties, _EVENT_RESERVED),
                                )
                            )
                            continue
            append(_event_item(raw, index, now))
        except _Refused as refused:
            errors.append(ItemError(refused.type, "events", index))


# --- the three item kinds ---------------------------------------------------------------


def _attribute_item(raw: object, index: int, now: int) -> AttributeItem:
    item, identity, only_existing = _subject(raw)
    ops = [
        _attribute(key, value)
        for key, value in item.items()
        if key not in _NOT_ATTRIBUTES and key != identity.kind
    ]
    return AttributeItem(index, identity, only_existing, tuple(ops))


def _event_item(raw: object, index: int, now: int) -> EventItem:
    item, identity, only_existing = _subject(raw)
    return EventItem(
        index=index,
        identity=identity,
        update_existing_only=only_existing,
        name=_event_name(_required(item, "name")),
        time=_time(_required(item, "time"), now),
        app_id=_app_id(item.get("app_id")),
        properties=_properties(item.get("properties"), _EVENT_RESERVED),
    )


def _purchase_item(raw: object, index: int, now: int) -> PurchaseItem:
    item, identity, only_existing = _subject(raw)
    return PurchaseItem(
        index=index,
        identity=identity,
        update_existing_only=only_existing,
        product_id=_product_id(_required(item, "product_id")),
        currency=_currency(_required(item, "currency")),
        price=_price(_required(item, "price")),
        quantity=_quantity(item.get("quantity")),
        time=_time(_required(item, "time"), now),
        app_id=_app_id(item.get("app_id")),
        properties=_properties(item.get("properties"), _PURCHASE_RESERVED),
    )


def _subject(raw: object) -> tuple[dict[str, Any], Identity, bool]:
    """The item as a dict, the user it names, and its `_update_existing_only`."""
    if not isinstance(raw, dict):
        raise _Refused("the item must be a JSON object")
    identity = _identity(raw)
    only_existing = raw.get("_update_existing_only")
    if only_existing is None:
        # Braze never creates a profile from an alias unless told to (contract 5.2).
        return raw, identity, identity.kind == "user_alias"
    if not isinstance(only_existing, bool):
        raise _Refused("'_update_existing_only' must be true or false")
    return raw, identity, only_existing


def _required(item: dict[str, Any], field: str) -> object:
    value = item.get(field)
    if value is None:
        # Braze's own schema-error sentence (contract 5.5).
        raise _Refused(f"The property '#/' did not contain a required property of '{field}'")
    return value


# --- identity --------------------------------------------------------------------------


def _identity(item: dict[str, Any]) -> Identity:
    for kind in _IDENTIFIERS:
        value = item.get(kind)
        if value is not None:
            return Identity(kind, _IDENTITY_VALUES[kind](value))
    raise _Refused(IDENTIFIER_REQUIRED)


def _non_empty_string(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Refused(f"'{field}' must be a non-empty string")
    return value


def _external_id(value: object) -> str:
    external_id = _non_empty_string(value, "external_id")
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise _Refused("'external_id' must be shorter than 512 characters")
    return external_id


def _user_alias(value: object) -> str:
    if not isinstance(value, dict):
        raise _Refused("'user_alias' must be an object with 'alias_name' and 'alias_label'")
    name = _non_empty_string(value.get("alias_name"), "user_alias.alias_name")
    label = _non_empty_string(value.get("alias_label"), "user_alias.alias_label")
    # The label is what comes before the separator; a NUL inside it would let two
    # different aliases share one identity.
    if "\x00" in label:
        raise _Refused("'user_alias.alias_label' must not contain a NUL character")
    return f"{label}\x00{name}"


def _email(value: object) -> str:
    if isinstance(value, str):
        email = value.strip().lower()
        if _EMAIL.fullmatch(email):
            return email
    raise _Refused(INVALID_EMAIL)


_IDENTITY_VALUES: dict[IdentityKind, Callable[[object], str]] = {
    "external_id": _external_id,
    "user_alias": _user_alias,
    "braze_id": lambda value: _non_empty_string(value, "braze_id"),
    "email": _email,
    "phone": lambda value: _non_empty_string(value, "phone"),
}


# --- fields ----------------------------------------------------------------------------


# Event names already accepted as they are (`normalize_name` leaves them unchanged and
# `name_problem` finds nothing), so `_parse_events` can skip both: an app sends few
# distinct names. Bounded by emptying it when full; each name is at most 255 code points.
_ACCEPTED_NAMES: set[str] = set()
_MAX_ACCEPTED_NAMES = 4096


def _event_name(value: object) -> str:
    if not isinstance(value, str):
        raise _Refused("'name' must be a string")
    name = normalize_name(value)
    problem = name_problem(name)
    if problem is not None:
        raise _Refused(f"'name' is not valid: {problem}")
    # Only exact strings: a subclass could compare equal to a name it does not spell.
    if name == value and type(value) is str:
        if len(_ACCEPTED_NAMES) >= _MAX_ACCEPTED_NAMES:
            _ACCEPTED_NAMES.clear()
        _ACCEPTED_NAMES.add(name)
    return name


def _time(value: object, now: int) -> int:
    if not isinstance(value, str):
        raise _Refused(f"{INVALID_TIME}: it must be a string")
    us = _common_time_us(value)
    if us is None:
        try:
            us = to_us(parse_instant(value, None))
        except TimeParseError as exc:
            raise _Refused(f"{INVALID_TIME}: the value {exc}") from None
    # Braze replaces future timestamps with the time of ingest (contract 5.2).
    return min(us, now)


# Caches for `_common_time_us`, keyed by the three parts of a time in `_COMMON_TIME`'s
# shape: its day ("2026-11-25T", the first 11 characters, fixed width) to the µs of that
# day's start, its hour and minute ("10:11", the next 5) to the µs past the day's start,
# and the rest (":12Z", ":12.345+00:00", ...) to the µs past the minute. They only ever
# hold parts of times that passed the full check. Known parts make a valid time in that
# shape again: the shape is fixed width up to the minute, each part is valid on its own
# (a date; an hour and minute; a second, fraction and UTC suffix), and the accepted
# range is whole days (a test checks), so in range too. An app's events span a few
# years of days, 1,440 minutes and 120 whole-second tails, so most times are three dict
# lookups instead of a regex, `fromisoformat` and `to_us` (a cache by minute missed
# on most times of an import spanning a month).
# Bounded by emptying a cache when full. Shared by threads: a lookup that races a
# clear only misses.
_DAY_US: dict[str, int] = {}
_MINUTE_US: dict[str, int] = {}
_TAIL_US: dict[str, int] = {}
_MAX_TIME_CACHE = 4096
_DAY_END = 11  # len("2026-11-25T")
_MINUTE_END = 16  # len("2026-11-25T10:11")


def _common_time_us(text: str) -> int | None:
    """µs since the epoch of a UTC time in the shape SDKs send, or None to use `parse_instant`.

    `parse_instant` costs a few µs, most of an event's parse; this shape is read by
    the C `fromisoformat` with the same result. Anything unusual, invalid or out of
    range goes the slow way, which also words the error.
    """
    day = _DAY_US.get(text[:_DAY_END])
    if day is not None:
        minute = _MINUTE_US.get(text[_DAY_END:_MINUTE_END])
        if minute is not None:
            tail = _TAIL_US.get(text[_MINUTE_END:])
            if tail is not None:
                return day + minute + tail
    if _COMMON_TIME.fullmatch(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if not MIN_INSTANT <= moment < MAX_INSTANT:
        return None
    us = to_us(moment)
    tail = moment.second * US_PER_SECOND + moment.microsecond
    minute = (moment.hour * 60 + moment.minute) * 60 * US_PER_SECOND
    for cache, key, value in (
        (_DAY_US, text[:_DAY_END], us - minute - tail),
        (_MINUTE_US, text[_DAY_END:_MINUTE_END], minute),
        (_TAIL_US, text[_MINUTE_END:], tail),
    ):
        if len(cache) >= _MAX_TIME_CACHE:
            cache.clear()
        cache[key] = value
    return us


def _app_id(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _Refused("'app_id' must be a string")


def _product_id(value: object) -> str:
    if not isinstance(value, str):
        raise _Refused("'product_id' must be a string")
    product_id = normalize_name(value)
    if not product_id:
        raise _Refused("'product_id' must not be empty")
    return product_id


def _currency(value: object) -> str:
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    raise _Refused(INVALID_CURRENCY)


def _price(value: object) -> float:
    if _is_number(value):
        try:
            price = float(value)
        except OverflowError:
            raise _Refused(INVALID_PRICE) from None
        return price
    raise _Refused(INVALID_PRICE)


def _quantity(value: object) -> int:
    if value is None:
        return 1
    # `type() is int` also refuses bools, which are ints to isinstance.
    if type(value) is int and 1 <= value <= MAX_QUANTITY:
        return value
    raise _Refused(INVALID_QUANTITY)


def _is_number(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


# --- properties ------------------------------------------------------------------------


def _properties(value: object, reserved: frozenset[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Refused("'properties' must be an object")
    kept: dict[str, Any] = {}
    has_nested = False
    # The hot loop of the ingest path: checks are inlined and dispatch on exact types,
    # which is what a JSON decoder produces.
    for raw_key, raw_value in value.items():
        if type(raw_key) is not str:
            raise _Refused("property keys must be strings")
        key = normalize_name(raw_key)
        # Braze silently drops keys past the limit, so those are not even checked;
        # a key that normalises to one already kept is not a new key.
        if len(kept) >= MAX_PROPERTIES and key not in kept:
            continue
        if not key or key[0] == "$" or key in reserved:
            _refuse_property_key(key)
        kind = type(raw_value)
        if kind is str:
            raw_value = clean_text(raw_value)
        elif kind is list or kind is dict:
            has_nested = True
        elif kind not in _SCALAR_TYPES:
            raise _Refused(f"property '{key}' is not a JSON value")
        kept[key] = raw_value
    if has_nested:
        _check_nested_size(kept)
    return kept


def _refuse_property_key(key: str) -> NoReturn:
    problem = name_problem(key)
    if problem is not None:
        raise _Refused(f"property key '{key}' is not valid: {problem}")
    raise _Refused(f"property key '{key}' is reserved")


def _check_nested_size(properties: dict[str, Any]) -> None:
    size = 0
    for value in properties.values():
        if isinstance(value, (list, dict)):
            try:
                size += len(msgspec.json.encode(value))
            except (TypeError, UnicodeEncodeError):
                raise _Refused(
                    "'properties' holds a value that cannot be encoded as JSON"
                ) from None
    if size > MAX_NESTED_PROPERTY_BYTES:
        raise _Refused(
            f"nested 'properties' values take {size} bytes of JSON,"
            f" at most {MAX_NESTED_PROPERTY_BYTES} (100 KB) are allowed"
        )


# --- attributes ------------------------------------------------------------------------


def _attribute(raw_key: object, value: object) -> tuple[str, AttributeOp]:
    if not isinstance(raw_key, str):
        raise _Refused("attribute names must be strings")
    key = normalize_name(raw_key)
    problem = name_problem(key)
    if problem is not None:
        raise _Refused(f"attribute '{key}' is not valid: {problem}")
    if value is None:
        return key, ("delete", None)
    if key == "email":
        return key, ("set", _email(value))
    if isinstance(value, str):
        return key, ("set", clean_text(value))
    if isinstance(value, dict) and len(value) == 1:
        operation = _operation(key, value)
        if operation is not None:
            return key, operation
    return key, ("set", value)


def _operation(key: str, value: dict[str, Any]) -> AttributeOp | None:
    """The `{"inc": n}`, `{"add": [...]}` or `{"remove": [...]}` in `value`, if it is one."""
    ((verb, operand),) = value.items()
    if verb == "inc":
        if not _is_number(operand):
            raise _Refused(f"attribute '{key}': 'inc' must be a number")
        return ("inc", operand)
    if verb == "add" or verb == "remove":
        if not isinstance(operand, list):
            raise _Refused(f"attribute '{key}': '{verb}' must be an array")
        return ("add", operand) if verb == "add" else ("remove", operand)
    return None
