"""The client's own rules, against httpx.MockTransport: chunking, paging, parsing, arguments."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from eventtally import (
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    EventtallyClientError,
    SeriesPoint,
    ServerError,
    TrackError,
    TrackResult,
)
from tests.client.conftest import Waits, run

URL = "http://braze.test"
KEY = "secret-key-" + "z" * 32
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **options: Any) -> Client:
    options.setdefault("sleep", Waits().sleep)
    return Client(URL, KEY, transport=httpx.MockTransport(handler), **options)


def echo_track(request: httpx.Request) -> httpx.Response:
    """Processes everything and reports one error at index 0 of each array sent."""
    body = json.loads(request.content)
    answer: dict[str, Any] = {"message": "success", "errors": []}
    for array, items in body.items():
        answer[f"{array}_processed"] = len(items)
        answer["errors"].append({"type": "bad", "input_array": array, "index": 0})
    return httpx.Response(201, json=answer)


def generate(kind: str, count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {"external_id": f"{kind}{i}", "n": i}


def test_track_chunks_each_array_by_75_lazily_and_rebases_errors() -> None:
    seen: list[dict[str, list[Any]]] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(json.loads(request.content))
        assert request.url == f"{URL}/users/track"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        return echo_track(request)

    with client(handler) as c:
        result = c.track(
            attributes=generate("a", 80), events=generate("e", 200), purchases=generate("p", 10)
        )
    sizes = sorted(
        tuple(len(body.get(a, [])) for a in ("attributes", "events", "purchases")) for body in seen
    )
    assert sizes == [(0, 50, 0), (5, 75, 0), (75, 75, 10)]
    assert sorted(item["n"] for body in seen for item in body.get("events", [])) == list(range(200))
    assert result == TrackResult(
        attributes_processed=80,
        events_processed=200,
        purchases_processed=10,
        errors=[
            TrackError("bad", "attributes", 0),
            TrackError("bad", "attributes", 75),
            TrackError("bad", "events", 0),
            TrackError("bad", "events", 75),
            TrackError("bad", "events", 150),
            TrackError("bad", "purchases", 0),
        ],
        requests=3,
    )


def test_track_with_nothing_sends_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with client(handler) as c:
        assert c.track() == TrackResult()
        assert c.track(events=iter([])) == TrackResult()


def test_track_items_datetimes_must_be_aware() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return echo_track(request)

    aware = datetime(2024, 3, 10, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with client(handler, concurrency=1) as c:
        c.track(
            events=[
                {
                    "external_id": "u",
                    "name": "x",
                    "time": aware,
                    "properties": {"d": date(2024, 1, 2)},
                }
            ]
        )
        with pytest.raises(ValueError, match="no time zone"):
            c.track(events=[{"external_id": "u", "name": "x", "time": datetime(2024, 3, 10)}])  # noqa: DTZ001
        with pytest.raises(ValueError, match="Out of range float"):
            c.track(
                events=[
                    {
                        "external_id": "u",
                        "name": "x",
                        "time": "t",
                        "properties": {"f": float("nan")},
                    }
                ]
            )
    assert bodies == [
        {
            "events": [
                {
                    "external_id": "u",
                    "name": "x",
                    "time": "2024-03-10T12:00:00+05:30",
                    "properties": {"d": "2024-01-02"},
                }
            ]
        }
    ]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_failed_request_stops_the_rest(concurrency: int) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            calls.append(1)
        return httpx.Response(401, json={"message": "Invalid API key: non-existent"})

    with client(handler, concurrency=concurrency) as c, pytest.raises(AuthenticationError):
        c.track(events=generate("e", 75 * 20))
    assert 1 <= len(calls) <= concurrency


def test_on_progress_errors_propagate_after_requests_finish() -> None:
    def explode(items: int) -> None:
        raise RuntimeError(f"progress bar broke at {items}")

    with client(echo_track) as c, pytest.raises(RuntimeError, match="progress bar broke"):
        c.track(events=generate("e", 400), on_progress=explode)


def test_async_track_bounds_failures_and_cancellation() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        started.append(1)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        raise AssertionError("unreachable")

    async def scenario() -> None:
        async with AsyncClient(URL, KEY, transport=httpx.MockTransport(hang), concurrency=3) as c:
            task = asyncio.create_task(c.track(events=generate("e", 1000)))
            while len(started) < 3:
                await asyncio.sleep(0)
            for _ in range(5):
                await asyncio.sleep(0)
            assert len(started) == 3  # never more than `concurrency` in flight
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(scenario())
    assert len(cancelled) == 3


def test_async_failed_request_stops_the_rest() -> None:
    calls: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        await asyncio.sleep(0)
        return httpx.Response(
            403, json={"message": "this API key lacks the 'users.track' permission"}
        )

    async def scenario() -> None:
        async with AsyncClient(URL, KEY, transport=httpx.MockTransport(handler)) as c:
            with pytest.raises(APIError, match=r"users\.track"):
                await c.track(events=generate("e", 75 * 20))

    run(scenario())
    assert 1 <= len(calls) <= 4


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (249, 1), (250, 2), (251, 2), (500, 3)])
def test_list_events_stops_at_a_short_page(total: int, requests: int) -> None:
    pages: list[str] = []
    names = [f"n{i:04d}" for i in range(total)]

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        pages.append(request.url.params["page"])
        events = names[page * 250 : page * 250 + 250]
        return httpx.Response(200, json={"message": "success", "events": events})

    with client(handler) as c:
        assert list(c.list_events()) == names
    assert pages == [str(p) for p in range(requests)]


def catalogue_page(names: list[str], link: str | None) -> httpx.Response:
    events: list[dict[str, Any]] = [
        {
            "name": n,
            "description": None,
            "included_in_analytics_report": False,
            "status": "Active",
            "tag_names": [],
        }
        for n in names
    ]
    headers = {"Link": link} if link else {}
    return httpx.Response(200, json={"message": "success", "events": events}, headers=headers)


def test_events_follows_path_only_relative_and_absolute_links() -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return catalogue_page(["a"], '</api/events?cursor=one>; rel="next"')
        if cursor == "one":
            return catalogue_page(
                ["b"], '</api/events>; rel="prev", <events?cursor=two>; rel="next"'
            )
        if cursor == "two":
            return catalogue_page(["c"], f'<{URL}/api/events?cursor=three>; rel="next"')
        return catalogue_page(["d"], '</api/events?cursor=two>; rel="prev"')

    with Client(URL + "/api", KEY, transport=httpx.MockTransport(handler)) as c:
        assert [e.name for e in c.events()] == ["a", "b", "c", "d"]
    assert requested == [
        f"{URL}/api/events",
        f"{URL}/api/events?cursor=one",
        f"{URL}/api/events?cursor=two",
        f"{URL}/api/events?cursor=three",
    ]


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ('<https://elsewhere.test/events?cursor=x>; rel="next"', "another origin"),
        ('<http://braze.test:8443/events?cursor=x>; rel="next"', "another origin"),
        ('</events>; rel="next"', "already read"),
    ],
)
def test_events_refuses_links_to_other_origins_and_loops(link: str, message: str) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return catalogue_page(["a"], link)

    with client(handler) as c, pytest.raises(EventtallyClientError, match=message):
        list(c.events())
    assert set(hosts) == {"braze.test"}
    assert len(hosts) <= 2


def test_series_labels_parse_to_dates_and_aware_datetimes() -> None:
    data = [
        {"time": "2024-03-10", "count": 1},
        {"time": "2024-03-10T01:00:00-05:00", "count": 2},
        {"time": "2024-03-10T06:00:00Z", "count": 3},
        {"time": "2024-03-10T06:00:00", "count": 4},  # no offset: read as UTC
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"message": "success", "data": data})

    with client(handler) as c:
        points = c.data_series("x", 4)
    assert points[0] == SeriesPoint(date(2024, 3, 10), 1)
    assert type(points[0].time) is date
    hour = points[1].time
    assert isinstance(hour, datetime)
    assert hour == datetime(2024, 3, 10, 6, tzinfo=UTC)
    assert hour.utcoffset() == timedelta(hours=-5)
    assert points[2].time == points[3].time == datetime(2024, 3, 10, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b'{"message": "success"}',
        b'{"data": [{"time": "2024", "count": "1"}]}',
        b"[]",
    ],
)
def test_unexpected_success_bodies_are_api_errors(body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with client(handler) as c, pytest.raises(APIError, match="unexpected answer") as raised:
        c.data_series("x", 1)
    assert type(raised.value) is APIError


def test_non_json_error_body_gives_an_excerpt() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, content=b"<html>\n  <h1>503   Service Unavailable</h1>" + b"x" * 500
        )

    with client(handler, max_retries=0) as c, pytest.raises(ServerError) as raised:
        c.data_series("x", 1)
    assert raised.value.message.startswith("<html> <h1>503 Service Unavailable</h1>")
    assert len(raised.value.message) == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "not a url"}, "base_url"),
        ({"base_url": "ftp://host"}, "base_url"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": KEY + "\n"}, "api_key"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff": -1.0}, "backoff"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_arguments_are_value_errors_without_the_key(
    options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"base_url": URL, "api_key": KEY, **options}
    for kind in (Client, AsyncClient):
        with pytest.raises(ValueError, match=message) as raised:
            kind(**arguments)
        assert KEY not in str(raised.value)


def test_repr_shows_the_url_not_the_key() -> None:
    c = Client(URL, KEY)
    try:
        assert repr(c) == f"Client(base_url='{URL}')"
        assert c.base_url == URL
        assert KEY not in repr(vars(c).get("_http"))
    finally:
        c.close()
    a = AsyncClient(URL, KEY)
    assert repr(a) == f"AsyncClient(base_url='{URL}')"
    run(a.aclose())
