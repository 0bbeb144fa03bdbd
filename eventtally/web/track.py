"""`POST /users/track` (contract section 5, decisions 8.12, 8.18-8.21, 8.24)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventtally.domain.idempotency import HEADER, Idempotency, body_hash, parse_key
from eventtally.domain.ratelimit import RateBucket
from eventtally.domain.track import ItemError, TrackOutcome, TrackRequest, parse_track
from eventtally.errors import BadRequest, IdempotencyInFlight, PayloadTooLarge, UnsupportedMedia
from eventtally.settings import Settings
from eventtally.store.base import Store
from eventtally.web.auth import authorize
from eventtally.web.reads import off_loop
from eventtally.web.responses import JSON
from eventtally.web.waiting import result_of

NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
_ARRAY_ORDER = {"attributes": 0, "events": 1, "purchases": 2}
_decode = msgspec.json.Decoder().decode


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over the {limit // (1024 * 1024)} MB limit")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the {limit // (1024 * 1024)} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(body: bytes) -> object:
    try:
        return _decode(body)
    except UnicodeDecodeError:
        # Braze drops invalid UTF-8 rather than refusing the body.
        return decode_json(body.decode("utf-8", "ignore").encode())
    except RecursionError:
        raise BadRequest("the body is not valid JSON: it is nested too deeply") from None
    except msgspec.DecodeError as exc:
        if not _is_utf8(body):
            return decode_json(body.decode("utf-8", "ignore").encode())
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def users_track(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    # Read the body before any refusal: answering a keep-alive connection while its body
    # is still unread would leave that body to be parsed as the next request.
    raw = await read_body(request, settings.max_body_bytes)
    workspace, _ = await off_loop(request, authorize, request, "users.track", RateBucket.TRACK)
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        raise UnsupportedMedia("Content-Type must be application/json")
    key = parse_key(request.headers.getlist(HEADER))
    body = decode_json(raw)
    now = request.app.state.clock()
    parsed = parse_track(body, now)
    store: Store = request.app.state.store
    if key is None:
        outcome = await result_of(store.track(workspace.id, parsed, now))
    else:
        idempotency = Idempotency(key, body_hash(body), settings.idempotency_retention * 1_000_000)
        # The store decides replays, but only once the first request is committed; until
        # then a repeat is told to come back (one process serves, so a set suffices).
        in_flight: set[tuple[int, str]] = request.app.state.idempotency_in_flight
        slot = (workspace.id, key)
        if slot in in_flight:
            raise IdempotencyInFlight(
                f"a request with this {HEADER} is still being processed; retry later"
            )
        in_flight.add(slot)
        try:
            outcome = await result_of(store.track(workspace.id, parsed, now, idempotency))
        finally:
            in_flight.discard(slot)
    if not outcome.replayed:
        request.app.state.metrics.events.inc(outcome.events_processed)
    return track_response(parsed, outcome)


def track_response(parsed: TrackRequest, outcome: TrackOutcome) -> JSON:
    errors = sorted(
        [*parsed.errors, *outcome.errors], key=lambda e: (_ARRAY_ORDER[e.input_array], e.index)
    )
    processed = {
        "attributes": outcome.attributes_processed,
        "events": outcome.events_processed,
        "purchases": outcome.purchases_processed,
    }
    if not any(processed.values()):
        return JSON({"message": NOTHING_VALID, "errors": _errors(errors)}, status_code=400)
    content: dict[str, object] = {"message": "success"}
    for array in ("attributes", "events", "purchases"):
        if array in parsed.present:
            content[f"{array}_processed"] = processed[array]
    if errors:
        content["errors"] = _errors(errors)
    return JSON(content, status_code=201)


def _errors(errors: list[ItemError]) -> list[dict[str, object]]:
    return [{"type": e.type, "input_array": e.input_array, "index": e.index} for e in errors]
