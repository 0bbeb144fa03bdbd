"""Rate limits as Braze does them: fixed clock-aligned windows, headers on every answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventtally.domain.ratelimit import Limit, RateBucket
from tests.support import Api, running_api

T0 = 1_767_225_600_000_000 + 1_234_567_891  # 2026-01-01T00:20:34.567891Z
SECOND = 1_000_000
HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def limited(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    with running_api(tmp_path / "data", clock=clock) as api:
        api.store.update_workspace(
            "test",
            rate_limits={
                RateBucket.DEFAULT: Limit(3, 3600),
                RateBucket.CATALOGUE: Limit(2, 60),
                RateBucket.TRACK: Limit(2, 3),
            },
        )
        yield api


def rate(response: object) -> tuple[str, str, str]:
    headers = response.headers  # type: ignore[attr-defined]
    return tuple(headers[h] for h in HEADERS)  # type: ignore[return-value]


def test_braze_default_limits_on_every_authenticated_answer(api: Api) -> None:
    ok = api.series(event="e", length=1)
    assert ok.status_code == 200
    assert rate(ok)[:2] == ("250000", "249999")
    bad = api.series(event="e", length=0)
    assert bad.status_code == 400
    assert rate(bad)[:2] == ("250000", "249998")  # failed requests count
    listing = api.get("/events/list")
    assert rate(listing)[:2] == ("1000", "999")
    track = api.track({"events": []})
    assert rate(track)[:2] == ("3000", "2999")


def test_reset_is_the_end_of_the_clock_aligned_window(limited: Api) -> None:
    hour_end = (T0 // SECOND // 3600 + 1) * 3600
    assert rate(limited.series(event="e", length=1)) == ("3", "2", str(hour_end))
    minute_end = (T0 // SECOND // 60 + 1) * 60
    assert rate(limited.get("/events")) == ("2", "1", str(minute_end))
    three_end = (T0 // SECOND // 3 + 1) * 3
    assert rate(limited.track({"events": []})) == ("2", "1", str(three_end))


def test_over_the_limit_is_a_429_with_retry_after(limited: Api, clock: Clock) -> None:
    for remaining in ("2", "1", "0"):
        assert rate(limited.series(event="e", length=1))[1] == remaining
    over = limited.series(event="e", length=1)
    assert over.status_code == 429
    assert over.json() == {"message": "Rate limit exceeded"}
    assert rate(over)[1] == "0"
    hour_end = (T0 // SECOND // 3600 + 1) * 3600
    assert int(over.headers["retry-after"]) == -(-(hour_end * SECOND - T0) // SECOND)
    # Other buckets are untouched; the next window starts afresh.
    assert limited.get("/events/list").status_code == 200
    clock.now = hour_end * SECOND
    again = limited.series(event="e", length=1)
    assert again.status_code == 200
    assert rate(again)[1] == "2"


def test_catalogue_endpoints_share_one_bucket(limited: Api) -> None:
    assert limited.get("/events/list").status_code == 200
    assert limited.get("/events").status_code == 200
    assert limited.get("/events/list").status_code == 429
    assert limited.get("/events").status_code == 429


def test_rejected_track_requests_store_nothing(limited: Api) -> None:
    body = {"events": [{"external_id": "u", "name": "e", "time": "2025-01-01T00:00:00Z"}]}
    statuses = [limited.track(body).status_code for _ in range(4)]
    assert statuses == [201, 201, 429, 429]
    series = limited.series(event="e", length=1, ending_at="2025-01-02")
    assert series.json()["data"] == [{"time": "2025-01-01", "count": 2}]


def test_forbidden_and_bad_requests_count_too(limited: Api) -> None:
    weak = limited.new_key("events.list")
    headers = {"Authorization": f"Bearer {weak}"}
    forbidden = limited.client.get("/events/data_series", headers=headers)
    assert forbidden.status_code == 403
    assert rate(forbidden)[1] == "2"
    assert limited.series(event="e").status_code == 400
    assert rate(limited.series(event="e", length=1))[1] == "0"


def test_401_carries_the_headers_empty(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = api.client.get("/events/list", headers=headers)
        assert response.status_code == 401
        assert rate(response) == ("", "", "")


def test_workspaces_have_separate_windows(limited: Api) -> None:
    other = limited.store.create_workspace("other", "UTC", T0)
    secret = "et_other-workspace-key-for-tests-000000000"
    limited.store.add_key(other.id, "k", secret, frozenset({"events.list"}), T0)
    for _ in range(2):
        assert limited.get("/events/list").status_code == 200
    assert limited.get("/events/list").status_code == 429
    response = limited.client.get("/events/list", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert rate(response)[:2] == ("1000", "999")
