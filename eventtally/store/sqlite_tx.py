"""The SQLite writer's side of ingest: the primitives `apply_track` runs on, the rows they
leave to write, and the lookups the writer caches between requests."""

from __future__ import annotations

import itertools
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import msgspec

from eventtally.domain.segments import parse_filter, referenced
from eventtally.domain.track import EventItem, Identity, PurchaseItem, TrackRequest
from eventtally.store.base import SLOT_US, new_braze_id
from eventtally.store.ingest import Profile, SegmentRule
from eventtally.store.sqlite_user_counts import UserCounts

_IDENTITY_COLUMN = {
    "external_id": "external_id",
    "user_alias": "alias",
    "braze_id": "braze_id",
    "email": "email",
    "phone": "phone",
}
_CACHEABLE = frozenset({"external_id", "user_alias", "braze_id"})
PROFILE_CACHE = 100_000
# event_counts lags the events by this many at most under load (fold_series_counts): a
# series read counts the lagging ones from the raw rows (about 0.12 µs a row, on the
# event loop). A fold's cost is mostly one upsert per (event type, segment, app, slot) it
# touches, and under load those are nearly the same rows fold after fold: measured at
# 10M events with 10 tracked segments, events over two days, a fold of 10,000 events
# took 2.28 µs an event, of 20,000 1.59, of 40,000 1.34. Side by side (two pairs each):
# 10 tracked segments 110,000 / 115,000 events/s at 10,000 against 119,000 / 129,000
# at 20,000 (p99 59 / 62 ms); at 40,000, p99 77-80 ms. Beside a series load of two
# connections, the same either way. Once no request has come for SERIES_FOLD_SECONDS
# the writer folds them all.
SERIES_FOLD_EVENTS = 20_000
SERIES_FOLD_SECONDS = 0.5
# A profile load counts up to this many events the per-user counts lag itself, past it
# it folds them first (user_event_counts): a scan of them costs less than a fold.
PENDING_SCAN = 250_000
MARKS_CACHE = 10_000
# Sizes of the IN lists of bulk lookups, the last chunk padded: few statement texts.
_IN_SIZES = (16, 128, 512)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_decode_ids = msgspec.json.Decoder(set[int]).decode
_decode_names = msgspec.json.Decoder(set[str]).decode
_V = TypeVar("_V", int, str)


class WriterCaches:
    """Lookups the writer repeats on every request, valid while no other process writes.

    `PRAGMA data_version` changes only when another connection commits (the CLI
    blocklisting an event while the server runs, say); then everything is dropped.
    """

    def __init__(self, user_counts: UserCounts) -> None:
        self.version = -1
        self.apps: dict[tuple[int, str], int] = {}
        self.event_types: dict[tuple[int, str], tuple[int, bool]] = {}
        # (workspace, identity kind, identifier) -> user: plain tuples hash fast.
        self.users: dict[tuple[int, str, str], int] = {}
        # Tracked segments an event counts for -> the `events.segments` text (",3,7,").
        self.marks: dict[frozenset[int], str] = {}
        self.segments: dict[int, list[SegmentRule]] = {}
        # counts_pending.series_from once it is known to be set in this transaction's
        # view (None: not known), so ingest need not set it again, and the last event id
        # the writer added: how many events event_counts lags (fold_series_counts).
        self.series_from: int | None = None
        self.last_event = 0
        # Profiles segment rules read, kept current by the rules themselves; the most
        # recently used ones, so a busy user costs no queries (bounded: memory stays flat).
        self.profiles: OrderedDict[int, Profile] = OrderedDict()
        # The track requests (workspace, request) of the group being applied optimistically,
        # until its first lookup the caches miss loads everything they name (`prefetch`).
        self.group: list[tuple[int, TrackRequest]] | None = None
        # Cacheable identities `prefetch` found nowhere, until the group ends: no user
        # can get one except by create_user, which takes it out.
        self.absent: set[tuple[int, str, str]] = set()
        # The writer's connection to the per-user event counts (sqlite_user_counts).
        self.user_counts = user_counts

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
        self.absent.clear()
        self.series_from = None

    def end_group(self) -> None:
        self.group = None
        self.absent.clear()

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

    def prefetch(self, conn: sqlite3.Connection) -> None:
        """Look up, in a few multi-row queries, every user the group's requests name by an
        identifier the cache lacks, and when the workspace has segment rules, the profiles
        of its users not cached: a cold user costs a share of a query, not 1 to 4 queries.
        What it loads is exactly what find_user and SqliteTx.profile would."""
        group, self.group = self.group, None
        if not group:
            return
        by_workspace: dict[int, list[TrackRequest]] = {}
        for workspace_id, request in group:
            by_workspace.setdefault(workspace_id, []).append(request)
        for workspace_id, requests in by_workspace.items():
            users = self._prefetch_users(conn, workspace_id, requests)
            rules = self.segment_rules(conn, workspace_id)
            if rules:
                self._prefetch_profiles(conn, workspace_id, rules, users)

    def _prefetch_users(
        self, conn: sqlite3.Connection, workspace_id: int, requests: list[TrackRequest]
    ) -> set[int]:
        """Cache the users the requests name; return those found (cached before or now)."""
        cached = self.users
        known: set[int] = set()
        wanted: dict[str, dict[str, tuple[int, str, str]]] = {}  # kind -> value -> key
        kind: str
        key: tuple[int, str, str]
        for request in requests:
            for items in (request.attributes, request.events, request.purchases):
                for item in items:
                    identity = item.identity
                    if (kind := identity.kind) in _CACHEABLE:
                        key = (workspace_id, kind, identity.value)
                        user = cached.get(key)
                        if user is None:
                            wanted.setdefault(kind, {}).setdefault(identity.value, key)
                        else:
                            known.add(user)
        for kind, keys in wanted.items():
            column = _IDENTITY_COLUMN[kind]
            found: dict[str, int] = {}
            for chunk in _in_chunks(sorted(keys)):
                # Ascending, so the last row of a value is the one find_user picks.
                rows = conn.execute(
                    f"SELECT {column}, id FROM users WHERE workspace_id = ? "
                    f"AND {column} IN ({_marks(len(chunk))}) ORDER BY updated_at, id",
                    (workspace_id, *chunk),
                )
                found.update(rows)
            for value, key in keys.items():
                user = found.get(value)
                if user is None:
                    self.absent.add(key)
                else:
                    cached[key] = user
                    known.add(user)
        return known

    def _prefetch_profiles(
        self,
        conn: sqlite3.Connection,
        workspace_id: int,
        rules: Sequence[SegmentRule],
        users: Iterable[int],
    ) -> None:
        """Load the profiles of these users not cached, as SqliteTx.profile would: their
        event counts in one read (user_event_counts), the rest one row per user, its
        parts aggregated into JSON by SQLite (no Python per stored row)."""
        profiles = self.profiles
        missing = sorted(user for user in users if user not in profiles)
        if not missing:
            return
        counts: dict[int, dict[str, int]] = {}
        if any(rule.reads.events for rule in rules):
            counts = user_event_counts(conn, self.user_counts, workspace_id, missing)
        apps = _PROFILE_APPS if any(rule.reads.uses_apps for rule in rules) else "NULL"
        for chunk in _in_chunks(missing):
            rows = conn.execute(
                f"SELECT u.id, u.attributes, {_PROFILE_SEGMENTS}, {apps} "
                f"FROM users u WHERE u.id IN ({_marks(len(chunk))})",
                chunk,
            )
            for user, attributes, segments, used_apps in rows:
                profiles[user] = Profile(
                    _decode(attributes),
                    counts.get(user, {}),
                    set() if used_apps is None else _decode_names(used_apps),
                    _decode_ids(segments),
                )
        while len(profiles) > PROFILE_CACHE:
            profiles.popitem(last=False)


def user_event_counts(
    conn: sqlite3.Connection,
    counts: UserCounts,
    workspace_id: int,
    users: Sequence[int] | None,
) -> dict[int, dict[str, int]]:
    """How many times each of these users (None: every user of the workspace) did each of
    the workspace's events, by name, exact in the writer's transaction: what the counts
    file has folded (sqlite_user_counts), plus the events after it, counted here. Past
    PENDING_SCAN of those, they are folded first."""
    (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    through, folded = counts.read(users)
    if last - through >= PENDING_SCAN:
        counts.fold(None)
        through, folded = counts.read(users)
    if users is None:
        lagging = conn.execute(
            "SELECT user_id, event_type, count(*) FROM events WHERE id >= ? GROUP BY 1, 2",
            (through,),
        )
    else:
        lagging = conn.execute(
            "SELECT user_id, event_type, count(*) FROM events WHERE id >= ? "
            "AND user_id IN (SELECT value FROM json_each(?)) GROUP BY 1, 2",
            (through, _encode(users)),
        )
    names: dict[int, str] = dict(
        conn.execute("SELECT id, name FROM event_types WHERE workspace_id = ?", (workspace_id,))
    )
    result: dict[int, dict[str, int]] = {}
    for user, event_type, n in itertools.chain(folded, lagging):
        if (name := names.get(event_type)) is not None:  # else another workspace's
            per_user = result.setdefault(user, {})
            per_user[name] = per_user.get(name, 0) + n
    return result


# The parts of the profile of user u.id, as SqliteTx.profile reads them, as JSON.
_PROFILE_SEGMENTS = "(SELECT json_group_array(segment) FROM segment_members WHERE user_id = u.id)"
_PROFILE_APPS = (
    "(SELECT json_group_array(a.app_id) FROM user_apps x JOIN apps a ON a.id = x.app "
    "WHERE x.user_id = u.id)"
)


def _in_chunks(values: Sequence[_V]) -> Iterator[list[_V]]:
    """`values` in lists of the sizes in _IN_SIZES, the last padded with repeats of its
    last value (no change to what an IN list matches), so few statement texts serve."""
    i, n = 0, len(values)
    while i < n:
        size = next((s for s in _IN_SIZES if s >= n - i), _IN_SIZES[-1])
        chunk = list(values[i : i + size])
        chunk += [chunk[-1]] * (size - len(chunk))
        yield chunk
        i += size


def _marks(n: int) -> str:
    return ", ".join("?" * n)


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
        if profile is None and self.caches.group is not None:
            self.caches.prefetch(self.conn)
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
                counts = user_event_counts(
                    self.conn, self.caches.user_counts, self.workspace_id, [user]
                ).get(user, {})
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
        # Written with the request's other rows: until then the user's cached profile is
        # what knows the membership (nothing reloads it from the table meanwhile).
        writes = self.writes
        writes.members[(segment, user)] = member
        writes.changes.append((segment, self.now, 1 if member else -1))

    def find_user(self, identity: Identity) -> int | None:
        kind = identity.kind
        # email and phone may move between profiles, so only immutable identifiers are cached.
        cacheable = kind in _CACHEABLE
        key = (self.workspace_id, kind, identity.value)
        if cacheable:
            if (cached := self.caches.users.get(key)) is not None:
                return cached
            caches = self.caches
            if caches.group is not None:
                caches.prefetch(self.conn)
                if (cached := caches.users.get(key)) is not None:
                    return cached
            if key in caches.absent:
                return None
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
        kind, value = identity.kind, identity.value
        column = _IDENTITY_COLUMN[kind]
        attributes: dict[str, Any] = {}
        if kind in ("email", "phone"):
            attributes[kind] = value
        braze_id = new_braze_id()
        cur = self.conn.execute(
            f"INSERT INTO users (workspace_id, braze_id, {column}, attributes, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (self.workspace_id, braze_id, identity.value, _encode(attributes), self.now),
        )
        user = cur.lastrowid
        assert user is not None
        caches = self.caches
        if kind in _CACHEABLE:
            key = (self.workspace_id, kind, value)
            caches.users[key] = user
            if caches.absent:
                caches.absent.discard(key)
                caches.absent.discard((self.workspace_id, "braze_id", braze_id))
        rules: Sequence[SegmentRule] | None = caches.segments.get(self.workspace_id)
        if rules is None:
            rules = self.segment_rules()
        if rules:
            # What profile() would load: no rows name a user before it exists (users are
            # never deleted, and what a rollback removes takes its rows with it).
            caches.profiles[user] = Profile(attributes, {}, set(), set())
            if len(caches.profiles) > PROFILE_CACHE:
                caches.profiles.popitem(last=False)
        return user

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
            known = self.caches.marks
            marks = known.get(segments)
            if marks is None:
                if len(known) >= MARKS_CACHE:
                    known.clear()
                marks = known[segments] = ",".join(["", *map(str, sorted(segments)), ""])
        writes = self.writes
        if app is None and properties is None:
            if marks is None:
                writes.plain_events.append((event_type, user, item.time))
            else:
                writes.marked_events.append((event_type, user, item.time, marks))
            return
        writes.events.append((event_type, user, app, item.time, properties, marks))
        if app is not None:
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
    """The rows track requests add (events, the apps users used, segment memberships),
    written in a few statements when the request ends or, when the writer applies a
    group optimistically, once for the whole group. The aggregates are folded in later
    (fold_series_counts, and the per-user counts: sqlite_user_counts)."""

    def __init__(self) -> None:
        # The events, apart by which of their nullable columns (app, properties, tracked
        # segments as ",3,7,") they fill: Python's sqlite3 binds a None in about 0.2 µs
        # (an adapter lookup), four times an integer, and a column left out of the
        # INSERT costs nothing. Measured, 20,000 events with none of the three: 0.82 µs
        # a row binding all six columns, 0.22 binding type, user and time. So the events
        # of one write are stored kind by kind, not in the order they came (their ids
        # say only that they were committed together); ids given in order of arrival
        # made the inserts land inside the table's last pages and cost more than the
        # binding saved (the writer alone: 4.1-4.2 µs an event against 3.6-3.8).
        self.plain_events: list[tuple[int, int, int]] = []  # type, user, time
        self.marked_events: list[tuple[int, int, int, str]] = []  # and segments
        # type, user, app, time, properties, segments
        self.events: list[tuple[int, int, int | None, int, bytes | None, str | None]] = []
        self.user_apps: set[tuple[int, int]] = set()
        # (segment, user) -> whether a member after the last change; every change, in
        # order, as (segment, time, +1 or -1).
        self.members: dict[tuple[int, int], bool] = {}
        self.changes: list[tuple[int, int, int]] = []

    def clear(self) -> None:
        self.plain_events.clear()
        self.marked_events.clear()
        self.events.clear()
        self.user_apps.clear()
        self.members.clear()
        self.changes.clear()

    def write(self, conn: sqlite3.Connection, caches: WriterCaches) -> None:
        added = len(self.plain_events) + len(self.marked_events) + len(self.events)
        if added:
            # Rowids go on from the largest: these events get the next `added` ids.
            (first,) = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()
            if caches.series_from is None:  # they are not in event_counts yet
                (caches.series_from,) = conn.execute(
                    "UPDATE counts_pending SET series_from = coalesce(series_from, ?) "
                    "RETURNING series_from",
                    (first,),
                ).fetchone()
            head = "INSERT INTO events (event_type, user_id"
            for columns, width, rows in (
                (", time)", 3, self.plain_events),
                (", time, segments)", 4, self.marked_events),
                (", app, time, properties, segments)", 6, self.events),
            ):
                if rows:
                    insert_rows(conn, head + columns, width, rows)
            caches.last_event = first + added - 1
        if self.user_apps:
            insert_rows(
                conn, "INSERT OR IGNORE INTO user_apps (user_id, app)", 2, sorted(self.user_apps)
            )
        if self.members:
            joined = [key for key, member in self.members.items() if member]
            left = [key for key, member in self.members.items() if not member]
            if joined:
                insert_rows(
                    conn, "INSERT OR IGNORE INTO segment_members (segment, user_id)", 2, joined
                )
            if left:  # `... IN (VALUES (?, ?), ...)`: the same chunking serves a delete
                insert_rows(
                    conn, "DELETE FROM segment_members WHERE (segment, user_id) IN (", 2, left, ")"
                )
            insert_rows(conn, "INSERT INTO segment_changes (segment, time, delta)", 3, self.changes)
        self.clear()


def fold_series_counts(conn: sqlite3.Connection) -> None:
    """Bring event_counts up to date: fold in the events ingest added since the last fold
    (migration 7). Call it in the writer's transaction; then forget
    WriterCaches.series_from.

    Counting many events at once upserts far fewer rows than counting each group as it
    commits: a group's events, spread over days, touch almost as many (event type,
    segment, app, slot) rows as ten groups' do (measured on a 10M-event store, events
    over two days: 2 µs an event folding 1,200 at a time, 1.1 µs folding 5,000, 0.84 µs
    folding 20,000)."""
    (start,) = conn.execute("SELECT series_from FROM counts_pending").fetchone()
    if start is None:
        return
    for statement in (_COUNT_EVERYONE, _COUNT_APPS, _COUNT_SEGMENTS, _COUNT_SEGMENT_APPS):
        conn.execute(statement, (start,))
    conn.execute("UPDATE counts_pending SET series_from = NULL")


# The 15-minute slot of event `e`, floored (SQLite's `/` truncates toward zero).
SLOT_OF_E = f"((e.time - ((e.time % {SLOT_US}) + {SLOT_US}) % {SLOT_US}) / {SLOT_US})"
# Fold the events from ?1 on into event_counts: for everyone (segment 0) and for each
# tracked segment the event counted for, each for every app (app 0) and for the event's
# own app. One statement per kind of row.
_UPSERT = " ON CONFLICT (event_type, segment, app, slot) DO UPDATE SET n = n + excluded.n"
_COUNT_EVERYONE = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    f"SELECT e.event_type, 0, 0, {SLOT_OF_E}, count(*) FROM events e WHERE e.id >= ? "
    "GROUP BY 1, 4" + _UPSERT
)
_COUNT_APPS = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    f"SELECT e.event_type, 0, e.app, {SLOT_OF_E}, count(*) FROM events e "
    "WHERE e.id >= ? AND e.app IS NOT NULL GROUP BY 1, 3, 4" + _UPSERT
)
# Events with tracked segments are counted by type, segments (",3,7,") and slot first, then
# split into their segments: json_each and the final grouping see one row per such group,
# not one per event and segment (measured, 15,000 events and 10 tracked segments: 35 ms,
# was 180; about the same as before for a small group).
_COUNT_SEGMENTS = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    "SELECT g.event_type, s.value, 0, g.slot, sum(g.n) FROM "
    f"(SELECT e.event_type, e.segments, {SLOT_OF_E} AS slot, count(*) AS n FROM events e "
    "WHERE e.id >= ? AND e.segments IS NOT NULL GROUP BY 1, 2, 3) g, "
    "json_each('[' || trim(g.segments, ',') || ']') s GROUP BY 1, 2, 4" + _UPSERT
)
_COUNT_SEGMENT_APPS = (
    "INSERT INTO event_counts (event_type, segment, app, slot, n) "
    "SELECT g.event_type, s.value, g.app, g.slot, sum(g.n) FROM "
    f"(SELECT e.event_type, e.segments, e.app, {SLOT_OF_E} AS slot, count(*) AS n FROM events e "
    "WHERE e.id >= ? AND e.segments IS NOT NULL AND e.app IS NOT NULL GROUP BY 1, 2, 3, 4) g, "
    "json_each('[' || trim(g.segments, ',') || ']') s GROUP BY 1, 2, 3, 4" + _UPSERT
)


def insert_rows(
    conn: sqlite3.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """`head VALUES (?, ...), (?, ...) ... tail` for every row, in few statements.

    executemany() steps once a row and releases the GIL around each step: 1.3 µs a row
    against 0.8 in one thread (six columns), and far more when another thread wants the
    GIL. Rows go in chunks of powers of two, so a handful of statement texts serve every
    count and stay in the statement cache. (One statement over json_each() was measured
    slower: SQLite parsing the JSON costs more than binding the values.)
    """
    one = "(" + ", ".join("?" * width) + ")"
    i, n = 0, len(rows)
    while i < n:
        size = min(_MAX_CHUNK, 1 << ((n - i).bit_length() - 1))
        conn.execute(
            f"{head} VALUES {', '.join([one] * size)}{tail}",
            [value for row in rows[i : i + size] for value in row],
        )
        i += size


_MAX_CHUNK = 256
