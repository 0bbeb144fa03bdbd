"""The sync Client against a real `eventtally serve` process over real HTTP."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from eventtally import Client, SeriesPoint, TransportError
from tests.client.conftest import ScriptedSync, Step, Waits, event
from tests.smoke.server import HOST, free_port, init, serving

pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")


def test_track_2000_events_with_4_threads(tmp_path: Path) -> None:
    setup = init(tmp_path / "data", "Europe/Berlin")
    start = datetime(2024, 10, 15, tzinfo=UTC)
    times = [start + timedelta(minutes=13 * i) for i in range(2000)]  # to 2 Nov, over DST's end
    events = [
        event(
            "visit",
            t.isoformat(),
            user=f"u{i % 50}",
            **({"app_id": setup["app_id"]} if i % 2 else {}),
        )
        for i, t in enumerate(times)
    ]
    progress_threads: set[int] = set()
    progress: list[int] = []

    def on_progress(items: int) -> None:
        progress_threads.add(threading.get_ident())
        progress.append(items)

    transport = ScriptedSync(httpx.HTTPTransport(), [])
    transport.barrier = threading.Barrier(4)  # the first 4 requests are in flight together
    end_of_summer = datetime(2024, 10, 27, 2, tzinfo=UTC)  # 03:00 CET, after 02:00-03:00 twice
    with (
        serving(tmp_path / "data") as server,
        Client(server.url, setup["api_key"], concurrency=4, transport=transport) as client,
    ):
        result = client.track(events=events, on_progress=on_progress)
        days = client.data_series("visit", 20, ending_at=date(2024, 11, 4))
        app_days = client.data_series("visit", 20, ending_at="2024-11-04", app_id=setup["app_id"])
        hours = client.data_series("visit", 3, unit="hour", ending_at=end_of_summer)

    assert result.events_processed == 2000
    assert result.errors == []
    assert result.requests == 27
    assert sorted(progress) == [50] + [75] * 26
    assert progress_threads == {threading.get_ident()}  # called in the caller's thread
    assert transport.max_in_flight == 4

    per_day = Counter(t.astimezone(BERLIN).date() for t in times)
    window = [date(2024, 10, 15) + timedelta(days=k) for k in range(20)]
    assert days == [SeriesPoint(day, per_day[day]) for day in window]
    assert sum(p.count for p in app_days) == 1000

    assert [p.time.isoformat() for p in hours] == [
        "2024-10-27T01:00:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
    ]
    for point in hours:
        assert isinstance(point.time, datetime)
        first = point.time.astimezone(UTC)
        assert point.count == sum(first <= t < first + timedelta(hours=1) for t in times)


def test_faults_over_real_http_are_retried_and_counted_once(tmp_path: Path) -> None:
    setup = init(tmp_path / "data", "UTC")
    events = [event("fault", f"2024-03-10T10:{i % 60:02d}:00Z", user=f"u{i}") for i in range(100)]
    # The first request (75 events): a made-up 503, a refused connection, a 429 with
    # Retry-After, then the server commits it but the answer is dropped; the retry is
    # answered from the first. The second request (25 events) goes straight through.
    script: list[Step] = [503, "connect", (429, {"Retry-After": "7"}), "drop"]
    transport = ScriptedSync(httpx.HTTPTransport(), script)
    waits = Waits()
    with (
        serving(tmp_path / "data") as server,
        Client(
            server.url,
            setup["api_key"],
            concurrency=1,
            transport=transport,
            sleep=waits.sleep,
            rng=random.Random(7),
        ) as client,
    ):
        result = client.track(events=events)
        (point,) = client.data_series("fault", 1, ending_at="2024-03-11")

    assert result.events_processed == 100
    assert result.requests == 2
    posts = transport.requests[:-1]
    assert len(posts) == 6  # five tries of the first request, one of the second
    assert len({r.headers["idempotency-key"] for r in posts[:5]}) == 1
    assert posts[5].headers["idempotency-key"] != posts[0].headers["idempotency-key"]
    expected = random.Random(7)
    assert waits.seconds == [
        expected.uniform(0, 0.5),
        expected.uniform(0, 1.0),
        7.0,
        expected.uniform(0, 4.0),
    ]
    assert point == SeriesPoint(date(2024, 3, 10), 100)


def test_nothing_listening_is_a_transport_error_after_the_retries() -> None:
    waits = Waits()
    with (
        Client(
            f"http://{HOST}:{free_port()}", "k" * 43, max_retries=2, sleep=waits.sleep
        ) as client,
        pytest.raises(TransportError) as raised,
    ):
        client.data_series("x", 1)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(waits.seconds) == 2
    assert "k" * 43 not in str(raised.value)
