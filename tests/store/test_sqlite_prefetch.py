"""The SQLite writer looks up a group's users and profiles in bulk (WriterCaches.prefetch):
the same users, profiles, outcomes and rows as looking each up as a request needs it."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eventtally.domain.model import Segment
from eventtally.domain.track import EventItem, Identity, TrackOutcome, TrackRequest, parse_track
from eventtally.store.ingest import Profile
from eventtally.store.sqlite import DB_FILE, SqliteStore
from eventtally.store.sqlite_tx import PendingWrites, SqliteTx, WriterCaches
from eventtally.store.sqlite_user_counts import FILE as USER_COUNTS_FILE
from tests.support import held

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SECOND = 1_000_000


@pytest.fixture(autouse=True)
def no_background_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events are folded into the per-user counts only when a read asks (PENDING_SCAN):
    the stores compared lag by what their requests did, not by when a thread woke."""
    monkeypatch.setattr("eventtally.store.sqlite.FOLD_SECONDS", 3600.0)


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / SECOND, UTC).isoformat().replace("+00:00", "Z")


def event(who: dict[str, Any], name: str, second: int, app: str | None = None) -> dict[str, Any]:
    return (
        who | {"name": name, "time": iso(NOW - second * SECOND)} | ({"app_id": app} if app else {})
    )


def purchase(who: dict[str, Any], app: str | None) -> dict[str, Any]:
    item = who | {"product_id": "p", "currency": "USD", "price": 2.5, "time": iso(NOW - SECOND)}
    return item | ({"app_id": app} if app else {})


def alias(name: str, create: bool = False) -> dict[str, Any]:
    who: dict[str, Any] = {"user_alias": {"alias_name": name, "alias_label": "crm"}}
    return who | ({"_update_existing_only": False} if create else {})


def one_at_a_time(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store look each user and profile up when a request first asks for it, as
    before bulk lookups: no prefetch, and nothing cached when a user is created."""
    caches = store._caches

    def skip(conn: sqlite3.Connection) -> None:
        caches.group = None

    caches.prefetch = skip  # type: ignore[method-assign]
    create = SqliteTx.create_user

    def create_user(tx: SqliteTx, identity: Identity) -> int:
        user = create(tx, identity)
        if tx.caches is caches:
            caches.profiles.pop(user, None)
            for key in list(caches.users):
                if caches.users[key] == user:
                    del caches.users[key]
        return user

    monkeypatch.setattr(SqliteTx, "create_user", create_user)


def seed(data: Path) -> tuple[int, dict[str, str], list[str]]:
    """A store with users (ids, aliases, emails), events, purchases and segments; events
    after the segments are not in the per-user counts file yet (a bulk load counts them,
    or past PENDING_SCAN folds them first).
    Returns the workspace, the app ids by name and the braze ids of two users."""
    store = SqliteStore.open(data)
    try:
        ws = store.create_workspace("w", "UTC", NOW).id
        apps = {name: store.create_app(ws, name, NOW).app_id for name in ("a0", "a1")}
        attributes = [
            {"external_id": f"e{i}", "plan": "pro" if i % 3 == 0 else "free"} for i in range(12)
        ]
        attributes += [alias("known", create=True) | {"plan": "pro"}]
        attributes += [{"email": "x@example.com", "plan": "free"}]
        store.track(ws, parse_track({"attributes": attributes}, NOW), NOW).result()
        events = [
            event(
                {"external_id": f"e{i}"},
                "buy" if i % 2 else "view",
                i,
                apps["a0"] if i % 4 else None,
            )
            for i in range(24)
        ]
        store.track(ws, parse_track({"events": events}, NOW), NOW).result()
        rules: list[tuple[object, bool]] = [
            ({"attribute": "plan", "op": "eq", "value": "pro"}, True),
            ({"event": "buy", "op": "gte", "count": 2}, True),
            ({"used_app": apps["a1"]}, True),
            ({"not": {"attribute": "plan", "op": "exists"}}, False),
        ]
        for i, (rule, tracked) in enumerate(rules):
            store.create_segment(ws, Segment(0, ws, "", f"s{i}", rule, tracked), NOW)
        later = [event({"external_id": f"e{i}"}, "buy", 100 + i) for i in range(0, 12, 2)]
        store.track(ws, parse_track({"events": later}, NOW), NOW).result()
        with closing(sqlite3.connect(data / DB_FILE)) as conn:
            braze = [r[0] for r in conn.execute("SELECT braze_id FROM users ORDER BY id LIMIT 2")]
            last = conn.execute("SELECT max(id) FROM events").fetchone()[0]
        with closing(sqlite3.connect(data / USER_COUNTS_FILE)) as conn:
            assert conn.execute("SELECT through FROM folded").fetchone()[0] <= last
    finally:
        store.close()
    return ws, apps, braze


def bodies(apps: dict[str, str], braze: list[str]) -> list[dict[str, Any]]:
    """Requests naming existing and new users every way, some more than once; items that
    fail (unknown braze_id, unknown app, `_update_existing_only` before the user exists)."""
    a0, a1 = apps["a0"], apps["a1"]
    return [
        {
            "events": [
                event({"external_id": f"e{i}"}, "buy", i, a1 if i == 3 else None) for i in range(12)
            ]
            + [event({"external_id": "n0"}, "buy", 1), event({"external_id": "n0"}, "buy", 2)]
        },
        {
            "attributes": [
                {"external_id": "e1", "plan": "pro"},
                {"external_id": "n1", "plan": "pro"},
            ],
            "events": [
                event({"external_id": "late", "_update_existing_only": True}, "view", 3),
                event(alias("known"), "buy", 4, a0),
                event(alias("nobody"), "view", 5),
                event({"braze_id": braze[1]}, "buy", 6),
                event({"braze_id": "0" * 24}, "buy", 7),
                event({"external_id": "e2"}, "view", 8, "no-such-app"),
            ],
        },
        {
            "attributes": [alias("new", create=True) | {"plan": "pro"}],
            "events": [
                event({"external_id": "n0"}, "view", 9, a1),
                event({"email": "x@example.com"}, "buy", 10),
                event({"email": "y@example.com"}, "buy", 11),
            ],
            "purchases": [
                purchase({"external_id": "e5"}, a1),
                purchase({"external_id": "n2"}, None),
            ],
        },
        {"events": [event({"external_id": "late"}, "buy", 12), event(alias("new"), "buy", 13)]},
        {
            "attributes": [
                {"external_id": "e0", "plan": None},
                {"external_id": "late", "plan": "pro"},
            ],
            "events": [
                event({"external_id": "late", "_update_existing_only": True}, "buy", 14, a0),
                event({"braze_id": braze[0]}, "view", 15),
                event({"external_id": "e4"}, "buy", 16, a1),
            ],
        },
    ]


SNAPSHOT = {
    # braze ids of new users are random: the rest of each row must match.
    "users": "SELECT id, workspace_id, external_id, alias, email, phone, attributes, updated_at "
    "FROM users ORDER BY id",
    # The events of one write are stored kind by kind (PendingWrites): ids say only that.
    "events": "SELECT event_type, user_id, app, time, properties, segments FROM events "
    "ORDER BY 1, 2, 3, 4, 5, 6",
    "purchases": "SELECT * FROM purchases ORDER BY id",
    "event_counts": "SELECT * FROM event_counts ORDER BY 1, 2, 3, 4",
    "segment_members": "SELECT * FROM segment_members ORDER BY 1, 2",
    "segment_changes": "SELECT segment, time, delta FROM segment_changes ORDER BY rowid",
    "user_apps": "SELECT * FROM user_apps ORDER BY 1, 2",
    # What the per-user counts say once every event after `through` is folded in.
    "user_event_counts": "SELECT user_id, event_type, sum(n) FROM (SELECT user_id, event_type, n "
    "FROM uc.user_event_counts UNION ALL SELECT user_id, event_type, 1 FROM events WHERE id >= "
    "(SELECT through FROM uc.folded)) GROUP BY 1, 2 ORDER BY 1, 2",
}


def snapshot(store: SqliteStore) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)) as conn:
        counts = store.path.parent / USER_COUNTS_FILE
        conn.execute("ATTACH DATABASE ? AS uc", (f"file:{counts}?mode=ro",))
        return {name: conn.execute(sql).fetchall() for name, sql in SNAPSHOT.items()}


def profiles(store: SqliteStore) -> dict[int, Profile]:
    return dict(store._caches.profiles)


@pytest.mark.parametrize("failing", [False, True], ids=["optimistic", "isolated-rerun"])
@pytest.mark.parametrize("scan", [True, False], ids=["lagging-counted", "lagging-folded"])
def test_a_group_gives_what_requests_one_at_a_time_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: bool, scan: bool
) -> None:
    if not scan:  # a bulk load folds the lagging events in, as SqliteTx.profile does
        monkeypatch.setattr("eventtally.store.sqlite_tx.PENDING_SCAN", 0)
    ws, apps, braze = seed(tmp_path / "seed")
    for name in ("group", "single"):
        shutil.copytree(tmp_path / "seed", tmp_path / name)
    requests = [parse_track(body, NOW) for body in bodies(apps, braze)]
    grouped, single = SqliteStore.open(tmp_path / "group"), SqliteStore.open(tmp_path / "single")
    try:
        one_at_a_time(single, monkeypatch)
        with held(grouped):
            futures = [grouped.track(ws, request, NOW) for request in requests]
            broken = grouped._submit(lambda conn: 1 / 0) if failing else None
        group_outcomes = [future.result(10) for future in futures]
        if broken is not None:
            with pytest.raises(ZeroDivisionError):
                broken.result(10)
        single_outcomes = [single.track(ws, request, NOW).result(10) for request in requests]
        assert group_outcomes == single_outcomes
        assert [len(outcome.errors) for outcome in group_outcomes] == [0, 4, 0, 0, 0]
        for each in (grouped, single):  # event_counts may lag by a different number of events
            each._write(each._fold_series)
        assert snapshot(grouped) == snapshot(single)
        # The profiles the writers keep, loaded in bulk or one by one, then kept current.
        in_group, one_by_one = profiles(grouped), profiles(single)
        if not failing:  # an isolated rerun drops the caches on the way
            assert set(in_group) >= set(one_by_one)
        assert {u: in_group[u] for u in one_by_one if u in in_group} == {
            u: p for u, p in one_by_one.items() if u in in_group
        }
        # And what a cold load gives now, in bulk and one by one, is the same too.
        assert bulk_profiles(grouped, ws) == single_profiles(grouped, ws)
    finally:
        grouped.close()
        single.close()


def every_user(store: SqliteStore) -> list[int]:
    with closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id")]


@contextmanager
def undone(conn: sqlite3.Connection) -> Iterator[None]:
    """Within a job (in the writer's transaction): whatever the block writes (a fold of
    user_event_counts) is rolled back."""
    conn.execute("SAVEPOINT undone")
    try:
        yield
    finally:
        conn.execute("ROLLBACK TO undone")
        conn.execute("RELEASE undone")


def bulk_profiles(store: SqliteStore, ws: int) -> dict[int, Profile]:
    users = every_user(store)

    def load(conn: sqlite3.Connection) -> dict[int, Profile]:
        caches = WriterCaches(store._user_counts)
        with undone(conn):
            caches._prefetch_profiles(conn, ws, caches.segment_rules(conn, ws), users)
        return dict(caches.profiles)

    return store._submit(load).result(10)


def single_profiles(store: SqliteStore, ws: int) -> dict[int, Profile]:
    users = every_user(store)

    def load(conn: sqlite3.Connection) -> dict[int, Profile]:
        caches = WriterCaches(store._user_counts)
        tx = SqliteTx(conn, ws, NOW, caches, PendingWrites())
        with undone(conn):
            return {user: tx.profile(user) for user in users}

    return store._submit(load).result(10)


Users = list[int | None]


def lookups(
    store: SqliteStore, ws: int, identities: list[Identity]
) -> tuple[Users, Users, Users, list[bool]]:
    """Each identity's user as the bulk lookup finds it, as find_user finds it alone, and
    as find_user answers after the bulk lookup; and which the bulk lookup found nowhere."""

    def look(conn: sqlite3.Connection) -> tuple[Users, Users, Users, list[bool]]:
        items = [
            EventItem(i, identity, False, "e", NOW, None, {})
            for i, identity in enumerate(identities)
        ]
        caches = WriterCaches(store._user_counts)
        caches.group = [(ws, TrackRequest(events=items))]
        caches.prefetch(conn)
        assert caches.group is None
        bulk = [caches.users.get((ws, i.kind, i.value)) for i in identities]
        absent = [(ws, i.kind, i.value) in caches.absent for i in identities]
        alone = SqliteTx(conn, ws, NOW, WriterCaches(store._user_counts), PendingWrites())
        after = SqliteTx(conn, ws, NOW, caches, PendingWrites())
        return (
            bulk,
            [alone.find_user(identity) for identity in identities],
            [after.find_user(identity) for identity in identities],
            absent,
        )

    return store._submit(look).result(10)


def test_the_bulk_lookup_finds_whom_find_user_finds(tmp_path: Path) -> None:
    ws, _, braze = seed(tmp_path)
    store = SqliteStore.open(tmp_path)
    try:
        other = store.create_workspace("other", "UTC", NOW).id
        store.track(other, parse_track({"attributes": [{"external_id": "e1", "a": 1}]}, NOW), NOW)
        identities = [
            Identity("external_id", "e1"),
            Identity("external_id", "e11"),
            Identity("external_id", "known"),  # an alias name is not an external id
            Identity("external_id", "nobody"),
            Identity("user_alias", "crm\x00known"),
            Identity("user_alias", "other\x00known"),
            Identity("braze_id", braze[0]),
            Identity("braze_id", braze[1]),
            Identity("braze_id", "f" * 24),
        ]
        identities += [Identity("external_id", f"e{i}") for i in range(12)]
        bulk, alone, after, absent = lookups(store, ws, identities)
        missing = [False, False, True, True, False, True, False, False, True]
        assert [user is None for user in bulk[:9]] == missing
        assert bulk == alone == after
        assert absent == [user is None for user in bulk]
    finally:
        store.close()


def test_the_bulk_lookup_breaks_ties_as_find_user_does(tmp_path: Path) -> None:
    """Unique indexes keep two users from sharing an external id, but should two rows ever
    match, both pick the latest updated, then the highest id."""
    store = SqliteStore.open(tmp_path)
    try:
        ws = store.create_workspace("w", "UTC", NOW).id

        def duplicate(conn: sqlite3.Connection) -> None:
            conn.execute("DROP INDEX users_external_id")
            rows = [
                ("a", 5), ("a", 9), ("a", 7),  # the latest update wins
                ("b", 4), ("b", 4), ("b", 3),  # a tie: the highest id wins
            ]  # fmt: skip
            for i, (external_id, updated_at) in enumerate(rows):
                conn.execute(
                    "INSERT INTO users (workspace_id, braze_id, external_id, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (ws, f"{i:024x}", external_id, updated_at),
                )

        store._submit(duplicate).result(10)
        identities = [Identity("external_id", "a"), Identity("external_id", "b")]
        bulk, alone, _, _ = lookups(store, ws, identities)
        assert bulk == alone == [2, 5]
    finally:
        store.close()


def test_a_cold_group_looks_its_users_up_in_a_few_statements(tmp_path: Path) -> None:
    ws, _, _ = seed(tmp_path)
    store = SqliteStore.open(tmp_path)  # new caches: every user is cold
    statements: list[str] = []
    try:
        store._submit(lambda conn: conn.set_trace_callback(statements.append)).result(10)
        events = [event({"external_id": f"e{i % 12}"}, "buy", i) for i in range(75)]
        events += [event({"external_id": f"new{i}"}, "view", i) for i in range(20)]
        with held(store):
            futures = [
                store.track(ws, parse_track({"events": events[i : i + 19]}, NOW), NOW)
                for i in range(0, len(events), 19)
            ]
        outcomes: list[TrackOutcome] = [future.result(10) for future in futures]
        assert sum(outcome.events_processed for outcome in outcomes) == len(events)
        store._submit(lambda conn: conn.set_trace_callback(None)).result(10)
    finally:
        store.close()
    per_user = [
        s
        for s in statements
        if "external_id = " in s or "WHERE id = " in s or "user_id = " in s.split("FROM users")[-1]
    ]
    assert per_user == []  # neither find_user's query nor a profile's, for anyone
    assert sum("FROM users" in s for s in statements) <= 3
    # A new user costs its insert only.
    assert sum(s.startswith("INSERT INTO users") for s in statements) == 20
