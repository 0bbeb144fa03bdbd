"""How a validated `/users/track` body is applied, written once for every store.

A store supplies the primitives (find and create profiles, read and write their
attributes, add events) inside one transaction; the rules (which identifier finds
whom, `_update_existing_only`, unknown apps, blocklisted events, attributes before
events) live here, so every backend behaves the same.
"""

from __future__ import annotations

from typing import Any, Protocol

from eventtally.domain.profile import apply_attribute_ops
from eventtally.domain.track import (
    ArrayName,
    EventItem,
    Identity,
    ItemError,
    PurchaseItem,
    TrackOutcome,
    TrackRequest,
)

UNKNOWN_APP = "'app_id' is not a known app"


class IngestTx(Protocol):
    """Store primitives available while one track request is applied."""

    def find_user(self, identity: Identity) -> int | None: ...

    def create_user(self, identity: Identity) -> int: ...

    def attributes(self, user: int) -> dict[str, Any]: ...

    def save_attributes(self, user: int, attributes: dict[str, Any]) -> None: ...

    def app_key(self, app_id: str) -> int | None:
        """The internal key of an app of this workspace, or None when it is unknown."""

    def event_type(self, name: str) -> tuple[int, bool]:
        """The catalogue id of an event name (added if new), and whether it is blocklisted."""

    def add_event(self, item: EventItem, event_type: int, user: int, app: int | None) -> None: ...

    def add_purchase(self, item: PurchaseItem, user: int, app: int | None) -> None: ...


def apply_track(tx: IngestTx, request: TrackRequest) -> TrackOutcome:
    """Apply attributes, then events, then purchases (Braze's order)."""
    outcome = TrackOutcome()
    for attr in request.attributes:
        user = _resolve(tx, attr.identity, attr.update_existing_only, "attributes", attr.index)
        if isinstance(user, ItemError):
            outcome.errors.append(user)
            continue
        if attr.ops:
            tx.save_attributes(user, apply_attribute_ops(tx.attributes(user), attr.ops))
        outcome.attributes_processed += 1
    for event in request.events:
        user_or_error = _resolve_with_app(tx, event, "events")
        if isinstance(user_or_error, ItemError):
            outcome.errors.append(user_or_error)
            continue
        user, app = user_or_error
        event_type, blocklisted = tx.event_type(event.name)
        if not blocklisted:  # contract 8.11: accepted, then dropped
            tx.add_event(event, event_type, user, app)
        outcome.events_processed += 1
    for purchase in request.purchases:
        user_or_error = _resolve_with_app(tx, purchase, "purchases")
        if isinstance(user_or_error, ItemError):
            outcome.errors.append(user_or_error)
            continue
        user, app = user_or_error
        tx.add_purchase(purchase, user, app)
        outcome.purchases_processed += 1
    return outcome


def _resolve_with_app(
    tx: IngestTx, item: EventItem | PurchaseItem, array: ArrayName
) -> tuple[int, int | None] | ItemError:
    app = None
    if item.app_id is not None:
        app = tx.app_key(item.app_id)
        if app is None:
            return ItemError(UNKNOWN_APP, array, item.index)
    user = _resolve(tx, item.identity, item.update_existing_only, array, item.index)
    if isinstance(user, ItemError):
        return user
    return user, app


def _resolve(
    tx: IngestTx, identity: Identity, existing_only: bool, array: ArrayName, index: int
) -> int | ItemError:
    user = tx.find_user(identity)
    if user is not None:
        return user
    if identity.kind == "braze_id":
        return ItemError("'braze_id' does not match any user", array, index)
    if existing_only:
        return ItemError(
            f"no user has this {identity.kind} and '_update_existing_only' is true",
            array,
            index,
        )
    return tx.create_user(identity)
