"""eventtally's one error hierarchy.

    EventtallyError
    ├── ApiError            an HTTP answer: carries its status; the body is {"message": ...}
    │   ├── BadRequest          400
    │   ├── Unauthorized        401
    │   ├── Forbidden           403
    │   ├── NotFound            404
    │   ├── MethodNotAllowed    405
    │   ├── IdempotencyInFlight 409 (retryable: the first request with the key is not done)
    │   ├── PayloadTooLarge     413
    │   ├── UnsupportedMedia    415
    │   ├── IdempotencyConflict 422 (the key was used with a different body)
    │   ├── TooManyRequests     429
    │   └── Unavailable         503 (retryable: the store cannot write now)
    ├── ConflictError       a name or record that already exists (CLI: exit 1)
    └── StoreError          the store failed; driver errors are translated into this

Driver exceptions (sqlite3, sockets) are caught where they enter and re-raised as one
of these, so no handler, CLI command or user ever sees a driver's exception.
"""

from __future__ import annotations

from typing import ClassVar


class EventtallyError(Exception):
    """Base of every error eventtally raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(EventtallyError):
    status: ClassVar[int] = 500


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMedia(ApiError):
    status = 415


class IdempotencyInFlight(ApiError):
    """A request with the same `Idempotency-Key` is still being applied; retry later."""

    status = 409


class IdempotencyConflict(ApiError):
    """The `Idempotency-Key` was already used, within its retention, with another body."""

    status = 422


class TooManyRequests(ApiError):
    status = 429


class Unavailable(ApiError):
    status = 503


class ConflictError(EventtallyError):
    """A record that must be unique already exists (a workspace name, say)."""


class StoreError(EventtallyError):
    """The store could not do what was asked (I/O, corruption, a driver failure)."""


class StoreFull(StoreError):
    """The store cannot write (disk full, read-only): retryable once space returns."""
