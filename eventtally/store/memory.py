"""The in-memory reference store: plain Python, no aggregates, every count a scan of raw events.

It is the yardstick the real stores are compared against in the store contract tests,
and a store for experiments that need no files. Not for production: nothing persists.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from eventtally.domain.idempotency import Idempotency
from eventtally.domain.model import (
    ApiKey,
    App,
    EventInfo,
    EventStatus,
    EventUpdate,
    Segment,
    SegmentChanges,
    SeriesQuery,
    Workspace,
)
from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.domain.segments import UserState, matches, parse_filter, referenced
from eventtally.domain.track import (
    EventItem,
    Identity,
    PurchaseItem,
    TrackOutcome,
    TrackRequest,
)
from eventtally.errors import ConflictError
from eventtally.store.base import (
    DEFAULT_TRACKED_LIMIT,
    Store,
    check_tracked_limit,
    edit_segment,
    hash_secret,
    new_braze_id,
)
from eventtally.store.idempotency import Recorded, record, replay
from eventtally.store.ingest import Profile, SegmentRule, apply_track


@dataclass
class _User:
    workspace_id: int
    braze_id: str
    identities: dict[str, str]
    attributes: dict[str, Any] = field(default_factory=dict)
    updated_at: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    used_apps: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Event:
    workspace_id: int
    name: str
    user: int
    app: int | None
    time: int
    segments: frozenset[int] = frozenset()  # the tracked segments it counts for


@dataclass
class _State:
    workspaces: list[Workspace] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)
    keys: dict[str, ApiKey] = field(default_factory=dict)  # by secret hash
    catalogue: dict[tuple[int, str], EventInfo] = field(default_factory=dict)
    users: list[_User] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)
    purchases: list[tuple[int, int, PurchaseItem]] = field(default_factory=list)
    idempotency: dict[tuple[int, str], Recorded] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    members: dict[int, set[int]] = field(default_factory=dict)  # segment -> users
    changes: list[tuple[int, int, int]] = field(default_factory=list)  # segment, time, delta


class MemoryStore(Store):
    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryStore()"

    def create_workspace(self, name: str, time_zone: str, now: int) -> Workspace:
        with self._lock:
            if any(w.name == name for w in self._state.workspaces):
                raise ConflictError(f"a workspace named {name!r} already exists")
            workspace = Workspace(len(self._state.workspaces) + 1, name, time_zone)
            self._state.workspaces.append(workspace)
            return workspace

    def list_workspaces(self) -> list[Workspace]:
        return list(self._state.workspaces)

    def update_workspace(
        self,
        name: str,
        time_zone: str | None = None,
        rate_limits: Mapping[RateBucket, Limit] | None = None,
    ) -> Workspace:
        with self._lock:
            for i, workspace in enumerate(self._state.workspaces):
                if workspace.name == name:
                    limits = dict(workspace.rate_limits) | dict(rate_limits or {})
                    self._state.workspaces[i] = replace(
                        workspace,
                        time_zone=time_zone or workspace.time_zone,
                        rate_limits=tuple(sorted(limits.items())),
                    )
                    return self._auth_changed(self._state.workspaces[i])
        raise ConflictError(f"no workspace named {name!r}")

    def create_app(self, workspace_id: int, name: str, now: int) -> App:
        with self._lock:
            app = App(len(self._state.apps) + 1, workspace_id, str(uuid.uuid4()), name)
            self._state.apps.append(app)
            return app

    def list_apps(self, workspace_id: int) -> list[App]:
        return [a for a in self._state.apps if a.workspace_id == workspace_id]

    def add_key(
        self,
        workspace_id: int,
        name: str,
        secret: str,
        permissions: frozenset[str],
        now: int,
        allowed_networks: tuple[str, ...] = (),
    ) -> ApiKey:
        with self._lock:
            key = ApiKey(
                len(self._state.keys) + 1,
                workspace_id,
                name,
                secret[:8],
                permissions,
                now,
                allowed_networks=allowed_networks,
            )
            self._state.keys[hash_secret(secret)] = key
            return key

    def list_keys(self, workspace_id: int) -> list[ApiKey]:
        return [k for k in self._state.keys.values() if k.workspace_id == workspace_id]

    def revoke_key(self, workspace_id: int, key_id: int, now: int) -> ApiKey:
        with self._lock:
            for digest, key in self._state.keys.items():
                if key.id == key_id and key.workspace_id == workspace_id:
                    self._state.keys[digest] = replace(key, revoked=True)
                    return self._auth_changed(self._state.keys[digest])
        raise ConflictError(f"no key with id {key_id} in this workspace")

    def authenticate(self, secret: str) -> tuple[Workspace, ApiKey] | None:
        key = self._state.keys.get(hash_secret(secret))
        if key is None or key.revoked:
            return None
        workspace = next(w for w in self._state.workspaces if w.id == key.workspace_id)
        return workspace, key

    def track(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None = None,
    ) -> Future[TrackOutcome]:
        future: Future[TrackOutcome] = Future()
        with self._lock:
            try:
                if idempotency is not None:
                    recorded = self._state.idempotency.get((workspace_id, idempotency.key))
                    again = replay(recorded, idempotency, now)
                    if again is not None:
                        future.set_result(again)
                        return future
                # Apply to a copy and swap it in: a request is all or nothing, like a
                # transaction, and its idempotency key is recorded in the same swap.
                state = copy.deepcopy(self._state)
                outcome = apply_track(_MemoryTx(state, workspace_id, now), request)
                state.idempotency = {
                    slot: kept for slot, kept in state.idempotency.items() if kept.expires_at > now
                }
                if idempotency is not None:
                    state.idempotency[(workspace_id, idempotency.key)] = record(
                        outcome, idempotency, now
                    )
            except Exception as exc:
                future.set_exception(exc)
                return future
            self._state = state
        future.set_result(outcome)
        return future

    def count_series(self, query: SeriesQuery) -> list[int]:
        info = self._state.catalogue.get((query.workspace_id, query.event))
        if info is None or info.status is EventStatus.BLOCKLISTED:
            return [0] * len(query.ranges)
        events = [
            e
            for e in self._state.events
            if e.workspace_id == query.workspace_id
            and e.name == query.event
            and (query.app is None or e.app == query.app)
            and (query.segment is None or query.segment in e.segments)
        ]
        return [sum(1 for e in events if start <= e.time < end) for start, end in query.ranges]

    def _catalogue(self, workspace_id: int) -> list[EventInfo]:
        return sorted(
            (info for (ws, _), info in self._state.catalogue.items() if ws == workspace_id),
            key=lambda info: info.name,
        )

    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        names = [i.name for i in self._catalogue(workspace_id) if i.status is EventStatus.ACTIVE]
        return names[offset : offset + limit]

    def event_catalogue(self, workspace_id: int, offset: int, limit: int) -> list[EventInfo]:
        return self._catalogue(workspace_id)[offset : offset + limit]

    def update_event(self, workspace_id: int, name: str, update: EventUpdate) -> EventInfo:
        with self._lock:
            info = self._state.catalogue.get((workspace_id, name), EventInfo(name))
            if update.description is not None:
                info = replace(info, description=update.description)
            if update.tags is not None:
                info = replace(info, tags=update.tags)
            if update.blocklisted is not None:
                status = EventStatus.BLOCKLISTED if update.blocklisted else EventStatus.ACTIVE
                info = replace(info, status=status)
            if update.included_in_analytics_report is not None:
                info = replace(
                    info, included_in_analytics_report=update.included_in_analytics_report
                )
            self._state.catalogue[(workspace_id, name)] = info
            return info

    # Segments ----------------------------------------------------------------------------
    def create_segment(
        self,
        workspace_id: int,
        draft: Segment,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        parse_filter(draft.filter)  # a bad filter is refused before anything is kept
        with self._lock:
            state = self._state
            if draft.tracking:
                self._check_tracked(workspace_id, tracked_limit, but=0)
            segment = replace(
                draft,
                id=len(state.segments) + 1,
                workspace_id=workspace_id,
                segment_id=str(uuid.uuid4()),
                archived=False,
                created_at=now,
                updated_at=now,
            )
            state.segments.append(segment)
            self._rebuild(segment, now)
            return segment

    def update_segment(
        self,
        workspace_id: int,
        segment_id: str,
        changes: SegmentChanges,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        with self._lock:
            state = self._state
            index, current = next(
                (
                    (i, s)
                    for i, s in enumerate(state.segments)
                    if s.workspace_id == workspace_id
                    and s.segment_id == segment_id
                    and not s.archived
                ),
                (None, None),
            )
            if index is None or current is None:
                raise ConflictError(f"no live segment {segment_id!r} in this workspace")
            edit = edit_segment(current, changes, now)  # a bad filter: refused here
            if edit.start_tracking:
                self._check_tracked(workspace_id, tracked_limit, but=current.id)
            updated = edit.segment
            state.segments[index] = updated
            if updated.archived:
                left = len(state.members.pop(updated.id, set()))
                if left:
                    state.changes.append((updated.id, now, -left))
                self._mark_events(updated.id, set())
            elif edit.refilter or edit.start_tracking:
                self._rebuild(updated, now)
            elif changes.tracking is False:
                self._mark_events(updated.id, set())
            return updated

    def _check_tracked(self, workspace_id: int, limit: int, but: int) -> None:
        tracked = sum(
            1
            for s in self._state.segments
            if s.workspace_id == workspace_id and s.tracking and not s.archived and s.id != but
        )
        check_tracked_limit(tracked, limit)

    def _rebuild(self, segment: Segment, now: int) -> None:
        state = self._state
        rule = parse_filter(segment.filter)
        members = {
            i
            for i, user in enumerate(state.users)
            if user.workspace_id == segment.workspace_id
            and matches(rule, UserState(user.attributes, user.event_counts, user.used_apps))
        }
        before = state.members.get(segment.id, set())
        for delta in (len(members - before), -len(before - members)):
            if delta:
                state.changes.append((segment.id, now, delta))
        state.members[segment.id] = members
        self._mark_events(segment.id, members if segment.tracking else set())

    def _mark_events(self, segment: int, members: set[int]) -> None:
        """Every stored event counts for the segment exactly when its user is in `members`."""
        self._state.events = [
            replace(e, segments=e.segments | {segment})
            if e.user in members
            else replace(e, segments=e.segments - {segment})
            for e in self._state.events
        ]

    def list_segments(self, workspace_id: int, include_archived: bool = False) -> list[Segment]:
        return sorted(
            (
                s
                for s in self._state.segments
                if s.workspace_id == workspace_id and (include_archived or not s.archived)
            ),
            key=lambda s: (s.created_at, s.id),
        )

    def segment_sizes(self, segment: int, instants: Sequence[int]) -> list[int]:
        changes = [(time, delta) for s, time, delta in self._state.changes if s == segment]
        return [sum(d for time, d in changes if time < instant) for instant in instants]


class _MemoryTx:
    def __init__(self, state: _State, workspace_id: int, now: int) -> None:
        self.state = state
        self.workspace_id = workspace_id
        self.now = now
        self.rules: list[SegmentRule] | None = None
        self.profiles: dict[int, Profile] = {}

    def find_user(self, identity: Identity) -> int | None:
        matches = [
            (user.updated_at, i)
            for i, user in enumerate(self.state.users)
            if user.workspace_id == self.workspace_id and self._has(user, identity)
        ]
        return max(matches)[1] if matches else None

    @staticmethod
    def _has(user: _User, identity: Identity) -> bool:
        if identity.kind == "braze_id":
            return user.braze_id == identity.value
        if identity.kind in ("email", "phone"):
            return user.attributes.get(identity.kind) == identity.value
        return user.identities.get(identity.kind) == identity.value

    def create_user(self, identity: Identity) -> int:
        user = _User(self.workspace_id, new_braze_id(), {}, updated_at=self.now)
        if identity.kind in ("email", "phone"):
            user.attributes[identity.kind] = identity.value
        else:
            user.identities[identity.kind] = identity.value
        self.state.users.append(user)
        return len(self.state.users) - 1

    def attributes(self, user: int) -> dict[str, Any]:
        return dict(self.state.users[user].attributes)

    def save_attributes(self, user: int, attributes: dict[str, Any]) -> None:
        self.state.users[user].attributes = attributes
        self.state.users[user].updated_at = self.now

    def app_key(self, app_id: str) -> int | None:
        return next(
            (
                a.id
                for a in self.state.apps
                if a.workspace_id == self.workspace_id and a.app_id == app_id
            ),
            None,
        )

    def event_type(self, name: str) -> tuple[int, bool]:
        info = self.state.catalogue.setdefault((self.workspace_id, name), EventInfo(name))
        return 0, info.status is EventStatus.BLOCKLISTED

    def add_event(
        self,
        item: EventItem,
        event_type: int,
        user: int,
        app: int | None,
        segments: frozenset[int],
    ) -> None:
        self.state.events.append(
            _Event(self.workspace_id, item.name, user, app, item.time, segments)
        )
        stored = self.state.users[user]
        stored.event_counts[item.name] = stored.event_counts.get(item.name, 0) + 1
        if item.app_id is not None:
            stored.used_apps.add(item.app_id)

    def segment_rules(self) -> Sequence[SegmentRule]:
        if self.rules is None:
            self.rules = []
            for s in self.state.segments:
                if s.workspace_id == self.workspace_id and not s.archived:
                    parsed = parse_filter(s.filter)
                    self.rules.append(SegmentRule(s.id, s.tracking, parsed, referenced(parsed)))
        return self.rules

    def profile(self, user: int) -> Profile:
        if user not in self.profiles:
            stored = self.state.users[user]
            self.profiles[user] = Profile(
                dict(stored.attributes),
                dict(stored.event_counts),
                set(stored.used_apps),
                {s for s, members in self.state.members.items() if user in members},
            )
        return self.profiles[user]

    def set_member(self, user: int, segment: int, member: bool) -> None:
        members = self.state.members.setdefault(segment, set())
        if member:
            members.add(user)
        else:
            members.discard(user)
        self.state.changes.append((segment, self.now, 1 if member else -1))

    def add_purchase(self, item: PurchaseItem, user: int, app: int | None) -> None:
        if item.app_id is not None:
            self.state.users[user].used_apps.add(item.app_id)
        self.state.purchases.append((self.workspace_id, user, item))
