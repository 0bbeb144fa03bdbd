"""The SQLite store's ingest process: what it commits is read by the parent at once, it
answers everything it took before it stops, and neither side outlives or strands the
other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventtally.domain.idempotency import Idempotency
from eventtally.domain.model import SeriesQuery
from eventtally.domain.track import parse_track
from eventtally.errors import IdempotencyConflict, StoreError
from eventtally.store.ingest_process import _decode_batch, _encode_batch, _join
from eventtally.store.sqlite import SqliteStore

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000


def body(user: str, n: int = 3) -> object:
    return {
        "events": [
            {"external_id": user, "name": "open", "time": "2025-12-31T23:30:00Z"} for _ in range(n)
        ]
    }


def opens(store: SqliteStore, workspace_id: int) -> int:
    query = SeriesQuery(workspace_id, "open", ((NOW - HOUR, NOW),), None, None)
    return store.count_series(query)[0]


def child_pid(store: SqliteStore) -> int:
    assert store._ingest is not None
    assert store._ingest._process is not None
    return store._ingest._process.pid


def gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_a_committed_request_is_read_by_the_parent_and_errors_come_back_as_themselves(
    tmp_path: Path,
) -> None:
    store = SqliteStore.open(tmp_path, ingest_process=True)
    commits: list[float] = []
    store.commit_observer = commits.append
    try:
        workspace = store.create_workspace("w", "UTC", NOW)
        outcome = store.track(workspace.id, parse_track(body("u1"), NOW), NOW).result(30)
        assert outcome.events_processed == 3
        assert opens(store, workspace.id) == 3
        assert commits  # the child's commit timings reach the parent's metrics
        key = Idempotency("k", "hash-1", HOUR)
        first = store.track(workspace.id, parse_track(body("u2"), NOW), NOW, key).result(30)
        again = store.track(workspace.id, parse_track(body("u2"), NOW), NOW, key).result(30)
        assert (first.replayed, again.replayed) == (False, True)
        other = Idempotency("k", "hash-2", HOUR)
        with pytest.raises(IdempotencyConflict):
            store.track(workspace.id, parse_track(body("u2"), NOW), NOW, other).result(30)
        assert opens(store, workspace.id) == 6
    finally:
        store.close()


def test_close_answers_every_request_it_took_then_the_child_exits(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path, ingest_process=True)
    workspace = store.create_workspace("w", "UTC", NOW)
    pid = child_pid(store)
    futures = [
        store.track(workspace.id, parse_track(body(f"u{i}", 75), NOW), NOW) for i in range(300)
    ]
    store.close()
    assert all(f.result(0).events_processed == 75 for f in futures)
    assert gone(pid, within=0)
    reopened = SqliteStore.open(tmp_path)
    try:
        assert opens(reopened, workspace.id) == 300 * 75
    finally:
        reopened.close()


def test_a_dead_child_fails_what_it_held_and_the_next_request_starts_another(
    tmp_path: Path,
) -> None:
    store = SqliteStore.open(tmp_path, ingest_process=True)
    try:
        workspace = store.create_workspace("w", "UTC", NOW)
        store.track(workspace.id, parse_track(body("u1"), NOW), NOW).result(30)
        first = child_pid(store)
        os.kill(first, signal.SIGSTOP)  # it holds what comes next until killed
        held = store.track(workspace.id, parse_track(body("u2"), NOW), NOW)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(StoreError, match="retry"):
            held.result(30)
        # The next request finds the child gone, starts another and is applied.
        deadline = time.monotonic() + 30
        while True:
            try:
                outcome = store.track(workspace.id, parse_track(body("u3"), NOW), NOW).result(30)
                break
            except StoreError:  # the old child's end was not yet seen
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert outcome.events_processed == 3
        assert child_pid(store) != first
        assert opens(store, workspace.id) == 6  # u1 and u3: the held request never was
    finally:
        store.close()


_PARENT = """
import sys, time
from pathlib import Path
from eventtally.store.sqlite import SqliteStore
store = SqliteStore.open(Path(sys.argv[1]), ingest_process=True)
print(store._ingest._process.pid, flush=True)
time.sleep(600)
"""


def test_the_child_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)], stdout=subprocess.PIPE
    ) as parent:
        try:
            assert parent.stdout is not None
            pid = int(parent.stdout.readline())
            assert not gone(pid, within=0.2)
            parent.kill()
            parent.wait(15)
            assert gone(pid)
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait(15)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_who = st.sampled_from(
    [
        {"external_id": "u"},
        {"user_alias": {"alias_name": "a", "alias_label": "l"}},
        {"braze_id": "b"},
        {"email": "e@example.com"},
        {"phone": "+15551234567"},
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["attributes", "events", "purchases"]),
            _who,
            st.dictionaries(st.text(max_size=8), _json, max_size=3),
        ),
        max_size=6,
    )
)
def test_a_request_crosses_the_pipe_unchanged(
    items: list[tuple[str, dict[str, object], dict[str, object]]],
) -> None:
    """Whatever parse_track accepts (integers wider than 64 bits, any text) reaches the
    ingest process as it was parsed."""
    body: dict[str, list[object]] = {}
    for array, who, extra in items:
        item: dict[str, object] = {**extra, **who}
        if array == "events":
            item |= {"name": "e", "time": "2025-12-31T23:00:00Z", "properties": extra}
        elif array == "purchases":
            item |= {
                "product_id": "p",
                "currency": "USD",
                "price": 1.5,
                "time": "2025-12-31T23:00:00Z",
                "properties": extra,
            }
        body.setdefault(array, []).append(item)
    request = parse_track(body, NOW)
    key = Idempotency("k", "h", HOUR)
    [(job, workspace, received, now, idempotency)] = _decode_batch(
        _join([_encode_batch([(7, 3, request, NOW, key)])])
    )
    assert (job, workspace, received, now, idempotency) == (7, 3, request, NOW, key)
