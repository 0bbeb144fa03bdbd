"""How a validated `/users/track` body is applied, written once for every store.

A store supplies the primitives (find and create profiles, read and write their
attributes, add events, keep segment memberships) inside one transaction; the rules
(which identifier finds whom, `_update_existing_only`, unknown apps, blocklisted events,
attributes before events, when a user joins or leaves a segment and which tracked
segments an event counts for) live here, so every backend behaves the same.

Segments (architecture decision 5): a user's membership of every live segment is kept
current, re-evaluated only when something its filter reads changes (an attribute, a
count of an event, the apps used); an event counts for every tracked segment its user
is in once the event itself is counted (an event-count condition sees it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventtally.domain.profile import apply_attribute_ops
from eventtally.domain.segments import Dependencies, Filter, matches
from eventtally.domain.track import (
    ArrayName,
    AttributeItem,
    EventItem,
    Identity,
    ItemError,
    PurchaseItem,
    TrackOutcome,
    TrackRequest,
)

UNKNOWN_APP = "'app_id' is not a known app"
Item = AttributeItem | EventItem | PurchaseItem  # each names its user the same way


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """A live segment as ingest needs it: its key, whether it is tracked, its filter."""

    id: int
    tracking: bool
    filter: Filter
    reads: Dependencies


@dataclass(slots=True)
class Profile:
    """What segment filters read of one user; the store loads it, the rules keep it current."""

    attributes: dict[str, Any]
    event_counts: dict[str, int]
    used_apps: set[str]
    segments: set[int] = field(default_factory=set)  # live segments the user is in
    # The tracked ones among them, which the user's events count for, once asked and until
    # `segments` changes: one set an event's tracked segments are looked up by, not a new
    # one each event. (The rules a profile is kept for do not change under it: the stores
    # drop their kept profiles with their rules.)
    counted_for: frozenset[int] | None = None


class IngestTx(Protocol):
    """Store primitives available while one track request is applied."""

    def segment_rules(self) -> Sequence[SegmentRule]:
        """The workspace's live (not archived) segments."""

    def profile(self, user: int) -> Profile:
        """The user's profile, the same object for the whole request."""

    def set_member(self, user: int, segment: int, member: bool) -> None:
        """Record that the user joined (or left) a segment now."""

    def find_user(self, identity: Identity) -> int | None: ...

    def create_user(self, identity: Identity) -> int: ...

    def attributes(self, user: int) -> dict[str, Any]: ...

    def save_attributes(self, user: int, attributes: dict[str, Any]) -> None: ...

    def app_key(self, app_id: str) -> int | None:
        """The internal key of an app of this workspace, or None when it is unknown."""

    def event_type(self, name: str) -> tuple[int, bool]:
        """The catalogue id of an event name (added if new), and whether it is blocklisted."""

    def add_event(
        self,
        item: EventItem,
        event_type: int,
        user: int,
        app: int | None,
        segments: frozenset[int],
    ) -> None:
        """Store the event, counted for `segments` (tracked ones its user is in), and count
        it in the user's event counts and apps."""

    def add_purchase(self, item: PurchaseItem, user: int, app: int | None) -> None:
        """Store the purchase and note the app as used."""


def apply_track(tx: IngestTx, request: TrackRequest) -> TrackOutcome:
    """Apply attributes, then events, then purchases (Braze's order)."""
    outcome = TrackOutcome()
    segment_rules = tx.segment_rules()
    rules = _Rules(segment_rules) if segment_rules else None
    for attr in request.attributes:
        user = _resolve(tx, rules, attr, "attributes")
        if isinstance(user, ItemError):
            outcome.errors.append(user)
            continue
        if attr.ops:
            profile = tx.profile(user) if rules else None
            attributes = apply_attribute_ops(tx.attributes(user), attr.ops)
            tx.save_attributes(user, attributes)
            if rules is not None and profile is not None:
                profile.attributes = attributes
                names = frozenset(k for k, _ in attr.ops)
                _reevaluate(tx, rules.reading_attributes(names), user, profile)
        outcome.attributes_processed += 1
    # The events are most of what ingest applies: this loop is _resolve_with_app spelled
    # out, with the primitives bound once, so an event of a known user costs three calls.
    find_user, event_type_of, add_event = tx.find_user, tx.event_type, tx.add_event
    processed = 0
    for event in request.events:
        app = None
        if event.app_id is not None:
            app = tx.app_key(event.app_id)
            if app is None:
                outcome.errors.append(ItemError(UNKNOWN_APP, "events", event.index))
                continue
        owner = find_user(event.identity)
        if owner is None:
            created = _create(tx, rules, event, "events")
            if isinstance(created, ItemError):
                outcome.errors.append(created)
                continue
            owner = created
        event_type, blocklisted = event_type_of(event.name)
        if not blocklisted:  # contract 8.11: accepted, then dropped
            segments = _NO_SEGMENTS if rules is None else _count_event(tx, rules, owner, event)
            add_event(event, event_type, owner, app, segments)
        processed += 1
    outcome.events_processed += processed
    for purchase in request.purchases:
        user_or_error = _resolve_with_app(tx, rules, purchase, "purchases")
        if isinstance(user_or_error, ItemError):
            outcome.errors.append(user_or_error)
            continue
        user, app = user_or_error
        if rules is not None and purchase.app_id is not None:
            _use_app(tx, rules, user, purchase.app_id)
        tx.add_purchase(purchase, user, app)
        outcome.purchases_processed += 1
    return outcome


_NO_SEGMENTS: frozenset[int] = frozenset()


class _Rules:
    """A workspace's live segments, indexed by what their filters read: a change to a
    profile re-evaluates only the segments that read what changed (in segment order)."""

    __slots__ = ("_apps", "_by_event", "all", "tracked")

    def __init__(self, rules: Sequence[SegmentRule]) -> None:
        self.all = tuple(rules)
        self.tracked = frozenset(rule.id for rule in rules if rule.tracking)
        self._by_event: dict[str, tuple[SegmentRule, ...]] = {}
        self._apps = tuple(rule for rule in rules if rule.reads.uses_apps)

    def reading_event(self, name: str) -> tuple[SegmentRule, ...]:
        found = self._by_event.get(name)
        if found is None:
            found = self._by_event[name] = tuple(r for r in self.all if name in r.reads.events)
        return found

    def reading_attributes(self, names: frozenset[str]) -> tuple[SegmentRule, ...]:
        return tuple(r for r in self.all if not names.isdisjoint(r.reads.attributes))

    def reading_apps(self) -> tuple[SegmentRule, ...]:
        return self._apps


def _count_event(tx: IngestTx, rules: _Rules, user: int, event: EventItem) -> frozenset[int]:
    """Count the event in the user's profile when a rule reads its count, re-evaluate
    what that can change, and return the tracked segments the event counts for."""
    profile = tx.profile(user)
    affected = rules.reading_event(event.name)
    if affected:
        # Counts no rule reads are left as they are: a change to the rules drops every
        # profile kept (the stores' caches), so none is read by a rule it was not loaded for.
        counts = profile.event_counts
        counts[event.name] = counts.get(event.name, 0) + 1
        _reevaluate(tx, affected, user, profile)
    if event.app_id is not None:
        _use_app(tx, rules, user, event.app_id)
    if not profile.segments or not rules.tracked:  # most users are in no tracked segment
        return _NO_SEGMENTS
    counted = profile.counted_for
    if counted is None:
        counted = profile.counted_for = rules.tracked & profile.segments
    return counted


def _use_app(tx: IngestTx, rules: _Rules, user: int, app_id: str) -> None:
    profile = tx.profile(user)
    if app_id not in profile.used_apps:
        profile.used_apps.add(app_id)
        _reevaluate(tx, rules.reading_apps(), user, profile)


def _reevaluate(tx: IngestTx, affected: Sequence[SegmentRule], user: int, profile: Profile) -> None:
    """Re-evaluate the segments a change can affect; record who joins and who leaves."""
    if not affected:
        return
    for rule in affected:
        member = matches(rule.filter, profile)  # a Profile is what filters read (Facts)
        if member != (rule.id in profile.segments):
            if member:
                profile.segments.add(rule.id)
            else:
                profile.segments.discard(rule.id)
            profile.counted_for = None
            tx.set_member(user, rule.id, member)


def _resolve_with_app(
    tx: IngestTx, rules: _Rules | None, item: EventItem | PurchaseItem, array: ArrayName
) -> tuple[int, int | None] | ItemError:
    app = None
    if item.app_id is not None:
        app = tx.app_key(item.app_id)
        if app is None:
            return ItemError(UNKNOWN_APP, array, item.index)
    user = _resolve(tx, rules, item, array)
    if isinstance(user, ItemError):
        return user
    return user, app


def _resolve(tx: IngestTx, rules: _Rules | None, item: Item, array: ArrayName) -> int | ItemError:
    user = tx.find_user(item.identity)
    if user is not None:
        return user
    return _create(tx, rules, item, array)


def _create(tx: IngestTx, rules: _Rules | None, item: Item, array: ArrayName) -> int | ItemError:
    """A new profile for an item's identity, which no user has, when the item may create one."""
    identity = item.identity
    if identity.kind == "braze_id":
        return ItemError("'braze_id' does not match any user", array, item.index)
    if item.update_existing_only:
        return ItemError(
            f"no user has this {identity.kind} and '_update_existing_only' is true",
            array,
            item.index,
        )
    user = tx.create_user(identity)
    if rules is not None:
        # A new profile may already match (a filter of absences, or on its email).
        _reevaluate(tx, rules.all, user, tx.profile(user))
    return user
