"""`eventtally migrate`: copy a SQLite store into a ClickHouse store, resumably.

Every record goes into ClickHouse with a progress marker that lands with it: a chunk of
users, size changes, events, purchases or idempotency keys is ONE journal block holding
the chunk's rows and a row of kind MIGRATION (position: the last source id in the
chunk). One block is one insert, all or nothing from the client's side (see
clickhouse_schema), so a run cut short (Ctrl-C, kill -9, a lost connection) leaves whole
chunks, each with its marker, and the next run starts after the last marker. The small
tables (workspaces, apps, keys, catalogue, segments) have no journal kind: each is
copied in one insert, then marked; copying one again is harmless (the replacing tables
keep the latest version of a record; apps are inserted only when missing).

What is copied is fixed when the migration starts: the largest ids of users, events,
purchases, size changes and idempotency keys are recorded with the first marker, and
every run copies up to them. Aggregates are not copied: ClickHouse's materialized views
derive counts, per-user event counts and apps used from the journal's events.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec

from eventtally.errors import EventtallyError
from eventtally.store.clickhouse_conn import (
    BULK_TIMEOUT,
    ClickHouseUrl,
    Connections,
    layout_of,
    migrate,
    settle,
)
from eventtally.store.clickhouse_ingest import Clock, UserRecord, insert_journal, journal_row
from eventtally.store.clickhouse_schema import EVENT, IDEMPOTENCY, MIGRATION, PURCHASE, SIZE_CHANGE
from eventtally.store.migrations import MIGRATIONS
from eventtally.store.sqlite import DB_FILE

__all__ = ["CHUNK", "Check", "MigrationError", "Outcome", "Progress", "migrate_sqlite"]

CHUNK = 50_000  # source rows per journal block: one insert, a few MB


_START, _DONE = "start", "done"
# Each chunked step's source table, the id it goes by (rowid: a table without an id; no
# VACUUM ever renumbers them) and the columns it reads, after that id.
_TABLES: Final = {
    "users": ("users", "id", "workspace_id, braze_id, external_id, alias, attributes, updated_at"),
    "size changes": ("segment_changes", "rowid", "segment, time, delta"),
    "events": ("events", "id", "event_type, user_id, app, time, properties, segments"),
    "purchases": (
        "purchases",
        "id",
        "workspace_id, user_id, app, product_id, currency, price, quantity, time, properties",
    ),
    "idempotency keys": (
        "idempotency_keys",
        "rowid",
        "workspace_id, key, body_hash, outcome, expires_at",
    ),
}


class _Rows:
    """journal_row for many rows of one kind, faster (it looks up every column by name,
    most of the time a copied event took): the kind's defaults, `columns` set."""

    def __init__(self, kind: int, *columns: str) -> None:
        self.template = list(journal_row(kind=kind))
        probe = object()  # where journal_row puts each column
        self.at = [journal_row(**{column: probe}).index(probe) for column in columns]

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        row = self.template.copy()
        for i, value in zip(self.at, values, strict=True):
            row[i] = value
        return tuple(row)


_EVENT = _Rows(EVENT, "workspace_id", "name", "user", "time", "app", "series", "properties")
_PURCHASE = _Rows(
    PURCHASE,
    "workspace_id",
    "user",
    "app",
    "product_id",
    "currency",
    "price",
    "quantity",
    "time",
    "properties",
)
_SIZE_CHANGE = _Rows(SIZE_CHANGE, "segment", "time", "delta")
_IDEMPOTENCY = _Rows(
    IDEMPOTENCY, "workspace_id", "key", "body_hash", "outcome", "expires_at", "version"
)
_MARKER = _Rows(MIGRATION, "key", "name", "time", "delta", "updated_at")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class MigrationError(EventtallyError):
    """A migration that cannot start or go on; what is copied stays, a new run resumes."""


class Progress(Protocol):
    """Told as the migration goes: a step starts (of `total` source rows, `done` of them
    copied by earlier runs), then each block of `rows` source rows is in."""

    def start(self, step: str, total: int, done: int) -> None: ...

    def advance(self, step: str, rows: int) -> None: ...


class _Silent:
    def start(self, step: str, total: int, done: int) -> None:
        pass

    def advance(self, step: str, rows: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Check:
    """One count, in the source and in the target."""

    workspace: str
    record: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclass
class Outcome:
    target: str  # the URL, without its password
    resumed: bool  # an earlier run had started this migration
    finished_before: bool  # ... and finished it: this run only verified
    copied: dict[str, int] = field(default_factory=dict)  # step -> source rows, this run
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def migrate_sqlite(
    data_dir: Path,
    url: str,
    *,
    chunk: int = CHUNK,
    progress: Progress | None = None,
    cluster: str | None = None,
) -> Outcome:
    """Copy the SQLite store in `data_dir` into the ClickHouse store at `url` (created if
    need be, sharded over `cluster` if given), or finish a copy an earlier run began;
    then compare their counts."""
    if chunk < 1:
        raise MigrationError("the chunk size must be at least 1")
    parsed = ClickHouseUrl.parse(url)
    source = _open_source(data_dir)
    target = Connections(parsed, BULK_TIMEOUT)
    try:
        layout, servers = layout_of(target, cluster)
        migrate(target, layout, servers)
        settle(target, servers)  # an earlier run's last insert, if it was killed mid-way
        run = _Run(source, target, chunk, progress or _Silent())
        try:
            return run.run(str(parsed))
        except sqlite3.Error as exc:
            raise MigrationError(f"reading the SQLite store failed: {exc}") from None
    finally:
        source.close()
        target.close()


def _now_us() -> int:
    return time.time_ns() // 1000


def _open_source(data_dir: Path) -> sqlite3.Connection:
    path = data_dir / DB_FILE
    if not path.is_file():
        raise MigrationError(f"no SQLite store in {data_dir} (no {DB_FILE} there)")
    # Read-only: the migration may run while `serve` writes to the source.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        # One read transaction for the whole run: every step sees the same snapshot.
        conn.execute("BEGIN")
    except sqlite3.Error as exc:
        conn.close()
        raise MigrationError(f"cannot read the SQLite store in {data_dir}: {exc}") from None
    if version != len(MIGRATIONS):
        conn.close()
        raise MigrationError(
            f"the SQLite store in {data_dir} has schema {version}, not {len(MIGRATIONS)}: "
            f"open it once with this eventtally (eventtally workspaces list --data {data_dir})"
        )
    return conn


def _text(value: object) -> str:
    """A TEXT or BLOB column (JSON written by msgspec, or NULL) as a ClickHouse String."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


@dataclass(frozen=True, slots=True)
class _Tracked:
    """A tracked, live segment as events are counted for it."""

    series: int  # its ClickHouse series
    through: int  # segments.rebuilt_through: events up to it count by the snapshot


class _Run:
    def __init__(
        self,
        source: sqlite3.Connection,
        target: Connections,
        chunk: int,
        progress: Progress,
    ) -> None:
        self.source = source
        self.target = target
        self.chunk = chunk
        self.progress = progress
        self.now = _now_us
        self.versions = Clock()  # of the replacing records the migration inserts
        self.migration = ""
        self.positions: dict[str, int] = {}  # step -> the last source id copied
        self.bounds: dict[str, int] = {}  # chunked step -> the last source id to copy
        self.event_types: dict[int, tuple[int, str]] = {}  # id -> (workspace, name)
        self.tracked: dict[int, _Tracked] = {}  # segment -> how its events are counted
        # In the order they run. Segments come before events: an event row names the
        # ClickHouse series of the tracked segments it counts for.
        self._small_steps: dict[str, tuple[str, Callable[[], int]]] = {
            "workspaces": ("workspaces", self._workspaces),
            "apps": ("apps", self._apps),
            "keys": ("api_keys", self._keys),
            "catalogue": ("event_types", self._catalogue),
            "segments": ("segments", self._segments),
        }
        self._readers: dict[str, Callable[[list[Any], int, int], list[tuple[Any, ...]]]] = {
            "users": self._users,
            "size changes": self._size_changes,
            "events": self._events,
            "purchases": self._purchases,
            "idempotency keys": self._idempotency,
        }

    def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        return self.source.execute(sql, params).fetchall()

    def run(self, shown_url: str) -> Outcome:
        workspaces = self._rows("SELECT id, name, created_at FROM workspaces ORDER BY id")
        if not workspaces:
            raise MigrationError("the SQLite store has no workspaces: nothing to migrate")
        # The migration's name: which store this is, the same for every run on it.
        self.migration = hashlib.sha256(json.dumps(workspaces).encode()).hexdigest()[:16]
        self._load_positions()
        resumed = _START in self.positions
        outcome = Outcome(shown_url, resumed, _DONE in self.positions)
        if not resumed:
            self._refuse_a_target_in_use([(w, n) for w, n, _ in workspaces])
            self._begin()
        self.bounds = {step: self.positions[f"bound:{step}"] for step in _TABLES}
        self.event_types = {
            key: (workspace, name)
            for key, workspace, name in self._rows("SELECT id, workspace_id, name FROM event_types")
        }
        if not outcome.finished_before:
            for step, (table, copy) in self._small_steps.items():
                ((total,),) = self._rows(f"SELECT count(*) FROM {table}")
                done = step in self.positions
                self.progress.start(step, total, total if done else 0)
                if not done:
                    outcome.copied[step] = copy()
                    self._mark(step, 0, outcome.copied[step])
                    self.progress.advance(step, outcome.copied[step])
        self._load_tracked()
        if not outcome.finished_before:
            for step in _TABLES:
                outcome.copied[step] = self._chunked(step)
            self._mark(_DONE, 0, 0)
        outcome.checks = self._verify(workspaces)
        return outcome

    # Markers -----------------------------------------------------------------------------
    def _load_positions(self) -> None:
        self.positions = {
            step: int(position)
            for step, position in self.target.query(
                "SELECT step, max(position) FROM {db}.migration_progress "
                "WHERE migration = %(m)s GROUP BY step",
                {"m": self.migration},
            )
        }

    def _marker(self, step: str, position: int, rows: int) -> tuple[Any, ...]:
        return _MARKER(self.migration, step, position, rows, self.now())

    def _mark(self, step: str, position: int, rows: int) -> None:
        self._insert([], step, position, rows)

    def _insert(self, rows: list[tuple[Any, ...]], step: str, position: int, read: int) -> None:
        """The rows and the step's marker in one block: both land, or neither."""
        rows.append(self._marker(step, position, read))
        insert_journal(self.target, rows)
        self.positions[step] = position

    def _refuse_a_target_in_use(self, workspaces: list[tuple[int, str]]) -> None:
        """The target may hold other workspaces, but none of the source's, and none of the
        ids the source's records keep (apps, keys and segments are found by id alone)."""
        ids = {key for key, _ in workspaces}
        names = {name for _, name in workspaces}
        for key, name in self.target.query(
            "SELECT id, argMax(name, version) FROM {db}.workspaces GROUP BY id"
        ):
            if key in ids or name in names:
                raise MigrationError(
                    f"the target already holds a workspace {name!r} (id {key}) and no "
                    "migration of this store was started there: migrate into a database "
                    "without the source's workspaces"
                )
        for table, label in (("apps", "apps"), ("api_keys", "keys"), ("segments", "segments")):
            keys = tuple(key for (key,) in self._rows(f"SELECT id FROM {table}"))
            if not keys:
                continue
            ((taken,),) = self.target.query(
                f"SELECT count() FROM {{db}}.{table} WHERE id IN %(ids)s", {"ids": keys}
            )
            if taken:
                raise MigrationError(
                    f"the target's {label} already use ids the source's {label} have: "
                    "migrate into an empty database"
                )

    def _begin(self) -> None:
        """The first marker, with what the migration copies: up to the last id now."""
        rows = []
        for step, (table, column, _) in _TABLES.items():
            ((last,),) = self._rows(f"SELECT coalesce(max({column}), 0) FROM {table}")
            rows.append(self._marker(f"bound:{step}", last, 0))
            self.positions[f"bound:{step}"] = last
        self._insert(rows, _START, 0, 0)

    # The small tables --------------------------------------------------------------------
    def _workspaces(self) -> int:
        rows = self._rows("SELECT id, name, time_zone, rate_limits, created_at FROM workspaces")
        self.target.insert(
            "INSERT INTO {db}.workspaces "
            "(id, name, time_zone, rate_limits, created_at, version) VALUES",
            [(*row, self.versions()) for row in rows],
        )
        return len(rows)

    def _apps(self) -> int:
        rows = self._rows("SELECT id, workspace_id, app_id, name, created_at FROM apps")
        # `apps` keeps every row it is given: those an earlier run copied are left out.
        there = {
            key
            for (key,) in self.target.query(
                "SELECT DISTINCT id FROM {db}.apps WHERE id IN %(ids)s",
                {"ids": tuple(row[0] for row in rows) or (0,)},
            )
        }
        self.target.insert(
            "INSERT INTO {db}.apps (id, workspace_id, app_id, name, created_at) VALUES",
            [row for row in rows if row[0] not in there],
        )
        return len(rows)

    def _keys(self) -> int:
        rows = self._rows(
            "SELECT id, workspace_id, name, prefix, secret_hash, permissions, allowed_networks, "
            "created_at, revoked_at IS NOT NULL FROM api_keys"
        )
        # The same secret_hash: every key keeps working.
        self.target.insert(
            "INSERT INTO {db}.api_keys (id, workspace_id, name, prefix, secret_hash, "
            "permissions, allowed_networks, created_at, revoked, version) VALUES",
            [
                (
                    *row[:5],
                    sorted(json.loads(row[5])),
                    json.loads(row[6]),
                    *row[7:],
                    self.versions(),
                )
                for row in rows
            ],
        )
        return len(rows)

    def _catalogue(self) -> int:
        rows = self._rows(
            "SELECT workspace_id, name, description, tags, analytics_report, blocklisted "
            "FROM event_types"
        )
        # Versions above 0: the row ingest adds for a name it sees first (version 0) never
        # wins over the copied metadata.
        self.target.insert(
            "INSERT INTO {db}.catalogue (workspace_id, name, description, tags, "
            "analytics_report, blocklisted, version) VALUES",
            [(*row[:3], json.loads(row[3]), *row[4:], self.versions()) for row in rows],
        )
        return len(rows)

    def _segments(self) -> int:
        rows = self._rows(
            "SELECT id, workspace_id, segment_id, name, description, tags, teams, filter, "
            "tracking, archived, created_at, updated_at FROM segments"
        )
        # A segment an earlier run copied keeps its series: events naming it may be in.
        known = dict(
            self.target.query(
                "SELECT id, argMax(series, version) FROM {db}.segments WHERE id IN %(ids)s "
                "GROUP BY id",
                {"ids": tuple(row[0] for row in rows) or (0,)},
            )
        )
        saved = []
        for key, *head, tags, teams, text, tracking, archived, created, updated in rows:
            # Tracked and live: a fresh series, as a ClickHouse rebuild makes one; the
            # events copied later name it, and its counts are derived from them.
            series = (known.get(key) or _new_key()) if tracking and not archived else 0
            filter_text = _encode(json.loads(text)).decode()  # as ClickHouse writes filters
            arrays = (json.loads(tags), json.loads(teams), filter_text)
            saved.append((key, *head, *arrays, tracking, archived, created, updated, series))
        self.target.insert(
            "INSERT INTO {db}.segments (id, workspace_id, segment_id, name, description, tags, "
            "teams, filter, tracking, archived, created_at, updated_at, series, version) VALUES",
            [(*row, self.versions()) for row in saved],
        )
        return len(rows)

    def _load_tracked(self) -> None:
        """Each tracked, live segment: its ClickHouse series, and the last event its last
        rebuild counted (sqlite_segments.rebuild)."""
        through = dict(
            self._rows(
                "SELECT id, coalesce(rebuilt_through, 0) FROM segments "
                "WHERE tracking AND NOT archived"
            )
        )
        if not through:
            self.tracked = {}
            return
        self.tracked = {
            key: _Tracked(int(series), through[key])
            for key, series in self.target.query(
                "SELECT id, argMax(series, version) FROM {db}.segments WHERE id IN %(ids)s "
                "GROUP BY id",
                {"ids": tuple(through)},
            )
            if series
        }

    # The chunked tables ------------------------------------------------------------------
    def _chunked(self, step: str) -> int:
        table, column, columns = _TABLES[step]
        bound, start = self.bounds[step], self.positions.get(step, 0)
        count = f"SELECT count(*) FROM {table} WHERE {column} <= ?"
        ((total,),) = self._rows(count, (bound,))
        ((done,),) = self._rows(count, (start,))
        self.progress.start(step, total, done)
        read = self._readers[step]
        position, copied = start, 0
        while position < bound:
            rows = self._rows(
                f"SELECT {column}, {columns} FROM {table} WHERE {column} > ? AND {column} <= ? "
                f"ORDER BY {column} LIMIT ?",
                (position, bound, self.chunk),
            )
            if not rows:
                break
            last = rows[-1][0]
            self._insert(read(rows, position, last), step, last, len(rows))
            position = last
            copied += len(rows)
            self.progress.advance(step, len(rows))
        return copied

    def _users(self, rows: list[Any], after: int, last: int) -> list[tuple[Any, ...]]:
        """Profiles, each with the live segments it is in now (segment_members)."""
        members: defaultdict[int, set[int]] = defaultdict(set)
        for user, segment in self._rows(
            "SELECT user_id, segment FROM segment_members WHERE user_id > ? AND user_id <= ?",
            (after, last),
        ):
            members[user].add(segment)
        version = self.versions()
        out: list[tuple[Any, ...]] = []
        for row in rows:
            key, workspace, braze_id, external_id, alias, attributes, updated_at = row
            # The SQLite id is the profile's key, and its creation rank: the order of
            # creation decides between users sharing an email or phone. ClickHouse makes
            # new keys with secrets.randbits(63) | 1, so one equal to a migrated (small)
            # id has odds of about one in 2**62 per user: never, in practice.
            record = UserRecord(
                key,
                braze_id,
                external_id or "",
                alias or "",
                _decode(attributes),
                members.get(key, set()),
                updated_at,
                key,
            )
            out.append(record.row(workspace, version))
        return out

    def _size_changes(self, rows: list[Any], after: int, last: int) -> list[tuple[Any, ...]]:
        return [_SIZE_CHANGE(segment, at, delta) for _, segment, at, delta in rows]

    def _events(self, rows: list[Any], after: int, last: int) -> list[tuple[Any, ...]]:
        series = self._series_of(rows, after, last)
        types = self.event_types
        return [
            _EVENT(
                *types[event_type],
                user,
                at,
                app or 0,
                sorted(series[key]) if key in series else [],
                _text(properties),
            )
            for key, event_type, user, app, at, properties, _ in rows
        ]

    def _series_of(self, rows: list[Any], after: int, last: int) -> dict[int, set[int]]:
        """The series of the tracked segments each event counts for, by SQLite's rule
        (sqlite_segments.raw_count): up to the segment's last rebuild, when its user was a
        member then (segment_snapshots); after it, when the event recorded the segment."""
        found: defaultdict[int, set[int]] = defaultdict(set)
        for segment, tracked in self.tracked.items():
            if tracked.through <= after:
                continue
            # CROSS JOIN keeps events outside: a range of them, each looked up in the
            # snapshot's primary key, never the snapshot scanned for each event.
            for (key,) in self._rows(
                "SELECT e.id FROM events e CROSS JOIN segment_snapshots s "
                "WHERE e.id > ? AND e.id <= ? AND s.segment = ? AND s.user_id = e.user_id",
                (after, min(last, tracked.through), segment),
            ):
                found[key].add(tracked.series)
        for key, *_, marks in rows:
            if not marks:
                continue
            for text in marks.strip(",").split(","):
                tracked_now = self.tracked.get(int(text))
                if tracked_now is not None and key > tracked_now.through:
                    found[key].add(tracked_now.series)
        return found

    def _purchases(self, rows: list[Any], after: int, last: int) -> list[tuple[Any, ...]]:
        return [
            _PURCHASE(workspace, user, app or 0, *item, _text(properties))
            for _, workspace, user, app, *item, properties in rows
        ]

    def _idempotency(self, rows: list[Any], after: int, last: int) -> list[tuple[Any, ...]]:
        now = self.now()
        return [
            _IDEMPOTENCY(workspace, key, body_hash, _text(outcome), expires_at, self.versions())
            for _, workspace, key, body_hash, outcome, expires_at in rows
            if expires_at > now  # an expired key counts as none: it need not move
        ]

    # Verification ------------------------------------------------------------------------
    def _verify(self, workspaces: list[tuple[int, str, int]]) -> list[Check]:
        """Per workspace, each count in both stores; the source's within what the
        migration copies (up to the ids recorded when it started)."""
        now = self.now()
        bounds = {
            "users": self.bounds["users"],
            "events": self.bounds["events"],
            "purchases": self.bounds["purchases"],
            "changes": self.bounds["size changes"],
            "idempotency": self.bounds["idempotency keys"],
            "now": now,
        }
        found: dict[tuple[int, str], list[int]] = {}
        for record, in_source, in_target in _COUNTS:
            for workspace, n in self._rows(in_source, bounds):
                found.setdefault((workspace, record), [0, 0])[0] = n
            for workspace, n in self.target.query(in_target, {"now": now}):
                found.setdefault((workspace, record), [0, 0])[1] = n
        for event_type, n in self._rows(
            "SELECT event_type, count(*) FROM events WHERE id <= :events GROUP BY event_type",
            bounds,
        ):
            workspace, name = self.event_types[event_type]
            found.setdefault((workspace, f"events {name}"), [0, 0])[0] = n
        for workspace, name, n in self.target.query(
            "SELECT workspace_id, name, count() FROM {db}.events GROUP BY workspace_id, name"
        ):
            found.setdefault((workspace, f"events {name}"), [0, 0])[1] = n
        segments = self._segment_checks(bounds)
        checks = []
        for workspace, name, _ in workspaces:
            for record, _, _ in _COUNTS:
                source, target = found.get((workspace, record), (0, 0))
                checks.append(Check(name, record, source, target))
            checks += [
                Check(name, record, source, target)
                for (key, record), (source, target) in sorted(found.items())
                if key == workspace and record.startswith("events ")
            ]
            checks += [
                Check(name, record, source, target)
                for key, record, source, target in segments
                if key == workspace
            ]
        return checks

    def _segment_checks(self, bounds: dict[str, int]) -> list[tuple[int, str, int, int]]:
        """(workspace, record, source, target): each segment's size now, the members of a
        live one, and the events counted for a tracked one."""
        sizes = dict(
            self.target.query(
                "SELECT segment, sum(delta) FROM {db}.segment_changes GROUP BY segment"
            )
        )
        members = dict(
            self.target.query(
                "SELECT segment, count() FROM (SELECT user, argMax(segments, version) AS "
                "segments FROM {db}.profiles GROUP BY user) ARRAY JOIN segments AS segment "
                "GROUP BY segment"
            )
        )
        counted = dict(
            self.target.query(
                "SELECT series, sum(n) FROM {db}.counts WHERE series != 0 GROUP BY series"
            )
        )
        found = []
        for key, workspace, name, archived, size in self._rows(
            "SELECT id, workspace_id, name, archived, (SELECT coalesce(sum(delta), 0) FROM "
            "segment_changes c WHERE c.segment = s.id AND c.rowid <= :changes) "
            "FROM segments s ORDER BY created_at, id",
            bounds,
        ):
            label = f"segment {name!r}"
            found.append((workspace, f"{label} size", size, int(sizes.get(key, 0))))
            if not archived:
                ((now,),) = self._rows(
                    "SELECT count(*) FROM segment_members WHERE segment = ?", (key,)
                )
                found.append((workspace, f"{label} members", now, members.get(key, 0)))
            tracked = self.tracked.get(key)
            if tracked is not None:
                # SQLite's rule (sqlite_segments.raw_count) over every event copied.
                ((events,),) = self._rows(
                    "SELECT count(*) FROM events e WHERE e.id <= :events AND ("
                    "(e.id <= :through AND e.user_id IN "
                    "(SELECT user_id FROM segment_snapshots WHERE segment = :segment)) "
                    "OR (e.id > :through AND e.segments LIKE :mark))",
                    bounds | {"through": tracked.through, "segment": key, "mark": f"%,{key},%"},
                )
                found.append(
                    (workspace, f"{label} events", events, int(counted.get(tracked.series, 0)))
                )
        return found


def _new_key() -> int:
    return secrets.randbits(63) | 1  # as ClickHouse makes series keys (clickhouse_segments)


def _per_workspace(table: str) -> str:
    """A ClickHouse count of replaced records, each in its latest version."""
    return (
        f"SELECT workspace_id, count() FROM (SELECT id, argMax(workspace_id, version) AS "
        f"workspace_id FROM {{db}}.{table} GROUP BY id) GROUP BY workspace_id"
    )


# What verification compares per workspace: (record, SQLite query, ClickHouse query), each
# giving (workspace, count) rows. SQLite's see only the rows the migration copies.
_COUNTS: Final = (
    (
        "users",
        "SELECT workspace_id, count(*) FROM users WHERE id <= :users GROUP BY workspace_id",
        "SELECT workspace_id, uniqExact(user) FROM {db}.profiles GROUP BY workspace_id",
    ),
    (
        "apps",
        "SELECT workspace_id, count(*) FROM apps GROUP BY workspace_id",
        "SELECT workspace_id, count() FROM {db}.apps GROUP BY workspace_id",
    ),
    (
        "keys",
        "SELECT workspace_id, count(*) FROM api_keys GROUP BY workspace_id",
        _per_workspace("api_keys"),
    ),
    (
        "segments",
        "SELECT workspace_id, count(*) FROM segments GROUP BY workspace_id",
        _per_workspace("segments"),
    ),
    (
        "purchases",
        "SELECT workspace_id, count(*) FROM purchases WHERE id <= :purchases GROUP BY workspace_id",
        "SELECT workspace_id, count() FROM {db}.purchases GROUP BY workspace_id",
    ),
    (
        "idempotency keys",
        "SELECT workspace_id, count(*) FROM idempotency_keys "
        "WHERE rowid <= :idempotency AND expires_at > :now GROUP BY workspace_id",
        "SELECT workspace_id, count() FROM (SELECT workspace_id, key, argMax(expires_at, "
        "version) AS expires FROM {db}.idempotency GROUP BY workspace_id, key) "
        "WHERE expires > %(now)s GROUP BY workspace_id",
    ),
)
