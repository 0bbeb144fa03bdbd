"""Segment filters: the JSON language (docs/segments.md), its parser and its evaluation.

`parse_filter` turns JSON into an immutable tree, validating strictly and naming the
path of the first problem; `matches` evaluates a tree against one user's state (it runs
for every ingested event and every tracked segment, so everything that can be worked
out from the filter alone is worked out at parse time); `referenced` says what a filter
reads, so that the store re-evaluates membership only when one of those things changes.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Hashable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn, Protocol, TypeAlias, get_args

from eventtally.domain.instants import to_us
from eventtally.domain.names import name_problem, normalize_name
from eventtally.domain.timeparse import TimeParseError, parse_instant

MAX_DEPTH: Final = 32
MAX_NODES: Final = 1000

AttributeOp: TypeAlias = Literal[
    "eq",
    "ne",
    "in",
    "exists",
    "not_exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "starts_with",
    "includes",
]
CountOp: TypeAlias = Literal["gte", "lte", "eq"]

ATTRIBUTE_OPS: Final[tuple[AttributeOp, ...]] = get_args(AttributeOp)
COUNT_OPS: Final[tuple[CountOp, ...]] = get_args(CountOp)

# A filter value as held in the tree: JSON with arrays as tuples and objects read-only.
FrozenJSON: TypeAlias = (
    "bool | int | float | str | tuple[FrozenJSON, ...] | Mapping[str, FrozenJSON] | None"
)


class FilterError(ValueError):
    """A filter that cannot be used; the message is one line, `filter<path>: <problem>`."""


# --- the tree ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class All:
    """True when every filter is (`{"all": [...]}`)."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Any_:
    """True when at least one filter is (`{"any": [...]}`)."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """True when the filter is false (`{"not": ...}`)."""

    filter: Filter


@dataclass(frozen=True, slots=True)
class AttributeCondition:
    """`{"attribute": ..., "op": ..., "value": ...}`; `value` is None for exists/not_exists.

    Build it with `parse_filter`, which checks that `value` suits `op`; the fields after
    `value` are derived from it once, here, so that matching never re-parses the filter.
    """

    attribute: str
    op: AttributeOp
    value: FrozenJSON = field(compare=False)
    # Equality of the tree follows JSON equality (true is not 1), not Python's.
    key: Hashable = field(init=False, repr=False)
    instant: int | None = field(init=False, repr=False, compare=False)
    keys: frozenset[Hashable] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        value = self.value
        object.__setattr__(self, "key", _key(value))
        instant = None
        if self.op in _ORDERINGS and isinstance(value, str):
            instant = to_us(parse_instant(value, None))
        object.__setattr__(self, "instant", instant)
        keys: frozenset[Hashable] = frozenset()
        if self.op == "in" and isinstance(value, tuple):
            keys = frozenset(_key(item) for item in value)
        object.__setattr__(self, "keys", keys)


@dataclass(frozen=True, slots=True)
class UsedApp:
    """True when the user has an event or purchase with this app_id."""

    app_id: str


@dataclass(frozen=True, slots=True)
class EventCount:
    """True when the number of times the user performed the event, ever, compares so."""

    event: str
    op: CountOp
    count: int


Filter: TypeAlias = All | Any_ | Not | AttributeCondition | UsedApp | EventCount


class Facts(Protocol):
    """What a filter reads of one user (a UserState, or a store's own profile object)."""

    @property
    def attributes(self) -> Mapping[str, Any]: ...
    @property
    def event_counts(self) -> Mapping[str, int]: ...
    @property
    def used_apps(self) -> AbstractSet[str]: ...


@dataclass(frozen=True, slots=True)
class UserState:
    """What a filter is evaluated against: one user's profile and history."""

    attributes: Mapping[str, Any]
    event_counts: Mapping[str, int]
    used_apps: AbstractSet[str]


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What a filter reads: a change to anything else cannot change membership."""

    attributes: frozenset[str]
    events: frozenset[str]
    uses_apps: bool


# --- parsing -----------------------------------------------------------------------------

_KINDS: Final = ("all", "any", "not", "attribute", "used_app", "event")
_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "all": ("all",),
    "any": ("any",),
    "not": ("not",),
    "attribute": ("attribute", "op", "value"),
    "used_app": ("used_app",),
    "event": ("event", "op", "count"),
}
_ORDERINGS: Final = frozenset({"gt", "gte", "lt", "lte"})
_NO_VALUE: Final = frozenset({"exists", "not_exists"})
_ABSENT: Final = object()


def parse_filter(value: object) -> Filter:
    """The filter in `value` (decoded JSON), or FilterError naming the first problem."""
    return _Parser().node(value, "filter", 1)


def filter_to_json(f: Filter) -> object:
    """The canonical JSON of a filter: `parse_filter` gives back an equal filter."""
    if isinstance(f, AttributeCondition):
        if f.op in _NO_VALUE:
            return {"attribute": f.attribute, "op": f.op}
        return {"attribute": f.attribute, "op": f.op, "value": _thaw(f.value)}
    if isinstance(f, All):
        return {"all": [filter_to_json(child) for child in f.filters]}
    if isinstance(f, Any_):
        return {"any": [filter_to_json(child) for child in f.filters]}
    if isinstance(f, Not):
        return {"not": filter_to_json(f.filter)}
    if isinstance(f, UsedApp):
        return {"used_app": f.app_id}
    return {"event": f.event, "op": f.op, "count": f.count}


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, raw: object, path: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            _fail(path, f"filters nest more than {MAX_DEPTH} levels deep")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            _fail(path, f"the filter has more than {MAX_NODES} nodes")
        if not isinstance(raw, dict):
            _fail(path, f"must be an object, not {_kind(raw)}")
        kinds = [kind for kind in _KINDS if kind in raw]
        if not kinds:
            _fail(path, f"needs one of the keys {_names(_KINDS, 'or')}")
        if len(kinds) > 1:
            _fail(path, f"{_names(kinds, 'and')} cannot be in the same node")
        kind = kinds[0]
        unknown = [key for key in raw if key not in _KEYS[kind]]
        if unknown:
            what = "unknown key" if len(unknown) == 1 else "unknown keys"
            _fail(path, f"{what} {', '.join(_quote(key) for key in unknown)}")
        if kind == "all" or kind == "any":
            items = raw[kind]
            if not isinstance(items, list) or not items:
                _fail(f"{path}.{kind}", "must be a non-empty array" + _not_kind(items, list))
            children = tuple(
                self.node(item, f"{path}.{kind}[{i}]", depth + 1) for i, item in enumerate(items)
            )
            return All(children) if kind == "all" else Any_(children)
        if kind == "not":
            return Not(self.node(raw["not"], f"{path}.not", depth + 1))
        if kind == "used_app":
            app_id = raw["used_app"]
            if not isinstance(app_id, str) or not app_id:
                _fail(f"{path}.used_app", "must be a non-empty string" + _not_kind(app_id, str))
            return UsedApp(app_id)
        if kind == "event":
            return _event_count(raw, path)
        return _attribute_condition(raw, path)


def _event_count(raw: dict[Any, Any], path: str) -> EventCount:
    name = _name(raw["event"], f"{path}.event")
    op = _op(raw, path)
    if op not in COUNT_OPS:
        if op in ATTRIBUTE_OPS:
            _fail(
                f"{path}.op",
                f"{_quote(op)} does not apply to an event count; use {_names(COUNT_OPS, 'or')}",
            )
        _fail(f"{path}.op", f"unknown operator {_quote(op)}")
    if "count" not in raw:
        _fail(f"{path}.count", "is required")
    count = raw["count"]
    if type(count) is not int or count < 0:
        shown = repr(count) if _is_number(count) else _kind(count)
        _fail(f"{path}.count", f"must be a non-negative integer, not {shown}")
    return EventCount(name, op, count)


def _attribute_condition(raw: dict[Any, Any], path: str) -> AttributeCondition:
    name = _name(raw["attribute"], f"{path}.attribute")
    op = _op(raw, path)
    if op not in ATTRIBUTE_OPS:
        _fail(f"{path}.op", f"unknown operator {_quote(op)}")
    where = f"{path}.value"
    if op in _NO_VALUE:
        if "value" in raw:
            _fail(where, f"must be left out for {_quote(op)}")
        return AttributeCondition(name, op, None)
    if "value" not in raw:
        _fail(where, f"is required for {_quote(op)}")
    value = raw["value"]
    if op in _ORDERINGS:
        if isinstance(value, str):
            try:
                parse_instant(value, None)
            except TimeParseError as exc:
                _fail(where, f"{_quote(value)} {exc}")
        elif not _is_number(value):
            _fail(
                where,
                f"must be a number or an ISO 8601 date or datetime string for "
                f"{_quote(op)}, not {_kind(value)}",
            )
        elif not math.isfinite(value):
            _fail(where, "must be a finite number")
    elif op == "contains" or op == "starts_with":
        if not isinstance(value, str):
            _fail(where, f"must be a string for {_quote(op)}, not {_kind(value)}")
    elif op == "includes":
        if isinstance(value, list | dict):
            _fail(
                where,
                f"must be a string, number, boolean or null for {_quote(op)}, not {_kind(value)}",
            )
    elif op == "in":
        if not isinstance(value, list) or not value:
            _fail(where, 'must be a non-empty array for "in"' + _not_kind(value, list))
        for i, item in enumerate(value):
            _not_null(item, f"{where}[{i}]", op)
    else:
        _not_null(value, where, op)
    return AttributeCondition(name, op, _freeze(value, where, 0))


def _name(raw: object, path: str) -> str:
    if not isinstance(raw, str) or not raw:
        _fail(path, "must be a non-empty string" + _not_kind(raw, str))
    # Names are stored as /users/track normalises them; a filter names them the same way.
    name = normalize_name(raw)
    problem = name_problem(name)
    if problem is not None:
        _fail(path, problem)
    return name


def _op(raw: dict[Any, Any], path: str) -> Any:
    if "op" not in raw:
        _fail(f"{path}.op", "is required")
    op = raw["op"]
    if not isinstance(op, str):
        _fail(f"{path}.op", f"must be a string, not {_kind(op)}")
    return op


def _not_null(value: object, path: str, op: str) -> None:
    # Setting an attribute to null removes it, so no attribute is ever null.
    if value is None:
        _fail(path, f'must not be null for {_quote(op)} (use "exists" or "not_exists")')


def _freeze(value: object, path: str, depth: int) -> FrozenJSON:
    """A read-only copy of a JSON value, refusing what JSON cannot hold."""
    if depth > MAX_DEPTH:
        _fail(path, f"values nest more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            _fail(path, "must be a finite number")
        return value
    if isinstance(value, list):
        return tuple(_freeze(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    if isinstance(value, dict):
        frozen: dict[str, FrozenJSON] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(path, f"object keys must be strings, not {_kind(key)}")
            inner = f"{path}.{key}" if key.isidentifier() else f"{path}[{_quote(key)}]"
            frozen[key] = _freeze(item, inner, depth + 1)
        return MappingProxyType(frozen)
    _fail(path, f"must be a JSON value, not {type(value).__name__}")


def _thaw(value: FrozenJSON) -> object:
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    return value


def _fail(path: str, problem: str) -> NoReturn:
    raise FilterError(f"{path}: {problem}")


def _quote(text: object) -> str:
    """`text` quoted for a one-line message: JSON escapes, at most 64 characters."""
    shown = text if isinstance(text, str) else repr(text)
    if len(shown) > 64:
        shown = shown[:64] + "..."
    return json.dumps(shown)


def _names(names: tuple[str, ...] | list[str], last: str) -> str:
    quoted = [_quote(name) for name in names]
    return ", ".join(quoted[:-1]) + f" {last} " + quoted[-1]


def _kind(value: object) -> str:
    """The JSON name of a value's type, with an article."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "an array" if value else "an empty array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _not_kind(value: object, expected: type) -> str:
    """`, not <kind>` when `value` is of another type than `expected`, else nothing."""
    return "" if isinstance(value, expected) else f", not {_kind(value)}"


# --- evaluation --------------------------------------------------------------------------


def matches(f: Filter, state: Facts) -> bool:
    """Whether the user in `state` is in the segment `f`."""
    if isinstance(f, AttributeCondition):
        return _match_attribute(f, state.attributes)
    # Loops rather than all()/any(): no generator per node, and this runs per event.
    if isinstance(f, All):
        for child in f.filters:  # noqa: SIM110
            if not matches(child, state):
                return False
        return True
    if isinstance(f, Any_):
        for child in f.filters:  # noqa: SIM110
            if matches(child, state):
                return True
        return False
    if isinstance(f, Not):
        return not matches(f.filter, state)
    if isinstance(f, EventCount):
        return _COMPARE[f.op](state.event_counts.get(f.event, 0), f.count)
    return f.app_id in state.used_apps


def _match_attribute(c: AttributeCondition, attributes: Mapping[str, Any]) -> bool:
    value = attributes.get(c.attribute)
    # A missing attribute fails every condition but not_exists (null counts as missing).
    if value is None:
        return c.op == "not_exists"
    return _TESTS[c.op](c, value)


def _eq(c: AttributeCondition, value: Any) -> bool:
    return _key(value) == c.key


def _ordered(c: AttributeCondition, value: Any) -> bool:
    if c.instant is not None:
        if type(value) is not str:
            return False
        instant = _instant(value)
        return instant is not None and _COMPARE[c.op](instant, c.instant)
    return _is_number(value) and bool(_COMPARE[c.op](value, c.value))


def _includes(c: AttributeCondition, value: Any) -> bool:
    if type(value) is not list:
        return False
    if type(c.value) is str:
        return c.value in value  # a string equals only a string: skip the keys
    return any(_key(item) == c.key for item in value)


_TESTS: Final[Mapping[str, Callable[[AttributeCondition, Any], bool]]] = {
    "eq": _eq,
    "ne": lambda c, value: not _eq(c, value),
    "in": lambda c, value: _key(value) in c.keys,
    "exists": lambda c, value: True,
    "not_exists": lambda c, value: False,
    "gt": _ordered,
    "gte": _ordered,
    "lt": _ordered,
    "lte": _ordered,
    "contains": lambda c, value: (
        type(value) is str and isinstance(c.value, str) and c.value in value
    ),
    "starts_with": lambda c, value: (
        type(value) is str and isinstance(c.value, str) and value.startswith(c.value)
    ),
    "includes": _includes,
}

_COMPARE: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
}


@lru_cache(maxsize=4096)
def _instant(text: str) -> int | None:
    """An attribute's string as microseconds since the epoch, or None if it is no date."""
    # The longest form parse_instant reads is about 35 characters; anything longer is not
    # a date, and leaving it out of the cache bounds the cache's memory.
    if len(text) > 40:
        return None
    try:
        return to_us(parse_instant(text, None))
    except TimeParseError:
        return None


def _key(value: object) -> Hashable:
    """A value's identity under JSON equality: 1 == 1.0, but true != 1 and "1" != 1."""
    kind = type(value)
    if kind is str:
        return ("s", value)
    if kind is bool:
        return ("b", value)
    if kind is int or kind is float:
        return ("n", value)
    if value is None:
        return ("z",)
    if isinstance(value, list | tuple):
        return ("a", tuple(_key(item) for item in value))
    if isinstance(value, Mapping):
        return ("o", frozenset((key, _key(item)) for key, item in value.items()))
    return ("?", id(value))  # not JSON: equal to nothing else


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- dependencies ------------------------------------------------------------------------


def referenced(f: Filter) -> Dependencies:
    """The attribute names, event names and whether app use appear anywhere in `f`."""
    attributes: set[str] = set()
    events: set[str] = set()
    uses_apps = False
    pending: list[Filter] = [f]
    while pending:
        node = pending.pop()
        if isinstance(node, All | Any_):
            pending.extend(node.filters)
        elif isinstance(node, Not):
            pending.append(node.filter)
        elif isinstance(node, AttributeCondition):
            attributes.add(node.attribute)
        elif isinstance(node, EventCount):
            events.add(node.event)
        else:
            uses_apps = True
    return Dependencies(frozenset(attributes), frozenset(events), uses_apps)
