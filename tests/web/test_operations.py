"""Health, Prometheus metrics and access logs."""

from __future__ import annotations

import json
import logging

import pytest

from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.logs import JsonFormatter
from eventtally.metrics import Counter, Histogram
from tests.support import Api

WHEN = "2025-01-01T00:00:00Z"


def metric(text: str, line_start: str) -> float:
    values = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    ]
    assert len(values) == 1, (line_start, text)
    return values[0]


def test_healthz_needs_no_key(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"message": "ok"}


def test_metrics_count_requests_events_commits_and_rejections(api: Api) -> None:
    body = {"events": [{"external_id": "u", "name": "e", "time": WHEN}] * 3}
    assert api.track(body).status_code == 201
    assert api.series(event="e", length=1).status_code == 200
    assert api.series(event="e").status_code == 400
    api.client.get("/no/such/path")
    api.store.update_workspace("test", rate_limits={RateBucket.CATALOGUE: Limit(1, 3600)})
    api.get("/events/list")
    assert api.get("/events/list").status_code == 429

    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    requests = 'eventtally_requests_total{endpoint="%s",method="%s",status="%s"}'
    assert metric(text, requests % ("/users/track", "POST", "201")) == 1
    assert metric(text, requests % ("/events/data_series", "GET", "200")) == 1
    assert metric(text, requests % ("/events/data_series", "GET", "400")) == 1
    assert metric(text, requests % ("other", "GET", "404")) == 1
    assert metric(text, "eventtally_ingested_events_total ") == 3
    assert metric(text, 'eventtally_rate_limited_total{bucket="catalogue"}') == 1
    # At least the commit of the track request (workspace set-up commits count too).
    assert metric(text, "eventtally_commit_seconds_count") >= 1


def test_histogram_and_counter_render_in_exposition_format() -> None:
    counter = Counter("c_total", "help")
    counter.inc(2, path='a"b\\c\nd')
    assert counter.render()[-1] == 'c_total{path="a\\"b\\\\c\\nd"} 2'
    histogram = Histogram("h", "help", (0.1, 1.0))
    for value in (0.05, 0.5, 5):
        histogram.observe(value)
    assert histogram.render()[2:] == [
        'h_bucket{le="0.1"} 1',
        'h_bucket{le="1"} 2',
        'h_bucket{le="+Inf"} 3',
        "h_sum 5.55",
        "h_count 3",
    ]


def test_access_log_has_no_key_body_or_query(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    secret_body = {"events": [{"external_id": "secret-user", "name": "e", "time": WHEN}]}
    with caplog.at_level(logging.INFO, logger="eventtally.access"):
        api.track(secret_body)
        api.client.get("/events/list?api_key=leaked-in-query", headers=api.auth)
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "eventtally.access"]
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/users/track", 201),
        ("GET", "/events/list", 200),
    ]
    for line in lines:
        assert api.key not in line
        assert "secret-user" not in line
        assert "leaked-in-query" not in line
