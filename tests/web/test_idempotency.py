"""`Idempotency-Key` on POST /users/track: eventtally's extension (contract 8.24)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import pytest

from eventtally.domain.model import PERMISSIONS
from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.settings import Settings
from eventtally.store.base import new_secret
from eventtally.store.sqlite import SqliteStore
from tests.support import Api, running_api

T = TypeVar("T")

T0 = 1_710_086_400_000_000  # 2024-03-10T16:00:00Z, after every event time below
SECOND = 1_000_000
WHEN = "2024-03-10T12:00:00Z"
HEADER = "Idempotency-Key"
NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def fixed(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    settings = Settings(idempotency_retention=60)
    with running_api(tmp_path / "data", clock=clock, settings=settings) as api:
        yield api


def event(name: str = "opened", **fields: Any) -> dict[str, Any]:
    return {"external_id": "user-1", "name": name, "time": WHEN, **fields}


def post(
    api: Api, body: Any, key: str | None = "key-1", auth: dict[str, str] | None = None
) -> httpx.Response:
    headers = dict(api.auth if auth is None else auth)
    if key is not None:
        headers[HEADER] = key
    response: httpx.Response = api.client.post("/users/track", json=body, headers=headers)
    return response


def post_raw(api: Api, content: bytes, key: str = "key-1") -> httpx.Response:
    headers = {**api.auth, "Content-Type": "application/json", HEADER: key}
    response: httpx.Response = api.client.post("/users/track", content=content, headers=headers)
    return response


def count(api: Api, name: str, auth: dict[str, str] | None = None) -> int:
    response = api.client.get(
        "/events/data_series",
        params={"event": name, "length": 1, "ending_at": "2024-03-11"},
        headers=api.auth if auth is None else auth,
    )
    assert response.status_code == 200, response.text
    n: int = response.json()["data"][0]["count"]
    return n


def same_answer(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.content == first.content


def message(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message"}
    text: str = body["message"]
    return text


# --- replays ----------------------------------------------------------------------------


def test_first_response_is_replayed_byte_for_byte(fixed: Api) -> None:
    body = {
        "attributes": [{"external_id": "user-1", "plan": "pro"}],
        "events": [event(), event(app_id="no-such-app"), {"name": "orphan", "time": WHEN}],
        "purchases": [],
    }
    first = post(fixed, body)
    assert first.status_code == 201, first.text
    assert first.json()["events_processed"] == 1
    assert len(first.json()["errors"]) == 2
    for _ in range(3):
        same_answer(first, post(fixed, body))


def test_replays_change_no_counts(fixed: Api, clock: Clock) -> None:
    body = {"events": [event("viewed"), event("viewed"), event("clicked")]}
    assert post(fixed, body).json()["events_processed"] == 3
    for step in range(1, 4):
        clock.now = T0 + step * SECOND
        again = post(fixed, body)
        assert again.json() == {"message": "success", "events_processed": 3}
        assert (count(fixed, "viewed"), count(fixed, "clicked")) == (2, 1)
    # Without a key a repeat is a new request, as with Braze.
    post(fixed, body, key=None)
    assert (count(fixed, "viewed"), count(fixed, "clicked")) == (4, 2)


def test_same_body_up_to_key_order_and_whitespace_is_a_replay(fixed: Api) -> None:
    compact = b'{"events":[{"external_id":"u","name":"e","time":"2024-03-10T12:00:00Z"}]}'
    spaced = (
        b'{\n  "events" : [ {"time": "2024-03-10T12:00:00Z",\t"name": "e", "external_id": "u"} ]\n}'
    )
    first = post_raw(fixed, compact)
    assert first.status_code == 201, first.text
    same_answer(first, post_raw(fixed, spaced))
    assert count(fixed, "e") == 1


def test_same_key_with_another_body_is_a_422(fixed: Api) -> None:
    first = post(fixed, {"events": [event("a")]})
    assert first.status_code == 201, first.text
    refused = post(fixed, {"events": [event("b")]})
    assert HEADER in message(refused, 422)
    assert count(fixed, "b") == 0
    # The key still answers its own body as the first time.
    same_answer(first, post(fixed, {"events": [event("a")]}))
    assert count(fixed, "a") == 1


def test_a_nothing_valid_400_is_recorded_and_replayed(fixed: Api) -> None:
    alias = {"alias_name": "anon", "alias_label": "web"}
    body = {"events": [event("seen", user_alias=alias)]}
    del body["events"][0]["external_id"]
    first = post(fixed, body)
    assert first.status_code == 400, first.text
    assert first.json()["message"] == NOTHING_VALID
    created = post(
        fixed, {"attributes": [{"user_alias": alias, "_update_existing_only": False}]}, "k2"
    )
    assert created.status_code == 201, created.text
    # The same body would now be applied, but the key answers as it did the first time.
    same_answer(first, post(fixed, body))
    assert count(fixed, "seen") == 0
    assert post(fixed, body, key="key-3").status_code == 201
    assert count(fixed, "seen") == 1


def test_a_key_expires_after_the_retention_window(fixed: Api, clock: Clock) -> None:
    body = {"events": [event("daily")]}
    assert post(fixed, body).status_code == 201
    clock.now = T0 + 59 * SECOND
    assert post(fixed, body).status_code == 201
    assert count(fixed, "daily") == 1
    clock.now = T0 + 60 * SECOND  # idempotency_retention = 60: a new request
    assert post(fixed, body).json() == {"message": "success", "events_processed": 1}
    assert count(fixed, "daily") == 2
    clock.now = T0 + 61 * SECOND  # recorded afresh: a replay of the second
    assert post(fixed, body).status_code == 201
    assert count(fixed, "daily") == 2
    # An expired key may also carry a different body.
    clock.now = T0 + 200 * SECOND
    assert post(fixed, {"events": [event("other")]}).status_code == 201
    assert count(fixed, "other") == 1


def test_keys_are_per_workspace(fixed: Api) -> None:
    other = fixed.store.create_workspace("other", "UTC", T0)
    secret = new_secret()
    fixed.store.add_key(other.id, "all", secret, frozenset(PERMISSIONS), T0)
    other_auth = {"Authorization": f"Bearer {secret}"}
    body = {"events": [event("shared")]}
    assert post(fixed, body).status_code == 201
    assert post(fixed, body, auth=other_auth).json()["events_processed"] == 1
    assert post(fixed, {"events": [event("own")]}, "key-2", other_auth).status_code == 201
    assert post(fixed, {"events": [event("mine")]}, "key-2").status_code == 201
    assert count(fixed, "shared") == 1
    assert count(fixed, "shared", other_auth) == 1
    assert (count(fixed, "mine"), count(fixed, "own")) == (1, 0)
    assert (count(fixed, "mine", other_auth), count(fixed, "own", other_auth)) == (0, 1)


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"", b"x" * 256, "ключ".encode(), b"tab\there", b"bell\x07", b"del\x7f", b" lead"],
    ids=["empty", "too-long", "non-ascii", "tab", "control", "delete", "leading-space"],
)
def test_an_invalid_key_is_a_400_naming_the_header(fixed: Api, value: bytes) -> None:
    headers = {k.encode(): v.encode() for k, v in fixed.auth.items()} | {HEADER.encode(): value}
    response = fixed.client.post("/users/track", json={"events": [event("x")]}, headers=headers)
    assert HEADER in message(response, 400)
    assert count(fixed, "x") == 0


def test_the_longest_key_is_accepted(fixed: Api) -> None:
    key = "~" + "k" * 253 + "!"
    first = post(fixed, {"events": [event()]}, key)
    assert first.status_code == 201, first.text
    same_answer(first, post(fixed, {"events": [event()]}, key))


def test_a_key_given_twice_is_a_400(fixed: Api) -> None:
    headers = [*fixed.auth.items(), (HEADER, "a"), (HEADER, "b")]
    response = fixed.client.post("/users/track", json={"events": [event("x")]}, headers=headers)
    assert HEADER in message(response, 400)
    assert count(fixed, "x") == 0


def test_replays_count_against_the_rate_limit(fixed: Api) -> None:
    fixed.store.update_workspace("test", rate_limits={RateBucket.TRACK: Limit(2, 3)})
    body = {"events": [event()]}
    first = post(fixed, body)
    assert first.headers["x-ratelimit-remaining"] == "1"
    again = post(fixed, body)
    same_answer(first, again)
    assert again.headers["x-ratelimit-remaining"] == "0"
    assert message(post(fixed, body), 429) == "Rate limit exceeded"


def test_a_repeat_while_the_first_is_in_flight_is_a_409(
    fixed: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fixed.store
    writer_held, release, submitted = threading.Event(), threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        writer_held.set()
        release.wait(timeout=30)

    # Hold the writer, so the first request stays queued, uncommitted, until released.
    store._submit(hold)
    assert writer_held.wait(timeout=10)
    track = store.track

    def tracked(*args: Any, **kwargs: Any) -> Any:
        future = track(*args, **kwargs)
        submitted.set()
        return future

    monkeypatch.setattr(store, "track", tracked)
    body = {"events": [event("slow")]}
    answers: dict[str, httpx.Response] = {}
    first = threading.Thread(target=lambda: answers.setdefault("first", post(fixed, body)))
    first.start()
    try:
        assert submitted.wait(timeout=10)
        assert HEADER in message(post(fixed, body), 409)
        assert "first" not in answers
    finally:
        release.set()
        first.join(timeout=30)
    assert answers["first"].status_code == 201, answers["first"].text
    same_answer(answers["first"], post(fixed, body))
    assert count(fixed, "slow") == 1


class FailingStore(SqliteStore):
    """Fails the next request's job after it wrote everything, as a full disk would."""

    fail_next = False

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> Any:
        if not self.fail_next:
            return super()._submit(fn)
        self.fail_next = False

        def failing(conn: sqlite3.Connection) -> T:
            fn(conn)  # events and the key are written in the job's savepoint...
            raise sqlite3.OperationalError("database or disk is full")  # ...then rolled back

        return super()._submit(failing)


def test_a_request_that_failed_in_the_store_is_not_recorded(tmp_path: Path) -> None:
    with running_api(tmp_path / "data", store_class=FailingStore) as api:
        assert isinstance(api.store, FailingStore)
        body = {"events": [event("retried")]}
        api.store.fail_next = True
        assert "retry later" in message(post(api, body), 503)
        assert count(api, "retried") == 0
        retried = post(api, body)
        assert retried.json() == {"message": "success", "events_processed": 1}
        same_answer(retried, post(api, body))
        assert count(api, "retried") == 1
