"""Segments in the ClickHouse store: their records, rebuilding membership and event series
when a segment is made, re-filtered or starts being tracked, and the size series.

Runs in the writer thread (ClickHouseStore._alone), so no group of requests is applied
meanwhile. A tracked segment's events are counted under its `series`; a rebuild counts
every stored event of its members under a new series and switches the segment to it in
its last step, so a rebuild cut short leaves the segment as it was.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from eventtally.domain.model import Segment, SegmentChanges
from eventtally.domain.segments import UserState, matches, parse_filter, referenced
from eventtally.errors import ConflictError
from eventtally.store.base import check_tracked_limit, edit_segment
from eventtally.store.clickhouse_conn import Connections
from eventtally.store.clickhouse_ingest import (
    PROFILE_COLUMNS,
    insert_journal,
    journal_row,
    record_from_row,
)
from eventtally.store.clickhouse_schema import SIZE_CHANGE, SLOT

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
Clock = Callable[[], int]

_COLUMNS = (
    "id, argMax(workspace_id, version), argMax(segment_id, version), argMax(name, version), "
    "argMax(filter, version), argMax(tracking, version), argMax(description, version), "
    "argMax(tags, version), argMax(teams, version), argMax(archived, version), "
    "argMax(created_at, version), argMax(updated_at, version), argMax(series, version)"
)


def _segment(row: Sequence[Any]) -> tuple[Segment, int]:
    key, workspace_id, segment_id, name, text, tracking, description, tags, teams = row[:9]
    archived, created_at, updated_at, series = row[9:]
    segment = Segment(
        id=key,
        workspace_id=workspace_id,
        segment_id=segment_id,
        name=name,
        filter=_decode(text),
        tracking=bool(tracking),
        description=description,
        tags=tuple(tags),
        teams=tuple(teams),
        archived=bool(archived),
        created_at=created_at,
        updated_at=updated_at,
    )
    return segment, series


def _load(conn: Connections, workspace_id: int) -> list[tuple[Segment, int]]:
    rows = conn.query(
        f"SELECT {_COLUMNS} FROM {{db}}.segments GROUP BY id "
        "HAVING argMax(workspace_id, version) = %(w)s",
        {"w": workspace_id},
    )
    found = [_segment(row) for row in rows]
    found.sort(key=lambda pair: (pair[0].created_at, pair[0].id))
    return found


def load(conn: Connections, workspace_id: int) -> list[Segment]:
    """The workspace's segments by creation, oldest first, archived ones too."""
    return [segment for segment, _ in _load(conn, workspace_id)]


def series_of(conn: Connections, segment: int) -> int:
    """Where a segment's events are counted; 0 when it is not tracked now."""
    rows = conn.query(
        "SELECT argMax(series, version), argMax(tracking, version), argMax(archived, version) "
        "FROM {db}.segments WHERE id = %(s)s GROUP BY id",
        {"s": segment},
    )
    if not rows:
        return 0
    series, tracking, archived = rows[0]
    return int(series) if tracking and not archived else 0


def _save(conn: Connections, clock: Clock, segment: Segment, series: int) -> None:
    conn.insert(
        "INSERT INTO {db}.segments (id, workspace_id, segment_id, name, description, tags, "
        "teams, filter, tracking, archived, created_at, updated_at, series, version) VALUES",
        [
            (
                segment.id,
                segment.workspace_id,
                segment.segment_id,
                segment.name,
                segment.description,
                list(segment.tags),
                list(segment.teams),
                _encode(segment.filter).decode(),
                int(segment.tracking),
                int(segment.archived),
                segment.created_at,
                segment.updated_at,
                series,
                clock(),
            )
        ],
    )


def _check_tracked(found: list[tuple[Segment, int]], limit: int, but: int) -> None:
    check_tracked_limit(
        sum(1 for s, _ in found if s.tracking and not s.archived and s.id != but), limit
    )


def create(
    conn: Connections,
    clock: Clock,
    workspace_id: int,
    draft: Segment,
    tracked_limit: int,
    now: int,
) -> Segment:
    parse_filter(draft.filter)  # a bad filter is refused before anything is kept
    if draft.tracking:
        _check_tracked(_load(conn, workspace_id), tracked_limit, but=0)
    ((top,),) = conn.query("SELECT max(id) FROM {db}.segments")
    segment = Segment(
        id=int(top) + 1,
        workspace_id=workspace_id,
        segment_id=str(uuid.uuid4()),
        name=draft.name,
        filter=draft.filter,
        tracking=draft.tracking,
        description=draft.description,
        tags=draft.tags,
        teams=draft.teams,
        archived=False,
        created_at=now,
        updated_at=now,
    )
    _save(conn, clock, segment, _rebuild(conn, clock, segment, now))
    return segment


def update(
    conn: Connections,
    clock: Clock,
    workspace_id: int,
    segment_id: str,
    changes: SegmentChanges,
    tracked_limit: int,
    now: int,
) -> Segment:
    found = _load(conn, workspace_id)
    current, series = next(
        ((s, n) for s, n in found if s.segment_id == segment_id and not s.archived),
        (None, 0),
    )
    if current is None:
        raise ConflictError(f"no live segment {segment_id!r} in this workspace")
    edit = edit_segment(current, changes, now)  # a bad filter: refused before any change
    if edit.start_tracking:
        _check_tracked(found, tracked_limit, but=current.id)
    updated = edit.segment
    if updated.archived:
        _forget(conn, clock, updated, now)
        series = 0
    elif edit.refilter or edit.start_tracking:
        series = _rebuild(conn, clock, updated, now)
    elif not updated.tracking:
        series = 0
    _save(conn, clock, updated, series)
    return updated


def _profiles(conn: Connections, workspace_id: int) -> list[tuple[Any, ...]]:
    """The latest profile of every user of the workspace, as PROFILE_COLUMNS."""
    return conn.query(
        f"SELECT {PROFILE_COLUMNS} FROM {{db}}.profiles WHERE workspace_id = %(w)s GROUP BY user",
        {"w": workspace_id},
    )


def _rebuild(conn: Connections, clock: Clock, segment: Segment, now: int) -> int:
    """Work out the members as every profile is now, record who joined and who left, and
    when tracked, count every stored event of the members under a new series (returned;
    0 when not tracked)."""
    rule = parse_filter(segment.filter)
    reads = referenced(rule)
    ws = segment.workspace_id
    counts: dict[int, dict[str, int]] = {}
    if reads.events:
        for user, name, n in conn.query(
            "SELECT user, name, sum(n) FROM {db}.user_event_counts "
            "WHERE workspace_id = %(w)s AND name IN %(names)s GROUP BY user, name",
            {"w": ws, "names": tuple(sorted(reads.events))},
        ):
            counts.setdefault(user, {})[name] = n
    apps: dict[int, set[str]] = {}
    if reads.uses_apps:
        app_ids = dict(conn.query("SELECT id, app_id FROM {db}.apps"))
        for user, app in conn.query(
            "SELECT DISTINCT user, app FROM {db}.user_apps WHERE workspace_id = %(w)s",
            {"w": ws},
        ):
            apps.setdefault(user, set()).add(app_ids.get(app, ""))
    rows = []
    members: list[int] = []
    joined = left = 0
    version = clock()
    for row in _profiles(conn, ws):
        record = record_from_row(row)
        state = UserState(
            record.attributes, counts.get(record.key, {}), apps.get(record.key, set())
        )
        member = matches(rule, state)
        if member:
            members.append(record.key)
        if member != (segment.id in record.segments):
            if member:
                record.segments.add(segment.id)
                joined += 1
            else:
                record.segments.discard(segment.id)
                left += 1
            rows.append(record.row(ws, version))
    rows.extend(_size_changes(segment.id, now, joined, -left))
    insert_journal(conn, rows)
    if not segment.tracking:
        return 0
    series = secrets.randbits(63) | 1
    conn.insert(
        "INSERT INTO {db}.segment_snapshots (series, user) VALUES",
        [(series, user) for user in members],
    )
    of_members = (
        "FROM {db}.events WHERE workspace_id = %(w)s AND user GLOBAL IN "
        "(SELECT user FROM {db}.segment_snapshots WHERE series = %(s)s)"
    )
    params = {"w": ws, "s": series}
    conn.query(
        "INSERT INTO {db}.segment_events (workspace_id, name, series, app, time) "
        f"SELECT workspace_id, name, %(s)s, app, time {of_members}",
        params,
    )
    conn.query(
        "INSERT INTO {db}.counts (workspace_id, name, series, app, slot, n) "
        f"SELECT workspace_id, name, %(s)s, app, {SLOT} AS slot, count() {of_members} "
        "GROUP BY workspace_id, name, app, slot",
        params,
    )
    return series


def _forget(conn: Connections, clock: Clock, segment: Segment, now: int) -> None:
    """An archived segment has no members from now on."""
    version = clock()
    rows = []
    for row in _profiles(conn, segment.workspace_id):
        record = record_from_row(row)
        if segment.id in record.segments:
            record.segments.discard(segment.id)
            rows.append(record.row(segment.workspace_id, version))
    rows.extend(_size_changes(segment.id, now, -len(rows)))
    insert_journal(conn, rows)


def _size_changes(segment: int, now: int, *deltas: int) -> list[tuple[Any, ...]]:
    return [
        journal_row(kind=SIZE_CHANGE, segment=segment, time=now, delta=delta)
        for delta in deltas
        if delta
    ]


def sizes(conn: Connections, segment: int, instants: Sequence[int]) -> list[int]:
    """How many users were in the segment just before each instant."""
    if not instants:
        return []
    columns = ", ".join(f"sumIf(delta, time < {int(instant)})" for instant in instants)
    ((*found,),) = conn.query(
        f"SELECT {columns} FROM {{db}}.segment_changes WHERE segment = %(s)s", {"s": segment}
    )
    return [int(n) for n in found]
