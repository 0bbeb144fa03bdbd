"""The dashboard: one HTML page at `/` and `/dashboard`, and its static files.

The page is plain JavaScript over the public API (the key stays in the browser's
sessionStorage and travels only as the Bearer header). The page is `index.html` beside
this module (served here only, with its Content-Security-Policy); its scripts and styles
live in `static/` and are served from the package, so no build step is needed;
uPlot is vendored in `static/vendor/uplot/` with its licence. See docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_PATH = "/dashboard/static"

# The page talks to this server only: no other host for scripts, styles, images or fetch.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def page(request: Request) -> Response:
    # Read per request (9 KB, in Starlette's thread pool as the endpoint is sync): the page
    # and its static files always come from the same version on disk.
    return HTMLResponse((HERE / "index.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


class _Static(StaticFiles):
    """The page's files, with `nosniff` and a short cache (they change with the package)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def routes() -> list[BaseRoute]:
    return [
        Route("/", page, methods=["GET"]),
        Route("/dashboard", page, methods=["GET"]),
        Mount(STATIC_PATH, app=_Static(directory=STATIC), name="dashboard-static"),
    ]
