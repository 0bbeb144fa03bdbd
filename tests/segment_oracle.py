"""A brute-force replay oracle for segments: membership, sizes and tracked event series.

It shares no code with `eventtally`: it has its own evaluator for the part of the filter
language the generated filters use (attribute `eq` / `gte` / `exists` / `not_exists`,
event counts `gte` / `lte` / `eq`, `used_app`, `all` / `any` / `not`), and it decides
everything by re-evaluating every filter against every user after every step, never by
tracking what changed. The rules it replays (the issue's, architecture decision 5):

- A user exists from the first item that names them; a new user's state is empty.
- One `/users/track` request (consecutive track operations with the same `now`) applies
  its attributes first, then its events, then its purchases (Braze's order), each kind
  in the order given.
- An event processed while a segment is tracked counts for it when its user matches the
  filter once the event itself is counted (its event count and its app included).
- Creating a tracked segment, changing its filter or switching tracking on re-decides
  every stored event by its user's state at that moment, replacing earlier decisions.
- Membership is recorded at each step's `now`; a segment's size at an instant is its
  number of members after the last step before that instant (0 before it existed).

A script is a list of operations, every `now` in microseconds since the epoch:

    ("attrs", user, {name: value or None}, now)       None removes the attribute
    ("event", user, name, app_id or None, event_time, now)
    ("purchase", user, app_id, now)
    ("create_segment", seg, filter_json, tracked, now)
    ("change_filter", seg, filter_json, now)
    ("set_tracking", seg, tracked, now)                 extension for the store contract
    ("archive", seg, now)                               extension for the store contract

`users`, `seg`s and `app_id`s are opaque strings. The generators at the end of this
module write scripts over symbolic apps ("app0", "app1"); `substitute_apps` swaps in the
real app ids before a script is applied and replayed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

Op = tuple[Any, ...]
TRACK_KINDS = ("attrs", "event", "purchase")
SEGMENT_KINDS = ("create_segment", "change_filter", "set_tracking", "archive")
_REQUEST_ORDER = {"attrs": 0, "event": 1, "purchase": 2}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the evaluator -------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: object, b: object) -> bool:
    """JSON equality for scalars: 1 == 1.0, but true != 1 and "1" != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    raise AssertionError(f"the oracle compares scalars only, not {a!r} and {b!r}")


@dataclass
class UserState:
    attributes: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set)


def evaluate(node: Mapping[str, Any], user: UserState) -> bool:
    """Whether `user` is in the segment of the filter `node`."""
    if "all" in node:
        return all(evaluate(child, user) for child in node["all"])
    if "any" in node:
        return any(evaluate(child, user) for child in node["any"])
    if "not" in node:
        return not evaluate(node["not"], user)
    if "used_app" in node:
        return node["used_app"] in user.apps
    if "event" in node:
        n = user.counts.get(node["event"], 0)
        op, count = node["op"], int(node["count"])
        if op == "gte":
            return n >= count
        if op == "lte":
            return n <= count
        if op == "eq":
            return n == count
        raise AssertionError(f"the oracle does not know event op {op!r}")
    name, op = node["attribute"], node["op"]
    present = name in user.attributes
    if op == "exists":
        return present
    if op == "not_exists":
        return not present
    if not present:
        return False
    value = user.attributes[name]
    if op == "eq":
        return json_equal(value, node["value"])
    if op == "gte":
        return _is_number(value) and value >= node["value"]
    raise AssertionError(f"the oracle does not know attribute op {op!r}")


# --- the replay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    user: str
    name: str
    app: str | None
    time: int  # microseconds since the epoch


@dataclass
class _Segment:
    filter: Mapping[str, Any]
    tracked: bool
    live: bool = True
    counted: set[int] = field(default_factory=set)  # indexes into Replay.events
    # (now, members after the step), one entry per step that changed them.
    history: list[tuple[int, frozenset[str]]] = field(default_factory=list)

    def members(self) -> frozenset[str]:
        return self.history[-1][1] if self.history else frozenset()


class Replay:
    """The state after replaying a script; query it with the methods below."""

    def __init__(self, script: Sequence[Op]) -> None:
        self.users: dict[str, UserState] = {}
        self.events: list[StoredEvent] = []
        self.segments: dict[str, _Segment] = {}
        self.last_now = 0
        for request in requests(script):
            self._step(request)

    # Queries ----------------------------------------------------------------------------
    def tracked(self, seg: str) -> bool:
        s = self.segments[seg]
        return s.live and s.tracked

    def counted_events(self, seg: str) -> list[StoredEvent]:
        """The stored events that count for the segment now, in storage order."""
        s = self.segments[seg]
        return [self.events[i] for i in sorted(s.counted)]

    def count(self, seg: str, name: str, start: int, end: int, app: str | None = None) -> int:
        """Events named `name` counted for `seg` with a time in [start, end), of `app` if given."""
        return sum(
            1
            for e in self.counted_events(seg)
            if e.name == name and start <= e.time < end and (app is None or e.app == app)
        )

    def size_at(self, seg: str, instant: int) -> int:
        """Members after the last step strictly before `instant` (0 before creation)."""
        history = self.segments[seg].history
        i = bisect.bisect_left([now for now, _ in history], instant)
        return len(history[i - 1][1]) if i else 0

    def members(self, seg: str) -> frozenset[str]:
        return self.segments[seg].members()

    # Steps ------------------------------------------------------------------------------
    def _step(self, ops: list[Op]) -> None:
        now = ops[0][-1]
        assert now >= self.last_now, "a script's `now`s never go back"
        self.last_now = now
        kind = ops[0][0]
        if kind in TRACK_KINDS:
            for op in sorted(ops, key=lambda op: _REQUEST_ORDER[op[0]]):
                self._track(op, now)
            return
        (op,) = ops
        if kind == "create_segment":
            _, seg, filter_json, tracked, _ = op
            assert seg not in self.segments, f"segment {seg} created twice"
            self.segments[seg] = _Segment(filter_json, tracked)
            self._record(now)
            self._redecide(seg)
        elif kind == "change_filter":
            _, seg, filter_json, _ = op
            s = self.segments[seg]
            assert s.live
            if filter_json == s.filter:
                return  # no change: nothing is rebuilt
            s.filter = filter_json
            self._record(now)
            self._redecide(seg)
        elif kind == "set_tracking":
            _, seg, tracked, _ = op
            s = self.segments[seg]
            assert s.live
            was, s.tracked = s.tracked, tracked
            if tracked and not was:
                self._redecide(seg)
            elif not tracked:
                s.counted = set()
        elif kind == "archive":
            _, seg, _ = op
            s = self.segments[seg]
            assert s.live
            s.live = False
            s.counted = set()
            if s.members():
                s.history.append((now, frozenset()))
        else:
            raise AssertionError(f"unknown operation {kind!r}")

    def _track(self, op: Op, now: int) -> None:
        user = op[1]
        if user not in self.users:
            self.users[user] = UserState()
            self._record(now)
        state = self.users[user]
        if op[0] == "attrs":
            for name, value in op[2].items():
                if value is None:
                    state.attributes.pop(name, None)
                else:
                    state.attributes[name] = value
            self._record(now)
        elif op[0] == "event":
            _, _, name, app, time, _ = op
            state.counts[name] = state.counts.get(name, 0) + 1
            if app is not None:
                state.apps.add(app)
            self.events.append(StoredEvent(user, name, app, min(time, now)))
            self._record(now)
            index = len(self.events) - 1
            for s in self.segments.values():
                if s.live and s.tracked and user in s.members():
                    s.counted.add(index)
        else:
            _, _, app, _ = op
            state.apps.add(app)
            self._record(now)

    def _record(self, now: int) -> None:
        """Re-evaluate every live segment for every user; log the member sets that changed."""
        for s in self.segments.values():
            if not s.live:
                continue
            members = frozenset(u for u, state in self.users.items() if evaluate(s.filter, state))
            if not s.history or s.history[-1][1] != members:
                s.history.append((now, members))

    def _redecide(self, seg: str) -> None:
        """Every stored event counts iff its user is a member now (tracked segments)."""
        s = self.segments[seg]
        members = s.members()
        s.counted = (
            {i for i, e in enumerate(self.events) if e.user in members} if s.tracked else set()
        )


def requests(script: Sequence[Op]) -> Iterator[list[Op]]:
    """The script in steps: each run of track operations sharing a `now` is one request;
    each segment operation is a step of its own."""
    current: list[Op] = []
    for op in script:
        same_request = current and current[0][0] in TRACK_KINDS and op[-1] == current[0][-1]
        if op[0] in TRACK_KINDS and same_request:
            current.append(op)
            continue
        if current:
            yield current
        current = [op]
    if current:
        yield current


# --- applying a script (test glue) ---------------------------------------------------------


def iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def track_body(ops: Sequence[Op]) -> dict[str, list[dict[str, Any]]]:
    """A `/users/track` body holding a request's operations, each array in script order."""
    body: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        if op[0] == "attrs":
            body.setdefault("attributes", []).append({"external_id": op[1], **op[2]})
        elif op[0] == "event":
            _, user, name, app, time, _ = op
            item: dict[str, Any] = {"external_id": user, "name": name, "time": iso(time)}
            if app is not None:
                item["app_id"] = app
            body.setdefault("events", []).append(item)
        else:
            _, user, app, now = op
            body.setdefault("purchases", []).append(
                {
                    "external_id": user,
                    "app_id": app,
                    "product_id": "p",
                    "currency": "USD",
                    "price": 1,
                    "time": iso(now),
                }
            )
    return body


def substitute_apps(value: Any, apps: Mapping[str, str]) -> Any:
    """`value` (a script, an operation or a filter) with symbolic app names replaced."""
    if isinstance(value, str):
        return apps.get(value, value)
    if isinstance(value, list):
        return [substitute_apps(v, apps) for v in value]
    if isinstance(value, tuple):
        return tuple(substitute_apps(v, apps) for v in value)
    if isinstance(value, dict):
        return {k: substitute_apps(v, apps) for k, v in value.items()}
    return value


# --- generating scripts --------------------------------------------------------------------

SYMBOLIC_APPS = ("app0", "app1")
EVENT_NAMES = ("buy", "view")
SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
# Seconds between steps; MIDNIGHT steps to the next local midnight of the script's zone,
# so that changes land exactly on a day's edge.
MIDNIGHT = 0
GAPS = (MIDNIGHT, 1, 60, 17 * 60, 3600, 3 * 3600, 11 * 3600 + 7, 24 * 3600, 26 * 3600 + 13)

_plan = st.sampled_from(["free", "pro", None])
_score = st.sampled_from([0, 1, 2, 3, "2", None])  # "2" is a string: never a number

leaves = st.one_of(
    st.builds(
        lambda v: {"attribute": "plan", "op": "eq", "value": v}, st.sampled_from(["free", "pro"])
    ),
    st.builds(
        lambda op, v: {"attribute": "score", "op": op, "value": v},
        st.sampled_from(["eq", "gte"]),
        st.integers(0, 3),
    ),
    st.builds(
        lambda name, op: {"attribute": name, "op": op},
        st.sampled_from(["plan", "score"]),
        st.sampled_from(["exists", "not_exists"]),
    ),
    st.builds(
        lambda name, op, n: {"event": name, "op": op, "count": n},
        st.sampled_from(EVENT_NAMES),
        st.sampled_from(["gte", "gte", "lte", "eq"]),
        st.integers(0, 3),
    ),
    st.builds(lambda app: {"used_app": app}, st.sampled_from(SYMBOLIC_APPS)),
)

filters = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=5,
)


@st.composite
def _item(draw: st.DrawFn, users: Sequence[str], now: int) -> Op:
    user = draw(st.sampled_from(users))
    kind = draw(st.sampled_from(["attrs", "event", "event", "purchase"]))
    if kind == "attrs":
        attrs = draw(
            st.fixed_dictionaries({}, optional={"plan": _plan, "score": _score}).filter(bool)
        )
        return ("attrs", user, attrs, now)
    if kind == "event":
        name = draw(st.sampled_from(EVENT_NAMES))
        app = draw(st.sampled_from((None, *SYMBOLIC_APPS)))
        ago = draw(st.integers(0, 4 * 24 * 3600)) * SECOND
        return ("event", user, name, app, now - ago, now)
    return ("purchase", user, draw(st.sampled_from(SYMBOLIC_APPS)), now)


def next_midnight(now: int, zone: str) -> int:
    """The first instant of the local date after the one holding `now`."""
    tz = ZoneInfo(zone)
    day = (EPOCH + timedelta(microseconds=now)).astimezone(tz).date() + timedelta(days=1)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)  # no zone used skips it
    return (midnight.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


@st.composite
def scripts(draw: st.DrawFn, start: int, zone: str = "UTC", lifecycle: bool = False) -> list[Op]:
    """3-6 users, 2-4 segments (the first tracked) created between 3-8 requests of 1-6
    items, and maybe filter changes; with `lifecycle`, also tracking switched off and on
    and segments archived. Every step is at a later `now` than the one before."""
    users = [f"u{i}" for i in range(draw(st.integers(3, 6)))]
    n_segments = draw(st.integers(2, 4))
    some = st.lists(st.integers(0, n_segments - 1), max_size=2, unique=True)
    steps: list[tuple[str, int]] = [("request", -1)] * draw(st.integers(3, 8))
    steps += [("create", i) for i in range(n_segments)]
    steps += [("change", i) for i in draw(some)]
    if lifecycle:
        steps += [("tracking", i) for i in draw(some) + draw(some)]
        steps += [("archive", i) for i in draw(some)]
    steps = list(draw(st.permutations(steps)))
    # A segment's steps keep their places in the script but run in a possible order:
    # creation first, archiving last.
    rank = {"create": 0, "change": 1, "tracking": 1, "archive": 2}
    for i in range(n_segments):
        places = [p for p, (_, seg) in enumerate(steps) if seg == i]
        ordered = sorted((steps[p] for p in places), key=lambda step: rank[step[0]])
        for p, step in zip(places, ordered, strict=True):
            steps[p] = step
    script: list[Op] = []
    now = start
    for kind, i in steps:
        gap = draw(st.sampled_from(GAPS))
        now = next_midnight(now, zone) if gap == MIDNIGHT else now + gap * SECOND
        seg = f"s{i}"
        if kind == "request":
            script += draw(st.lists(_item(users, now), min_size=1, max_size=6))
        elif kind == "create":
            tracked = i == 0 or draw(st.booleans())
            script.append(("create_segment", seg, draw(filters), tracked, now))
        elif kind == "change":
            script.append(("change_filter", seg, draw(filters), now))
        elif kind == "tracking":
            script.append(("set_tracking", seg, draw(st.booleans()), now))
        else:
            script.append(("archive", seg, now))
    return script
