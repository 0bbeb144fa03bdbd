"""A Braze-compatible REST client, for eventtally or for Braze itself.

    from eventtally import Client

    with Client("http://127.0.0.1:8080", api_key) as client:
        result = client.track(events=[
            {"external_id": "u1", "name": "signup", "time": "2026-01-05T10:00:00Z"},
        ])
        for point in client.data_series("signup", length=7):
            print(point.time, point.count)

`AsyncClient` has the same methods as coroutines (`list_events()` and `events()` are
async iterators). Only Braze's documented paths and shapes are used: `POST /users/track`,
`GET /events/data_series`, `GET /events/list` and `GET /events`. The one extension is the
`Idempotency-Key` header on `POST /users/track` (eventtally's contract 8.24); Braze
ignores it, and `idempotency=False` leaves it out.

Errors form one tree; no httpx exception escapes the client. Arguments that are wrong
on their face (a naive datetime, say) raise `ValueError` or `TypeError` before anything
is sent.

    EventtallyClientError           anything the client raises about a request
    ├── APIError                    a non-2xx answer: .status, .message, .errors
    │   ├── AuthenticationError         401: no key, or an unknown or revoked one
    │   ├── PermissionDeniedError       403: the key lacks the endpoint's permission
    │   ├── ValidationError             400, 413, 415, 422: the request broke a rule
    │   ├── ConflictError               409: the Idempotency-Key's first use is in flight
    │   ├── RateLimitedError            429: .retry_after, .reset
    │   └── ServerError                 5xx
    └── TransportError              no answer: connection refused or dropped, timeout

Retries: a 5xx, 429 or 409 answer, a timeout, and a connection that failed or dropped
are retried up to `max_retries` times. The wait before retry n (from 0) is
`rng.uniform(0, min(max_backoff, backoff * 2**n))` (exponential backoff, full jitter),
unless the answer says how long: its `Retry-After` (seconds or an HTTP date, on any
retried answer), or for a 429 without one the time until `X-RateLimit-Reset` (epoch
seconds, against `clock()`). 400, 401, 403, 413,
415 and 422 are never retried. When the retries are used up, the last error is raised.

A retried `POST /users/track` carries the same `Idempotency-Key`, so a server that
implements the key (eventtally) applies it once even when the first answer was lost.
Without the key (`idempotency=False`, or a server that ignores it), a retry after a lost
answer may count the same items twice.

The API key is sent only to `base_url`'s origin and never appears in a repr or in an
exception's message.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from itertools import islice
from types import TracebackType
from typing import Any, Final, NamedTuple, Protocol, Self

import httpx

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "CatalogueEvent",
    "Client",
    "ConflictError",
    "EventtallyClientError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Segment",
    "SegmentDetails",
    "SeriesPoint",
    "ServerError",
    "SizePoint",
    "TrackError",
    "TrackResult",
    "TransportError",
    "ValidationError",
]

MAX_ITEMS_PER_ARRAY: Final = 75
"""Braze's limit: at most 75 items in each array of one `POST /users/track`."""

EVENT_NAMES_PER_PAGE: Final = 250
"""`GET /events/list` pages hold 250 names; a shorter page is the last."""

_ARRAYS: Final = ("attributes", "events", "purchases")
_TRACK: Final = "/users/track"
_SERIES: Final = "/events/data_series"
_EVENT_NAMES: Final = "/events/list"
_CATALOGUE: Final = "/events"
_SEGMENTS: Final = "/segments/list"
_SEGMENT_DETAILS: Final = "/segments/details"
_SEGMENT_SERIES: Final = "/segments/data_series"
SEGMENTS_PER_PAGE: Final = 100
"""`GET /segments/list` pages hold 100 segments; a shorter page is the last."""
_USER_AGENT: Final = "eventtally-client"
_REDACTED: Final = "<api key>"


# Errors ---------------------------------------------------------------------------------
class EventtallyClientError(Exception):
    """Base of every error the client raises about a request.

    Example::

        try:
            client.track(events=events)
        except EventtallyClientError as exc:
            log.warning("events not sent: %s", exc)
    """


class APIError(EventtallyClientError):
    """The server answered with a status other than 2xx.

    `status` is the HTTP status, `message` the body's `message` (or a short excerpt of a
    body that is not JSON), `errors` the body's `errors` array (only `/users/track` sends
    one). Statuses without a subclass (404, 405, 3xx) raise this class itself.

    Example::

        except APIError as exc:
            print(exc.status, exc.message, exc.errors)
    """

    def __init__(
        self, status: int, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status}: {message}" if message else f"{status}")
        self.status = status
        self.message = message
        self.errors: list[dict[str, Any]] = list(errors or [])


class AuthenticationError(APIError):
    """401: no API key, or one the server does not know (or wrong instance, on Braze).

    Example::

        except AuthenticationError:
            sys.exit("check EVENTTALLY_API_KEY")
    """


class PermissionDeniedError(APIError):
    """403: the key lacks the endpoint's permission, or may not be used from here.

    Example::

        except PermissionDeniedError as exc:
            print(exc.message)  # this API key lacks the 'events.data_series' permission
    """


class ValidationError(APIError):
    """400, 413, 415 or 422: the request broke a rule; `message` is the server's reason.

    Never retried: sending the same request again gives the same answer. A 422 on
    `/users/track` means an `Idempotency-Key` was reused with another body (a bug).

    Example::

        except ValidationError as exc:
            print(exc.message)  # length must be between 1 and 100, not 0
    """


class ConflictError(APIError):
    """409: a request with the same `Idempotency-Key` is still being processed.

    Retried with backoff; raised only when the retries are used up.

    Example::

        except ConflictError:
            ...  # the first attempt may still succeed; do not send the items again
    """


class RateLimitedError(APIError):
    """429: over the rate limit, after the retries were used up.

    `retry_after` is the `Retry-After` header in seconds (None without one); `reset` is
    `X-RateLimit-Reset`, the window's end in epoch seconds (None without one).

    Example::

        except RateLimitedError as exc:
            time.sleep(exc.retry_after or 60)
    """

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        retry_after: float | None = None,
        reset: int | None = None,
    ) -> None:
        super().__init__(status, message, errors)
        self.retry_after = retry_after
        self.reset = reset


class ServerError(APIError):
    """5xx: the server failed (eventtally's 503: it cannot write now), after the retries.

    Example::

        except ServerError as exc:
            print(exc.status)  # 503
    """


class TransportError(EventtallyClientError):
    """No answer: the connection failed or dropped, or the request timed out.

    The httpx exception is the `__cause__`.

    Example::

        except TransportError as exc:
            print(exc, type(exc.__cause__).__name__)  # ... ConnectError
    """


# Results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackError:
    """One item `/users/track` refused: Braze's `type` sentence, the array, its position.

    `index` is the position in the whole array passed to `track()`, not in the request
    the item travelled in (-1 if the server gave none).

    Example::

        TrackError(type="'app_id' is not a known app", input_array="events", index=812)
    """

    type: str
    input_array: str
    index: int


@dataclass
class TrackResult:
    """What `track()` achieved: the server's `*_processed` counts summed over requests,
    the refused items, and the number of requests the items were split into (retries
    not counted).

    Example::

        result = client.track(events=events)
        assert result.events_processed + len(result.errors) == len(events)
    """

    attributes_processed: int = 0
    events_processed: int = 0
    purchases_processed: int = 0
    errors: list[TrackError] = field(default_factory=list)
    requests: int = 0


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of `data_series`: a `date` for day points, a timezone-aware `datetime`
    (the bucket's first instant, in the server's reporting zone) for hour points.

    Example::

        SeriesPoint(time=date(2026, 1, 5), count=12)
    """

    time: datetime | date
    count: int


@dataclass(frozen=True)
class CatalogueEvent:
    """One entry of the `GET /events` catalogue.

    Example::

        CatalogueEvent(name="signup", description=None, included_in_analytics_report=False,
                       status="Active", tag_names=("onboarding",))
    """

    name: str
    description: str | None
    included_in_analytics_report: bool
    status: str
    tag_names: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """One entry of `GET /segments/list`.

    Example::

        Segment(id="5c5e...", name="Pro users", analytics_tracking_enabled=True, tags=())
    """

    id: str
    name: str
    analytics_tracking_enabled: bool
    tags: tuple[str, ...]


@dataclass(frozen=True)
class SegmentDetails:
    """`GET /segments/details`: `description` is the filter in words, `text_description`
    what the operator wrote.

    Example::

        details = client.segment_details(segment_id)
        print(details.name, details.description)
    """

    name: str
    description: str | None
    text_description: str | None
    tags: tuple[str, ...]
    teams: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SizePoint:
    """One day of `segment_data_series`: the segment's size at the end of that day.

    Example::

        SizePoint(time=date(2026, 1, 5), size=120)
    """

    time: date
    size: int


# The part shared by both clients: no I/O ---------------------------------------------------
class _Chunk(NamedTuple):
    body: bytes
    offsets: dict[str, int]  # where each array of this request starts in the caller's array
    items: int


class _Outcome(NamedTuple):
    processed: dict[str, int]
    errors: list[TrackError]
    items: int


class _Failure(NamedTuple):
    error: EventtallyClientError
    cause: BaseException | None
    retry: bool


class _HasResult(Protocol):
    def result(self) -> _Outcome: ...


_STATUS_ERRORS: Final[dict[int, type[APIError]]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    409: ConflictError,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
}
_RETRY_STATUSES: Final = frozenset({409, 429})
_RETRY_TRANSPORT: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Core:
    """Configuration, requests and answers; the clients add only sending and waiting."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        concurrency: int,
        idempotency: bool,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        try:
            url = httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ValueError(f"base_url is not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if not api_key or not api_key.isascii() or not api_key.isprintable():
            raise ValueError("api_key must be a non-empty string of printable ASCII")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, not {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {max_retries}")
        if not backoff >= 0 or not max_backoff >= 0:
            raise ValueError("backoff and max_backoff must be >= 0")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        self.base_url = url
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.concurrency = concurrency
        self.idempotency = idempotency
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.limits = httpx.Limits(
            max_connections=max(100, concurrency), max_keepalive_connections=max(20, concurrency)
        )
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, _REDACTED)

    # Sending ----------------------------------------------------------------------------
    @staticmethod
    def request_headers(has_body: bool, idempotency_key: str | None) -> dict[str, str]:
        headers = {}
        if has_body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def new_idempotency_key(self) -> str | None:
        return str(uuid.uuid4()) if self.idempotency else None

    def transport_failure(self, method: str, url: str | httpx.URL, exc: Exception) -> _Failure:
        path = url.path if isinstance(url, httpx.URL) else url
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = self.redact(f"{method} {path}: {detail}")
        return _Failure(TransportError(message), exc, isinstance(exc, _RETRY_TRANSPORT))

    def api_failure(self, response: httpx.Response) -> _Failure:
        status = response.status_code
        message, errors = _error_body(response)
        message = self.redact(message)
        error: APIError
        if status == 429:
            error = RateLimitedError(
                status,
                message,
                errors,
                retry_after=_retry_after(response, self.clock),
                reset=_rate_limit_reset(response),
            )
        elif 500 <= status <= 599:
            error = ServerError(status, message, errors)
        else:
            error = _STATUS_ERRORS.get(status, APIError)(status, message, errors)
        retry = status in _RETRY_STATUSES or 500 <= status <= 599
        return _Failure(error, None, retry)

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait before retry `attempt` (0 for the first retry)."""
        if response is not None:
            retry_after = _retry_after(response, self.clock)
            if retry_after is not None:
                return retry_after
            if response.status_code == 429:
                reset = _rate_limit_reset(response)
                if reset is not None:
                    return max(0.0, reset - self.clock())
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** min(attempt, 64))
        return self.rng.uniform(0.0, ceiling)

    # /users/track -----------------------------------------------------------------------
    def accepted(self, chunk: _Chunk, response: httpx.Response) -> _Outcome:
        """A 2xx: the counts the server reported (none, for a body without them)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        processed = {name: _integer(body.get(f"{name}_processed")) for name in _ARRAYS}
        return _Outcome(processed, _track_errors(body.get("errors"), chunk.offsets), chunk.items)

    @staticmethod
    def rejected(chunk: _Chunk, exc: ValidationError) -> _Outcome | None:
        """A 400 listing item errors (nothing in the request was valid) is a result."""
        if exc.status != 400 or not exc.errors:
            return None
        return _Outcome(
            dict.fromkeys(_ARRAYS, 0), _track_errors(exc.errors, chunk.offsets), chunk.items
        )

    # GET endpoints ----------------------------------------------------------------------
    @staticmethod
    def series_params(
        event: str,
        length: int,
        unit: str,
        ending_at: str | datetime | date | None,
        app_id: str | None,
        segment_id: str | None,
    ) -> dict[str, str]:
        params = {"event": event, "length": str(length), "unit": unit}
        if ending_at is not None:
            params["ending_at"] = _ending_at_text(ending_at)
        if app_id is not None:
            params["app_id"] = app_id
        if segment_id is not None:
            params["segment_id"] = segment_id
        return params

    @staticmethod
    def series(response: httpx.Response) -> list[SeriesPoint]:
        data = _json_object(response).get("data")
        if not isinstance(data, list):
            raise _unexpected(response, "no 'data' array")
        points = []
        for raw in data:
            label = raw.get("time") if isinstance(raw, dict) else None
            count = raw.get("count") if isinstance(raw, dict) else None
            if not isinstance(label, str) or not isinstance(count, int) or isinstance(count, bool):
                raise _unexpected(response, f"a point is not {{time, count}}: {raw!r:.80}")
            try:
                point_time = _parse_time(label)
            except ValueError:
                raise _unexpected(response, f"time {label!r:.60} is not ISO 8601") from None
            points.append(SeriesPoint(point_time, count))
        return points

    @staticmethod
    def names(response: httpx.Response) -> list[str]:
        events = _json_object(response).get("events")
        if not isinstance(events, list) or not all(isinstance(n, str) for n in events):
            raise _unexpected(response, "no 'events' array of names")
        return events

    @staticmethod
    def catalogue(response: httpx.Response) -> list[CatalogueEvent]:
        events = _json_object(response).get("events")
        if not isinstance(events, list):
            raise _unexpected(response, "no 'events' array")
        entries = []
        for raw in events:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise _unexpected(response, f"a catalogue entry has no name: {raw!r:.80}")
            description = raw.get("description")
            included = raw.get("included_in_analytics_report")
            status = raw.get("status")
            tags = raw.get("tag_names")
            entries.append(
                CatalogueEvent(
                    name=raw["name"],
                    description=description if isinstance(description, str) else None,
                    included_in_analytics_report=included if isinstance(included, bool) else False,
                    status=status if isinstance(status, str) else "",
                    tag_names=tuple(t for t in tags if isinstance(t, str))
                    if isinstance(tags, list)
                    else (),
                )
            )
        return entries

    @staticmethod
    def segments(response: httpx.Response) -> list[Segment]:
        raw = _json_object(response).get("segments")
        if not isinstance(raw, list):
            raise _unexpected(response, "no 'segments' array")
        found = []
        for entry in raw:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise _unexpected(response, f"a segment has no id: {entry!r:.80}")
            tags = entry.get("tags")
            found.append(
                Segment(
                    id=entry["id"],
                    name=str(entry.get("name", "")),
                    analytics_tracking_enabled=entry.get("analytics_tracking_enabled") is True,
                    tags=tuple(t for t in tags if isinstance(t, str))
                    if isinstance(tags, list)
                    else (),
                )
            )
        return found

    @staticmethod
    def segment_details(response: httpx.Response) -> SegmentDetails:
        raw = _json_object(response)

        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) else None

        def names(key: str) -> tuple[str, ...]:
            value = raw.get(key)
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

        try:
            created = datetime.fromisoformat(str(raw.get("created_at")))
            updated = datetime.fromisoformat(str(raw.get("updated_at")))
        except ValueError:
            raise _unexpected(response, "created_at/updated_at are not ISO 8601") from None
        return SegmentDetails(
            name=text("name") or "",
            description=text("description"),
            text_description=text("text_description"),
            tags=names("tags"),
            teams=names("teams"),
            created_at=created,
            updated_at=updated,
        )

    @staticmethod
    def sizes(response: httpx.Response) -> list[SizePoint]:
        data = _json_object(response).get("data")
        if not isinstance(data, list):
            raise _unexpected(response, "no 'data' array")
        points = []
        for raw in data:
            label = raw.get("time") if isinstance(raw, dict) else None
            size = raw.get("size") if isinstance(raw, dict) else None
            if not isinstance(label, str) or not isinstance(size, int) or isinstance(size, bool):
                raise _unexpected(response, f"a point is not {{time, size}}: {raw!r:.80}")
            try:
                points.append(SizePoint(date.fromisoformat(label), size))
            except ValueError:
                raise _unexpected(response, f"time {label!r:.60} is not a date") from None
        return points

    @staticmethod
    def sizes_params(
        segment_id: str, length: int, ending_at: str | datetime | date | None
    ) -> dict[str, str]:
        params = {"segment_id": segment_id, "length": str(length)}
        if ending_at is not None:
            params["ending_at"] = _ending_at_text(ending_at)
        return params

    def next_page(self, response: httpx.Response, seen: set[str]) -> httpx.URL | None:
        """The `Link` header's rel="next", resolved against the page's URL (RFC 3986)."""
        link = response.links.get("next")
        if not link or not link.get("url"):
            return None
        try:
            target = response.url.join(link["url"])
        except httpx.InvalidURL:
            raise _unexpected(response, "the next-page link is not a URL") from None
        if (target.scheme, target.host, target.port) != (
            self.base_url.scheme,
            self.base_url.host,
            self.base_url.port,
        ):
            # Following it would send the API key to another server.
            raise EventtallyClientError(
                f"the next-page link leads to another origin ({target.scheme}://{target.host});"
                " not following it"
            )
        if str(target) in seen:
            raise EventtallyClientError("the next-page link leads back to a page already read")
        seen.add(str(target))
        return target


class _Tally:
    """Sums the requests' outcomes; `on_progress` is called in the caller's thread/task."""

    def __init__(self, on_progress: Callable[[int], None] | None) -> None:
        self.result = TrackResult()
        self.on_progress = on_progress

    def settle(
        self, done: Iterable[_HasResult], failure: BaseException | None
    ) -> BaseException | None:
        """Add the finished requests; return the first failure seen (kept, not raised)."""
        for request in done:
            try:
                self.add(request.result())
            except Exception as exc:
                failure = failure or exc
        return failure

    def add(self, outcome: _Outcome) -> None:
        result = self.result
        result.attributes_processed += outcome.processed["attributes"]
        result.events_processed += outcome.processed["events"]
        result.purchases_processed += outcome.processed["purchases"]
        result.errors.extend(outcome.errors)
        result.requests += 1
        if self.on_progress is not None:
            self.on_progress(outcome.items)

    def finish(self) -> TrackResult:
        order = {name: i for i, name in enumerate(_ARRAYS)}
        self.result.errors.sort(key=lambda e: (order.get(e.input_array, len(order)), e.index))
        return self.result


def _chunks(
    attributes: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    purchases: Iterable[Mapping[str, Any]],
) -> Iterator[_Chunk]:
    """Request bodies of at most 75 items of each array, read lazily from the iterables."""
    sources = {"attributes": iter(attributes), "events": iter(events), "purchases": iter(purchases)}
    offsets = dict.fromkeys(_ARRAYS, 0)
    while True:
        body: dict[str, list[Mapping[str, Any]]] = {}
        for name, source in sources.items():
            batch = list(islice(source, MAX_ITEMS_PER_ARRAY))
            if batch:
                body[name] = batch
        if not body:
            return
        yield _Chunk(_encode(body), dict(offsets), sum(len(b) for b in body.values()))
        for name, batch in body.items():
            offsets[name] += len(batch)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"datetime {value.isoformat()} has no time zone; give it one")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"an item holds a {type(value).__name__}, which is not JSON")


def _encode(body: object) -> bytes:
    text = json.dumps(
        body, default=_json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    )
    return text.encode()


def _track_errors(raw: object, offsets: Mapping[str, int]) -> list[TrackError]:
    if not isinstance(raw, list):
        return []
    errors = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        array = item.get("input_array")
        array = array if isinstance(array, str) else ""
        index = item.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            index += offsets.get(array, 0)
        else:
            index = -1
        errors.append(TrackError(str(item.get("type", "")), array, index))
    return errors


def _integer(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ending_at_text(value: str | datetime | date) -> str:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"ending_at {value.isoformat()} has no time zone; give it one")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"ending_at must be a str, datetime or date, not {type(value).__name__}")


def _parse_time(label: str) -> datetime | date:
    """`YYYY-MM-DD` is a date; anything with a time part a datetime (UTC if it has no offset)."""
    if "T" not in label and " " not in label and ":" not in label:
        return date.fromisoformat(label)
    instant = datetime.fromisoformat(label)
    if instant.utcoffset() is None:
        instant = instant.replace(tzinfo=UTC)
    return instant


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise _unexpected(response, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _unexpected(response, "the body is not a JSON object")
    return body


def _unexpected(response: httpx.Response, what: str) -> APIError:
    return APIError(response.status_code, f"unexpected answer from {response.url.path}: {what}")


def _error_body(response: httpx.Response) -> tuple[str, list[dict[str, Any]]]:
    try:
        body = response.json()
    except ValueError:  # not JSON (an edge proxy's HTML page, say), or not UTF-8
        text = " ".join(response.text.split())[:200]
        return text or response.reason_phrase, []
    if not isinstance(body, dict):
        return " ".join(str(body).split())[:200], []
    message = body.get("message")
    errors = body.get("errors")
    return (
        message if isinstance(message, str) and message else response.reason_phrase,
        [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
    )


def _retry_after(response: httpx.Response, clock: Callable[[], float]) -> float | None:
    """`Retry-After` in seconds: a number, or an HTTP date compared with `clock()`."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.utcoffset() is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - clock()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _rate_limit_reset(response: httpx.Response) -> int | None:
    value = response.headers.get("x-ratelimit-reset", "").strip()
    try:
        return int(value)
    except ValueError:
        return None


# The clients --------------------------------------------------------------------------------
class Client:
    """A Braze-compatible client (threads for concurrent `track` requests).

    Example::

        with Client("http://127.0.0.1:8080", api_key, concurrency=8) as client:
            result = client.track(events=events, on_progress=bar.advance)
            series = client.data_series("signup", length=24, unit="hour")
            names = list(client.list_events())

    `transport` replaces httpx's (tests, proxies); `sleep`, `clock` and `rng` replace
    the waits, the time and the jitter (tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 4,
        idempotency: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            concurrency=concurrency,
            idempotency=idempotency,
            clock=clock,
            rng=rng,
        )
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self._core.base_url,
            headers=self._core.headers,
            timeout=self._core.timeout,
            limits=self._core.limits,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return str(self._core.base_url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        core = self._core
        headers = core.request_headers(content is not None, idempotency_key)
        attempt = 0
        while True:
            response = None
            try:
                response = self._http.request(
                    method, url, params=params, content=content, headers=headers
                )
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                failure = core.transport_failure(method, url, exc)
            else:
                if response.is_success:
                    return response
                failure = core.api_failure(response)
            if not failure.retry or attempt >= core.max_retries:
                raise failure.error from failure.cause
            self._sleep(core.delay(attempt, response))
            attempt += 1

    def _send_chunk(self, chunk: _Chunk) -> _Outcome:
        key = self._core.new_idempotency_key()
        try:
            response = self._send("POST", _TRACK, content=chunk.body, idempotency_key=key)
        except ValidationError as exc:
            outcome = self._core.rejected(chunk, exc)
            if outcome is None:
                raise
            return outcome
        return self._core.accepted(chunk, response)

    def track(
        self,
        *,
        attributes: Iterable[Mapping[str, Any]] = (),
        events: Iterable[Mapping[str, Any]] = (),
        purchases: Iterable[Mapping[str, Any]] = (),
        on_progress: Callable[[int], None] | None = None,
    ) -> TrackResult:
        """Send any number of items in requests of at most 75 of each array.

        Up to `concurrency` requests are in flight at once, so requests may be applied in
        any order: send attributes that events depend on (a new `user_alias`) in an earlier
        call. `on_progress(n)` is called in this thread with the number of items each
        finished request carried. Items refused one by one are in the result's `errors`,
        not raised. If a request fails, no more are started, those in flight finish (and
        are reported to `on_progress`), and the first error is raised. Nothing is sent
        for no items.

        Example::

            result = client.track(
                attributes=[{"external_id": "u1", "plan": "pro"}],
                events=({"external_id": "u1", "name": "open", "time": t} for t in times),
            )
        """
        tally = _Tally(on_progress)
        chunks = _chunks(attributes, events, purchases)
        limit = self._core.concurrency
        if limit == 1:
            for chunk in chunks:
                tally.add(self._send_chunk(chunk))
            return tally.finish()
        failure: BaseException | None = None
        with ThreadPoolExecutor(limit, thread_name_prefix="eventtally-track") as pool:
            in_flight: set[Future[_Outcome]] = set()
            try:
                for chunk in chunks:
                    while len(in_flight) >= limit and failure is None:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        failure = tally.settle(done, failure)
                    if failure is not None:
                        break
                    in_flight.add(pool.submit(self._send_chunk, chunk))
            except BaseException as exc:  # a bad item, or KeyboardInterrupt: finish first
                failure = failure or exc
            while in_flight:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                failure = tally.settle(done, failure)
        if failure is not None:
            raise failure
        return tally.finish()

    def data_series(
        self,
        event: str,
        length: int,
        unit: str = "day",
        ending_at: str | datetime | date | None = None,
        app_id: str | None = None,
        segment_id: str | None = None,
    ) -> list[SeriesPoint]:
        """`GET /events/data_series`: `length` counts of `event` ending before `ending_at`.

        A datetime `ending_at` must be timezone-aware; a date means that date's start in
        the server's reporting zone; a string is sent as it is.

        Example::

            points = client.data_series("signup", 24, unit="hour",
                                        ending_at=datetime(2026, 1, 6, tzinfo=UTC))
        """
        params = self._core.series_params(event, length, unit, ending_at, app_id, segment_id)
        return self._core.series(self._send("GET", _SERIES, params=params))

    def list_events(self) -> Iterator[str]:
        """Every custom event name (`GET /events/list`), page by page from page 0.

        Example::

            names = sorted(client.list_events())
        """
        page = 0
        while True:
            names = self._core.names(self._send("GET", _EVENT_NAMES, params={"page": str(page)}))
            yield from names
            if len(names) < EVENT_NAMES_PER_PAGE:
                return
            page += 1

    def events(self) -> Iterator[CatalogueEvent]:
        """The event catalogue (`GET /events`), following the `Link` header's next page.

        Example::

            blocked = [e.name for e in client.events() if e.status == "Blocklisted"]
        """
        url: str | httpx.URL | None = _CATALOGUE
        seen: set[str] = set()
        while url is not None:
            response = self._send("GET", url)
            yield from self._core.catalogue(response)
            url = self._core.next_page(response, seen)

    def list_segments(self, sort_direction: str = "asc") -> Iterator[Segment]:
        """Every live segment (`GET /segments/list`), oldest first (or newest: "desc").

        Example::

            tracked = [s.id for s in client.list_segments() if s.analytics_tracking_enabled]
        """
        page = 0
        while True:
            params = {"page": str(page), "sort_direction": sort_direction}
            found = self._core.segments(self._send("GET", _SEGMENTS, params=params))
            yield from found
            if len(found) < SEGMENTS_PER_PAGE:
                return
            page += 1

    def segment_details(self, segment_id: str) -> SegmentDetails:
        """`GET /segments/details`.

        Example::

            print(client.segment_details(segment_id).description)
        """
        response = self._send("GET", _SEGMENT_DETAILS, params={"segment_id": segment_id})
        return self._core.segment_details(response)

    def segment_data_series(
        self, segment_id: str, length: int, ending_at: str | datetime | date | None = None
    ) -> list[SizePoint]:
        """`GET /segments/data_series`: the segment's size at the end of each day.

        Example::

            sizes = client.segment_data_series(segment_id, 30)
        """
        params = self._core.sizes_params(segment_id, length, ending_at)
        return self._core.sizes(self._send("GET", _SEGMENT_SERIES, params=params))


class AsyncClient:
    """The asyncio twin of `Client` (asyncio tasks for concurrent `track` requests).

    Example::

        async with AsyncClient("http://127.0.0.1:8080", api_key) as client:
            result = await client.track(events=events)
            points = await client.data_series("signup", length=7)
            names = [name async for name in client.list_events()]
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 4,
        idempotency: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            concurrency=concurrency,
            idempotency=idempotency,
            clock=clock,
            rng=rng,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url,
            headers=self._core.headers,
            timeout=self._core.timeout,
            limits=self._core.limits,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return str(self._core.base_url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        core = self._core
        headers = core.request_headers(content is not None, idempotency_key)
        attempt = 0
        while True:
            response = None
            try:
                response = await self._http.request(
                    method, url, params=params, content=content, headers=headers
                )
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                failure = core.transport_failure(method, url, exc)
            else:
                if response.is_success:
                    return response
                failure = core.api_failure(response)
            if not failure.retry or attempt >= core.max_retries:
                raise failure.error from failure.cause
            await self._sleep(core.delay(attempt, response))
            attempt += 1

    async def _send_chunk(self, chunk: _Chunk) -> _Outcome:
        key = self._core.new_idempotency_key()
        try:
            response = await self._send("POST", _TRACK, content=chunk.body, idempotency_key=key)
        except ValidationError as exc:
            outcome = self._core.rejected(chunk, exc)
            if outcome is None:
                raise
            return outcome
        return self._core.accepted(chunk, response)

    async def track(
        self,
        *,
        attributes: Iterable[Mapping[str, Any]] = (),
        events: Iterable[Mapping[str, Any]] = (),
        purchases: Iterable[Mapping[str, Any]] = (),
        on_progress: Callable[[int], None] | None = None,
    ) -> TrackResult:
        """Send any number of items in requests of at most 75 of each array.

        As `Client.track`, with up to `concurrency` requests as asyncio tasks. If this
        coroutine is cancelled, the requests in flight are cancelled too.

        Example::

            result = await client.track(events=events, on_progress=print)
        """
        tally = _Tally(on_progress)
        limit = self._core.concurrency
        failure: BaseException | None = None
        in_flight: set[asyncio.Task[_Outcome]] = set()
        try:
            try:
                for chunk in _chunks(attributes, events, purchases):
                    while len(in_flight) >= limit and failure is None:
                        done, in_flight = await asyncio.wait(
                            in_flight, return_when=asyncio.FIRST_COMPLETED
                        )
                        failure = tally.settle(done, failure)
                    if failure is not None:
                        break
                    in_flight.add(asyncio.create_task(self._send_chunk(chunk)))
            except Exception as exc:  # a bad item: let the requests in flight finish first
                failure = failure or exc
            while in_flight:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                failure = tally.settle(done, failure)
        finally:
            if in_flight:  # cancelled: take the requests in flight with us
                for task in in_flight:
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)
        if failure is not None:
            raise failure
        return tally.finish()

    async def data_series(
        self,
        event: str,
        length: int,
        unit: str = "day",
        ending_at: str | datetime | date | None = None,
        app_id: str | None = None,
        segment_id: str | None = None,
    ) -> list[SeriesPoint]:
        """`GET /events/data_series`, as `Client.data_series`.

        Example::

            points = await client.data_series("signup", 7, ending_at=date(2026, 1, 6))
        """
        params = self._core.series_params(event, length, unit, ending_at, app_id, segment_id)
        return self._core.series(await self._send("GET", _SERIES, params=params))

    async def list_events(self) -> AsyncIterator[str]:
        """Every custom event name (`GET /events/list`), page by page from page 0.

        Example::

            names = [name async for name in client.list_events()]
        """
        page = 0
        while True:
            response = await self._send("GET", _EVENT_NAMES, params={"page": str(page)})
            names = self._core.names(response)
            for name in names:
                yield name
            if len(names) < EVENT_NAMES_PER_PAGE:
                return
            page += 1

    async def events(self) -> AsyncIterator[CatalogueEvent]:
        """The event catalogue (`GET /events`), following the `Link` header's next page.

        Example::

            catalogue = [event async for event in client.events()]
        """
        url: str | httpx.URL | None = _CATALOGUE
        seen: set[str] = set()
        while url is not None:
            response = await self._send("GET", url)
            for entry in self._core.catalogue(response):
                yield entry
            url = self._core.next_page(response, seen)

    async def list_segments(self, sort_direction: str = "asc") -> AsyncIterator[Segment]:
        """Every live segment (`GET /segments/list`), as `Client.list_segments`.

        Example::

            segments = [s async for s in client.list_segments()]
        """
        page = 0
        while True:
            params = {"page": str(page), "sort_direction": sort_direction}
            found = self._core.segments(await self._send("GET", _SEGMENTS, params=params))
            for segment in found:
                yield segment
            if len(found) < SEGMENTS_PER_PAGE:
                return
            page += 1

    async def segment_details(self, segment_id: str) -> SegmentDetails:
        """`GET /segments/details`, as `Client.segment_details`.

        Example::

            details = await client.segment_details(segment_id)
        """
        response = await self._send("GET", _SEGMENT_DETAILS, params={"segment_id": segment_id})
        return self._core.segment_details(response)

    async def segment_data_series(
        self, segment_id: str, length: int, ending_at: str | datetime | date | None = None
    ) -> list[SizePoint]:
        """`GET /segments/data_series`, as `Client.segment_data_series`.

        Example::

            sizes = await client.segment_data_series(segment_id, 30)
        """
        params = self._core.sizes_params(segment_id, length, ending_at)
        return self._core.sizes(await self._send("GET", _SEGMENT_SERIES, params=params))
