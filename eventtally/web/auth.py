"""Who is asking: the Bearer key, its workspace, and whether it holds the endpoint's permission."""

from __future__ import annotations

from starlette.requests import Request

from eventtally.domain.model import ApiKey, Workspace
from eventtally.errors import Forbidden, Unauthorized
from eventtally.settings import Settings
from eventtally.store.base import Store


def authorize(request: Request, permission: str) -> tuple[Workspace, ApiKey]:
    """The caller's workspace and key; 401 without a valid key, 403 without the permission."""
    secret = _secret(request)
    if secret is None:
        raise Unauthorized("Invalid API key: undefined")
    store: Store = request.app.state.store
    found = store.authenticate(secret)
    if found is None:
        # Braze's wording; the key itself is never echoed back.
        raise Unauthorized("Invalid API key: non-existent")
    workspace, key = found
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
