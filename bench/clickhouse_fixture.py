"""The benchmark's data set on ClickHouse, made fast: the same distribution as bench/fixture.py.

The workspace, apps, key and segment come through the store's own API; users, catalogue
entries and the bulk of the events are generated inside ClickHouse (`INSERT INTO journal
... SELECT ... FROM numbers(N)`), so the store's materialized views build `events`,
`counts`, `user_event_counts`, `user_apps`, `profiles` and `identities` as
ingest would have. Users are "user-0" .. "user-99999" (a quarter on plan "pro"), events
are uniform over the five names, a third each without an app and in either app, times
uniform over the 100 days before today 00:00 UTC: as in the SQLite fixture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fixture import CHUNK, DAYS, EVENT_NAMES, USERS, Fixture, pro_segment, rate_limits
from eventtally.domain.model import PERMISSIONS
from eventtally.store.base import new_secret
from eventtally.store.clickhouse import ClickHouseStore
from eventtally.store.clickhouse_conn import ClickHouseUrl, Connections
from eventtally.store.clickhouse_schema import EVENT, NEW_EVENT_NAME, PROFILE

DAY_US = 86_400 * 1_000_000


def user_key(i: str | int) -> str:
    """The store's key of user i (SQL): 1 to USERS, never 0. Ingest makes random odd keys
    of 63 bits for new users; none of the benchmark's users is new."""
    return f"(toUInt64({i}) + 1)"


@dataclass(frozen=True)
class Generated:
    """What a fixture is made of, for the SQL that generates it."""

    workspace_id: int
    apps: tuple[int, int]  # the apps' keys
    end_us: int
    now: int


def build(server_dir: Path, url: str, events: int, progress: bool = True) -> Fixture:
    """Make the benchmark's workspace in the (new) ClickHouse database of `url`, served by
    the clickhouse-server whose directory is `server_dir`."""
    started = time.perf_counter()
    now = time.time_ns() // 1000
    end_us = now // DAY_US * DAY_US  # today 00:00 UTC
    store = ClickHouseStore.open(url)
    try:
        workspace = store.create_workspace("bench", "America/New_York", now)
        apps = tuple(store.create_app(workspace.id, f"app{i}", now) for i in range(2))
        key = new_secret()
        store.add_key(workspace.id, "bench", key, frozenset(PERMISSIONS), now)
        store.update_workspace("bench", rate_limits=rate_limits())
    finally:
        store.close()

    plan = Generated(workspace.id, (apps[0].id, apps[1].id), end_us, now)
    conn = Connections(ClickHouseUrl.parse(url))
    try:
        conn.query(catalogue_sql(plan))
        conn.query(profiles_sql(plan))
        done = 0
        while done < events:
            rows = min(CHUNK, events - done)
            conn.query(events_sql(plan, rows))
            done += rows
            if progress:
                print(f"  generated {done:,} / {events:,} events", flush=True)
    finally:
        conn.close()

    store = ClickHouseStore.open(url)
    try:  # the segment's members and series, built from what is stored, as on SQLite
        segment = store.create_segment(workspace.id, pro_segment(workspace.id), now)
    finally:
        store.close()
    return Fixture(
        server_dir,
        key,
        (apps[0].app_id, apps[1].app_id),
        segment.segment_id,
        events,
        end_us,
        time.perf_counter() - started,
        url=url,
        workspace_id=workspace.id,
    )


def catalogue_sql(plan: Generated) -> str:
    names = ", ".join(f"'{name}'" for name in EVENT_NAMES)
    return (
        "INSERT INTO {db}.journal (kind, workspace_id, name) "
        f"SELECT {NEW_EVENT_NAME}, {plan.workspace_id}, arrayJoin([{names}])"
    )


def profiles_sql(plan: Generated) -> str:
    """Users 0 .. USERS - 1 with external id "user-i", a Braze id and a plan; the store's
    views derive their identities."""
    version = time.time_ns()
    return (
        "INSERT INTO {db}.journal (kind, workspace_id, user, braze_id, external_id, "
        "attributes, updated_at, created, version) "
        f"SELECT {PROFILE}, {plan.workspace_id}, {user_key('number')}, "
        "substring(lower(hex(MD5(toString(number)))), 1, 24), "
        "concat('user-', toString(number)), "
        'if(modulo(number, 4) = 0, \'{"plan":"pro"}\', \'{"plan":"free"}\'), '
        f"{plan.now}, {version} + number, {version} FROM system.numbers LIMIT {USERS}"
    )


def events_sql(plan: Generated, rows: int) -> str:
    """`rows` events: a uniform user, name and time, a third each in no app and either app.
    `rand(n)`: different arguments keep ClickHouse from computing one value for all."""
    names = ", ".join(f"'{name}'" for name in EVENT_NAMES)
    span = DAYS * DAY_US
    app0, app1 = plan.apps
    return (
        "INSERT INTO {db}.journal (kind, workspace_id, user, name, time, app) "
        f"SELECT {EVENT}, {plan.workspace_id}, {user_key(f'modulo(rand(1), {USERS})')}, "
        f"arrayElement([{names}], 1 + modulo(rand(2), {len(EVENT_NAMES)})), "
        f"toInt64({plan.end_us}) - 1 - toInt64(modulo(rand64(3), {span})), "
        f"arrayElement([toUInt64(0), {app0}, {app1}], 1 + modulo(rand(4), 3)) "
        f"FROM system.numbers LIMIT {rows}"
    )


def group_by_baseline(url: str, fixture: Fixture, runs: int) -> float:
    """The same day series (100 days, one event, every app) by a GROUP BY over the raw
    `events` table, as a peer scanning raw events answers it; median milliseconds."""
    conn = Connections(ClickHouseUrl.parse(url))
    start = fixture.end_us - 100 * DAY_US
    params: dict[str, Any] = {
        "w": fixture.workspace_id,
        "n": EVENT_NAMES[0],
        "s": start,
        "e": fixture.end_us,
        "d": DAY_US,
    }
    times = []
    try:
        for _ in range(runs):
            began = time.perf_counter()
            rows = conn.query(
                "SELECT intDiv(time - %(s)s, %(d)s) AS day, count() FROM {db}.events "
                "WHERE workspace_id = %(w)s AND name = %(n)s AND time >= %(s)s AND time < %(e)s "
                "GROUP BY day",
                params,
            )
            times.append((time.perf_counter() - began) * 1000)
            assert len(rows) <= 100
    finally:
        conn.close()
    times.sort()
    return times[len(times) // 2]


def count_events(url: str) -> int:
    conn = Connections(ClickHouseUrl.parse(url))
    try:
        ((count,),) = conn.query("SELECT count() FROM {db}.events")
    finally:
        conn.close()
    return int(count)


def table_bytes(url: str) -> list[tuple[str, int, int]]:
    """(table, bytes on disk, rows) of the store's active parts, biggest first."""
    conn = Connections(ClickHouseUrl.parse(url))
    try:
        rows = conn.query(
            "SELECT table, sum(bytes_on_disk), sum(rows) FROM system.parts "
            "WHERE database = %(d)s AND active GROUP BY table ORDER BY sum(bytes_on_disk) DESC",
            {"d": conn.db},
        )
    finally:
        conn.close()
    return [(table, int(size), int(count)) for table, size, count in rows]
