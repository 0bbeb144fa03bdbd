"""The store contract: every store behaves like the in-memory reference."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventtally.domain.idempotency import Idempotency, body_hash
from eventtally.domain.instants import from_us
from eventtally.domain.model import PERMISSIONS, EventStatus, EventUpdate, SeriesQuery
from eventtally.domain.track import TrackOutcome, parse_track
from eventtally.errors import ConflictError, IdempotencyConflict
from eventtally.store.base import SLOT_US, Store, new_secret
from eventtally.store.memory import MemoryStore
from tests.stores import DURABLE, FOLDS, KINDS, Stores

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, stores: Stores) -> Iterator[Store]:
    with stores.open(request.param) as store:
        yield store


def track(store: Store, workspace_id: int, body: object) -> tuple[int, list[str]]:
    outcome = store.track(workspace_id, parse_track(body, NOW), NOW).result()
    return outcome.events_processed, [e.type for e in outcome.errors]


def test_workspaces(store: Store) -> None:
    first = store.create_workspace("a", "UTC", NOW)
    store.create_workspace("b", "Asia/Kolkata", NOW)
    with pytest.raises(ConflictError):
        store.create_workspace("a", "UTC", NOW)
    assert [w.name for w in store.list_workspaces()] == ["a", "b"]
    assert store.update_workspace("a", "Europe/London").time_zone == "Europe/London"
    assert store.workspace("a") is not None
    assert store.workspace("a").id == first.id  # type: ignore[union-attr]
    assert store.workspace("zzz") is None


def test_keys_are_stored_hashed_and_revocable(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    secret = new_secret()
    key = store.add_key(ws.id, "k", secret, frozenset({"events.list"}), NOW)
    assert secret not in repr(key)
    assert key.prefix == secret[:8]
    found = store.authenticate(secret)
    assert found is not None
    assert found[0].id == ws.id
    assert found[1].permissions == frozenset({"events.list"})
    assert store.authenticate(secret + "x") is None
    store.revoke_key(ws.id, key.id, NOW)
    assert store.authenticate(secret) is None
    assert [k.revoked for k in store.list_keys(ws.id)] == [True]


def test_keys_belong_to_one_workspace(store: Store) -> None:
    a = store.create_workspace("a", "UTC", NOW)
    b = store.create_workspace("b", "UTC", NOW)
    key = store.add_key(a.id, "k", new_secret(), frozenset(PERMISSIONS), NOW)
    with pytest.raises(ConflictError):
        store.revoke_key(b.id, key.id, NOW)
    assert store.list_keys(b.id) == []


def test_apps_are_per_workspace(store: Store) -> None:
    a = store.create_workspace("a", "UTC", NOW)
    b = store.create_workspace("b", "UTC", NOW)
    app = store.create_app(a.id, "ios", NOW)
    assert store.app_by_api_id(a.id, app.app_id) == app
    assert store.app_by_api_id(b.id, app.app_id) is None


def test_identity_and_app_rules(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    other = store.create_workspace("b", "UTC", NOW)
    foreign_app = store.create_app(other.id, "x", NOW).app_id
    when = "2025-06-01T12:00:00Z"
    body = {
        "attributes": [
            {"user_alias": {"alias_name": "n", "alias_label": "l"}, "_update_existing_only": False}
        ],
        "events": [
            {"external_id": "u", "name": "e", "time": when},
            {"user_alias": {"alias_name": "n", "alias_label": "l"}, "name": "e", "time": when},
            {"user_alias": {"alias_name": "?", "alias_label": "l"}, "name": "e", "time": when},
            {"braze_id": "0" * 24, "name": "e", "time": when},
            {"external_id": "u", "name": "e", "time": when, "app_id": foreign_app},
            {"email": "A@example.com", "name": "e", "time": when},
            {"email": "a@example.com", "name": "e", "time": when, "_update_existing_only": True},
        ],
    }
    processed, errors = track(store, ws.id, body)
    assert processed == 4
    assert errors == [
        "no user has this user_alias and '_update_existing_only' is true",
        "'braze_id' does not match any user",
        "'app_id' is not a known app",
    ]


def test_catalogue_and_blocklist(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    when = "2025-06-01T12:00:00Z"
    track(store, ws.id, {"events": [{"external_id": "u", "name": n, "time": when} for n in "cab"]})
    assert store.event_names(ws.id, 0, 10) == ["a", "b", "c"]
    assert store.event_names(ws.id, 1, 1) == ["b"]
    info = store.update_event(ws.id, "b", EventUpdate(blocklisted=True, tags=("t",)))
    assert info.status is EventStatus.BLOCKLISTED
    assert info.tags == ("t",)
    assert store.event_names(ws.id, 0, 10) == ["a", "c"]
    assert [i.name for i in store.event_catalogue(ws.id, 0, 10)] == ["a", "b", "c"]
    processed, _ = track(
        store, ws.id, {"events": [{"external_id": "u", "name": "b", "time": when}]}
    )
    assert processed == 1
    start = 1_748_736_000_000_000  # 2025-06-01T00:00:00Z
    query = SeriesQuery(ws.id, "b", ((start, start + 24 * HOUR),))
    assert store.count_series(query) == [0]
    store.update_event(ws.id, "new", EventUpdate(description="made by hand"))
    assert store.event_catalogue(ws.id, 3, 1)[0].description == "made by hand"


def keyed(
    store: Store, workspace_id: int, body: object, key: str = "k", now: int = NOW
) -> TrackOutcome:
    idempotency = Idempotency(key, body_hash(body), HOUR)
    return store.track(workspace_id, parse_track(body, now), now, idempotency).result()


def day_of(store: Store, workspace_id: int, name: str) -> int:
    start = 1_748_736_000_000_000  # 2025-06-01T00:00:00Z
    (n,) = store.count_series(SeriesQuery(workspace_id, name, ((start, start + 24 * HOUR),)))
    return n


def _body(*names: str, **fields: object) -> dict[str, list[dict[str, object]]]:
    return {
        "events": [
            {"external_id": "u", "name": n, "time": "2025-06-01T12:00:00Z", **fields} for n in names
        ]
    }


def test_idempotency_key_replays_the_recorded_outcome(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    body = _body("e", "e")
    body["events"] += _body("e", app_id="not-an-app")["events"]
    first = keyed(store, ws.id, body)
    assert not first.replayed
    assert (first.events_processed, len(first.errors)) == (2, 1)
    for later in (NOW + 1, NOW + HOUR - 1):
        again = keyed(store, ws.id, body, now=later)
        assert again.replayed
        assert (again.attributes_processed, again.events_processed) == (0, 2)
        assert (again.purchases_processed, again.errors) == (0, first.errors)
    assert day_of(store, ws.id, "e") == 2
    assert track(store, ws.id, body) == (2, [e.type for e in first.errors])  # no key: applied
    assert day_of(store, ws.id, "e") == 4


def test_idempotency_key_with_another_body_conflicts_and_applies_nothing(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    keyed(store, ws.id, _body("first"))
    with pytest.raises(IdempotencyConflict) as raised:
        keyed(store, ws.id, _body("second"), now=NOW + 1)
    assert raised.value.status == 422
    assert store.event_names(ws.id, 0, 10) == ["first"]
    assert keyed(store, ws.id, _body("first"), now=NOW + 2).replayed


def test_idempotency_key_expires_after_its_retention(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    keyed(store, ws.id, _body("e"))
    again = keyed(store, ws.id, _body("e"), now=NOW + HOUR)
    assert not again.replayed
    assert day_of(store, ws.id, "e") == 2
    # Recorded afresh at NOW + HOUR, for another hour.
    assert keyed(store, ws.id, _body("e"), now=NOW + 2 * HOUR - 1).replayed
    assert not keyed(store, ws.id, _body("other"), now=NOW + 2 * HOUR).replayed
    assert day_of(store, ws.id, "e") == 2
    assert day_of(store, ws.id, "other") == 1


def test_idempotency_keys_are_per_workspace(store: Store) -> None:
    a = store.create_workspace("a", "UTC", NOW)
    b = store.create_workspace("b", "UTC", NOW)
    assert not keyed(store, a.id, _body("e")).replayed
    assert not keyed(store, b.id, _body("e")).replayed
    assert not keyed(store, b.id, _body("f"), key="k2").replayed
    assert not keyed(store, a.id, _body("g"), key="k2").replayed
    assert [day_of(store, a.id, n) for n in "efg"] == [1, 0, 1]
    assert [day_of(store, b.id, n) for n in "efg"] == [1, 1, 0]


def test_an_outcome_that_applied_nothing_is_recorded_too(store: Store) -> None:
    ws = store.create_workspace("a", "UTC", NOW)
    alias = {"alias_name": "n", "alias_label": "l"}
    body = {"events": [{"user_alias": alias, "name": "e", "time": "2025-06-01T12:00:00Z"}]}
    first = keyed(store, ws.id, body)
    assert (first.events_processed, len(first.errors)) == (0, 1)
    track(store, ws.id, {"attributes": [{"user_alias": alias, "_update_existing_only": False}]})
    again = keyed(store, ws.id, body, now=NOW + 1)
    assert again.replayed
    assert (again.events_processed, again.errors) == (0, first.errors)
    assert day_of(store, ws.id, "e") == 0


ORIGIN = 1_748_736_000_000_000  # 2025-06-01T00:00:00Z

events_strategy = st.lists(
    st.tuples(
        st.integers(0, 5 * 24 * 3600 - 1),  # second within five days of ORIGIN
        st.sampled_from(["e1", "e2"]),
        st.sampled_from([None, 0, 1]),  # which app, if any
    ),
    max_size=120,
)
edges_strategy = st.lists(st.integers(0, 5 * 24 * 3600), min_size=2, max_size=12, unique=True)


def _series(
    store: Store,
    events: list[tuple[int, str, int | None]],
    buckets: tuple[tuple[int, int], ...],
    app: int | None,
) -> list[list[int]]:
    ws = store.create_workspace("w", "UTC", NOW)
    apps = [store.create_app(ws.id, f"a{i}", NOW) for i in range(2)]
    items: list[dict[str, object]] = []
    for second, name, app_index in events:
        item: dict[str, object] = {
            "external_id": "u",
            "name": name,
            "time": from_us(ORIGIN + second * 1_000_000).isoformat(),
        }
        if app_index is not None:
            item["app_id"] = apps[app_index].app_id
        items.append(item)
    for i in range(0, len(items), 75):
        track(store, ws.id, {"events": items[i : i + 75]})
    app_key = None if app is None else apps[app].id
    return [store.count_series(SeriesQuery(ws.id, n, buckets, app_key)) for n in ("e1", "e2")]


counts_strategies = {
    "events": events_strategy,
    "edges": edges_strategy,
    "grid": st.booleans(),
    "app": st.sampled_from([None, 0, 1]),
}
counts_examples = given(**counts_strategies)


def check_counts(
    store: Store,
    events: list[tuple[int, str, int | None]],
    edges: list[int],
    grid: bool,
    app: int | None,
) -> None:
    """Aggregates (buckets on the 15-minute grid) and raw counts (off it) both match a scan."""
    points = sorted({(e // 900 * 900) if grid else e for e in edges})
    buckets = tuple(
        (ORIGIN + a * 1_000_000, ORIGIN + b * 1_000_000) for a, b in itertools.pairwise(points)
    )
    if grid:
        assert all(start % SLOT_US == 0 and end % SLOT_US == 0 for start, end in buckets)
    assert _series(store, events, buckets, app) == _series(MemoryStore(), events, buckets, app)


@settings(max_examples=40, deadline=None)
@given(**counts_strategies, fold=FOLDS)
@pytest.mark.parametrize("kind", DURABLE)
def test_counts_equal_the_reference(
    kind: str,
    stores: Stores,
    events: list[tuple[int, str, int | None]],
    edges: list[int],
    grid: bool,
    app: int | None,
    fold: int,
) -> None:
    with stores.open(kind, fold) as store:
        check_counts(store, events, edges, grid, app)


# Fewer examples on a cluster: every example creates its tables on two servers.
@settings(max_examples=8, deadline=None)
@counts_examples
def test_counts_on_a_cluster_equal_the_reference(
    stores: Stores,
    events: list[tuple[int, str, int | None]],
    edges: list[int],
    grid: bool,
    app: int | None,
) -> None:
    with stores.open("cluster") as store:
        check_counts(store, events, edges, grid, app)


# --- Segments ------------------------------------------------------------------------------
# Random scripts (tests/segment_oracle.py) applied to each store: the counts of every live
# tracked segment, on and off the 15-minute grid, and every segment's sizes around every
# step equal the in-memory reference's, and both equal the replay oracle's.

from eventtally.domain.model import Segment, SegmentChanges  # noqa: E402
from eventtally.domain.segments import FilterError  # noqa: E402
from tests.segment_oracle import (  # noqa: E402
    EVENT_NAMES,
    SYMBOLIC_APPS,
    Op,
    Replay,
    requests,
    scripts,
    substitute_apps,
    track_body,
)

SEGMENT_START = 1_767_916_800_000_000  # 2026-01-09T00:00:00Z
GRID_HOUR = 4 * SLOT_US
Readings = tuple[dict[tuple[str, str, str | None], list[int]], dict[str, list[int]]]


def draft(workspace_id: int, name: str, filter_json: object, tracking: bool = True) -> Segment:
    return Segment(
        id=0,
        workspace_id=workspace_id,
        segment_id="",
        name=name,
        filter=filter_json,
        tracking=tracking,
    )


def segment_changes(op: Op) -> SegmentChanges:
    if op[0] == "change_filter":
        return SegmentChanges(filter=op[2])
    if op[0] == "set_tracking":
        return SegmentChanges(tracking=op[2])
    assert op[0] == "archive"
    return SegmentChanges(archived=True)


def segment_readings(
    store: Store, symbolic: list[Op], cuts: list[int]
) -> tuple[Readings, Readings]:
    """What the store and what the oracle give for the script: counts of every live tracked
    segment by (segment, event, app) over hourly buckets then buckets cut off the grid, and
    sizes of every segment just before, at and after every step."""
    ws = store.create_workspace("w", "UTC", NOW)
    apps = {name: store.create_app(ws.id, name, NOW) for name in SYMBOLIC_APPS}
    script: list[Op] = substitute_apps(symbolic, {n: a.app_id for n, a in apps.items()})
    segments: dict[str, Segment] = {}
    for step in requests(script):
        op, now = step[0], step[0][-1]
        if op[0] == "create_segment":
            _, seg, filter_json, tracked, _ = op
            segments[seg] = store.create_segment(
                ws.id, draft(ws.id, seg, filter_json, tracked), now
            )
        elif op[0] in ("change_filter", "set_tracking", "archive"):
            store.update_segment(ws.id, segments[op[1]].segment_id, segment_changes(op), now)
        else:
            outcome = store.track(ws.id, parse_track(track_body(step), now), now).result()
            assert outcome.errors == [], outcome.errors

    replay = Replay(script)
    first = min([SEGMENT_START, *(e.time for e in replay.events)]) // GRID_HOUR * GRID_HOUR
    last = (replay.last_now // GRID_HOUR + 2) * GRID_HOUR
    hourly = [(t, t + GRID_HOUR) for t in range(first, last, GRID_HOUR)]
    edges = sorted({first + 7, *(first + (last - first) * cut // 1000 + 1 for cut in cuts)})
    ranges = (*hourly, *itertools.pairwise(edges))
    store_counts: dict[tuple[str, str, str | None], list[int]] = {}
    oracle_counts: dict[tuple[str, str, str | None], list[int]] = {}
    for seg, segment in segments.items():
        if not replay.tracked(seg):
            continue
        for name in EVENT_NAMES:
            for app in (None, *SYMBOLIC_APPS):
                key = None if app is None else apps[app].id
                query = SeriesQuery(ws.id, name, ranges, app=key, segment=segment.id)
                store_counts[(seg, name, app)] = store.count_series(query)
                real_app = None if app is None else apps[app].app_id
                oracle_counts[(seg, name, app)] = [
                    replay.count(seg, name, start, end, real_app) for start, end in ranges
                ]
    nows = {op[-1] for op in script}
    instants = sorted({now + d for now in nows for d in (-1, 0, 1)} | {first, last})
    store_sizes = {seg: store.segment_sizes(s.id, instants) for seg, s in segments.items()}
    oracle_sizes = {seg: [replay.size_at(seg, t) for t in instants] for seg in segments}
    return (store_counts, store_sizes), (oracle_counts, oracle_sizes)


segment_strategies = {
    "script": scripts(SEGMENT_START, lifecycle=True),
    "cuts": st.lists(st.integers(0, 999), min_size=1, max_size=8),
}
segment_examples = given(**segment_strategies)


def check_segments(store: Store, script: list[Op], cuts: list[int]) -> None:
    from_store, _ = segment_readings(store, script, cuts)
    from_reference, from_oracle = segment_readings(MemoryStore(), script, cuts)
    assert from_store == from_reference
    assert from_reference == from_oracle


@settings(max_examples=40, deadline=None)
@given(**segment_strategies, fold=FOLDS)
@pytest.mark.parametrize("kind", DURABLE)
def test_segments_equal_the_reference_and_the_oracle(
    kind: str, stores: Stores, script: list[Op], cuts: list[int], fold: int
) -> None:
    with stores.open(kind, fold) as store:
        check_segments(store, script, cuts)


@settings(max_examples=8, deadline=None)
@segment_examples
def test_segments_on_a_cluster_equal_the_reference_and_the_oracle(
    stores: Stores, script: list[Op], cuts: list[int]
) -> None:
    with stores.open("cluster") as store:
        check_segments(store, script, cuts)


def _segment_world(store: Store) -> tuple[int, int]:
    """A workspace with users u1 (plan pro) and u2 (plan free), each with one `e` at
    2025-06-01T12:00Z, and one app; its id and the app's key."""
    ws = store.create_workspace("a", "UTC", NOW)
    app = store.create_app(ws.id, "ios", NOW)
    track(
        store,
        ws.id,
        {
            "attributes": [
                {"external_id": "u1", "plan": "pro"},
                {"external_id": "u2", "plan": "free"},
            ],
            "events": [
                {"external_id": u, "name": "e", "time": "2025-06-01T12:00:00Z", "app_id": a}
                for u, a in (("u1", app.app_id), ("u2", None))
            ],
        },
    )
    return ws.id, app.id


PRO = {"attribute": "plan", "op": "eq", "value": "pro"}
DAY_OF_EVENTS = (ORIGIN, ORIGIN + 24 * HOUR)
# One bucket on the 15-minute grid and one off it (counted from the raw events).
BOTH_GRIDS = (DAY_OF_EVENTS, (ORIGIN + 1, ORIGIN + 24 * HOUR - 1))


def segment_counts(store: Store, ws: int, segment: Segment, app: int | None = None) -> list[int]:
    return store.count_series(SeriesQuery(ws, "e", BOTH_GRIDS, app=app, segment=segment.id))


def test_tracked_segments_are_limited(store: Store) -> None:
    ws, _ = _segment_world(store)
    a = store.create_segment(ws, draft(ws, "a", PRO), NOW, tracked_limit=2)
    store.create_segment(ws, draft(ws, "b", PRO), NOW, tracked_limit=2)
    with pytest.raises(ConflictError, match="limit"):
        store.create_segment(ws, draft(ws, "c", PRO), NOW, tracked_limit=2)
    assert [s.name for s in store.list_segments(ws)] == ["a", "b"]  # nothing made
    # Untracked segments are not limited; tracking one is.
    c = store.create_segment(ws, draft(ws, "c", PRO, tracking=False), NOW, tracked_limit=2)
    with pytest.raises(ConflictError, match="limit"):
        store.update_segment(ws, c.segment_id, SegmentChanges(tracking=True), NOW, 2)
    assert store.find_segment(ws, c.segment_id).tracking is False  # type: ignore[union-attr]
    # A segment already tracked may change at the limit; an archived one frees a place.
    store.update_segment(ws, a.segment_id, SegmentChanges(tracking=True, name="a2"), NOW, 2)
    store.update_segment(ws, a.segment_id, SegmentChanges(archived=True), NOW, 2)
    store.update_segment(ws, c.segment_id, SegmentChanges(tracking=True), NOW, 2)
    with pytest.raises(ConflictError, match="limit"):
        store.create_segment(ws, draft(ws, "d", PRO), NOW, tracked_limit=2)
    assert [(s.name, s.tracking) for s in store.list_segments(ws)] == [("b", True), ("c", True)]


def test_archiving_a_segment_clears_its_members_and_counts(store: Store) -> None:
    ws, app = _segment_world(store)
    segment = store.create_segment(ws, draft(ws, "pro", PRO), NOW)
    assert segment_counts(store, ws, segment) == [1, 1]
    assert segment_counts(store, ws, segment, app) == [1, 1]
    later = NOW + HOUR
    archived = store.update_segment(ws, segment.segment_id, SegmentChanges(archived=True), later)
    assert archived.archived
    assert archived.updated_at == later
    assert store.segment_sizes(segment.id, [NOW, NOW + 1, later, later + 1]) == [0, 1, 1, 0]
    assert store.list_segments(ws) == []
    assert [s.archived for s in store.list_segments(ws, include_archived=True)] == [True]
    # Later requests neither count for it nor change its size.
    body = {
        "attributes": [{"external_id": "u3", "plan": "pro"}],
        "events": [{"external_id": "u1", "name": "e", "time": "2025-06-01T13:00:00Z"}],
    }
    store.track(ws, parse_track(body, later + HOUR), later + HOUR).result()
    assert store.segment_sizes(segment.id, [later + 2 * HOUR]) == [0]
    assert store.count_series(SeriesQuery(ws, "e", BOTH_GRIDS, segment=segment.id)) == [0, 0]
    with pytest.raises(ConflictError):
        store.update_segment(ws, segment.segment_id, SegmentChanges(name="x"), later + 2 * HOUR)


def test_untracking_then_tracking_again_rebuilds_from_stored_events(store: Store) -> None:
    ws, _ = _segment_world(store)
    segment = store.create_segment(ws, draft(ws, "pro", PRO), NOW)
    assert segment_counts(store, ws, segment) == [1, 1]  # u1's event
    t1, t2, t3 = NOW + HOUR, NOW + 2 * HOUR, NOW + 3 * HOUR
    store.update_segment(ws, segment.segment_id, SegmentChanges(tracking=False), t1)
    # While untracked: u1 sends another event; u2 turns pro. Membership still moves.
    body = {
        "attributes": [{"external_id": "u2", "plan": "pro"}],
        "events": [{"external_id": "u1", "name": "e", "time": "2025-06-01T14:00:00Z"}],
    }
    store.track(ws, parse_track(body, t2), t2).result()
    assert store.segment_sizes(segment.id, [t1 + 1, t2 + 1]) == [1, 2]
    store.update_segment(ws, segment.segment_id, SegmentChanges(tracking=True), t3)
    # Rebuilt as members are now: u1's two events and u2's one.
    assert segment_counts(store, ws, segment) == [3, 3]
    # And counted at ingest again from then on.
    body = {"events": [{"external_id": "u2", "name": "e", "time": "2025-06-01T15:00:00Z"}]}
    store.track(ws, parse_track(body, t3 + 1), t3 + 1).result()
    assert segment_counts(store, ws, segment) == [4, 4]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "change",
    [SegmentChanges(tracking=False), SegmentChanges(archived=True)],
    ids=["untrack", "archive"],
)
def test_untracking_or_archiving_clears_counts_on_and_off_the_grid(
    kind: str, change: SegmentChanges, stores: Stores
) -> None:
    with stores.open(kind) as store:
        ws, _ = _segment_world(store)
        segment = store.create_segment(ws, draft(ws, "pro", PRO), NOW)
        body = {"events": [{"external_id": "u1", "name": "e", "time": "2025-06-01T13:00:00Z"}]}
        store.track(ws, parse_track(body, NOW + 1), NOW + 1).result()  # counted at ingest
        assert segment_counts(store, ws, segment) == [2, 2]
        store.update_segment(ws, segment.segment_id, change, NOW + 2)
        assert segment_counts(store, ws, segment) == [0, 0]


def test_changing_the_filter_redecides_every_stored_event(store: Store) -> None:
    ws, app = _segment_world(store)
    segment = store.create_segment(ws, draft(ws, "pro", PRO), NOW)
    body = {"events": [{"external_id": "u1", "name": "e", "time": "2025-06-01T13:00:00Z"}]}
    store.track(ws, parse_track(body, NOW + 1), NOW + 1).result()
    assert segment_counts(store, ws, segment) == [2, 2]
    free = {"attribute": "plan", "op": "eq", "value": "free"}
    store.update_segment(ws, segment.segment_id, SegmentChanges(filter=free), NOW + 2)
    assert segment_counts(store, ws, segment) == [1, 1]  # u2's only
    assert segment_counts(store, ws, segment, app) == [0, 0]
    assert store.segment_sizes(segment.id, [NOW + 2, NOW + 3]) == [1, 1]  # one left, one joined
    # The same filter again is no change: nothing is re-decided.
    store.update_segment(ws, segment.segment_id, SegmentChanges(filter=free), NOW + 4)
    assert segment_counts(store, ws, segment) == [1, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_segment_with_a_bad_filter_is_refused_and_nothing_is_kept(
    kind: str, stores: Stores
) -> None:
    bad = {"attribute": "plan", "op": "bogus"}
    with stores.open(kind) as store:
        ws, _ = _segment_world(store)
        kept = store.create_segment(ws, draft(ws, "kept", PRO), NOW)
        with pytest.raises(FilterError):
            store.create_segment(ws, draft(ws, "bad", bad), NOW + 1)
        with pytest.raises(FilterError):
            store.update_segment(ws, kept.segment_id, SegmentChanges(filter=bad), NOW + 2)
        assert [(s.name, s.filter) for s in store.list_segments(ws)] == [("kept", PRO)]
        body = {"events": [{"external_id": "u1", "name": "e", "time": "2025-06-01T13:00:00Z"}]}
        assert store.track(ws, parse_track(body, NOW + 3), NOW + 3).result().events_processed == 1
        assert segment_counts(store, ws, kept) == [2, 2]
