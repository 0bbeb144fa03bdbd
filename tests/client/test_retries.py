"""Retries and waits: scripted faults around the real app's transport; no real sleeping."""

from __future__ import annotations

import random
from datetime import date

import httpx
import pytest

from eventtally import (
    APIError,
    AsyncClient,
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TrackResult,
    TransportError,
    ValidationError,
)
from tests.client.conftest import BASE_URL, InProcess, ScriptedAsync, Step, Waits, event, run

SEED = 20260105
TEN_EVENTS = [event("retried", f"2024-03-10T12:{i:02d}:00Z", user=f"u{i}") for i in range(10)]


def client(
    served: InProcess, transport: ScriptedAsync, waits: Waits, **options: object
) -> AsyncClient:
    return AsyncClient(
        BASE_URL,
        served.key,
        transport=transport,
        sleep=waits.asleep,
        rng=random.Random(SEED),
        **options,  # type: ignore[arg-type]
    )


async def count(served: InProcess, name: str = "retried") -> int:
    async with AsyncClient(BASE_URL, served.key, transport=served.transport()) as fresh:
        points = await fresh.data_series(name, 1, ending_at=date(2024, 3, 11))
    return points[0].count


def track_through(
    served: InProcess, script: list[Step], waits: Waits, **options: object
) -> tuple[TrackResult, ScriptedAsync, int]:
    transport = ScriptedAsync(served.transport(), script)

    async def scenario() -> tuple[TrackResult, int]:
        async with client(served, transport, waits, **options) as c:
            result = await c.track(events=TEN_EVENTS)
        return result, await count(served)

    result, counted = run(scenario())
    return result, transport, counted


def test_scripted_faults_waits_and_one_count(served: InProcess) -> None:
    waits = Waits()
    script: list[Step] = [503, 503, "connect", "timeout", (429, {"Retry-After": "7"})]
    result, transport, counted = track_through(served, script, waits)

    assert result.events_processed == 10
    assert result.requests == 1
    assert len(transport.requests) == 6
    assert len({r.headers["idempotency-key"] for r in transport.requests}) == 1
    expected = random.Random(SEED)
    jitter = [expected.uniform(0, 0.5 * 2**n) for n in range(4)]
    assert waits.seconds == [*jitter, 7.0]
    assert all(0 <= w <= 0.5 * 2**n for n, w in enumerate(waits.seconds[:4]))
    assert counted == 10  # the faults all came before the app saw the request


def test_answer_lost_after_commit_is_counted_once(served: InProcess) -> None:
    waits = Waits()
    # The app commits the first request; its answer is lost; the retry carries the same
    # Idempotency-Key and must be answered from the first without counting again.
    result, transport, counted = track_through(served, ["drop"], waits)
    assert len(transport.requests) == 2
    assert len({r.headers["idempotency-key"] for r in transport.requests}) == 1
    assert result.events_processed == 10
    assert counted == 10


def test_answer_lost_without_idempotency_counts_twice(served: InProcess) -> None:
    # The control for the test above: it shows the "drop" fault really comes after the
    # app committed, and why the key matters.
    waits = Waits()
    result, transport, counted = track_through(served, ["drop"], waits, idempotency=False)
    assert result.events_processed == 10
    assert len(transport.requests) == 2
    assert all("idempotency-key" not in r.headers for r in transport.requests)
    assert counted == 20


def test_429_waits_until_reset_by_the_clock(served: InProcess) -> None:
    waits = Waits()
    script: list[Step] = [
        (429, {"X-RateLimit-Reset": "1000", "X-RateLimit-Remaining": "0"}),
        (429, {"Retry-After": "Thu, 01 Jan 1970 00:16:50 GMT"}),  # 1010 as an HTTP date
        (429, {"X-RateLimit-Reset": "900"}),  # already past: no wait
        (429, {}),  # neither header: backoff
    ]
    result, _, counted = track_through(served, script, waits, clock=lambda: 990.25)
    assert result.events_processed == counted == 10
    assert waits.seconds[:3] == [9.75, 19.75, 0.0]
    assert waits.seconds[3] == random.Random(SEED).uniform(0, 0.5 * 2**3)


def test_backoff_is_capped_by_max_backoff(served: InProcess) -> None:
    waits = Waits()
    script: list[Step] = [500, 502, 503, 504, 503]
    result, _, _ = track_through(served, script, waits, backoff=0.25, max_backoff=1.0)
    assert result.events_processed == 10
    expected = random.Random(SEED)
    assert waits.seconds == [expected.uniform(0, min(1.0, 0.25 * 2**n)) for n in range(5)]


def test_409_is_retried_with_the_same_key(served: InProcess) -> None:
    waits = Waits()
    result, transport, counted = track_through(served, [409, 409], waits)
    assert result.events_processed == counted == 10
    assert len(waits.seconds) == 2
    assert len({r.headers["idempotency-key"] for r in transport.requests}) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, APIError),
        (413, ValidationError),
        (415, ValidationError),
        (422, ValidationError),
    ],
)
def test_client_errors_are_never_retried(
    served: InProcess, status: int, error: type[APIError]
) -> None:
    waits = Waits()
    transport = ScriptedAsync(served.transport(), [status, status])

    async def scenario() -> None:
        async with client(served, transport, waits) as c:
            with pytest.raises(error) as raised:
                await c.track(events=TEN_EVENTS)
            assert type(raised.value) is error
            assert raised.value.status == status
            with pytest.raises(error):
                await c.data_series("retried", 1)

    run(scenario())
    assert waits.seconds == []
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (503, ServerError),
        (500, ServerError),
        ((429, {"Retry-After": "2", "X-RateLimit-Reset": "1700000000"}), RateLimitedError),
        (409, ConflictError),
        ("connect", TransportError),
        ("timeout", TransportError),
        ("drop", TransportError),
    ],
)
def test_exhausted_retries_raise_the_typed_error(
    served: InProcess, step: Step, error: type[Exception]
) -> None:
    waits = Waits()
    transport = ScriptedAsync(served.transport(), [step] * 4)

    async def scenario() -> None:
        async with client(served, transport, waits, max_retries=3) as c:
            with pytest.raises(error) as raised:
                await c.data_series("retried", 1)
            exc = raised.value
            if isinstance(exc, RateLimitedError):
                assert (exc.retry_after, exc.reset) == (2.0, 1700000000)
                assert exc.message == "Rate limit exceeded"
            if isinstance(exc, TransportError):
                assert isinstance(exc.__cause__, httpx.TransportError)
                assert str(exc).startswith("GET /events/data_series: ")

    run(scenario())
    assert len(transport.requests) == 4
    assert len(waits.seconds) == 3


def test_transport_errors_that_cannot_help_are_not_retried(served: InProcess) -> None:
    class Broken(httpx.AsyncBaseTransport):
        calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            Broken.calls += 1
            raise httpx.UnsupportedProtocol("no", request=request)

    waits = Waits()

    async def scenario() -> None:
        async with AsyncClient(BASE_URL, served.key, transport=Broken(), sleep=waits.asleep) as c:
            with pytest.raises(TransportError) as raised:
                await c.data_series("x", 1)
            assert isinstance(raised.value.__cause__, httpx.UnsupportedProtocol)

    run(scenario())
    assert Broken.calls == 1
    assert waits.seconds == []


def test_key_never_in_messages_even_when_echoed(served: InProcess) -> None:
    waits = Waits()

    class Echo(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            secret = request.headers["authorization"].removeprefix("Bearer ")
            if request.url.path == "/events":
                raise httpx.ConnectError(f"could not reach {secret}", request=request)
            return httpx.Response(401, json={"message": f"Invalid API key: {secret}"})

    async def scenario() -> None:
        async with AsyncClient(
            BASE_URL, served.key, transport=Echo(), sleep=waits.asleep, max_retries=1
        ) as c:
            with pytest.raises(AuthenticationError) as raised:
                await c.data_series("x", 1)
            assert served.key not in str(raised.value)
            assert served.key not in raised.value.message
            with pytest.raises(TransportError) as dropped:
                [e async for e in c.events()]
            assert served.key not in str(dropped.value)
            assert served.key not in repr(c)

    run(scenario())
