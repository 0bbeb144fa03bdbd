"""ClickHouse itself stops while `eventtally serve` runs on it, then comes back.

Each test runs a clickhouse-server of its own (tests/clickhouse_server.py's start and
stop): stopping the session's server would fail every other test using it. While it is
down, ingest and reads answer 503 in the one error shape and /healthz still answers; when
it is back on the same directory and ports, ingest resumes without restarting eventtally.

Clients retry a refused request with its Idempotency-Key, as the Python client does, so
every request must end up counted exactly once: one ClickHouse received but could not
answer before it went down must not count again when retried. Each request puts half its
events in an hour of its own in 2020 and half in the same hour in 2021 (another monthly
partition), so a request applied in part shows as two unequal counts.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.clickhouse_server import restart, start, stop
from tests.smoke.server import init, serving

pytestmark = pytest.mark.slow

EVENTS_PER_REQUEST = 20  # half in each year
WORKERS = 3
ORIGINS = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))
MAX_REQUESTS = 1000  # bounds the load even if ClickHouse never comes back
PROBE = MAX_REQUESTS  # the slot of the request sent while ClickHouse is down
DATABASE = "fault_db"  # distinctive, to look for in what clients are told
UNAVAILABLE = "the store is unavailable now; retry later"


class PrivateClickHouse:
    """This test's clickhouse-server, which it may stop and start again; every process
    it started is stopped by its PID when the block ends."""

    def __init__(self, directory: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.server = start(directory)
        self.processes.append(self.server.process)

    def url(self) -> str:
        return self.server.url(DATABASE)

    def down(self, sig: signal.Signals) -> None:
        self.server.process.send_signal(sig)
        self.server.process.wait(timeout=30)

    def up(self) -> None:
        """Start it again on the same directory, config, data and ports."""
        self.server = restart(self.server)
        self.processes.append(self.server.process)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            stop(process)


@contextmanager
def private_clickhouse(directory: Path) -> Iterator[PrivateClickHouse]:
    clickhouse = PrivateClickHouse(directory)
    try:
        yield clickhouse
    finally:
        clickhouse.close()


def body(slot: int) -> dict[str, object]:
    return {
        "events": [
            {
                "external_id": f"user-{slot}-{i % 5}",
                "name": "fault_test",
                "time": (origin + timedelta(hours=slot, seconds=i)).isoformat(),
            }
            for origin in ORIGINS
            for i in range(EVENTS_PER_REQUEST // 2)
        ]
    }


class Load:
    """Workers sending one request per slot, each retried with its Idempotency-Key until
    acknowledged, as a well-behaved client does; what every answer was is kept."""

    def __init__(self, url: str, key: str, deadline: float) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}
        self.deadline = deadline
        self.lock = threading.Lock()
        self.slots = iter(range(MAX_REQUESTS))
        self.attempted: set[int] = set()
        self.acknowledged: set[int] = set()
        self.refusals: list[tuple[int, str, str]] = []  # status, content type, body
        self.given_up: set[int] = set()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._work) for _ in range(WORKERS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, failure: type[BaseException] | None, *exc: object) -> None:
        if failure is not None:
            self.deadline = 0.0  # the test failed: give up at once
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads)

    def wait_for(self, acknowledged: int) -> None:
        while len(self.acknowledged) < acknowledged:
            assert time.monotonic() < self.deadline, (
                f"only {len(self.acknowledged)} of {acknowledged} requests acknowledged in time"
            )
            time.sleep(0.01)

    def _work(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=20) as http:
            while not self.stopping.is_set():
                with self.lock:
                    slot = next(self.slots, None)
                    if slot is None:
                        return
                    self.attempted.add(slot)
                self._send(http, slot)

    def _send(self, http: httpx.Client, slot: int) -> None:
        """Until acknowledged: stopping the load lets a slot finish, never half-send it."""
        while time.monotonic() < self.deadline:
            response = http.post(
                "/users/track", json=body(slot), headers={"Idempotency-Key": f"slot-{slot}"}
            )
            if response.status_code == 201:
                with self.lock:
                    self.acknowledged.add(slot)
                return
            with self.lock:
                self.refusals.append(
                    (response.status_code, response.headers["content-type"], response.text)
                )
            time.sleep(0.05)
        with self.lock:
            self.given_up.add(slot)


def counts(url: str, key: str, last: int) -> dict[int, tuple[int, int]]:
    """Events stored for each slot up to `last`: in its 2020 hour and in its 2021 hour."""
    found: dict[int, list[int]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for origin in ORIGINS:
            for first in range(0, last + 1, 100):
                response = http.get(
                    "/events/data_series",
                    params={
                        "event": "fault_test",
                        "length": 100,
                        "unit": "hour",
                        "ending_at": (origin + timedelta(hours=first + 100)).isoformat(),
                    },
                )
                assert response.status_code == 200, response.text
                for offset, point in enumerate(response.json()["data"]):
                    found.setdefault(first + offset, []).append(point["count"])
    return {slot: (a, b) for slot, (a, b) in found.items()}


def assert_unavailable(response: httpx.Response, clickhouse: PrivateClickHouse) -> None:
    """503 in the one error shape, saying nothing of where or what the store is."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"message": UNAVAILABLE}
    for secret in ("Traceback", "clickhouse", DATABASE, str(clickhouse.server.ports.tcp)):
        assert secret.lower() not in response.text.lower()


def assert_counted_once(load: Load, stored: dict[int, tuple[int, int]], *more: int) -> None:
    """Every request acknowledged (all of them: each was retried until it was) counted
    once and whole; nothing else stored. `more`: slots acknowledged outside the load."""
    assert not load.given_up, f"never acknowledged: {sorted(load.given_up)[:10]}"
    done = load.acknowledged | set(more)
    whole = (EVENTS_PER_REQUEST // 2, EVENTS_PER_REQUEST // 2)
    wrong = {slot: n for slot, n in stored.items() if n != (whole if slot in done else (0, 0))}
    if wrong:
        raise AssertionError(f"requests not stored once as {whole} each: {wrong}")


def assert_refusals_are_503(load: Load) -> None:
    assert load.refusals, "the load never met the outage"
    for status, content_type, text in load.refusals:
        assert (status, content_type) == (503, "application/json"), text
        assert text == f'{{"message":"{UNAVAILABLE}"}}'


def test_clickhouse_stopped_then_back_under_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with private_clickhouse(tmp_path / "clickhouse") as clickhouse:
        key = init(data, "UTC", clickhouse.url())["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        probe = {"Idempotency-Key": "probe"}
        with (
            serving(data, store=clickhouse.url()) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=10) as http,
        ):
            with Load(server.url, key, deadline=time.monotonic() + 90) as load:
                load.wait_for(60)
                clickhouse.down(signal.SIGTERM)
                refused = http.post("/users/track", json=body(PROBE), headers=probe)
                assert_unavailable(refused, clickhouse)
                series: dict[str, str | int] = {
                    "event": "fault_test",
                    "length": 1,
                    "ending_at": "2020-01-02",
                }
                assert_unavailable(http.get("/events/data_series", params=series), clickhouse)
                assert_unavailable(http.get("/events/list"), clickhouse)
                health = http.get("/healthz")
                assert (health.status_code, health.json()) == (200, {"message": "ok"})
                time.sleep(1.0)  # the load meets the outage too
                outage = len(load.acknowledged)
                clickhouse.up()
                # No restart of eventtally: ingest resumes by itself.
                load.wait_for(outage + 60)
            assert http.post("/users/track", json=body(PROBE), headers=probe).status_code == 201
            assert server.process.poll() is None
            stored = counts(server.url, key, PROBE)
    assert_refusals_are_503(load)
    assert_counted_once(load, stored, PROBE)


KILLS = 15  # roughly one in five lands between two views' parts (2-core machine)


def test_clickhouse_killed_mid_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """kill -9 of ClickHouse under load, again and again, each time started again: every
    request acknowledged is counted, whole (both halves of it).

    What this does not claim: exactly once. ClickHouse pushes a block through the
    journal's views one after another, each committing its part; a kill between two
    leaves the earlier views' rows of a request that was answered 503, and its retry
    (with its Idempotency-Key, which the last view would have stored) counts again in
    those views. Named in that order, the views never store a key without the rest of
    its request, so a retry is never answered from a half-stored request
    (docs/deploy.md, "failure windows").
    """
    data = tmp_path / "data"
    with private_clickhouse(tmp_path / "clickhouse") as clickhouse:
        key = init(data, "UTC", clickhouse.url())["api_key"]
        with serving(data, store=clickhouse.url()) as server:
            with Load(server.url, key, deadline=time.monotonic() + 90) as load:
                for _ in range(KILLS):
                    load.wait_for(len(load.acknowledged) + 5)
                    # Right after an answer the writer is reading, not inserting.
                    time.sleep(random.uniform(0, 0.1))
                    clickhouse.down(signal.SIGKILL)
                    time.sleep(0.2)
                    clickhouse.up()
                load.wait_for(len(load.acknowledged) + 20)
            stored = counts(server.url, key, max(load.attempted))
    assert_refusals_are_503(load)
    assert not load.given_up, f"never acknowledged: {sorted(load.given_up)[:10]}"
    half = EVENTS_PER_REQUEST // 2
    lost = {
        slot: stored.get(slot) for slot in load.acknowledged if min(stored.get(slot, (0, 0))) < half
    }
    assert not lost, f"acknowledged requests not counted whole: {lost}"


def test_frozen_clickhouse_leaves_the_server_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ClickHouse stopped with SIGSTOP: connections are accepted, nothing is answered (as
    with a hung server or a network that drops packets). /healthz still answers at once
    (store reads run off the event loop), and a request needing the store gets 503 once
    EVENTTALLY_CLICKHOUSE_TIMEOUT has passed, not whenever ClickHouse comes back."""
    monkeypatch.setenv("EVENTTALLY_CLICKHOUSE_TIMEOUT", "3")
    data = tmp_path / "data"
    with private_clickhouse(tmp_path / "clickhouse") as clickhouse:
        key = init(data, "UTC", clickhouse.url())["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        slot = {"Idempotency-Key": "slot-1"}
        with (
            serving(data, store=clickhouse.url()) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=5) as http,
            httpx.Client(base_url=server.url, headers=headers, timeout=40) as patient,
            ThreadPoolExecutor(1) as pool,
        ):
            assert http.post("/users/track", json=body(0)).status_code == 201
            clickhouse.server.process.send_signal(signal.SIGSTOP)
            try:
                pending = pool.submit(patient.post, "/users/track", json=body(1), headers=slot)
                time.sleep(0.5)
                health = http.get("/healthz")
                assert (health.status_code, health.json()) == (200, {"message": "ok"})
                assert_unavailable(pending.result(timeout=60), clickhouse)
            finally:
                clickhouse.server.process.send_signal(signal.SIGCONT)
            # ClickHouse answers again: the retry is counted once.
            assert http.post("/users/track", json=body(1), headers=slot).status_code == 201
            stored = counts(server.url, key, 1)
    assert stored[0] == stored[1] == (EVENTS_PER_REQUEST // 2, EVENTS_PER_REQUEST // 2)
    assert all(n == (0, 0) for slot, n in stored.items() if slot > 1)
