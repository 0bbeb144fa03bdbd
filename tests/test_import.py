"""`eventtally import`: JSONL straight into the store, by the API's rules."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from eventtally import jsonl
from eventtally.cli import main
from eventtally.importer import ImportAborted, import_entries
from eventtally.store.sqlite import DB_FILE, SqliteStore
from tests.smoke.server import eventtally, init, serving
from tests.support import running_api

LINES = [
    '{"external_id": "a", "name": "signup", "time": "2025-01-01T10:00:00Z"}',
    json.dumps(
        {
            "attributes": [{"external_id": "b", "plan": "pro"}],
            "events": [
                {"external_id": "b", "name": "signup", "time": "2025-01-01T11:00:00Z"},
                {"name": "no-user", "time": "2025-01-01T11:00:00Z"},
            ],
        }
    ),
    "not json",
    "",
    '{"external_id": "c", "name": "signup", "time": "2025-01-02T10:00:00Z", "app_id": "nope"}',
    "[1, 2]",
]


def test_import_applies_the_api_rules_and_reports_lines(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path)
    try:
        workspace = store.create_workspace("w", "UTC", 0)
        summary = import_entries(store, workspace.id, jsonl.by_line(LINES), retention_s=60)
        assert (summary.events, summary.attributes, summary.purchases) == (2, 1, 0)
        assert [(b.line, b.reason) for b in summary.bad_lines] == [
            (3, "not JSON (Expecting value at column 1)"),
            (6, "not a JSON object"),
        ]
        assert [(r.line, r.input_array, r.error) for r in summary.rejected] == [
            (
                2,
                "events",
                "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required",
            ),
            (5, "events", "'app_id' is not a known app"),
        ]
        with pytest.raises(ImportAborted, match="line 3: not JSON"):
            import_entries(store, workspace.id, jsonl.by_line(LINES), strict=True, retention_s=60)
    finally:
        store.close()


def stored_events(data: Path) -> list[tuple[str, str, int, str | None]]:
    """Every event of a SQLite store as (user, name, time, properties), sorted."""
    with closing(sqlite3.connect(data / DB_FILE)) as conn:
        rows: list[tuple[str, str, int, str | None]] = conn.execute(
            "SELECT u.external_id, t.name, e.time, e.properties FROM events e "
            "JOIN users u ON u.id = e.user_id JOIN event_types t ON t.id = e.event_type "
            "ORDER BY 1, 2, 3, 4"
        ).fetchall()
    return rows


@pytest.mark.parametrize("form", ["jsonl", "csv"])
def test_import_equals_the_api(tmp_path: Path, form: str) -> None:
    rng = random.Random(5)
    events = [
        {
            "external_id": f"u{rng.randrange(50)}",
            "name": rng.choice(["open", "buy"]),
            "time": f"2025-03-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:17:00Z",
            "properties": {"n": rng.randrange(-5, 1000), "paid": rng.random() < 0.5},
        }
        for _ in range(1000)
    ]
    with running_api(tmp_path / "api") as api:
        for i in range(0, len(events), 75):
            assert api.track({"events": events[i : i + 75]}).status_code == 201
        expected = [
            api.series(event=name, length=31, ending_at="2025-04-01").json()
            for name in ("open", "buy")
        ]
    options: list[str] = []
    if form == "jsonl":
        path = tmp_path / "events.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
    else:  # a column named for its field, and others mapped (one of them typed)
        path = tmp_path / "events.csv"
        path.write_text(
            "who,name,time,n,paid\n"
            + "".join(
                f"{e['external_id']},{e['name']},{e['time']},{e['properties']['n']},"
                f"{str(e['properties']['paid']).upper()}\n"
                for e in events
            )
        )
        options = [
            "--map=external_id=who",
            "--map=properties.n:integer=n",
            "--map=properties.paid:boolean=paid",
        ]
    data = tmp_path / "imported"
    init(data, "UTC")
    assert main(["import", str(path), "--data", str(data), "--quiet", *options]) == 0
    assert stored_events(data) == stored_events(tmp_path / "api")
    with serving(data) as server:
        key = json.loads(
            eventtally(
                "keys", "create", "--data", str(data), "--name", "r", "--all-permissions", "--json"
            ).stdout
        )["api_key"]
        got = [
            httpx.get(
                f"{server.url}/events/data_series",
                params={"event": name, "length": 31, "ending_at": "2025-04-01"},
                headers={"Authorization": f"Bearer {key}"},
            ).json()
            for name in ("open", "buy")
        ]
    assert got == expected
    assert sum(p["count"] for s in got for p in s["data"]) == 1000


@pytest.mark.slow
def test_import_while_serving(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = init(data, "UTC")["api_key"]
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"external_id": f"u{i}", "name": "bulk", "time": "2025-02-02T02:02:02Z"})
            + "\n"
            for i in range(3000)
        )
    )
    headers = {"Authorization": f"Bearer {key}"}
    body = {"events": [{"external_id": "x", "name": "bulk", "time": "2025-02-02T03:00:00Z"}]}
    with serving(data) as server:
        assert (
            httpx.post(f"{server.url}/users/track", json=body, headers=headers).status_code == 201
        )
        done = eventtally("import", str(path), "--data", str(data), "--quiet", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["events_processed"] == 3000
        assert (
            httpx.post(f"{server.url}/users/track", json=body, headers=headers).status_code == 201
        )
        series = httpx.get(
            f"{server.url}/events/data_series",
            params={"event": "bulk", "length": 1, "ending_at": "2025-02-03"},
            headers=headers,
        ).json()
    assert series["data"] == [{"time": "2025-02-02", "count": 3002}]


def test_import_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init(tmp_path / "data", "UTC")
    assert main(["import", str(tmp_path / "missing.jsonl"), "--data", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("eventtally: cannot read")
    assert "\n" not in err


@pytest.mark.parametrize(
    "line",
    [
        '{"external_id": "u", "name": "e", "properties": {"x": NaN}}',
        '{"external_id": "u", "name": "e", "properties": {"x": Infinity}}',
        '{"external_id": "u", "name": "e", "properties": {"x": 1e400}}',
        '{"external_id": "u", "name": "e", "properties": {"x": "\\ud800"}}',
    ],
)
def test_a_line_the_api_would_refuse_as_json_is_unusable(line: str) -> None:
    entry = next(jsonl.by_line([line]))
    assert isinstance(entry, jsonl.BadLine)
    assert entry.reason.startswith("not JSON (")


def events_file(path: Path, count: int) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "external_id": f"u{i % 997}",
                    "name": "bulk",
                    "time": f"2025-02-{1 + i % 28:02d}T02:02:02Z",
                    "properties": {"i": i},
                }
            )
            + "\n"
            for i in range(count)
        )
    )
    return path


def stored_count(data: Path) -> int:
    with closing(sqlite3.connect(data / DB_FILE)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(count)


def imported(data: Path, path: Path) -> dict[str, int]:
    done = eventtally("import", str(path), "--data", str(data), "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_an_import_run_again_stores_only_what_was_not_committed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init(data, "UTC")
    whole = events_file(tmp_path / "whole.jsonl", 3000)
    # What a run cut short after 1,500 lines had committed: its first 20 requests.
    head = tmp_path / "head.jsonl"
    head.write_text("".join(whole.read_text().splitlines(keepends=True)[:1500]))
    assert imported(data, head)["events_processed"] == 1500
    again = imported(data, whole)
    assert (again["events_processed"], again["already_processed"]) == (1500, 1500)
    assert stored_events(data) == sorted(set(stored_events(data)))  # no event twice
    assert stored_count(data) == 3000
    assert imported(data, whole)["already_processed"] == 3000
    assert stored_count(data) == 3000


def ingest_children(data: Path) -> list[int]:
    """PIDs of the ingest processes applying requests to this data directory."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if b"eventtally.store.ingest_process" in command and str(data).encode() in command:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_an_import_killed_midway_resumes_exactly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init(data, "UTC")
    path = events_file(tmp_path / "events.jsonl", 300_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "eventtally.cli", "import", str(path), "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while stored_count(data) == 0 and process.poll() is None:
            assert time.monotonic() < deadline, "the import stored nothing in 60 s"
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait(timeout=15)
    # The ingest process commits what it holds and exits once its parent is gone.
    deadline = time.monotonic() + 30
    while ingest_children(data):
        assert time.monotonic() < deadline, "the ingest process outlived the import"
        time.sleep(0.05)
    before = stored_count(data)
    assert 0 < before < 300_000, "the import was not cut short"
    again = imported(data, path)
    assert again["already_processed"] == before
    assert again["events_processed"] == 300_000 - before
    assert stored_count(data) == 300_000
