"""The store contract: every store behaves like the in-memory reference."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
from eventtally.store.sqlite import SqliteStore

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store: Store = MemoryStore() if request.param == "memory" else SqliteStore.open(tmp_path)
    yield store
    store.close()


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


@settings(max_examples=40, deadline=None)
@given(
    events=events_strategy,
    edges=edges_strategy,
    grid=st.booleans(),
    app=st.sampled_from([None, 0, 1]),
)
def test_sqlite_counts_equal_the_reference(
    events: list[tuple[int, str, int | None]], edges: list[int], grid: bool, app: int | None
) -> None:
    """Aggregates (buckets on the 15-minute grid) and raw counts (off it) both match a scan."""
    points = sorted({(e // 900 * 900) if grid else e for e in edges})
    buckets = tuple(
        (ORIGIN + a * 1_000_000, ORIGIN + b * 1_000_000) for a, b in itertools.pairwise(points)
    )
    if grid:
        assert all(start % SLOT_US == 0 and end % SLOT_US == 0 for start, end in buckets)
    with tempfile.TemporaryDirectory() as tmp:
        reference, sqlite = MemoryStore(), SqliteStore.open(Path(tmp))
        try:
            assert _series(sqlite, events, buckets, app) == _series(reference, events, buckets, app)
        finally:
            sqlite.close()
