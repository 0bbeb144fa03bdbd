"""Under many concurrent connections to a real server, no window admits more than its limit."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.smoke.server import eventtally, init, serving, store_args

pytestmark = pytest.mark.slow

LIMIT = 150
REQUESTS = 600
CONNECTIONS = 24


def test_concurrent_requests_never_exceed_the_window(tmp_path: Path, store_url: str | None) -> None:
    data = tmp_path / "data"
    key = init(data, "UTC", store_url)["api_key"]
    done = eventtally(
        "workspaces", "update", "default", *store_args(data, store_url),
        "--rate-limit", f"default={LIMIT}/3600", "--rate-limit", f"track={LIMIT}/3600",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    headers = {"Authorization": f"Bearer {key}"}
    body = {"events": [{"external_id": "u", "name": "e", "time": "2025-01-01T00:00:00Z"}]}

    with serving(data, store=store_url) as server:
        clients = [
            httpx.Client(base_url=server.url, headers=headers, timeout=30)
            for _ in range(CONNECTIONS)
        ]

        def call(i: int) -> tuple[str, int, str]:
            # Requests spread over CONNECTIONS clients (httpx clients are thread-safe), so the
            # server sees many connections at once.
            http = clients[i % CONNECTIONS]
            if i % 2:
                r = http.get("/events/data_series", params={"event": "e", "length": 1})
                return "default", r.status_code, r.headers["x-ratelimit-reset"]
            r = http.post("/users/track", json=body)
            return "track", r.status_code, r.headers["x-ratelimit-reset"]

        try:
            with ThreadPoolExecutor(CONNECTIONS) as pool:
                results = list(pool.map(call, range(REQUESTS)))
        finally:
            for client in clients:
                client.close()

    admitted = Counter((bucket, reset) for bucket, status, reset in results if status != 429)
    seen = Counter((bucket, reset) for bucket, _, reset in results)
    assert {status for _, status, _ in results} <= {200, 201, 429}
    for window, n in seen.items():
        # A window (bucket and its end) admits exactly min(limit, requests it saw).
        assert admitted[window] == min(LIMIT, n), window
    # The acknowledged track requests are exactly the stored events.
    tracked = sum(n for (bucket, _), n in admitted.items() if bucket == "track")
    with serving(data, store=store_url) as server:
        series = httpx.get(
            f"{server.url}/events/data_series",
            params={"event": "e", "length": 1, "ending_at": "2025-01-02"},
            headers=headers,
        ).json()
    assert series["data"] == [{"time": "2025-01-01", "count": tracked}]
