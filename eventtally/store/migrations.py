"""The SQLite schema, as numbered migrations applied in one transaction each.

`PRAGMA user_version` records how many have run. Times are integer microseconds
since the epoch (UTC). `event_counts` holds the pre-aggregated counts: one row per
event type, segment (0: everyone), app (0: every app) and 15-minute UTC slot.
"""

from __future__ import annotations

import sqlite3

# Raw events are indexed by (event type, time) only before this instant (2024-01-01 UTC).
# The index serves exact counts for the pieces of buckets whose edges are off the
# 15-minute grid, and under tzdata 2026a no zone has such an edge after 2022-10-01
# (Antarctica/Casey); a later one (a future tzdata) is counted by a scan, still exact.
# Random-time inserts into an index of every event cost ingest more than anything else.
RAW_INDEX_BEFORE_US = 1_704_067_200_000_000

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE workspaces (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        time_zone TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE apps (
        id INTEGER PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
        app_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        permissions TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE event_types (
        id INTEGER PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        description TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        analytics_report INTEGER NOT NULL DEFAULT 0,
        blocklisted INTEGER NOT NULL DEFAULT 0,
        UNIQUE (workspace_id, name)
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
        braze_id TEXT NOT NULL,
        external_id TEXT,
        alias TEXT,
        email TEXT,
        phone TEXT,
        attributes BLOB NOT NULL DEFAULT '{}',
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX users_braze_id ON users (workspace_id, braze_id);
    CREATE UNIQUE INDEX users_external_id ON users (workspace_id, external_id)
        WHERE external_id IS NOT NULL;
    CREATE UNIQUE INDEX users_alias ON users (workspace_id, alias) WHERE alias IS NOT NULL;
    CREATE INDEX users_email ON users (workspace_id, email, updated_at) WHERE email IS NOT NULL;
    CREATE INDEX users_phone ON users (workspace_id, phone, updated_at) WHERE phone IS NOT NULL;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        event_type INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        app INTEGER,
        time INTEGER NOT NULL,
        properties BLOB
    );
    -- Raw counts for the rare bucket whose edges are off the 15-minute grid.
    CREATE INDEX events_type_time ON events (event_type, time, app);
    CREATE TABLE purchases (
        id INTEGER PRIMARY KEY,
        workspace_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        app INTEGER,
        product_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        price REAL NOT NULL,
        quantity INTEGER NOT NULL,
        time INTEGER NOT NULL,
        properties BLOB
    );
    CREATE TABLE event_counts (
        event_type INTEGER NOT NULL,
        segment INTEGER NOT NULL,
        app INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (event_type, segment, app, slot)
    ) WITHOUT ROWID;
    """,
    # Per-workspace rate-limit overrides: {"track": [requests, seconds], ...}.
    """
    ALTER TABLE workspaces ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '{}'
    """,
    # A key's IP allowlist: ["10.0.0.0/8", ...]; empty admits every address.
    """
    ALTER TABLE api_keys ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '[]'
    """,
    # `Idempotency-Key`s of /users/track (contract 8.24), written in the transaction that
    # applied the request: the body's SHA-256 and the outcome answered (JSON), kept until
    # expires_at; the writer deletes expired rows a batch at a time.
    """
    CREATE TABLE idempotency_keys (
        workspace_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        outcome BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, key)
    );
    CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)
    """,
    # Segments. Membership is kept current for every live segment (segment_members) and
    # every change is logged (segment_changes) for size series; events keep the tracked
    # segments they counted for (",3,7,") so off-grid buckets can be counted exactly, and
    # a tracked segment's rebuild remembers who was a member then (segment_snapshots) and
    # up to which event (segments.rebuilt_through).
    """
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
        segment_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        description TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        teams TEXT NOT NULL DEFAULT '[]',
        filter TEXT NOT NULL,
        tracking INTEGER NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        rebuilt_through INTEGER
    );
    CREATE INDEX segments_workspace ON segments (workspace_id, created_at);
    CREATE TABLE segment_members (
        segment INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, segment)
    ) WITHOUT ROWID;
    CREATE INDEX segment_members_segment ON segment_members (segment);
    CREATE TABLE segment_changes (
        segment INTEGER NOT NULL,
        time INTEGER NOT NULL,
        delta INTEGER NOT NULL
    );
    CREATE INDEX segment_changes_time ON segment_changes (segment, time);
    CREATE TABLE segment_snapshots (
        segment INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (segment, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE user_event_counts (
        user_id INTEGER NOT NULL,
        event_type INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (user_id, event_type)
    ) WITHOUT ROWID;
    INSERT INTO user_event_counts (user_id, event_type, n)
        SELECT user_id, event_type, count(*) FROM events GROUP BY user_id, event_type;
    CREATE TABLE user_apps (
        user_id INTEGER NOT NULL,
        app INTEGER NOT NULL,
        PRIMARY KEY (user_id, app)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO user_apps (user_id, app)
        SELECT user_id, app FROM events WHERE app IS NOT NULL
        UNION SELECT user_id, app FROM purchases WHERE app IS NOT NULL;
    ALTER TABLE events ADD COLUMN segments TEXT
    """,
    # Ingest speed. (1) The raw-count index keeps only events before RAW_INDEX_BEFORE_US.
    # (2) user_event_counts is brought up to date lazily: it counts every event whose id
    # is below counts_pending.from_event (every event when that is NULL); ingest sets
    # from_event when it adds the first events after a catch-up, and whoever reads the
    # table (segment rebuilds, profiles for filters on event counts) first folds the
    # events from there in, with one GROUP BY, instead of an upsert per user and event.
    f"""
    DROP INDEX events_type_time;
    CREATE INDEX events_type_time_before ON events (event_type, time, app)
        WHERE time < {RAW_INDEX_BEFORE_US};
    CREATE TABLE counts_pending (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        from_event INTEGER
    );
    INSERT INTO counts_pending (id, from_event) VALUES (0, NULL)
    """,
    # event_counts is brought up to date lazily too: it counts every event whose id is
    # below counts_pending.series_from (every event when that is NULL); readers count the
    # events from there themselves, and the writer folds them in a few thousand at a
    # time, or once ingest pauses, instead of upserting a group's counts at every commit.
    """
    ALTER TABLE counts_pending ADD COLUMN series_from INTEGER
    """,
    # A tracked segment's counts of the events up to rebuilt_through are written in a
    # transaction of their own, after a pass over those events that holds no write lock
    # (SqliteStore._build_segments); until then `building` holds that build's token and
    # the segment's event series answer 503.
    """
    ALTER TABLE segments ADD COLUMN building INTEGER
    """,
    # The per-user event counts live in a file of their own (sqlite_user_counts), folded
    # beside the writer; SqliteStore copies them there before this runs.
    """
    DROP TABLE user_event_counts;
    ALTER TABLE counts_pending DROP COLUMN from_event
    """,
)


def raw_index_term(end: int, column: str = "time") -> str:
    """The condition that lets a count of raw events up to `end` use the index of raw
    events, which holds only those before RAW_INDEX_BEFORE_US (the same text as its
    WHERE, so SQLite sees that it applies); later ranges are counted by a scan."""
    return f" AND {column} < {RAW_INDEX_BEFORE_US}" if end <= RAW_INDEX_BEFORE_US else ""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the schema version. Safe to run concurrently."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction; split instead (no ';' in literals).
    return [s.strip() for s in script.split(";") if s.strip()]
