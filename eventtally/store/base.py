"""The storage interface every backend implements, and the helpers they share.

Kept small on purpose: every method is a cost to every backend. Reads are plain
calls; ingest returns a future because a backend may batch many requests into one
durable commit (group commit) and answer each when its batch is on disk.
"""

from __future__ import annotations

import abc
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TypeVar

from eventtally.domain.idempotency import Idempotency
from eventtally.domain.model import (
    ApiKey,
    App,
    EventInfo,
    EventUpdate,
    Segment,
    SegmentChanges,
    SeriesQuery,
    Workspace,
)
from eventtally.domain.ratelimit import FixedWindowCounter, Limit, RateBucket, WindowCounter
from eventtally.domain.segments import parse_filter
from eventtally.domain.track import TrackOutcome, TrackRequest
from eventtally.errors import ConflictError

T = TypeVar("T")

DEFAULT_TRACKED_LIMIT = 25  # Braze tracks at most 25 segments per app

SLOT_US = 15 * 60 * 1_000_000
"""The aggregate grain: 15 minutes of UTC, which every current zone's hours and days align to."""

KEY_PREFIX = "et_"


def split_ranges(
    ranges: Sequence[tuple[int, int]],
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """How a store counts each range of a series query: whole 15-minute slots from its
    aggregates, as (range index, first slot, end slot), and the parts of slots at edges
    off the grid (historic offsets and transitions) from raw events, as (range index,
    start, end) in µs."""
    on_grid: list[tuple[int, int, int]] = []
    pieces: list[tuple[int, int, int]] = []
    for i, (start, end) in enumerate(ranges):
        lo, hi = -(-start // SLOT_US), end // SLOT_US
        if lo < hi:
            on_grid.append((i, lo, hi))
            if start < lo * SLOT_US:
                pieces.append((i, start, lo * SLOT_US))
            if hi * SLOT_US < end:
                pieces.append((i, hi * SLOT_US, end))
        elif start < end:
            pieces.append((i, start, end))
    return on_grid, pieces


def check_tracked_limit(tracked: int, limit: int) -> None:
    """Refuse one more tracked segment when `tracked` (the others) already reach `limit`."""
    if tracked >= limit:
        raise ConflictError(
            f"this workspace already tracks {tracked} segments, its limit; "
            "stop tracking one first (or raise EVENTTALLY_MAX_TRACKED_SEGMENTS)"
        )


@dataclass(frozen=True, slots=True)
class SegmentEdit:
    """A live segment with `SegmentChanges` applied, and what the change asks of a store."""

    segment: Segment
    refilter: bool  # a different filter: members are decided again
    start_tracking: bool  # tracking switched on: its event series is built again


def edit_segment(current: Segment, changes: SegmentChanges, now: int) -> SegmentEdit:
    """The segment as `changes` leave it; a bad new filter is refused (FilterError)."""
    refilter = changes.filter is not None and changes.filter != current.filter
    if refilter:
        parse_filter(changes.filter)
    updated = replace(
        current,
        name=current.name if changes.name is None else changes.name,
        filter=changes.filter if refilter else current.filter,
        tracking=current.tracking if changes.tracking is None else changes.tracking,
        description=current.description if changes.description is None else changes.description,
        tags=current.tags if changes.tags is None else changes.tags,
        teams=current.teams if changes.teams is None else changes.teams,
        archived=bool(changes.archived),
        updated_at=now,
    )
    return SegmentEdit(updated, refilter, changes.tracking is True and not current.tracking)


def new_secret() -> str:
    """A fresh API key: 256 random bits, URL-safe, recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a key. Keys are random, so a fast hash is as strong as a slow one."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def new_braze_id() -> str:
    """A Braze-style user id: 24 random hex characters."""
    draw = _DRAW
    while True:
        if draw.pid == os.getpid():  # never an id drawn before a fork
            try:
                return draw.ids.pop()
            except IndexError:  # used up (perhaps by another thread just now)
                pass
        # Drawn many at a time: os.urandom gives up the interpreter lock and must win it
        # back, which under ingest cost ten times the draw (an import creating users).
        raw = os.urandom(12 * 1024)
        draw.ids = [raw[i : i + 12].hex() for i in range(0, len(raw), 12)]
        draw.pid = os.getpid()


@dataclass
class _Draw:
    """Random user ids drawn ahead, and the process that drew them."""

    pid: int = 0
    ids: list[str] = field(default_factory=list)


_DRAW = _Draw()


class Store(abc.ABC):
    """One eventtally store: workspaces, apps, keys, profiles, events and their counts."""

    # Called with the seconds each durable commit took (for metrics); stores that do not
    # commit never call it.
    commit_observer: Callable[[float], None] | None = None
    # Whether a read may wait on another server (the web layer then reads off its loop).
    blocking_reads: bool = False
    # Counts this process's changes to keys and workspaces: what the web layer remembers
    # of them (web/auth.KnownKeys) is dropped as soon as this process changes one.
    auth_epoch: int = 0

    def _auth_changed(self, result: T) -> T:
        self.auth_epoch += 1
        return result

    # Workspaces, apps and keys -------------------------------------------------------
    @abc.abstractmethod
    def create_workspace(self, name: str, time_zone: str, now: int) -> Workspace: ...

    @abc.abstractmethod
    def list_workspaces(self) -> list[Workspace]: ...

    @abc.abstractmethod
    def update_workspace(
        self,
        name: str,
        time_zone: str | None = None,
        rate_limits: Mapping[RateBucket, Limit] | None = None,
    ) -> Workspace:
        """Change the reporting zone and/or override rate limits (merged into earlier ones)."""

    @abc.abstractmethod
    def create_app(self, workspace_id: int, name: str, now: int) -> App: ...

    @abc.abstractmethod
    def list_apps(self, workspace_id: int) -> list[App]: ...

    @abc.abstractmethod
    def add_key(
        self,
        workspace_id: int,
        name: str,
        secret: str,
        permissions: frozenset[str],
        now: int,
        allowed_networks: tuple[str, ...] = (),
    ) -> ApiKey:
        """Store a key by its hash; the secret itself is not kept."""

    @abc.abstractmethod
    def list_keys(self, workspace_id: int) -> list[ApiKey]: ...

    @abc.abstractmethod
    def revoke_key(self, workspace_id: int, key_id: int, now: int) -> ApiKey: ...

    @abc.abstractmethod
    def authenticate(self, secret: str) -> tuple[Workspace, ApiKey] | None:
        """The workspace and key a secret belongs to, or None (unknown or revoked)."""

    # Ingest ----------------------------------------------------------------------------
    @abc.abstractmethod
    def track(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None = None,
    ) -> Future[TrackOutcome]:
        """Apply a validated body; the future resolves once it is durable.

        With `idempotency`, the key is recorded with the outcome in the same transaction.
        A later call with the same key and body before the record expires applies
        nothing and resolves to the recorded outcome (`replayed` set); with another body
        it fails with `IdempotencyConflict`. An expired record counts as none.
        """

    # Reads -----------------------------------------------------------------------------
    @abc.abstractmethod
    def count_series(self, query: SeriesQuery) -> list[int]:
        """The number of events in each bucket of the query, in order."""

    @abc.abstractmethod
    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        """Names of the workspace's events that are not blocklisted, alphabetical."""

    @abc.abstractmethod
    def event_catalogue(self, workspace_id: int, offset: int, limit: int) -> list[EventInfo]:
        """Every event of the workspace with its metadata, blocklisted ones too, alphabetical."""

    @abc.abstractmethod
    def update_event(self, workspace_id: int, name: str, update: EventUpdate) -> EventInfo:
        """Set catalogue metadata, adding the event to the catalogue if it is new."""

    # Segments --------------------------------------------------------------------------
    @abc.abstractmethod
    def create_segment(
        self,
        workspace_id: int,
        draft: Segment,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        """Add a segment from `draft` (its id, segment_id and times are assigned), work out
        its members as every profile is now and, if tracked, build its event series from
        the stored events. ConflictError past `tracked_limit` tracked segments."""

    @abc.abstractmethod
    def update_segment(
        self,
        workspace_id: int,
        segment_id: str,
        changes: SegmentChanges,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        """Change a live segment; a new filter, or tracking switched on, rebuilds as creation
        does; archiving ends it. ConflictError when there is no such live segment."""

    @abc.abstractmethod
    def list_segments(self, workspace_id: int, include_archived: bool = False) -> list[Segment]:
        """Segments by creation, oldest first."""

    @abc.abstractmethod
    def segment_sizes(self, segment: int, instants: Sequence[int]) -> list[int]:
        """How many users were in the segment just before each instant."""

    def find_segment(self, workspace_id: int, segment_id: str) -> Segment | None:
        return next(
            (
                s
                for s in self.list_segments(workspace_id, include_archived=True)
                if s.segment_id == segment_id
            ),
            None,
        )

    def workspace(self, name: str) -> Workspace | None:
        """The workspace of that name, if there is one."""
        return next((w for w in self.list_workspaces() if w.name == name), None)

    def app_by_api_id(self, workspace_id: int, app_id: str) -> App | None:
        return next((a for a in self.list_apps(workspace_id) if a.app_id == app_id), None)

    def window_counter(self) -> WindowCounter:
        """Where rate-limit windows are counted: in this process, unless several nodes
        share the store."""
        return FixedWindowCounter()

    def close(self) -> None:  # noqa: B027 - stores without resources need no close
        """Release files and threads; the store is unusable afterwards."""
