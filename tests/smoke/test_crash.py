"""kill -9 (or SIGTERM) under concurrent ingest, then restart: every acknowledged event
counted exactly once.

Each request puts all its events in an hour of its own, so after the restart each hour
must hold either every event of its request (committed) or none (never committed); an
acknowledged request must be whole.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.smoke.server import init, serving

pytestmark = pytest.mark.slow

EVENTS_PER_REQUEST = 50
WORKERS = 4
ORIGIN = datetime(2020, 1, 1, tzinfo=UTC)
MAX_REQUESTS = 1200  # bounds the test even if the kill never lands


def _body(slot: int) -> dict[str, object]:
    hour = ORIGIN + timedelta(hours=slot)
    return {
        "events": [
            {
                "external_id": f"user-{slot}-{i % 7}",
                "name": "crash_test",
                "time": (hour + timedelta(seconds=i)).isoformat(),
            }
            for i in range(EVENTS_PER_REQUEST)
        ]
    }


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_stop_under_load_loses_and_doubles_nothing(
    tmp_path: Path, sig: signal.Signals, store_url: str | None
) -> None:
    data = tmp_path / "data"
    setup = init(data, "UTC", store_url)
    headers = {"Authorization": f"Bearer {setup['api_key']}"}
    acknowledged: set[int] = set()
    attempted: set[int] = set()
    lock = threading.Lock()
    next_slot = iter(range(MAX_REQUESTS))

    with serving(data, store=store_url) as server:

        def send() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
                while True:
                    with lock:
                        slot = next(next_slot, None)
                        if slot is None:
                            return
                        attempted.add(slot)
                    try:
                        response = http.post("/users/track", json=_body(slot))
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 201:
                        with lock:
                            acknowledged.add(slot)

        threads = [threading.Thread(target=send) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, sig)
        status = server.process.wait(timeout=20)
        if sig is signal.SIGTERM:
            assert status == 0, "SIGTERM finishes in-flight requests and exits 0"
        for thread in threads:
            thread.join(timeout=30)

    assert len(acknowledged) >= 150, "the load never got going"
    with serving(data, store=store_url) as server:
        counts: dict[int, int] = {}
        last = max(attempted)
        with httpx.Client(base_url=server.url, headers=headers) as http:
            for first in range(0, last + 1, 100):
                ending = ORIGIN + timedelta(hours=first + 100)
                series = http.get(
                    "/events/data_series",
                    params={
                        "event": "crash_test",
                        "length": 100,
                        "unit": "hour",
                        "ending_at": ending.isoformat(),
                    },
                ).json()["data"]
                for offset, point in enumerate(series):
                    counts[first + offset] = point["count"]
    for slot in acknowledged:
        assert counts[slot] == EVENTS_PER_REQUEST, f"acknowledged request {slot} not whole"
    for slot in attempted - acknowledged:
        assert counts[slot] in (0, EVENTS_PER_REQUEST), f"request {slot} half applied"
    assert all(counts[slot] == 0 for slot in counts if slot not in attempted)
