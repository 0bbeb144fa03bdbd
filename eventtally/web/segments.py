"""`GET /segments/list`, `/segments/details`, `/segments/data_series` (contract section 6)."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from eventtally.domain.buckets import Unit, series_buckets
from eventtally.domain.instants import from_us
from eventtally.domain.model import Segment
from eventtally.domain.ratelimit import RateBucket
from eventtally.domain.segment_text import describe
from eventtally.domain.segments import parse_filter
from eventtally.errors import BadRequest
from eventtally.store.base import Store
from eventtally.web.auth import authorize
from eventtally.web.params import Params
from eventtally.web.reads import reads_store
from eventtally.web.responses import JSON

SEGMENTS_PER_PAGE = 100


def live_segment(store: Store, workspace_id: int, segment_id: str) -> Segment:
    segment = store.find_segment(workspace_id, segment_id)
    if segment is None:
        raise BadRequest(f"segment_id {segment_id[:64]!r} is not a segment of this workspace")
    if segment.archived:
        raise BadRequest(f"segment_id {segment_id[:64]!r} is archived")
    return segment


def tracked_segment(store: Store, workspace_id: int, segment_id: str) -> int:
    """The store key of a segment that event series can be asked of (contract 8.7)."""
    segment = live_segment(store, workspace_id, segment_id)
    if not segment.tracking:
        raise BadRequest(
            f"segment_id {segment_id[:64]!r} is not tracked for analytics "
            "(analytics_tracking_enabled is false), so it has no event series"
        )
    return segment.id


@reads_store
def segments_list(request: Request) -> Response:
    workspace, _ = authorize(request, "segments.list", RateBucket.DEFAULT)
    params = Params(request)
    page = params.integer("page", minimum=0, maximum=10**9) or 0
    direction = params.text("sort_direction") or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest(f"sort_direction must be 'asc' or 'desc', not {direction[:40]!r}")
    store: Store = request.app.state.store
    segments = store.list_segments(workspace.id)
    if direction == "desc":
        segments.reverse()
    page_of = segments[page * SEGMENTS_PER_PAGE : (page + 1) * SEGMENTS_PER_PAGE]
    return JSON(
        {
            "message": "success",
            "segments": [
                {
                    "id": s.segment_id,
                    "name": s.name,
                    "analytics_tracking_enabled": s.tracking,
                    "tags": list(s.tags),
                }
                for s in page_of
            ],
        }
    )


def _iso(us: int) -> str:
    return from_us(us).astimezone(UTC).isoformat()


@reads_store
def segment_details(request: Request) -> Response:
    workspace, _ = authorize(request, "segments.details", RateBucket.DEFAULT)
    segment_id = Params(request).text("segment_id", required=True)
    assert segment_id is not None  # required=True
    store: Store = request.app.state.store
    segment = live_segment(store, workspace.id, segment_id)
    return JSON(
        {
            "message": "success",
            "created_at": _iso(segment.created_at),
            "updated_at": _iso(segment.updated_at),
            "name": segment.name,
            "description": describe(parse_filter(segment.filter)),
            "text_description": segment.description,
            "tags": list(segment.tags),
            "teams": list(segment.teams),
        }
    )


@reads_store
def segment_data_series(request: Request) -> Response:
    """Daily sizes: the members at the end of each day of the reporting zone (or now, for
    today). Sizes are recorded from the segment's creation on; earlier days are 0, and so
    are days yet to begin."""
    workspace, _ = authorize(request, "segments.data_series", RateBucket.DEFAULT)
    params = Params(request)
    segment_id = params.text("segment_id", required=True)
    assert segment_id is not None  # required=True
    length = params.length()
    zone = ZoneInfo(workspace.time_zone)
    now: int = request.app.state.clock()
    ending_at = params.ending_at(zone, now)
    store: Store = request.app.state.store
    segment = live_segment(store, workspace.id, segment_id)
    buckets = series_buckets(zone, Unit.DAY, ending_at, length)
    # The size at a day's end counts every change before it; today's counts every change
    # so far, one made this very microsecond included. Days yet to begin are 0, as future
    # points of event series are (contract 8.8).
    sizes = store.segment_sizes(segment.id, [min(b.end, now + 1) for b in buckets])
    data = [
        {"time": b.label, "size": size if b.start <= now else 0}
        for b, size in zip(buckets, sizes, strict=True)
    ]
    return JSON({"message": "success", "data": data})
