"""Recorded `Idempotency-Key` outcomes, the same for every store (contract 8.24).

A store keeps, per workspace and key, the body's fingerprint, the outcome it answered
(counts and the store's item errors; the parse errors follow from the body again) and
when the record expires. The rule deciding what a repeat gets is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from eventtally.domain.idempotency import HEADER, Idempotency
from eventtally.domain.track import ArrayName, ItemError, TrackOutcome
from eventtally.errors import IdempotencyConflict


@dataclass(frozen=True, slots=True)
class Recorded:
    body_hash: str
    outcome: bytes  # `encode_outcome`
    expires_at: int  # µs since the epoch; the record is ignored from this instant on


class _Stored(msgspec.Struct, array_like=True):
    attributes: int
    events: int
    purchases: int
    errors: list[tuple[str, ArrayName, int]]


_decoder = msgspec.json.Decoder(_Stored)


def encode_outcome(outcome: TrackOutcome) -> bytes:
    return msgspec.json.encode(
        _Stored(
            outcome.attributes_processed,
            outcome.events_processed,
            outcome.purchases_processed,
            [(e.type, e.input_array, e.index) for e in outcome.errors],
        )
    )


def decode_outcome(data: bytes) -> TrackOutcome:
    stored = _decoder.decode(data)
    return TrackOutcome(
        stored.attributes,
        stored.events,
        stored.purchases,
        [ItemError(*error) for error in stored.errors],
        replayed=True,
    )


def replay(recorded: Recorded | None, idempotency: Idempotency, now: int) -> TrackOutcome | None:
    """The outcome to answer again, or None when the request is to be applied (no live record).

    Raises `IdempotencyConflict` when the live record is of another body.
    """
    if recorded is None or recorded.expires_at <= now:
        return None
    if recorded.body_hash != idempotency.body_hash:
        raise IdempotencyConflict(
            f"this {HEADER} was already used with a different body; "
            "send a new key with a new request"
        )
    return decode_outcome(recorded.outcome)


def record(outcome: TrackOutcome, idempotency: Idempotency, now: int) -> Recorded:
    return Recorded(idempotency.body_hash, encode_outcome(outcome), now + idempotency.retention_us)
