"""Real HTTP through a real `eventtally serve` process, including Braze's documented curl."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.smoke.server import eventtally, init, serving, stop, store_args

pytestmark = pytest.mark.slow


def curl_series(url: str, key: str, app_id: str, segment_id: str | None) -> dict[str, Any]:
    """Braze's documented request, as documented: host and placeholders substituted."""
    curl = shutil.which("curl")
    assert curl is not None, "curl is installed by the test set-up"
    segment = ["-d", f"segment_id={segment_id}"] if segment_id is not None else []
    done = subprocess.run(
        [
            curl, "-sS", "-G",
            "-d", "event=event_name", "-d", "length=24", "-d", "unit=hour",
            "-d", "ending_at=2014-12-10T23%3A59%3A59-05%3A00",
            "-d", f"app_id={app_id}", *segment,
            "-H", f"Authorization: Bearer {key}",
            f"{url}/events/data_series",
        ],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def test_braze_documented_request(tmp_path: Path, store_url: str | None) -> None:
    setup = init(tmp_path / "data", "America/New_York", store_url)
    key, app_id = setup["api_key"], setup["app_id"]
    # A tracked segment made with the CLI: every third user is "gold".
    made = eventtally(
        "segments", "create", *store_args(tmp_path / "data", store_url), "--name", "Gold",
        "--filter", '{"attribute": "tier", "op": "eq", "value": "gold"}', "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    segment_id = json.loads(made.stdout)["id"]
    tiers = [
        {"external_id": f"user-{i}", "tier": "gold" if i % 3 == 0 else "silver"} for i in range(24)
    ]
    # One event in each hour of 2014-12-10 (New York), n+1 events in hour n; a few just outside.
    events = []
    for hour in range(24):
        for i in range(hour + 1):
            item = {
                "external_id": f"user-{i}",
                "name": "event_name",
                "time": f"2014-12-10T{hour:02d}:{i:02d}:30-05:00",
            }
            if hour % 2 == 0:
                item["app_id"] = app_id
            events.append(item)
    events += [
        {"external_id": "x", "name": "event_name", "time": "2014-12-09T23:59:59-05:00"},
        {"external_id": "x", "name": "event_name", "time": "2014-12-11T00:00:00-05:00"},
    ]
    with serving(tmp_path / "data", store=store_url) as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            assert http.post("/users/track", json={"attributes": tiers}).status_code == 201
            for i in range(0, len(events), 75):
                response = http.post("/users/track", json={"events": events[i : i + 75]})
                assert response.status_code == 201, response.text
                assert response.json()["events_processed"] == len(events[i : i + 75])
        hours = [f"2014-12-10T{h:02d}:00:00-05:00" for h in range(24)]
        body = curl_series(server.url, key, app_id, segment_id)
        assert body["message"] == "success"
        assert [p["time"] for p in body["data"]] == hours
        # Hour h holds users 0..h; the app only on even hours; gold users are 0, 3, 6, ...
        assert [p["count"] for p in body["data"]] == [
            h // 3 + 1 if h % 2 == 0 else 0 for h in range(24)
        ]
        body = curl_series(server.url, key, app_id, None)
        assert [p["time"] for p in body["data"]] == hours
        assert [p["count"] for p in body["data"]] == [h + 1 if h % 2 == 0 else 0 for h in range(24)]
        # Without the app filter every event of the day counts, in its hour.
        all_apps = httpx.get(
            f"{server.url}/events/data_series",
            params={"event": "event_name", "length": 3, "unit": "day", "ending_at": "2014-12-12"},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert all_apps["data"] == [
            {"time": "2014-12-09", "count": 1},
            {"time": "2014-12-10", "count": sum(range(1, 25))},
            {"time": "2014-12-11", "count": 1},
        ]


def test_sigterm_finishes_and_exits_zero(tmp_path: Path, store_url: str | None) -> None:
    setup = init(tmp_path / "data", "UTC", store_url)
    headers = {"Authorization": f"Bearer {setup['api_key']}"}
    with serving(tmp_path / "data", store=store_url) as server:
        body = {"events": [{"external_id": "u", "name": "e", "time": "2024-01-01T00:00:00Z"}]}
        assert (
            httpx.post(f"{server.url}/users/track", json=body, headers=headers).status_code == 201
        )
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
    assert stop(server.process) == 0
    with serving(tmp_path / "data", store=store_url) as server:
        series = httpx.get(
            f"{server.url}/events/data_series",
            params={"event": "e", "length": 1, "ending_at": "2024-01-02"},
            headers=headers,
        ).json()
        assert series["data"] == [{"time": "2024-01-01", "count": 1}]
