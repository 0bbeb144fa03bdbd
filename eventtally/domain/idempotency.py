"""`Idempotency-Key` on `POST /users/track`: eventtally's extension (contract 8.24).

A client that may send a request twice (a retry after a timeout, say) names it with a
key; the store records the key with the request's outcome in the transaction that
applies it, so a repeat within the retention window is answered as the first was and
changes nothing. Pure: the header's rule and the body's fingerprint, no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from eventtally.errors import BadRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Printable ASCII, spaces only inside: HTTP drops them around a header value, so a key
# that began or ended with one would not be the key the client meant.
_KEY = re.compile(rf"[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_KEY_LENGTH - 2}}}[\x21-\x7e])?")


@dataclass(frozen=True, slots=True)
class Idempotency:
    """What a store needs to honour a key: the key, the body's fingerprint, how long to keep it."""

    key: str
    body_hash: str
    retention_us: int


def parse_key(values: Sequence[str]) -> str | None:
    """The key from the header's values (none: None); refused with 400 unless 1-255 printable
    ASCII characters, given once."""
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"the {HEADER} header is given {len(values)} times; send it once")
    key = values[0]
    if _KEY.fullmatch(key) is None:
        raise BadRequest(
            f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
            " (spaces only between others)"
        )
    return key


def body_hash(body: object) -> str:
    """The fingerprint of a decoded body: the same JSON value gives the same hash, whatever
    its key order and whitespace."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()
