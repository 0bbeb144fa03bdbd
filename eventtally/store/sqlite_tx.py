"""The SQLite writer's side of ingest: the primitives `apply_track` runs on, inside one
request's savepoint, and the lookups the writer caches between requests."""

from __future__ import annotations

import sqlite3
from collections import Counter, OrderedDict
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
PROFILE_CACHE = 100_000
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
        self.users: dict[tuple[int, Identity], int] = {}
        self.segments: dict[int, list[SegmentRule]] = {}
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
        self.segments.clear()
        self.profiles.clear()

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


class SqliteTx:
    """The ingest primitives on the writer connection, inside one request's savepoint."""

    def __init__(
        self, conn: sqlite3.Connection, workspace_id: int, now: int, caches: WriterCaches
    ) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.now = now
        self.caches = caches
        self.event_rows: list[tuple[int, int, int | None, int, bytes | None, str | None]] = []
        # (event type, segment or 0, app or 0, slot) -> events
        self.counts: Counter[tuple[int, int, int, int]] = Counter()
        self.user_counts: Counter[tuple[int, int]] = Counter()  # (user, event type)
        self.user_apps: set[tuple[int, int]] = set()

    # Segments ----------------------------------------------------------------------------
    def segment_rules(self) -> Sequence[SegmentRule]:
        return self.caches.segment_rules(self.conn, self.workspace_id)

    def profile(self, user: int) -> Profile:
        profiles = self.caches.profiles
        profile = profiles.get(user)
        if profile is not None:
            profiles.move_to_end(user)
        else:
            counts = dict(
                self.conn.execute(
                    "SELECT t.name, c.n FROM user_event_counts c "
                    "JOIN event_types t ON t.id = c.event_type WHERE c.user_id = ?",
                    (user,),
                ).fetchall()
            )
            apps = {
                app_id
                for (app_id,) in self.conn.execute(
                    "SELECT a.app_id FROM user_apps u JOIN apps a ON a.id = u.app "
                    "WHERE u.user_id = ?",
                    (user,),
                )
            }
            segments = {
                segment
                for (segment,) in self.conn.execute(
                    "SELECT segment FROM segment_members WHERE user_id = ?", (user,)
                )
            }
            profile = Profile(self.attributes(user), counts, apps, segments)
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
        # email and phone may move between profiles, so only immutable identifiers are cached.
        cacheable = identity.kind in ("external_id", "user_alias", "braze_id")
        key = (self.workspace_id, identity)
        if cacheable and (cached := self.caches.users.get(key)) is not None:
            return cached
        column = _IDENTITY_COLUMN[identity.kind]
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
        marks = "," + ",".join(map(str, sorted(segments))) + "," if segments else None
        self.event_rows.append((event_type, user, app, item.time, properties, marks))
        slot = item.time // SLOT_US
        for segment in (0, *segments):
            self.counts[(event_type, segment, 0, slot)] += 1
            if app is not None:
                self.counts[(event_type, segment, app, slot)] += 1
        self.user_counts[(user, event_type)] += 1
        if app is not None:
            self.user_apps.add((user, app))

    def add_purchase(self, item: PurchaseItem, user: int, app: int | None) -> None:
        if app is not None:
            self.user_apps.add((user, app))
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

    def flush(self) -> None:
        """Write the request's events and fold its counts into the aggregates."""
        self.conn.executemany(
            "INSERT INTO events (event_type, user_id, app, time, properties, segments) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            self.event_rows,
        )
        self.conn.executemany(
            "INSERT INTO event_counts (event_type, segment, app, slot, n) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_type, segment, app, slot) DO UPDATE SET n = n + excluded.n",
            [(*key, n) for key, n in self.counts.items()],
        )
        self.conn.executemany(
            "INSERT INTO user_event_counts (user_id, event_type, n) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id, event_type) DO UPDATE SET n = n + excluded.n",
            [(*key, n) for key, n in self.user_counts.items()],
        )
        self.conn.executemany(
            "INSERT OR IGNORE INTO user_apps (user_id, app) VALUES (?, ?)", self.user_apps
        )
