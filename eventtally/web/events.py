"""`GET /events/data_series`, `GET /events/list` and `GET /events` (contract sections 2-4)."""

from __future__ import annotations

import base64
import binascii
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from eventtally.domain.buckets import Unit, series_buckets
from eventtally.domain.model import SeriesQuery
from eventtally.domain.ratelimit import RateBucket
from eventtally.errors import BadRequest
from eventtally.store.base import Store
from eventtally.web.auth import authorize
from eventtally.web.params import Params
from eventtally.web.reads import reads_store
from eventtally.web.responses import JSON
from eventtally.web.segments import tracked_segment

EVENT_NAMES_PER_PAGE = 250
CATALOGUE_PER_PAGE = 50


@reads_store
def data_series(request: Request) -> Response:
    workspace, _ = authorize(request, "events.data_series", RateBucket.DEFAULT)
    store: Store = request.app.state.store
    params = Params(request)
    event = params.text("event", required=True)
    assert event is not None  # required=True
    length = params.length()
    unit_text = params.text("unit") or "day"
    if unit_text not in ("day", "hour"):
        raise BadRequest(f"unit must be 'day' or 'hour', not {unit_text[:40]!r}")
    zone = ZoneInfo(workspace.time_zone)
    ending_at = params.ending_at(zone, request.app.state.clock())
    app_key = None
    app_id = params.text("app_id")
    if app_id is not None:
        app = store.app_by_api_id(workspace.id, app_id)
        if app is None:
            raise BadRequest(f"app_id {app_id[:64]!r} is not an app of this workspace")
        app_key = app.id
    segment_id = params.text("segment_id")
    segment = None if segment_id is None else tracked_segment(store, workspace.id, segment_id)
    buckets = series_buckets(zone, Unit(unit_text), ending_at, length)
    ranges = tuple(r for b in buckets for r in b.ranges)
    query = SeriesQuery(workspace.id, event, ranges, app=app_key, segment=segment)
    counts = iter(store.count_series(query))
    data = [{"time": b.label, "count": sum(next(counts) for _ in b.ranges)} for b in buckets]
    return JSON({"message": "success", "data": data})


@reads_store
def events_list(request: Request) -> Response:
    workspace, _ = authorize(request, "events.list", RateBucket.CATALOGUE)
    store: Store = request.app.state.store
    page = Params(request).integer("page", minimum=0, maximum=10**9) or 0
    names = store.event_names(workspace.id, page * EVENT_NAMES_PER_PAGE, EVENT_NAMES_PER_PAGE)
    return JSON({"message": "success", "events": names})


def encode_cursor(skip: int) -> str:
    """Braze-style opaque cursor: base64 of `skip:N`. Clients must not parse it."""
    return base64.b64encode(f"skip:{skip}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        prefix, _, number = text.partition(":")
        if prefix != "skip" or not number.isdigit() or len(number) > 12:
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not a cursor this server gave out") from None


@reads_store
def events_catalogue(request: Request) -> Response:
    workspace, _ = authorize(request, "events.get", RateBucket.CATALOGUE)
    store: Store = request.app.state.store
    cursor = Params(request).text("cursor")
    skip = 0 if cursor is None else decode_cursor(cursor)
    infos = store.event_catalogue(workspace.id, skip, CATALOGUE_PER_PAGE + 1)
    links = []
    if skip > 0:
        prev = max(0, skip - CATALOGUE_PER_PAGE)
        links.append(f'</events?cursor={encode_cursor(prev)}>; rel="prev"')
    if len(infos) > CATALOGUE_PER_PAGE:
        links.append(f'</events?cursor={encode_cursor(skip + CATALOGUE_PER_PAGE)}>; rel="next"')
    events = [
        {
            "name": info.name,
            "description": info.description,
            "included_in_analytics_report": info.included_in_analytics_report,
            "status": str(info.status),
            "tag_names": list(info.tags),
        }
        for info in infos[:CATALOGUE_PER_PAGE]
    ]
    headers = {"Link": ",".join(links)} if links else None
    return JSON({"message": "success", "events": events}, headers=headers)
