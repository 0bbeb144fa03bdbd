"""Who is asking: the Bearer key, its workspace, its rate limit, and the endpoint's permission."""

from __future__ import annotations

from starlette.requests import Request

from eventtally.domain.model import ApiKey, Workspace
from eventtally.domain.ratelimit import EMPTY_HEADERS, FixedWindowCounter, RateBucket
from eventtally.errors import Forbidden, TooManyRequests, Unauthorized
from eventtally.settings import Settings
from eventtally.store.base import Store


def authorize(request: Request, permission: str, bucket: RateBucket) -> tuple[Workspace, ApiKey]:
    """The caller's workspace and key, after counting the request against its rate limit.

    401 without a valid key (rate-limit headers present but empty, as Braze sends them),
    429 over the limit, 403 without the permission. Every counted request, failed or
    not, uses up the window: Braze counts failures too.
    """
    secret = _secret(request)
    store: Store = request.app.state.store
    found = None if secret is None else store.authenticate(secret)
    if found is None:
        request.state.response_headers = EMPTY_HEADERS
        # Braze's wording; the key itself is never echoed back.
        raise Unauthorized(f"Invalid API key: {'undefined' if secret is None else 'non-existent'}")
    workspace, key = found
    limiter: FixedWindowCounter = request.app.state.limiter
    now: int = request.app.state.clock()
    decision = limiter.hit(workspace.id, bucket, workspace.limit(bucket), now)
    headers = decision.headers()
    request.state.response_headers = headers
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after(now))
        raise TooManyRequests("Rate limit exceeded")
    if not key.allows(permission):
        raise Forbidden(f"this API key lacks the '{permission}' permission")
    return workspace, key


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    settings: Settings = request.app.state.settings
    if settings.legacy_api_key:
        legacy = request.query_params.get("api_key")
        if legacy:
            return legacy
    return None
