"""The SQLite writer's side of ingest: the primitives `apply_track` runs on, the rows they
leave to write, and the lookups the writer caches between requests."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec

from eventtally.domain.segments import parse_filter, referenced
from eventtally.domain.track import EventItem, Identity, PurchaseItem
from eventtally.store.base import SLOT_US, new_braze_id
from eventtally.store.ingest import Profile, SegmentRule

_IDENTITY_COLUMN = {
    "external_id": "external_id",
    "user_alias": "alias",
    "braze_id": "braze_id",
    "email": "email",
    "phone": "phone",
}
_CACHEABLE = frozenset({"external_id", "user_alias", "braze_id"})
PROFILE_CACHE = 100_000
# user_event_counts may lag this many events at most: a read folds them all at once
# (about 0.75 s per million on the 2-core benchmark machine). Past it, a commit folds
# the oldest events down to FOLD_CHUNK below it: about 1.5 µs an event, against the
# 8 µs an event that upserting per request cost (measured: 20k events fold in ~50 ms,
# 100k in ~115 ms, as the whole table's pages are rewritten either way).
FOLD_BACKLOG = 1_000_000
FOLD_CHUNK = 50_000
MARKS_CACHE = 10_000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class WriterCaches:
    """Lookups the writer repeats on every request, valid while no other process writes.

    `PRAGMA data_version` changes only when another connection commits (the CLI
    blocklisting an event while the server runs, say); then everything is dropped.
    """

    def __init__(self) -> None:
        self.version = -1
        self.apps: dict[tuple[int, str], int] = {}
        self.event_types: dict[tuple[int, str], tuple[int, bool]] = {}
        # (workspace, identity kind, identifier) -> user: plain tuples hash fast.
        self.users: dict[tuple[int, str, str], int] = {}
        # Tracked segments an event counts for -> the `events.segments` text (",3,7,").
        self.marks: dict[frozenset[int], str] = {}
        self.segments: dict[int, list[SegmentRule]] = {}
        # counts_pending.from_event once it is known to be set in this transaction's view
        # (None: not known), so ingest need not set it again, and the last event id the
        # writer added: how many events user_event_counts lags (fold_user_event_counts).
        self.pending_from: int | None = None
        self.last_event = 0
        # Profiles segment rules read, kept current by the rules themselves; the most
        # recently used ones, so a busy user costs no queries (bounded: memory stays flat).
        self.profiles: OrderedDict[int, Profile] = OrderedDict()

    def check(self, conn: sqlite3.Connection) -> None:
        version: int = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version:
            self.clear()
            self.version = version

    def clear(self) -> None:
        self.apps.clear()
        self.event_types.clear()
        self.users.clear()
        self.marks.clear()
        self.segments.clear()
        self.profiles.clear()
        self.pending_from = None

    def segment_rules(self, conn: sqlite3.Connection, workspace_id: int) -> list[SegmentRule]:
        rules = self.segments.get(workspace_id)
        if rules is None:
            rows = conn.execute(
                "SELECT id, tracking, filter FROM segments "
                "WHERE workspace_id = ? AND NOT archived ORDER BY id",
                (workspace_id,),
            )
            rules = []
            for segment, tracking, text in rows:
                parsed = parse_filter(_decode(text))
                rules.append(SegmentRule(segment, bool(tracking), parsed, referenced(parsed)))
            self.segments[workspace_id] = rules
        return rules


def fold_user_event_counts(conn: sqlite3.Connection, limit: int | None = None) -> None:
    """Bring user_event_counts up to date: fold in the events ingest added since the last
    fold (migration 6), or only the first `limit` of them. Call it before reading the
    table, in the writer's transaction; then forget WriterCaches.pending_from."""
    (start,) = conn.execute("SELECT from_event FROM counts_pending").fetchone()
    if start is None:
        return
    end = start + limit if limit is not None else None
    conn.execute(
        "INSERT INTO user_event_counts (user_id, event_type, n) "
        "SELECT user_id, event_type, count(*) FROM events WHERE id >= ?1 "
        + ("" if end is None else "AND id < ?2 ")
        + "GROUP BY user_id, event_type "
        "ON CONFLICT (user_id, event_type) DO UPDATE SET n = n + excluded.n",
        (start,) if end is None else (start, end),
    )
    if end is None:
        conn.execute("UPDATE counts_pending SET from_event = NULL")
    else:
        conn.execute(
            "UPDATE counts_pending SET from_event = "
            "CASE WHEN EXISTS (SELECT 1 FROM events WHERE id >= ?1) THEN ?1 END",
            (end,),
        )


class SqliteTx:
    """The ingest primitives on the writer connection, inside one request's savepoint (or,
    when the writer applies a group optimistically, in the group's transaction)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        workspace_id: int,
        now: int,
        caches: WriterCaches,
        writes: PendingWrites,
    ) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.now = now
        self.caches = caches
        self.writes = writes  # where the request's rows go

    # Segments ----------------------------------------------------------------------------
    def segment_rules(self) -> Sequence[SegmentRule]:
        return self.caches.segment_rules(self.conn, self.workspace_id)

    def profile(self, user: int) -> Profile:
        profiles = self.caches.profiles
        profile = profiles.get(user)
        if profile is not None:
            profiles.move_to_end(user)
        else:
            # Only what the workspace's filters read is loaded: a cached profile lives
            # only as long as the rules it was loaded for (every change to segments
            # clears the caches), and the other parts are never read meanwhile.
            rules = self.segment_rules()
            counts: dict[str, int] = {}
            if any(rule.reads.events for rule in rules):
                fold_user_event_counts(self.conn)
                self.caches.pending_from = None
                counts = dict(
                    self.conn.execute(
                        "SELECT t.name, c.n FROM user_event_counts c "
                        "JOIN event_types t ON t.id = c.event_type WHERE c.user_id = ?",
                        (user,),
                    ).fetchall()
                )
            apps: set[str] = set()
            if any(rule.reads.uses_apps for rule in rules):
                apps = {
                    app_id
                    for (app_id,) in self.conn.execute(
                        "SELECT a.app_id FROM user_apps u JOIN apps a ON a.id = u.app "
                        "WHERE u.user_id = ?",
                        (user,),
                    )
                }
            # Attributes and memberships in one query: a cold profile costs a query each.
            attributes, members = self.conn.execute(
                "SELECT attributes, (SELECT group_concat(segment) FROM segment_members "
                "WHERE user_id = ?1) FROM users WHERE id = ?1",
                (user,),
            ).fetchone()
            segments = {int(segment) for segment in members.split(",")} if members else set()
            profile = Profile(_decode(attributes), counts, apps, segments)
            profiles[user] = profile
            if len(profiles) > PROFILE_CACHE:
                profiles.popitem(last=False)
        return profile

    def set_member(self, user: int, segment: int, member: bool) -> None:
        if member:
            self.conn.execute(
                "INSERT OR IGNORE INTO segment_members (segment, user_id) VALUES (?, ?)",
                (segment, user),
            )
        else:
            self.conn.execute(
                "DELETE FROM segment_members WHERE segment = ? AND user_id = ?", (segment, user)
            )
        self.conn.execute(
            "INSERT INTO segment_changes (segment, time, delta) VALUES (?, ?, ?)",
            (segment, self.now, 1 if member else -1),
        )

    def find_user(self, identity: Identity) -> int | None:
        kind = identity.kind
        # email and phone may move between profiles, so only immutable identifiers are cached.
        cacheable = kind in _CACHEABLE
        key = (self.workspace_id, kind, identity.value)
        if cacheable and (cached := self.caches.users.get(key)) is not None:
            return cached
        column = _IDENTITY_COLUMN[kind]
        row = self.conn.execute(
            f"SELECT id FROM users WHERE workspace_id = ? AND {column} = ? "
            "ORDER BY updated_at DESC, id DESC LIMIT 1",
            (self.workspace_id, identity.value),
        ).fetchone()
        if row is None:
            return None
        if cacheable:
            self.caches.users[key] = row[0]
        user: int = row[0]
        return user

    def create_user(self, identity: Identity) -> int:
        column = _IDENTITY_COLUMN[identity.kind]
        attributes: dict[str, Any] = {}
        if identity.kind in ("email", "phone"):
            attributes[identity.kind] = identity.value
        cur = self.conn.execute(
            f"INSERT INTO users (workspace_id, braze_id, {column}, attributes, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (self.workspace_id, new_braze_id(), identity.value, _encode(attributes), self.now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def attributes(self, user: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT attributes FROM users WHERE id = ?", (user,)).fetchone()
        attributes: dict[str, Any] = _decode(row[0])
        return attributes

    def save_attributes(self, user: int, attributes: dict[str, Any]) -> None:
        email, phone = attributes.get("email"), attributes.get("phone")
        self.conn.execute(
            "UPDATE users SET attributes = ?, email = ?, phone = ?, updated_at = ? WHERE id = ?",
            (
                _encode(attributes),
                email if isinstance(email, str) else None,
                phone if isinstance(phone, str) else None,
                self.now,
                user,
            ),
        )

    def app_key(self, app_id: str) -> int | None:
        key = (self.workspace_id, app_id)
        if (cached := self.caches.apps.get(key)) is not None:
            return cached
        row = self.conn.execute(
            "SELECT id FROM apps WHERE workspace_id = ? AND app_id = ?", (self.workspace_id, app_id)
        ).fetchone()
        if row is None:
            return None
        self.caches.apps[key] = row[0]
        app: int = row[0]
        return app

    def event_type(self, name: str) -> tuple[int, bool]:
        key = (self.workspace_id, name)
        if (cached := self.caches.event_types.get(key)) is not None:
            return cached
        row = self.conn.execute(
            "SELECT id, blocklisted FROM event_types WHERE workspace_id = ? AND name = ?", key
        ).fetchone()
        if row is None:
            cur = self.conn.execute(
                "INSERT INTO event_types (workspace_id, name) VALUES (?, ?)", key
            )
            assert cur.lastrowid is not None
            row = (cur.lastrowid, 0)
        result = (row[0], bool(row[1]))
        self.caches.event_types[key] = result
        return result

    def add_event(
        self,
        item: EventItem,
        event_type: int,
        user: int,
        app: int | None,
        segments: frozenset[int],
    ) -> None:
        properties = _encode(item.properties) if item.properties else None
        marks = None
        if segments:
            self.writes.segments_marked = True
            known = self.caches.marks
            marks = known.get(segments)
            if marks is None:
                if len(known) >= MARKS_CACHE:
                    known.clear()
                marks = known[segments] = ",".join(["", *map(str, sorted(segments)), ""])
        writes = self.writes
        writes.events.append((event_type, user, app, item.time, properties, marks))
        if app is not None:
            writes.apps_used = True
            writes.user_apps.add((user, app))

    def add_purchase(self, item: PurchaseItem, user: int, app: int | None) -> None:
        if app is not None:
            self.writes.user_apps.add((user, app))
        self.conn.execute(
            "INSERT INTO purchases (workspace_id, user_id, app, product_id, currency, price, "
            "quantity, time, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.workspace_id,
                user,
                app,
                item.product_id,
                item.currency,
                item.price,
                item.quantity,
                item.time,
                _encode(item.properties) if item.properties else None,
            ),
        )


class PendingWrites:
    """The rows track requests add (events, the apps users used), written in a few
    statements, with the aggregate counts of the events, when the request ends or, when
    the writer applies a group optimistically, once for the whole group."""

    def __init__(self) -> None:
        # (event type, user, app, time, properties as JSON, tracked segments as ",3,7,")
        self.events: list[tuple[int, int, int | None, int, bytes | None, str | None]] = []
        self.user_apps: set[tuple[int, int]] = set()
        # Whether any event has an app, or counts for a tracked segment.
        self.apps_used = False
        self.segments_marked = False

    def clear(self) -> None:
        self.events.clear()
        self.user_apps.clear()
        self.apps_used = self.segments_marked = False

    def write(self, conn: sqlite3.Connection, caches: WriterCaches) -> None:
        if self.events:
            if caches.pending_from is None:
                # The events about to be added are not in user_event_counts yet.
                (caches.pending_from,) = conn.execute(
                    "UPDATE counts_pending SET from_event = "
                    "coalesce(from_event, (SELECT coalesce(max(id), 0) + 1 FROM events)) "
                    "RETURNING from_event"
                ).fetchone()
            first = insert_rows(
                conn,
                "INSERT INTO events (event_type, user_id, app, time, properties, segments)",
                6,
                self.events,
            )
            caches.last_event = first + len(self.events) - 1
            last = first - 1  # the rows after it are the ones just added
            # The aggregates, counted by SQLite from the rows just added: no Python work
            # per event, and none of it holding the GIL.
            conn.execute(_COUNT_EVERYONE, (last,))
            if self.apps_used:
                conn.execute(_COUNT_APPS, (last,))
            if self.segments_marked:
                conn.execute(_COUNT_SEGMENTS, (last,))
                if self.apps_used:
                    conn.execute(_COUNT_SEGMENT_APPS, (last,))
        if self.user_apps:
            insert_rows(
                conn, "INSERT OR IGNORE INTO user_apps (user_id, app)", 2, sorted(self.user_apps)
            )
        self.clear()


# Fold the events after ?1 into event_counts: for everyone (segment 0) and for each tracked
# segment the event counted for, each for every app (app 0) and for the event's own app.
# One statement per kind of row, only the kinds the new events need.
_SLOT = f"(e.time - ((e.time % {SLOT_US}) + {SLOT_US}) % {SLOT_US}) / {SLOT_US}"
_SEGMENTS = "json_each('[' || trim(e.segments, ',') || ']') s"
_UPSERT = " ON CONFLICT (event_type, segment, app, slot) DO UPDATE SET n = n + excluded.n"
_COUNT_EVERYONE = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    f"SELECT e.event_type, 0, 0, {_SLOT}, count(*) FROM events e WHERE e.id > ? "
    "GROUP BY 1, 4" + _UPSERT
)
_COUNT_APPS = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    f"SELECT e.event_type, 0, e.app, {_SLOT}, count(*) FROM events e "
    "WHERE e.id > ? AND e.app IS NOT NULL GROUP BY 1, 3, 4" + _UPSERT
)
_COUNT_SEGMENTS = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    f"SELECT e.event_type, s.value, 0, {_SLOT}, count(*) FROM events e, {_SEGMENTS} "
    "WHERE e.id > ? AND e.segments IS NOT NULL GROUP BY 1, 2, 4" + _UPSERT
)
_COUNT_SEGMENT_APPS = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    f"SELECT e.event_type, s.value, e.app, {_SLOT}, count(*) FROM events e, {_SEGMENTS} "
    "WHERE e.id > ? AND e.segments IS NOT NULL AND e.app IS NOT NULL GROUP BY 1, 2, 3, 4" + _UPSERT
)


def insert_rows(
    conn: sqlite3.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> int:
    """`head VALUES (?, ...), (?, ...) ... tail` for every row, in few statements.

    executemany() releases the GIL around every row's step and must win it back after
    each, which under load costs far more than the row (the event loop holds it). Rows
    go in chunks of powers of two, so a handful of statement texts serve every count
    and stay in the statement cache. (One statement over json_each() was measured
    slower: SQLite parsing the JSON costs more than binding the values.)

    Returns the rowid of the first row (a rowid table gives the rows of one writer
    consecutive rowids), 0 when there are no rows.
    """
    one = "(" + ", ".join("?" * width) + ")"
    i, n, first = 0, len(rows), 0
    while i < n:
        size = min(_MAX_CHUNK, 1 << ((n - i).bit_length() - 1))
        cur = conn.execute(
            f"{head} VALUES {', '.join([one] * size)}{tail}",
            [value for row in rows[i : i + size] for value in row],
        )
        if i == 0:
            first = (cur.lastrowid or 0) - size + 1
        i += size
    return first


_MAX_CHUNK = 256
