"""A store full of synthetic events, made fast for the benchmark.

The schema, workspace, apps, key and segment come through the store's own API; the bulk
of the events is generated inside SQLite (a recursive CTE) with the aggregates and
per-user counts derived from them in SQL, exactly as ingest would have left them. This
is how a benchmark gets 100M events in minutes; the product's own paths (HTTP ingest and
`eventtally import`) are measured separately.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from eventtally.domain.model import PERMISSIONS, Segment
from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.store.base import SLOT_US, new_secret
from eventtally.store.sqlite import DB_FILE, SqliteStore
from eventtally.store.sqlite_user_counts import UserCounts

EVENT_NAMES = ("app_open", "add_to_cart", "checkout", "search", "share")
DAYS = 100
USERS = 100_000
CHUNK = 2_000_000  # rows per INSERT ... SELECT, so progress is visible and memory flat


@dataclass(frozen=True)
class Fixture:
    data: Path  # the SQLite store's directory, or the ClickHouse server's
    key: str
    app_ids: tuple[str, ...]
    segment_id: str
    events: int
    end_us: int  # every generated event is before this instant
    seconds: float
    url: str = ""  # the ClickHouse store's URL; "" for SQLite
    workspace_id: int = 0


def rate_limits() -> dict[RateBucket, Limit]:
    """Limits no benchmark load reaches."""
    return {
        RateBucket.DEFAULT: Limit(1_000_000_000, 3600),
        RateBucket.TRACK: Limit(1_000_000_000, 3),
    }


def pro_segment(workspace_id: int) -> Segment:
    """The tracked segment every series with a segment asks about: a quarter of the users."""
    rule = {"attribute": "plan", "op": "eq", "value": "pro"}
    return Segment(0, workspace_id, "", "pro", rule, True)


def build(data: Path, events: int, progress: bool = True) -> Fixture:
    started = time.perf_counter()
    store = SqliteStore.open(data)
    now = time.time_ns() // 1000
    end_us = now // (86_400 * 1_000_000) * 86_400 * 1_000_000  # today 00:00 UTC
    workspace = store.create_workspace("bench", "America/New_York", now)
    apps = tuple(store.create_app(workspace.id, f"app{i}", now).app_id for i in range(2))
    key = new_secret()
    store.add_key(workspace.id, "bench", key, frozenset(PERMISSIONS), now)
    store.update_workspace("bench", rate_limits=rate_limits())
    store.close()

    conn = sqlite3.connect(data / DB_FILE, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # a fixture, rebuilt on failure
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("BEGIN")
    for name in EVENT_NAMES:
        conn.execute(
            "INSERT INTO event_types (workspace_id, name) VALUES (?, ?)", (workspace.id, name)
        )
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO users (workspace_id, braze_id, external_id, attributes, updated_at) "
        "SELECT ?, printf('%024x', i), 'user-' || i, "
        'CASE WHEN i % 4 = 0 THEN \'{"plan":"pro"}\' ELSE \'{"plan":"free"}\' END, ? FROM n',
        (USERS - 1, workspace.id, now),
    )
    types = [r[0] for r in conn.execute("SELECT id FROM event_types ORDER BY id")]
    app_keys = [r[0] for r in conn.execute("SELECT id FROM apps ORDER BY id")]
    first_user = conn.execute("SELECT min(id) FROM users").fetchone()[0]
    conn.execute("COMMIT")
    span = DAYS * 86_400 * 1_000_000
    done = 0
    while done < events:
        rows = min(CHUNK, events - done)
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO events (event_type, user_id, app, time) "
            "SELECT ? + abs(random()) % 5, ? + abs(random()) % ?, "
            "CASE abs(random()) % 3 WHEN 0 THEN NULL WHEN 1 THEN ? ELSE ? END, "
            "? - 1 - abs(random()) % ? FROM n",
            (rows - 1, types[0], first_user, USERS, app_keys[0], app_keys[1], end_us, span),
        )
        conn.execute("COMMIT")
        done += rows
        if progress:
            print(f"  generated {done:,} / {events:,} events", flush=True)
    slot = f"(time - ((time % {SLOT_US}) + {SLOT_US}) % {SLOT_US}) / {SLOT_US}"
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO event_counts (event_type, segment, app, slot, n) "
        f"SELECT event_type, 0, 0, {slot}, count(*) FROM events GROUP BY event_type, {slot}"
    )
    conn.execute(
        "INSERT INTO event_counts (event_type, segment, app, slot, n) "
        f"SELECT event_type, 0, app, {slot}, count(*) FROM events WHERE app IS NOT NULL "
        f"GROUP BY event_type, app, {slot}"
    )
    conn.execute(
        "INSERT OR IGNORE INTO user_apps (user_id, app) "
        "SELECT DISTINCT user_id, app FROM events WHERE app IS NOT NULL"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    counts = UserCounts(data, data / DB_FILE)  # the per-user counts, all folded
    counts.fold(None)
    counts.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts.close()

    store = SqliteStore.open(data)
    segment = store.create_segment(workspace.id, pro_segment(workspace.id), now)
    store.close()
    return Fixture(
        data,
        key,
        apps,
        segment.segment_id,
        events,
        end_us,
        time.perf_counter() - started,
        workspace_id=workspace.id,
    )
