"""`eventtally migrate`: a SQLite store copied into ClickHouse answers every read as the
SQLite store does, and goes on doing so as both take the same requests; a migration cut
short anywhere resumes to the same result, nothing counted twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eventtally.cli import main
from eventtally.domain.idempotency import Idempotency, body_hash
from eventtally.domain.model import PERMISSIONS, EventUpdate, Segment, SegmentChanges, SeriesQuery
from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.domain.segments import filter_to_json, parse_filter
from eventtally.domain.track import parse_track
from eventtally.errors import StoreError
from eventtally.migrate import MigrationError, migrate_sqlite
from eventtally.store.base import Store, new_secret
from eventtally.store.clickhouse import ClickHouseStore
from eventtally.store.clickhouse_conn import ClickHouseUrl, Connections
from eventtally.store.clickhouse_ingest import insert_journal, journal_row
from eventtally.store.clickhouse_schema import EVENT
from eventtally.store.sqlite import SqliteStore
from tests.clickhouse_server import ClickHouseServer

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
START = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z: events on the five days from here
NOW = 1_765_238_400_000_000  # 2025-12-09T00:00:00Z: when profiles and segments change
NAMES = ("open", "buy", "noise")
PRO = {"attribute": "plan", "op": "eq", "value": "pro"}
PAYING = {"attribute": "plan", "op": "in", "value": ["pro", "team"]}
ACTIVE = {"event": "open", "op": "gte", "count": 4}
ALIAS = {"alias_name": "a", "alias_label": "l"}


@dataclass
class Source:
    """A SQLite store's data directory and what the tests need to know of it."""

    data: Path
    secrets: dict[str, str]  # key name -> secret
    apps: list[str]  # the app_ids of the first workspace


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at / 1e6, UTC).isoformat()


def _track(store: Store, workspace: int, body: dict[str, Any], now: int) -> None:
    outcome = store.track(workspace, parse_track(body, now), now).result()
    assert not outcome.errors, outcome.errors


def _draft(workspace: int, name: str, rule: object, tracking: bool = True) -> Segment:
    return Segment(0, workspace, "", name, filter_to_json(parse_filter(rule)), tracking)


def _events(rng: random.Random, apps: Sequence[str | None], day: int, n: int) -> list[Any]:
    """Events of ten users on one day, at random seconds (mostly off the 15-minute grid)."""
    return [
        {
            "external_id": f"u{rng.randrange(10)}",
            "name": rng.choice(NAMES),
            "time": _iso(START + day * DAY + rng.randrange(DAY // 1_000_000) * 1_000_000),
        }
        | ({"app_id": app} if (app := rng.choice(apps)) else {})
        for _ in range(n)
    ]


def build_source(data: Path, events_per_day: int = 24) -> Source:
    """Two workspaces with apps, keys (one revoked), profiles, events over five days, a
    tracked segment made after some events and re-filtered later, one on event counts, an
    untracked and an archived one, a curated catalogue, purchases, idempotency keys."""
    rng = random.Random(8)
    store = SqliteStore.open(data)
    try:
        shop = store.create_workspace("shop", "America/New_York", START)
        other = store.create_workspace("other", "Asia/Kolkata", START)
        store.update_workspace("shop", rate_limits={RateBucket.TRACK: Limit(500, 60)})
        apps = [store.create_app(shop.id, name, START).app_id for name in ("ios", "web")]
        other_app = store.create_app(other.id, "tv", START).app_id
        secrets = {name: new_secret() for name in ("full", "revoked", "other")}
        store.add_key(shop.id, "full", secrets["full"], frozenset(PERMISSIONS), START)
        revoked = store.add_key(
            shop.id,
            "revoked",
            secrets["revoked"],
            frozenset({"events.list"}),
            START,
            ("10.0.0.0/8",),
        )
        store.revoke_key(shop.id, revoked.id, NOW)
        store.add_key(other.id, "other", secrets["other"], frozenset(PERMISSIONS), START)
        plans = ["pro", "free", "team", "free", "pro", "free", "team", "free", "pro", "free"]
        _track(
            store,
            shop.id,
            {
                "attributes": [
                    {"external_id": f"u{i}", "plan": plan, "email": f"u{i}@example.com"}
                    for i, plan in enumerate(plans)
                ]
                + [{"user_alias": ALIAS, "_update_existing_only": False, "plan": "team"}]
            },
            START,
        )
        choices: list[str | None] = [None, *apps]
        for day in range(2):
            _track(store, shop.id, {"events": _events(rng, choices, day, events_per_day)}, NOW)
        segment = store.create_segment(shop.id, _draft(shop.id, "Pro", PRO), NOW + HOUR)
        store.create_segment(shop.id, _draft(shop.id, "Active", ACTIVE), NOW + HOUR)
        store.create_segment(shop.id, _draft(shop.id, "Free", {**PRO, "value": "free"}, False), NOW)
        old = store.create_segment(shop.id, _draft(shop.id, "Old", PRO), NOW + HOUR)
        _track(store, shop.id, {"events": _events(rng, choices, 2, events_per_day)}, NOW + 2 * HOUR)
        store.update_event(shop.id, "noise", EventUpdate(blocklisted=True))
        store.update_event(shop.id, "buy", EventUpdate(description="bought", tags=("money",)))
        _track(
            store,
            shop.id,
            {
                # u4 leaves Pro: its events since Pro was made recorded Pro, but after
                # the rebuild below only the snapshot's members' events count.
                "attributes": [
                    {"external_id": "u1", "plan": "pro"},
                    {"external_id": "u2", "plan": "free"},
                    {"external_id": "u4", "plan": "free"},
                ]
            },
            NOW + 3 * HOUR,
        )
        # Two profiles with one email, changed at the same instant: lookups by email take
        # the later made (SQLite's larger id, ClickHouse's `created`).
        shared = [{"external_id": u, "email": "shared@example.com"} for u in ("u8", "u9")]
        _track(store, shop.id, {"attributes": shared}, NOW + 3 * HOUR)
        changes = SegmentChanges(filter=PAYING)
        store.update_segment(shop.id, segment.segment_id, changes, NOW + 4 * HOUR)
        store.update_segment(shop.id, old.segment_id, SegmentChanges(archived=True), NOW + 4 * HOUR)
        for day in (3, 4):
            _track(
                store,
                shop.id,
                {"events": _events(rng, choices, day, events_per_day)},
                NOW + 5 * HOUR,
            )
        _track(
            store,
            shop.id,
            {
                "purchases": [
                    {
                        "external_id": f"u{i}",
                        "product_id": "p",
                        "currency": "EUR",
                        "price": 1.5 * i,
                        "time": _iso(START + i * HOUR),
                    }
                    | ({"app_id": apps[i % 2]} if i % 3 else {})
                    for i in range(6)
                ]
            },
            NOW + 5 * HOUR,
        )
        other_events = [
            {
                "external_id": "o1",
                "name": "open",
                "time": _iso(START + 7 * MINUTE),
                "app_id": other_app,
            }
        ]
        _track(store, other.id, {"events": other_events}, NOW)
        # One idempotency key live now, one long expired: only the live one moves.
        for key, at in (("live", time.time_ns() // 1000), ("gone", NOW)):
            body = {"events": [{"external_id": "u0", "name": "open", "time": _iso(START + DAY)}]}
            keyed = Idempotency(key, body_hash(body), HOUR)
            store.track(shop.id, parse_track(body, at), at, keyed).result()
    finally:
        store.close()
    return Source(data, secrets, apps)


# Ranges on the grid (days, the hours of a day) and off it (pieces of slots).
RANGES = (
    *((START + d * DAY, START + (d + 1) * DAY) for d in range(-1, 7)),
    *((START + 2 * DAY + h * HOUR, START + 2 * DAY + (h + 1) * HOUR) for h in range(24)),
    (START + 7 * MINUTE, START + DAY + 52 * MINUTE),
    (START + 3 * DAY + 3_000_000, START + 3 * DAY + 10 * MINUTE),
    (START + 4 * DAY + 20 * MINUTE + 1, START + 4 * DAY + 44 * MINUTE),
)
INSTANTS = (START, NOW, NOW + HOUR, NOW + HOUR + 1, NOW + 4 * HOUR + 1, NOW + 30 * DAY)


def assert_same(sqlite: Store, clickhouse: Store) -> None:
    """Every read the tests know of answers the same in both stores."""
    assert clickhouse.list_workspaces() == sqlite.list_workspaces()
    for workspace in sqlite.list_workspaces():
        ws = workspace.id
        apps = sqlite.list_apps(ws)
        assert clickhouse.list_apps(ws) == apps
        assert clickhouse.list_keys(ws) == sqlite.list_keys(ws)
        assert clickhouse.event_catalogue(ws, 0, 100) == sqlite.event_catalogue(ws, 0, 100)
        assert clickhouse.event_names(ws, 0, 100) == sqlite.event_names(ws, 0, 100)
        segments = sqlite.list_segments(ws, include_archived=True)
        # Segments made after the migration get a random segment_id in each store.
        assert [replace(s, segment_id="") for s in clickhouse.list_segments(ws, True)] == [
            replace(s, segment_id="") for s in segments
        ]
        for segment in segments:
            assert clickhouse.segment_sizes(segment.id, INSTANTS) == sqlite.segment_sizes(
                segment.id, INSTANTS
            ), segment.name
        for name in NAMES:
            for app in [None, *(a.id for a in apps)]:
                for segment_key in [None, *(s.id for s in segments)]:
                    query = SeriesQuery(ws, name, RANGES, app, segment_key)
                    assert clickhouse.count_series(query) == sqlite.count_series(query), query


@contextmanager
def both(source: Source, url: str) -> Iterator[tuple[SqliteStore, ClickHouseStore]]:
    sqlite = SqliteStore.open(source.data)
    try:
        clickhouse = ClickHouseStore.open(url)
        try:
            yield sqlite, clickhouse
        finally:
            clickhouse.close()
    finally:
        sqlite.close()


@pytest.fixture(scope="module")
def shared_source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A source the tests only read (each that writes to its source builds its own)."""
    return build_source(tmp_path_factory.mktemp("source") / "data")


def test_the_copy_answers_as_the_source_and_goes_on_doing_so(
    tmp_path: Path, clickhouse_url: str
) -> None:
    source = build_source(tmp_path / "data")
    outcome = migrate_sqlite(source.data, clickhouse_url, chunk=7)
    assert outcome.ok, [c for c in outcome.checks if not c.ok]
    assert (outcome.resumed, outcome.finished_before) == (False, False)
    records = {(c.workspace, c.record) for c in outcome.checks}
    assert {("shop", "events open"), ("shop", "segment 'Pro' events")} <= records
    assert ("shop", "segment 'Old' members") not in records  # archived: no members
    with both(source, clickhouse_url) as (sqlite, clickhouse):
        shop = sqlite.list_workspaces()[0]
        assert [s.segment_id for s in clickhouse.list_segments(shop.id, True)] == [
            s.segment_id for s in sqlite.list_segments(shop.id, True)
        ]
        for secret in source.secrets.values():
            assert clickhouse.authenticate(secret) == sqlite.authenticate(secret)
        assert clickhouse.authenticate(source.secrets["full"]) is not None
        assert clickhouse.authenticate(source.secrets["revoked"]) is None
        assert_same(sqlite, clickhouse)
        # Profiles, memberships and per-user counts came along: the same requests change
        # the same memberships (u3 reaches four opens, u5 turns pro, by email) in both.
        later = NOW + 2 * DAY
        bodies: list[dict[str, Any]] = [
            {
                # u9, the later made of the two with this email (u8 is pro already).
                "attributes": [
                    {"email": "u5@example.com", "plan": "pro"},
                    {"email": "shared@example.com", "plan": "team"},
                ],
                "events": [
                    {
                        "external_id": "u3",
                        "name": "open",
                        "time": _iso(START + 4 * DAY + i * MINUTE),
                    }
                    for i in range(4)
                ]
                + [
                    {"email": "u5@example.com", "name": "buy", "time": _iso(START + 4 * DAY + 99)},
                    {"external_id": "u9", "name": "buy", "time": _iso(START + 4 * DAY + 7)},
                    {"external_id": "new", "name": "open", "time": _iso(START + 3 * DAY + 1)},
                    {
                        "external_id": "u1",
                        "name": "open",
                        "time": _iso(START + 2 * DAY + 5 * MINUTE),
                        "app_id": source.apps[1],
                    },
                ],
                "purchases": [
                    {
                        "external_id": "u4",
                        "product_id": "q",
                        "currency": "USD",
                        "price": 3,
                        "time": _iso(START + DAY),
                        "app_id": source.apps[0],
                    }
                ],
            },
            {
                "events": [
                    {
                        "user_alias": {"alias_name": "a", "alias_label": "l"},
                        "name": "buy",
                        "time": _iso(START),
                    }
                ]
            },
        ]
        for body in bodies:
            for store in (sqlite, clickhouse):
                _track(store, shop.id, body, later)
        assert_same(sqlite, clickhouse)
        # Rebuilds read the migrated profiles and per-user counts.
        for store in (sqlite, clickhouse):
            store.create_segment(
                shop.id, _draft(shop.id, "Buyers", {"event": "buy", "op": "gte", "count": 2}), later
            )
            active = next(s for s in store.list_segments(shop.id) if s.name == "Active")
            store.update_segment(
                shop.id,
                active.segment_id,
                SegmentChanges(filter={**ACTIVE, "count": 5}),
                later + 1,
            )
        assert_same(sqlite, clickhouse)


class _Interrupt:
    """Progress that stops the run (as Ctrl-C would) once `blocks` blocks are in."""

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks

    def start(self, step: str, total: int, done: int) -> None:
        pass

    def advance(self, step: str, rows: int) -> None:
        self.blocks -= 1
        if self.blocks == 0:
            raise KeyboardInterrupt


def _fail_insert(monkeypatch: pytest.MonkeyPatch, when: Callable[[str, list[Any]], bool]) -> None:
    """The first insert `when` picks fails (a lost connection) and nothing of it lands."""
    real = Connections.insert
    state = {"failed": False}

    def insert(self: Connections, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not state["failed"] and when(sql, list(rows)):
            state["failed"] = True
            raise StoreError("ClickHouse is unreachable: connection reset (test)")
        real(self, sql, rows)

    monkeypatch.setattr(Connections, "insert", insert)


def _marks(step: str, nth: int) -> Callable[[str, list[Any]], bool]:
    """Picks the `nth` journal block carrying a marker of `step`."""
    seen = [0]

    def pick(sql: str, rows: list[Any]) -> bool:
        if "journal" in sql and any(row[0] == 7 and row[3] == step for row in rows):
            seen[0] += 1
            return seen[0] == nth
        return False

    return pick


CUTS = {
    "Ctrl-C after 9 blocks": None,
    "the apps marker fails": _marks("apps", 1),  # the apps are in: not copied twice
    "the segments marker fails": _marks("segments", 1),
    "the fifth events block fails": _marks("events", 5),
    "the last marker fails": _marks("done", 1),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_migration_cut_short_resumes_to_the_same_result(
    cut: str, shared_source: Source, clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        when = CUTS[cut]
        if when is None:
            with pytest.raises(KeyboardInterrupt):
                migrate_sqlite(shared_source.data, clickhouse_url, chunk=6, progress=_Interrupt(9))
        else:
            _fail_insert(patch, when)
            with pytest.raises(StoreError, match="connection reset"):
                migrate_sqlite(shared_source.data, clickhouse_url, chunk=6)
    outcome = migrate_sqlite(shared_source.data, clickhouse_url, chunk=6)
    assert outcome.resumed
    assert outcome.ok, [c for c in outcome.checks if not c.ok]
    with both(shared_source, clickhouse_url) as (sqlite, clickhouse):
        assert_same(sqlite, clickhouse)


def test_running_it_again_only_verifies(shared_source: Source, clickhouse_url: str) -> None:
    first = migrate_sqlite(shared_source.data, clickhouse_url)
    again = migrate_sqlite(shared_source.data, clickhouse_url)
    assert (again.resumed, again.finished_before, again.copied) == (True, True, {})
    assert again.checks == first.checks
    assert again.ok


@pytest.mark.parametrize("name", ["shop", "elsewhere"])
def test_a_target_holding_the_sources_workspaces_is_refused(
    name: str, shared_source: Source, clickhouse_url: str
) -> None:
    store = ClickHouseStore.open(clickhouse_url)
    try:
        store.create_workspace(name, "UTC", NOW)  # id 1, as the source's "shop"
    finally:
        store.close()
    with pytest.raises(MigrationError, match=f"already holds a workspace '{name}' \\(id 1\\)"):
        migrate_sqlite(shared_source.data, clickhouse_url)


def test_another_store_with_the_same_workspaces_is_refused(
    tmp_path: Path, shared_source: Source, clickhouse_url: str
) -> None:
    migrate_sqlite(shared_source.data, clickhouse_url)
    store = SqliteStore.open(tmp_path)
    try:
        store.create_workspace("shop", "UTC", NOW)
    finally:
        store.close()
    with pytest.raises(MigrationError, match="already holds a workspace 'shop'"):
        migrate_sqlite(tmp_path, clickhouse_url)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["migrate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_shows_progress_and_a_table_of_counts(
    shared_source: Source, clickhouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--from", str(shared_source.data), "--to", clickhouse_url)
    code, out, err = _cli(capsys, *args, "--chunk", "40")
    assert code == 0, err
    for step in ("workspaces", "users", "events", "purchases"):
        assert step in err
    lines = out.splitlines()
    assert lines[0].split() == ["workspace", "record", "SQLite", "ClickHouse"]
    assert any(
        line.split()[:3] == ["shop", "events", "open"] and line.endswith("ok") for line in lines
    )
    assert lines[-1].startswith(f"migrated into {clickhouse_url}: all ")
    assert lines[-1].endswith(" counts match")
    code, out, _ = _cli(capsys, *args, "--quiet")
    assert code == 0
    assert out.splitlines()[-1].startswith("already migrated into")
    # A target changed behind the migration's back: the table says where, exit status 1.
    target = Connections(ClickHouseUrl.parse(clickhouse_url))
    try:
        insert_journal(
            target, [journal_row(kind=EVENT, workspace_id=1, name="open", user=1, time=START)]
        )
    finally:
        target.close()
    code, out, err = _cli(capsys, *args, "--quiet")
    assert code == 1
    assert any("events open" in line and "DIFFERS" in line for line in out.splitlines())
    assert err.splitlines() == [
        f"eventtally: 1 of {len(lines) - 2} counts differ between the source and "
        f"{clickhouse_url} (marked in the table)"
    ]


def test_the_command_fails_in_one_line(
    tmp_path: Path, shared_source: Source, clickhouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "--from", str(tmp_path), "--to", clickhouse_url)
    assert (code, out) == (1, "")
    assert err == f"eventtally: no SQLite store in {tmp_path} (no eventtally.db there)\n"
    store = ClickHouseStore.open(clickhouse_url)
    try:
        store.create_workspace("shop", "UTC", NOW)
    finally:
        store.close()
    code, out, err = _cli(capsys, "--from", str(shared_source.data), "--to", clickhouse_url)
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("eventtally: the target already holds a workspace 'shop'")
    code, out, err = _cli(capsys, "--from", str(shared_source.data), "--to", "http://x")
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1


@pytest.mark.slow
def test_kill_9_mid_copy_then_again_gives_the_same_result(
    shared_source: Source, clickhouse_url: str, clickhouse_server: ClickHouseServer
) -> None:
    command = [
        sys.executable,
        "-m",
        "eventtally.cli",
        "migrate",
        "--quiet",
        "--chunk",
        "1",
        "--from",
        str(shared_source.data),
        "--to",
        clickhouse_url,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = clickhouse_url.rsplit("/", 1)[1]
    try:
        with clickhouse_server.client() as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    ((blocks,),) = client.execute(
                        f"SELECT count() FROM {database}.migration_progress WHERE step = 'events'"
                    )
                except Exception:  # the table is not there yet
                    blocks = 0
                if blocks >= 10:
                    break
                time.sleep(0.02)
        assert process.poll() is None, "the migration ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    outcome = migrate_sqlite(shared_source.data, clickhouse_url)
    assert outcome.resumed
    assert outcome.ok, [c for c in outcome.checks if not c.ok]
    with both(shared_source, clickhouse_url) as (sqlite, clickhouse):
        assert_same(sqlite, clickhouse)
