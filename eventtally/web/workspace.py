"""`GET /workspace` (eventtally extension): the key's workspace, reporting zone and apps.

The dashboard signs in with it and fills its app picker from it; see docs/dashboard.md.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from eventtally.domain.ratelimit import RateBucket
from eventtally.store.base import Store
from eventtally.web.auth import authorize
from eventtally.web.reads import reads_store
from eventtally.web.responses import JSON


@reads_store
def workspace_get(request: Request) -> Response:
    workspace, _ = authorize(request, "workspace.get", RateBucket.DEFAULT)
    store: Store = request.app.state.store
    apps = store.list_apps(workspace.id)
    return JSON(
        {
            "message": "success",
            "name": workspace.name,
            "time_zone": workspace.time_zone,
            "apps": [{"app_id": app.app_id, "name": app.name} for app in apps],
        }
    )
