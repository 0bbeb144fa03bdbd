"""The parse-only baseline: decode and validate a `/users/track` body exactly as eventtally
does, then answer without storing anything. A separate tiny app, never part of the product.

    granian --interface asgi --factory bench.parse_only:create_app
"""

from __future__ import annotations

import time

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventtally.domain.track import parse_track

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


async def track(request: Request) -> Response:
    parsed = parse_track(_decode(await request.body()), time.time_ns() // 1000)
    body = {"message": "success", "events_processed": len(parsed.events)}
    return Response(_encode(body), status_code=201, media_type="application/json")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/users/track", track, methods=["POST"])])


def main() -> None:
    import argparse

    from eventtally.server import serve_asgi

    parser = argparse.ArgumentParser(description="The parse-only baseline server.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_asgi(create_app(), "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
