"""Who is asking: the Bearer key, its workspace, its rate limit, and the endpoint's permission."""

from __future__ import annotations

import ipaddress
import time

from starlette.requests import Request

from eventtally.domain.model import ApiKey, Workspace
from eventtally.domain.ratelimit import EMPTY_HEADERS, RateBucket, WindowCounter
from eventtally.errors import EventtallyError, Forbidden, TooManyRequests, Unauthorized
from eventtally.settings import Settings
from eventtally.store.base import Store, hash_secret


def authorize(request: Request, permission: str, bucket: RateBucket) -> tuple[Workspace, ApiKey]:
    """The caller's workspace and key, after counting the request against its rate limit.

    401 without a valid key (rate-limit headers present but empty, as Braze sends them),
    429 over the limit, 403 without the permission. Every counted request, failed or
    not, uses up the window: Braze counts failures too.
    """
    secret = _secret(request)
    known: KnownKeys = request.app.state.known_keys
    found = None if secret is None else known.authenticate(secret)
    if found is None:
        request.state.response_headers = EMPTY_HEADERS
        # Braze's wording; the key itself is never echoed back.
        raise Unauthorized(f"Invalid API key: {'undefined' if secret is None else 'non-existent'}")
    workspace, key = found
    limiter: WindowCounter = request.app.state.limiter
    now: int = request.app.state.clock()
    decision = limiter.hit(workspace.id, bucket, workspace.limit(bucket), now)
    headers = decision.headers()
    request.state.response_headers = headers
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after(now))
        request.app.state.metrics.rate_limited.inc(bucket=bucket.value)
        raise TooManyRequests("Rate limit exceeded")
    if not key.allows(permission):
        raise Forbidden(f"this API key lacks the '{permission}' permission")
    address = client_address(request)
    if not key.admits(address):
        raise Forbidden(f"this API key may not be used from {address or 'an unknown address'}")
    return workspace, key


class KnownKeys:
    """`Store.authenticate`, remembered for a short while.

    Asking the store costs little by itself, but on SQLite it is a read on the event loop,
    which hands the interpreter lock to the server's other threads and, under load, can
    wait milliseconds to win it back (measured: 0.3 ms a request, a fifth of the loop's
    time). A key found is trusted for `seconds`, and no longer once this process has
    changed a key or a workspace (`Store.auth_epoch`). Unknown keys are never remembered:
    a key just created works at once, and a flood of made-up keys fills nothing.
    """

    LIMIT = 4096  # keys remembered; past it, all are forgotten (a flood of keys costs reads)

    def __init__(self, store: Store, seconds: float) -> None:
        self._store = store
        self._seconds = seconds
        self._known: dict[str, tuple[float, int, tuple[Workspace, ApiKey]]] = {}

    def authenticate(self, secret: str) -> tuple[Workspace, ApiKey] | None:
        digest = hash_secret(secret)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and now < hit[0] and hit[1] == self._store.auth_epoch:
            return hit[2]
        epoch = self._store.auth_epoch  # read first: a change during the read is not missed
        found = self._store.authenticate(secret)
        if found is None or self._seconds <= 0:
            self._known.pop(digest, None)
            return found
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        self._known[digest] = (now + self._seconds, epoch, found)
        return found


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_proxies(text: str) -> Networks:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise EventtallyError(f"EVENTTALLY_TRUSTED_PROXIES: {exc}") from None


def _within(address: str, networks: Networks) -> bool:
    if not networks:  # no trusted proxies (the default): nothing to parse
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request) -> str | None:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the nearest
    address in `X-Forwarded-For` that is not one (a client could forge the rest)."""
    peer = request.client.host if request.client else None
    proxies: Networks = request.app.state.trusted_proxies
    if peer is None or not _within(peer, proxies):
        return peer
    forwarded = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(forwarded):
        if not _within(hop, proxies):
            return hop
    return forwarded[0] if forwarded else peer


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
