"""The clients' segment methods against the real app in process."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from eventtally import AsyncClient, Segment, SegmentDetails, SizePoint, ValidationError
from eventtally.domain.model import Segment as StoredSegment
from eventtally.web.app import now_us
from tests.client.conftest import BASE_URL, InProcess, run


def make_segments(served: InProcess, count: int) -> list[str]:
    ids = []
    for i in range(count):
        draft = StoredSegment(
            id=0,
            workspace_id=served.workspace.id,
            segment_id="",
            name=f"s{i:03d}",
            filter={"attribute": "plan", "op": "eq", "value": "pro"},
            tracking=i == 0,
            description="pro users" if i == 0 else None,
            tags=("billing",) if i == 0 else (),
        )
        ids.append(served.store.create_segment(served.workspace.id, draft, now_us()).segment_id)
    return ids


def test_segment_methods(served: InProcess) -> None:
    ids = make_segments(served, 105)  # more than one page of 100

    async def scenario() -> tuple[list[Segment], list[Segment], SegmentDetails, list[SizePoint]]:
        async with AsyncClient(BASE_URL, served.key, transport=served.transport()) as client:
            await client.track(
                attributes=[{"external_id": f"u{i}", "plan": "pro"} for i in range(3)]
            )
            ascending = [s async for s in client.list_segments()]
            descending = [s async for s in client.list_segments("desc")]
            details = await client.segment_details(ids[0])
            sizes = await client.segment_data_series(ids[0], 2)
            with pytest.raises(ValidationError, match="segment_id"):
                await client.segment_data_series("nope", 2)
        return ascending, descending, details, sizes

    ascending, descending, details, sizes = run(scenario())
    assert [s.id for s in ascending] == ids
    assert [s.id for s in descending] == ids[::-1]
    assert ascending[0] == Segment(ids[0], "s000", True, ("billing",))
    assert details.name == "s000"
    assert details.description == 'plan is "pro"'
    assert details.text_description == "pro users"
    assert details.created_at.tzinfo is not None
    assert details.created_at <= datetime.now(UTC)
    assert [p.size for p in sizes] == [0, 3]  # made today: yesterday it had no one
    assert all(isinstance(p.time, date) for p in sizes)
