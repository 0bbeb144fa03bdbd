"""Segments in the SQLite store: their rows, rebuilding membership and event series when a
segment is made, re-filtered or starts being tracked, and the size series."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from eventtally.domain.model import Segment, SegmentChanges
from eventtally.domain.segments import Filter, UserState, matches, parse_filter, referenced
from eventtally.errors import ConflictError
from eventtally.store.base import check_tracked_limit
from eventtally.store.migrations import raw_index_term
from eventtally.store.sqlite_tx import (
    SLOT_OF_E,
    fold_series_counts,
    insert_rows,
    user_event_counts,
)
from eventtally.store.sqlite_user_counts import UserCounts

_decode = msgspec.json.Decoder().decode
COLUMNS = (
    "id, workspace_id, segment_id, name, filter, tracking, description, tags, teams, "
    "archived, created_at, updated_at"
)


def segment_from_row(row: tuple[Any, ...]) -> Segment:
    (key, workspace_id, segment_id, name, text, tracking, description, tags, teams) = row[:9]
    archived, created_at, updated_at = row[9:]
    return Segment(
        id=key,
        workspace_id=workspace_id,
        segment_id=segment_id,
        name=name,
        filter=json.loads(text),
        tracking=bool(tracking),
        description=description,
        tags=tuple(json.loads(tags)),
        teams=tuple(json.loads(teams)),
        archived=bool(archived),
        created_at=created_at,
        updated_at=updated_at,
    )


def find(conn: sqlite3.Connection, workspace_id: int, segment_id: str) -> Segment | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM segments WHERE workspace_id = ? AND segment_id = ?",
        (workspace_id, segment_id),
    ).fetchone()
    return None if row is None else segment_from_row(row)


def _check_tracked(conn: sqlite3.Connection, workspace_id: int, limit: int, but: int) -> None:
    tracked: int = conn.execute(
        "SELECT count(*) FROM segments WHERE workspace_id = ? AND tracking AND NOT archived "
        "AND id != ?",
        (workspace_id, but),
    ).fetchone()[0]
    check_tracked_limit(tracked, limit)


def create(
    conn: sqlite3.Connection,
    counts: UserCounts,
    workspace_id: int,
    segment: Segment,
    tracked_limit: int,
    now: int,
) -> Segment:
    # Every change to segments first folds the lagging events into event_counts with the
    # segments they counted for then: a rebuild recounts, a segment that stops counting
    # drops its rows, and neither may be undone by a later fold.
    fold_series_counts(conn)
    if segment.tracking:
        _check_tracked(conn, workspace_id, tracked_limit, but=0)
    cur = conn.execute(
        "INSERT INTO segments (workspace_id, segment_id, name, filter, tracking, description, "
        "tags, teams, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            workspace_id,
            str(uuid.uuid4()),
            segment.name,
            json.dumps(segment.filter),
            int(segment.tracking),
            segment.description,
            json.dumps(list(segment.tags)),
            json.dumps(list(segment.teams)),
            now,
            now,
        ),
    )
    assert cur.lastrowid is not None
    row = conn.execute(f"SELECT {COLUMNS} FROM segments WHERE id = ?", (cur.lastrowid,))
    created = segment_from_row(row.fetchone())
    rebuild(conn, counts, created, now)
    return created


def update(
    conn: sqlite3.Connection,
    counts: UserCounts,
    workspace_id: int,
    segment_id: str,
    changes: SegmentChanges,
    tracked_limit: int,
    now: int,
) -> Segment:
    fold_series_counts(conn)  # as in `create`
    current = find(conn, workspace_id, segment_id)
    if current is None or current.archived:
        raise ConflictError(f"no live segment {segment_id!r} in this workspace")
    values: dict[str, object] = {}
    for column in ("name", "description"):
        if (value := getattr(changes, column)) is not None:
            values[column] = value
    for column in ("tags", "teams"):
        if (value := getattr(changes, column)) is not None:
            values[column] = json.dumps(list(value))
    refilter = changes.filter is not None and changes.filter != current.filter
    if refilter:
        values["filter"] = json.dumps(changes.filter)
    start_tracking = changes.tracking is True and not current.tracking
    if changes.tracking is not None:
        values["tracking"] = int(changes.tracking)
        if start_tracking:
            _check_tracked(conn, workspace_id, tracked_limit, but=current.id)
    if changes.archived:
        values["archived"] = 1
    values["updated_at"] = now
    assignments = ", ".join(f"{column} = ?" for column in values)
    conn.execute(f"UPDATE segments SET {assignments} WHERE id = ?", (*values.values(), current.id))
    updated = find(conn, workspace_id, segment_id)
    assert updated is not None
    if updated.archived:
        _forget(conn, updated.id, now)
    elif refilter or start_tracking:
        rebuild(conn, counts, updated, now)
    elif changes.tracking is False:
        _drop_counts(conn, updated.id)
    return updated


def _drop_counts(conn: sqlite3.Connection, segment: int) -> None:
    """No event series any more: no counts, no snapshot, no build to finish."""
    conn.execute("DELETE FROM event_counts WHERE segment = ?", (segment,))
    conn.execute("DELETE FROM segment_snapshots WHERE segment = ?", (segment,))
    conn.execute("UPDATE segments SET building = NULL WHERE id = ?", (segment,))


def _forget(conn: sqlite3.Connection, segment: int, now: int) -> None:
    """An archived segment keeps no members, counts or snapshot; its size history stays."""
    left: int = conn.execute(
        "SELECT count(*) FROM segment_members WHERE segment = ?", (segment,)
    ).fetchone()[0]
    if left:
        conn.execute(
            "INSERT INTO segment_changes (segment, time, delta) VALUES (?, ?, ?)",
            (segment, now, -left),
        )
    conn.execute("DELETE FROM segment_members WHERE segment = ?", (segment,))
    _drop_counts(conn, segment)


def _profiles(
    conn: sqlite3.Connection, counts: UserCounts, workspace_id: int, rule: Filter
) -> dict[int, UserState]:
    """Every profile of the workspace, with only the parts `rule` reads."""
    reads = referenced(rule)
    events = user_event_counts(conn, counts, workspace_id, None) if reads.events else {}
    apps: defaultdict[int, set[str]] = defaultdict(set)
    if reads.uses_apps:
        for user, app_id in conn.execute(
            "SELECT u.user_id, a.app_id FROM user_apps u JOIN apps a ON a.id = u.app "
            "WHERE a.workspace_id = ?",
            (workspace_id,),
        ):
            apps[user].add(app_id)
    return {
        user: UserState(_decode(attributes), events.get(user, {}), apps[user])
        for user, attributes in conn.execute(
            "SELECT id, attributes FROM users WHERE workspace_id = ?", (workspace_id,)
        )
    }


def rebuild(conn: sqlite3.Connection, counts: UserCounts, segment: Segment, now: int) -> None:
    """Membership as every profile is now; for a tracked segment, its event series from
    every stored event of those members (architecture decision 5)."""
    rule = parse_filter(segment.filter)
    members = {
        user
        for user, state in _profiles(conn, counts, segment.workspace_id, rule).items()
        if matches(rule, state)
    }
    before = {
        user
        for (user,) in conn.execute(
            "SELECT user_id FROM segment_members WHERE segment = ?", (segment.id,)
        )
    }
    joined, left = members - before, before - members
    conn.executemany(
        "INSERT INTO segment_members (segment, user_id) VALUES (?, ?)",
        [(segment.id, user) for user in joined],
    )
    conn.executemany(
        "DELETE FROM segment_members WHERE segment = ? AND user_id = ?",
        [(segment.id, user) for user in left],
    )
    for delta in (len(joined), -len(left)):
        if delta:
            conn.execute(
                "INSERT INTO segment_changes (segment, time, delta) VALUES (?, ?, ?)",
                (segment.id, now, delta),
            )
    _drop_counts(conn, segment.id)
    if not segment.tracking:
        return
    conn.execute(
        "INSERT INTO segment_snapshots (segment, user_id) "
        "SELECT segment, user_id FROM segment_members WHERE segment = ?",
        (segment.id,),
    )
    # The counts of the events stored so far by those members are left to `count_build`
    # and `finish_build`, which SqliteStore runs after this transaction: the pass over
    # every event holds no write lock, so ingest goes on meanwhile.
    conn.execute(
        "UPDATE segments SET rebuilt_through = (SELECT coalesce(max(id), 0) FROM events), "
        "building = random() WHERE id = ?",
        (segment.id,),
    )


@dataclass(frozen=True, slots=True)
class Build:
    """A tracked segment whose counts of the events up to `through` are not written yet."""

    segment: int
    workspace_id: int
    through: int
    token: int


def builds(conn: sqlite3.Connection) -> list[Build]:
    return [
        Build(*row)
        for row in conn.execute(
            "SELECT id, workspace_id, rebuilt_through, building FROM segments "
            "WHERE building IS NOT NULL ORDER BY id"
        )
    ]


def count_build(conn: sqlite3.Connection, build: Build) -> list[tuple[int, int, int, int]]:
    """The members' events up to `through` by type, app (0: none) and slot, read in one
    snapshot, which needs no write lock. (One pass, the every-app rows summed from it
    later: half the time of a pass for each, as the grouping sorts every member's event.)

    The cost is in grouping the events counted, so when most users are members, it is
    everyone's counts up to `through` (event_counts, segment 0) less the events of the
    others: a segment of every user groups none of its events."""
    conn.execute("BEGIN")
    try:
        members, users = conn.execute(
            "SELECT (SELECT count(*) FROM segment_snapshots WHERE segment = ?), "
            "(SELECT count(*) FROM users WHERE workspace_id = ?)",
            (build.segment, build.workspace_id),
        ).fetchone()
        if 2 * members <= users:
            return _grouped(conn, build, f"e.id <= ?2 AND e.user_id IN {_SNAPSHOT}")
        counts = _everyone(conn, build)
        if members < users:
            for event_type, app, slot, n in _grouped(
                conn, build, f"e.id <= ?2 AND e.user_id NOT IN {_SNAPSHOT}"
            ):
                counts[(event_type, app, slot)] -= n
        return [(event_type, app, slot, n) for (event_type, app, slot), n in counts.items() if n]
    finally:
        conn.execute("COMMIT")


_SNAPSHOT = "(SELECT user_id FROM segment_snapshots WHERE segment = ?3)"


def _grouped(
    conn: sqlite3.Connection, build: Build, where: str, *more: int
) -> list[tuple[int, int, int, int]]:
    """The workspace's events `where` says (?2: `through`, ?3: the segment, ?4: `more`)
    by type, app (0: none) and slot."""
    rows: list[tuple[int, int, int, int]] = conn.execute(
        f"SELECT e.event_type, coalesce(e.app, 0), {SLOT_OF_E}, count(*) "
        "FROM events e JOIN event_types t ON t.id = e.event_type "
        f"WHERE t.workspace_id = ?1 AND {where} GROUP BY 1, 2, 3",
        (build.workspace_id, build.through, build.segment, *more),
    ).fetchall()
    return rows


def _everyone(conn: sqlite3.Connection, build: Build) -> dict[tuple[int, int, int], int]:
    """Every event of the workspace up to `through` by type, app (0: none) and slot, from
    event_counts: what it has folded (the events before counts_pending.series_from, or
    all), with the lagging events up to `through` added and the folded ones after it taken
    away (in this snapshot; few, as a rebuild folds everything up to `through`)."""
    counts: defaultdict[tuple[int, int, int], int] = defaultdict(int)
    for event_type, app, slot, n in conn.execute(
        "SELECT event_type, app, slot, n FROM event_counts WHERE segment = 0 AND event_type "
        "IN (SELECT id FROM event_types WHERE workspace_id = ?)",
        (build.workspace_id,),
    ):
        counts[(event_type, app, slot)] += n
        if app:  # app 0 holds every app's events; here it is to hold those of none
            counts[(event_type, 0, slot)] -= n
    (lag_from,) = conn.execute("SELECT series_from FROM counts_pending").fetchone()
    if lag_from is None:  # nothing lags: every event is folded
        lag_from = _MAX_ID
    for where, sign in (("e.id BETWEEN ?4 AND ?2", 1), ("e.id > ?2 AND e.id < ?4", -1)):
        for event_type, app, slot, n in _grouped(conn, build, where, lag_from):
            counts[(event_type, app, slot)] += sign * n
    return counts


_MAX_ID = (1 << 63) - 1  # SQLite's largest integer


def finish_build(
    conn: sqlite3.Connection, build: Build, rows: list[tuple[int, int, int, int]]
) -> None:
    """Add the counts `count_build` read, unless the segment was rebuilt, untracked or
    archived since (its token changed): then they belong to no build. event_counts may
    already hold the segment's later events (ingest counted them meanwhile): added to."""
    current = conn.execute(
        "UPDATE segments SET building = NULL WHERE id = ? AND building = ?",
        (build.segment, build.token),
    )
    if current.rowcount != 1:
        return
    by_slot: dict[tuple[int, int], int] = {}
    per_app = []
    for event_type, app, slot, n in rows:
        by_slot[(event_type, slot)] = by_slot.get((event_type, slot), 0) + n
        if app:
            per_app.append((event_type, build.segment, app, slot, n))
    everyone = [(t, build.segment, 0, slot, n) for (t, slot), n in by_slot.items()]
    insert_rows(
        conn,
        "INSERT INTO event_counts (event_type, segment, app, slot, n)",
        5,
        everyone + per_app,
        " ON CONFLICT (event_type, segment, app, slot) DO UPDATE SET n = n + excluded.n",
    )


def raw_count(
    conn: sqlite3.Connection,
    event_type: int,
    segment: int,
    app: int | None,
    start: int,
    end: int,
) -> int:
    """Events counted for a tracked segment in [start, end), from the raw events: up to the
    last rebuild by the members then, after it by what each event recorded at ingest."""
    through, live = conn.execute(
        "SELECT coalesce(rebuilt_through, 0), tracking AND NOT archived FROM segments WHERE id = ?",
        (segment,),
    ).fetchone()
    if not live:  # untracked or archived: it counts nothing, whatever events once recorded
        return 0
    sql = (
        "SELECT count(*) FROM events e WHERE e.event_type = ? AND e.time >= ? AND e.time < ? "
        "AND ((e.id <= ? AND e.user_id IN "
        "(SELECT user_id FROM segment_snapshots WHERE segment = ?)) "
        "OR (e.id > ? AND e.segments LIKE ?))" + raw_index_term(end, "e.time")
    )
    params: tuple[object, ...] = (
        event_type,
        start,
        end,
        through,
        segment,
        through,
        f"%,{segment},%",
    )
    if app is not None:
        sql += " AND e.app = ?"
        params += (app,)
    n: int = conn.execute(sql, params).fetchone()[0]
    return n


def sizes(conn: sqlite3.Connection, segment: int, instants: Sequence[int]) -> list[int]:
    """The number of members just before each instant."""
    return [
        conn.execute(
            "SELECT coalesce(sum(delta), 0) FROM segment_changes WHERE segment = ? AND time < ?",
            (segment, instant),
        ).fetchone()[0]
        for instant in instants
    ]
