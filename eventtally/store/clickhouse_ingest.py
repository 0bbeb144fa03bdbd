"""The ClickHouse writer's side of ingest: what it caches, the primitives `apply_track`
runs on, and the journal rows a group of requests leaves to insert.

ClickHouse has no transactions, so a request is applied in memory: its changes to
profiles go to copies (`_Job.users`), its rows to a list, and only when it succeeds are
they folded into the group (`Group.take`). A failing request leaves no trace; the group
is inserted as one journal block (see clickhouse_schema).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from eventtally.domain.segments import parse_filter, referenced
from eventtally.domain.track import EventItem, Identity, PurchaseItem, TrackRequest
from eventtally.store.base import new_braze_id
from eventtally.store.clickhouse_conn import Connections
from eventtally.store.clickhouse_schema import (
    EVENT,
    JOURNAL_COLUMNS,
    NEW_EVENT_NAME,
    PROFILE,
    PURCHASE,
    SIZE_CHANGE,
)
from eventtally.store.ingest import Profile, SegmentRule

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

USER_CACHE = 100_000  # profiles kept between groups (least recently used go first)
IDENTITY_CACHE = 1_000_000  # identifiers known to belong to a user
_COLUMN = {"external_id": "external_id", "user_alias": "alias", "braze_id": "braze_id"}
_MUTABLE = ("email", "phone")  # identifiers that are attributes: they change
_INSERT = "INSERT INTO {db}.journal (" + ", ".join(name for name, _ in JOURNAL_COLUMNS) + ") VALUES"
_DEFAULTS: dict[str, Any] = {
    name: [] if kind.startswith("Array") else "" if kind == "String" else 0
    for name, kind in JOURNAL_COLUMNS
}
_NAMES = tuple(name for name, _ in JOURNAL_COLUMNS if name != "batch")


def journal_row(**values: Any) -> tuple[Any, ...]:
    """A journal row (without its block's `batch`, which `insert_journal` adds)."""
    return tuple(values.get(name, _DEFAULTS[name]) for name in _NAMES)


def insert_journal(conn: Connections, rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` as one block: all of them are stored, or none (see clickhouse_schema)."""
    batch = secrets.randbits(63)
    conn.insert(_INSERT, [(*row, batch) for row in rows])


class Clock:
    """Versions for replaced records: wall-clock nanoseconds, strictly increasing here."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        self._last = max(self._last + 1, time.time_ns())
        return self._last


@dataclass(slots=True)
class UserRecord:
    """One profile as the writer keeps it. `event_counts` and `used_apps` are loaded only
    when a segment rule reads them (None: not loaded)."""

    key: int
    braze_id: str
    external_id: str
    alias: str
    attributes: dict[str, Any]
    segments: set[int]
    updated_at: int
    created: int
    event_counts: dict[str, int] | None = None
    used_apps: set[str] | None = None
    profile: Profile | None = None

    def copy(self) -> UserRecord:
        return UserRecord(
            self.key,
            self.braze_id,
            self.external_id,
            self.alias,
            dict(self.attributes),
            set(self.segments),
            self.updated_at,
            self.created,
            None if self.event_counts is None else dict(self.event_counts),
            None if self.used_apps is None else set(self.used_apps),
        )

    def row(self, workspace_id: int, version: int) -> tuple[Any, ...]:
        return journal_row(
            kind=PROFILE,
            workspace_id=workspace_id,
            user=self.key,
            braze_id=self.braze_id,
            external_id=self.external_id,
            alias=self.alias,
            email=_text(self.attributes.get("email")),
            phone=_text(self.attributes.get("phone")),
            attributes=_encode(self.attributes).decode(),
            segments=sorted(self.segments),
            updated_at=self.updated_at,
            created=self.created,
            version=version,
        )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


PROFILE_COLUMNS = (
    "user, argMax(braze_id, version), argMax(external_id, version), argMax(alias, version), "
    "argMax(attributes, version), argMax(segments, version), argMax(updated_at, version), "
    "argMax(created, version)"
)


def record_from_row(row: tuple[Any, ...]) -> UserRecord:
    key, braze_id, external_id, alias, attributes, segments, updated_at, created = row
    return UserRecord(
        key, braze_id, external_id, alias, _decode(attributes), set(segments), updated_at, created
    )


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    rule: SegmentRule
    series: int  # where its events are counted (0: not tracked)


class WriterCaches:
    """What the writer keeps between groups. Valid while this process is the only writer
    of what it caches; `check` drops the segment rules and catalogue flags when another
    process changed them (and with them the profiles, whose memberships follow rules)."""

    def __init__(self, conn: Connections) -> None:
        self.conn = conn
        self.version: tuple[Any, ...] | None = None
        self.users: OrderedDict[int, UserRecord] = OrderedDict()
        # (workspace, identity column, value) -> user, for identifiers that never change.
        self.identities: dict[tuple[int, str, str], int] = {}
        # Identifiers `prefetch` found nowhere, for the group being applied only.
        self.absent: set[tuple[int, str, str]] = set()
        self.apps: dict[tuple[int, str], int] = {}
        self.app_ids: dict[int, str] = {}
        self.event_names: dict[tuple[int, str], bool] = {}  # -> blocklisted
        self.segments: dict[int, list[SegmentInfo]] = {}

    def check(self) -> None:
        (version,) = self.conn.query(
            "SELECT (SELECT max(version) FROM {db}.segments), "
            "(SELECT max(version) FROM {db}.catalogue)"
        )
        if version != self.version:
            self.clear()
            self.version = version

    def clear(self) -> None:
        self.users.clear()
        self.event_names.clear()
        self.segments.clear()
        self.identities.clear()
        self.absent.clear()

    def trim(self) -> None:
        """Bound the memory the caches take between groups."""
        while len(self.users) > USER_CACHE:
            self.users.popitem(last=False)
        self.absent.clear()
        if len(self.identities) > IDENTITY_CACHE:
            self.identities.clear()  # cheap to rebuild: one indexed lookup per identifier

    def segment_infos(self, workspace_id: int) -> list[SegmentInfo]:
        infos = self.segments.get(workspace_id)
        if infos is None:
            rows = self.conn.query(
                "SELECT id, argMax(tracking, version), argMax(filter, version), "
                "argMax(archived, version), argMax(series, version) FROM {db}.segments "
                "WHERE workspace_id = %(w)s GROUP BY id ORDER BY id",
                {"w": workspace_id},
            )
            infos = []
            for segment, tracking, text, archived, series in rows:
                if archived:
                    continue
                parsed = parse_filter(_decode(text))
                rule = SegmentRule(segment, bool(tracking), parsed, referenced(parsed))
                infos.append(SegmentInfo(rule, series))
            self.segments[workspace_id] = infos
        return infos

    def app_key(self, workspace_id: int, app_id: str) -> int | None:
        key = self.apps.get((workspace_id, app_id))
        if key is None:
            rows = self.conn.query(
                "SELECT id FROM {db}.apps WHERE workspace_id = %(w)s AND app_id = %(a)s",
                {"w": workspace_id, "a": app_id},
            )
            if not rows:
                return None
            key = self.apps[(workspace_id, app_id)] = rows[0][0]
            self.app_ids[key] = app_id
        return key

    def app_id(self, key: int) -> str:
        found = self.app_ids.get(key)
        if found is None:
            rows = self.conn.query("SELECT app_id FROM {db}.apps WHERE id = %(k)s", {"k": key})
            found = self.app_ids[key] = rows[0][0] if rows else ""
        return found

    def prefetch(self, workspace_id: int, requests: Iterable[TrackRequest]) -> None:
        """Find, in a few queries, the users a group of requests names by identifiers that
        never change, and load their profiles (with the event counts and apps the
        workspace's segment rules read), instead of a query per user as each request
        asks. An identifier found nowhere is remembered as absent until the group ends."""
        wanted: dict[str, set[str]] = {}
        for request in requests:
            named: list[Identity] = [item.identity for item in request.attributes]
            named += [item.identity for item in request.events]
            named += [item.identity for item in request.purchases]
            for identity in named:
                column = _COLUMN.get(identity.kind)
                if column is not None and (
                    (workspace_id, column, identity.value) not in self.identities
                ):
                    wanted.setdefault(column, set()).add(identity.value)
        keys: set[int] = set()
        for column, values in wanted.items():
            found = dict(
                self.conn.query(
                    "SELECT value, any(user) FROM {db}.identities WHERE workspace_id = %(w)s "
                    "AND identifier = %(k)s AND value IN %(v)s GROUP BY value",
                    {"w": workspace_id, "k": column, "v": tuple(values)},
                )
            )
            for value in values:
                key = found.get(value)
                if key is None:
                    self.absent.add((workspace_id, column, value))
                else:
                    self.identities[(workspace_id, column, value)] = key
                    keys.add(key)
        self.load_users(workspace_id, keys)
        infos = self.segment_infos(workspace_id)
        reads_events = any(info.rule.reads.events for info in infos)
        reads_apps = any(info.rule.reads.uses_apps for info in infos)
        records = [self.users[key] for key in keys if key in self.users]
        if reads_events:
            self._load_event_counts(workspace_id, [r for r in records if r.event_counts is None])
        if reads_apps:
            self._load_used_apps(workspace_id, [r for r in records if r.used_apps is None])

    def _load_event_counts(self, workspace_id: int, records: list[UserRecord]) -> None:
        if not records:
            return
        for record in records:
            record.event_counts = {}
        by_key = {record.key: record for record in records}
        for user, name, n in self.conn.query(
            "SELECT user, name, sum(n) FROM {db}.user_event_counts WHERE workspace_id = %(w)s "
            "AND user IN %(u)s GROUP BY user, name",
            {"w": workspace_id, "u": tuple(by_key)},
        ):
            counts = by_key[user].event_counts
            assert counts is not None
            counts[name] = n

    def _load_used_apps(self, workspace_id: int, records: list[UserRecord]) -> None:
        if not records:
            return
        for record in records:
            record.used_apps = set()
        by_key = {record.key: record for record in records}
        for user, app in self.conn.query(
            "SELECT DISTINCT user, app FROM {db}.user_apps WHERE workspace_id = %(w)s "
            "AND user IN %(u)s",
            {"w": workspace_id, "u": tuple(by_key)},
        ):
            apps = by_key[user].used_apps
            assert apps is not None
            apps.add(self.app_id(app))

    def load_users(self, workspace_id: int, keys: Iterable[int]) -> None:
        missing = [key for key in keys if key not in self.users]
        if not missing:
            return
        rows = self.conn.query(
            f"SELECT {PROFILE_COLUMNS} FROM {{db}}.profiles "
            "WHERE workspace_id = %(w)s AND user IN %(keys)s GROUP BY user",
            {"w": workspace_id, "keys": tuple(missing)},
        )
        for row in rows:
            self.users[row[0]] = record_from_row(row)


@dataclass
class Group:
    """The rows of the requests applied so far in one group, and the users they changed."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    dirty: dict[int, int] = field(default_factory=dict)  # user -> workspace
    # Identifiers set by the group's requests, not yet in ClickHouse: (ws, kind, value).
    pending: dict[tuple[int, str, str], set[int]] = field(default_factory=dict)
    new_names: set[tuple[int, str]] = field(default_factory=set)

    def take(self, job: IngestJob, caches: WriterCaches) -> None:
        self.rows.extend(job.rows)
        for key, record in job.users.items():
            caches.users[key] = record
            caches.users.move_to_end(key)
        for key in job.dirty:
            self.dirty[key] = job.workspace_id
            record = job.users[key]
            for kind in _MUTABLE:
                value = _text(record.attributes.get(kind))
                if value:
                    self.pending.setdefault((job.workspace_id, kind, value), set()).add(key)
            for column in ("external_id", "alias", "braze_id"):
                value = getattr(record, column)
                if value:
                    caches.identities[(job.workspace_id, column, value)] = key
        self.new_names |= job.new_names
        for workspace_id, name in job.new_names:
            caches.event_names[(workspace_id, name)] = False

    def journal(self, caches: WriterCaches, version: int) -> list[tuple[Any, ...]]:
        rows = list(self.rows)
        rows.extend(
            caches.users[key].row(workspace_id, version) for key, workspace_id in self.dirty.items()
        )
        rows.extend(
            journal_row(kind=NEW_EVENT_NAME, workspace_id=workspace_id, name=name)
            for workspace_id, name in self.new_names
        )
        return rows


class IngestJob:
    """One track request's primitives (`IngestTx`): reads come from the group's state,
    changes stay in this job until `Group.take`."""

    def __init__(
        self, caches: WriterCaches, group: Group, workspace_id: int, now: int, clock: Clock
    ) -> None:
        self.caches = caches
        self.group = group
        self.workspace_id = workspace_id
        self.now = now
        self.clock = clock
        self.users: dict[int, UserRecord] = {}  # copies this request changes
        self.created: dict[tuple[int, str, str], int] = {}  # users this request made
        self.dirty: set[int] = set()
        self.rows: list[tuple[Any, ...]] = []
        self.new_names: set[tuple[int, str]] = set()
        self._infos: list[SegmentInfo] | None = None

    # Users ---------------------------------------------------------------------------
    def _user(self, key: int) -> UserRecord:
        record = self.users.get(key)
        if record is None:
            cached = self.caches.users.get(key)
            if cached is None:
                self.caches.load_users(self.workspace_id, [key])
                cached = self.caches.users[key]
            record = self.users[key] = cached.copy()
        return record

    def find_user(self, identity: Identity) -> int | None:
        if identity.kind in _MUTABLE:
            return self._find_by_attribute(identity.kind, identity.value)
        column = _COLUMN[identity.kind]
        slot = (self.workspace_id, column, identity.value)
        key = self.created.get(slot) or self.caches.identities.get(slot)
        if key is None:
            if slot in self.caches.absent:
                return None
            rows = self.caches.conn.query(
                "SELECT user FROM {db}.identities WHERE workspace_id = %(w)s "
                "AND identifier = %(k)s AND value = %(v)s LIMIT 1",
                {"w": self.workspace_id, "k": column, "v": identity.value},
            )
            if not rows:
                return None
            key = self.caches.identities[slot] = rows[0][0]
        return key

    def _find_by_attribute(self, kind: str, value: str) -> int | None:
        """The most recently updated user whose attribute `kind` is `value` now."""
        candidates = {
            key
            for (key,) in self.caches.conn.query(
                "SELECT DISTINCT user FROM {db}.identities WHERE workspace_id = %(w)s "
                "AND identifier = %(k)s AND value = %(v)s",
                {"w": self.workspace_id, "k": kind, "v": value},
            )
        }
        candidates |= self.group.pending.get((self.workspace_id, kind, value), set())
        candidates |= {
            key for key, record in self.users.items() if record.attributes.get(kind) == value
        }
        self.caches.load_users(
            self.workspace_id, [key for key in candidates if key not in self.users]
        )
        best: tuple[int, int, int] | None = None
        for key in candidates:
            record = self.users.get(key) or self.caches.users.get(key)
            if record is not None and record.attributes.get(kind) == value:
                rank = (record.updated_at, record.created, key)
                best = rank if best is None or rank > best else best
        return None if best is None else best[2]

    def create_user(self, identity: Identity) -> int:
        key = secrets.randbits(63) | 1  # unique across nodes without coordination
        record = UserRecord(key, new_braze_id(), "", "", {}, set(), self.now, self.clock())
        if identity.kind in _MUTABLE:
            record.attributes[identity.kind] = identity.value
        else:
            column = _COLUMN[identity.kind]
            setattr(record, column, identity.value)
            self.created[(self.workspace_id, column, identity.value)] = key
        record.event_counts, record.used_apps = {}, set()
        self.users[key] = record
        self.dirty.add(key)
        return key

    def attributes(self, user: int) -> dict[str, Any]:
        return dict(self._user(user).attributes)

    def save_attributes(self, user: int, attributes: dict[str, Any]) -> None:
        record = self._user(user)
        record.attributes = attributes
        record.updated_at = self.now
        if record.profile is not None:
            record.profile.attributes = attributes
        self.dirty.add(user)

    # Segments --------------------------------------------------------------------------
    def _segment_infos(self) -> list[SegmentInfo]:
        if self._infos is None:
            self._infos = self.caches.segment_infos(self.workspace_id)
        return self._infos

    def segment_rules(self) -> Sequence[SegmentRule]:
        return [info.rule for info in self._segment_infos()]

    def profile(self, user: int) -> Profile:
        record = self._user(user)
        if record.profile is None:
            rules = self.segment_rules()
            if record.event_counts is None and any(rule.reads.events for rule in rules):
                record.event_counts = self._event_counts(user)
            if record.used_apps is None and any(rule.reads.uses_apps for rule in rules):
                record.used_apps = self._used_apps(user)
            record.profile = Profile(
                record.attributes,
                record.event_counts if record.event_counts is not None else {},
                record.used_apps if record.used_apps is not None else set(),
                record.segments,
            )
        return record.profile

    def _event_counts(self, user: int) -> dict[str, int]:
        rows = self.caches.conn.query(
            "SELECT name, sum(n) FROM {db}.user_event_counts "
            "WHERE workspace_id = %(w)s AND user = %(u)s GROUP BY name",
            {"w": self.workspace_id, "u": user},
        )
        return dict(rows)

    def _used_apps(self, user: int) -> set[str]:
        rows = self.caches.conn.query(
            "SELECT DISTINCT app FROM {db}.user_apps WHERE workspace_id = %(w)s AND user = %(u)s",
            {"w": self.workspace_id, "u": user},
        )
        return {self.caches.app_id(app) for (app,) in rows}

    def set_member(self, user: int, segment: int, member: bool) -> None:
        # The rules changed profile.segments, which is the record's own set.
        self.dirty.add(user)
        self.rows.append(
            journal_row(kind=SIZE_CHANGE, segment=segment, time=self.now, delta=1 if member else -1)
        )

    # Events and purchases ----------------------------------------------------------------
    def app_key(self, app_id: str) -> int | None:
        return self.caches.app_key(self.workspace_id, app_id)

    def event_type(self, name: str) -> tuple[int, bool]:
        slot = (self.workspace_id, name)
        blocklisted = self.caches.event_names.get(slot)
        if blocklisted is not None:
            return 0, blocklisted
        if slot in self.group.new_names or slot in self.new_names:
            return 0, False
        rows = self.caches.conn.query(
            "SELECT argMax(blocklisted, version) FROM {db}.catalogue "
            "WHERE workspace_id = %(w)s AND name = %(n)s GROUP BY name",
            {"w": self.workspace_id, "n": name},
        )
        if not rows:
            self.new_names.add(slot)  # added to the catalogue with the group
            return 0, False
        blocklisted = self.caches.event_names[slot] = bool(rows[0][0])
        return 0, blocklisted

    def add_event(
        self,
        item: EventItem,
        event_type: int,
        user: int,
        app: int | None,
        segments: frozenset[int],
    ) -> None:
        series = []
        if segments:
            series = [
                info.series
                for info in self._segment_infos()
                if info.rule.id in segments and info.series
            ]
        self.rows.append(
            journal_row(
                kind=EVENT,
                workspace_id=self.workspace_id,
                user=user,
                name=item.name,
                time=item.time,
                app=app or 0,
                series=series,
                properties=_encode(item.properties).decode() if item.properties else "",
            )
        )
        record = self._user(user)
        if record.profile is None:  # the rules count what they read; keep the rest current
            if record.event_counts is not None:
                record.event_counts[item.name] = record.event_counts.get(item.name, 0) + 1
            if record.used_apps is not None and item.app_id is not None:
                record.used_apps.add(item.app_id)

    def add_purchase(self, item: PurchaseItem, user: int, app: int | None) -> None:
        self.rows.append(
            journal_row(
                kind=PURCHASE,
                workspace_id=self.workspace_id,
                user=user,
                app=app or 0,
                product_id=item.product_id,
                currency=item.currency,
                price=item.price,
                quantity=item.quantity,
                time=item.time,
                properties=_encode(item.properties).decode() if item.properties else "",
            )
        )
        record = self._user(user)
        if record.profile is None and record.used_apps is not None and item.app_id is not None:
            record.used_apps.add(item.app_id)
