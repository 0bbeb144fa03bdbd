"""`eventtally query` and `eventtally track` against a real server process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from eventtally.terminal import sparkline, table
from tests.smoke.server import Server, init, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    data = tmp_path_factory.mktemp("remote") / "data"
    setup = init(data, "Europe/Berlin")
    with serving(data) as running:
        yield running, setup


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventtally.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_track_10000_events_then_query_exactly(
    server: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    running, setup = server
    rng = random.Random(10_000)
    expected: Counter[str] = Counter()
    lines = []
    for i in range(10_000):
        day = rng.randrange(1, 11)
        hour = rng.randrange(24)
        event = {
            "external_id": f"user-{rng.randrange(300)}",
            "name": "checkout",
            "time": f"2025-06-{day:02d}T{hour:02d}:30:00Z",
        }
        if i % 1000 == 999:
            event["name"] = "$bad"  # refused: names must not start with $
        else:
            # Berlin is UTC+2 in June: 22:30Z and later fall on the next local day.
            expected[f"2025-06-{day + (1 if hour >= 22 else 0):02d}"] += 1
        lines.append(json.dumps(event))
    # Whole /users/track bodies are lines too.
    lines.append(json.dumps({"attributes": [{"external_id": "user-1", "plan": "pro"}]}))
    lines.append("this line is not JSON")
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    rejected = tmp_path / "rejected.jsonl"

    done = run(
        "track", str(source), "--url", running.url, "--key", setup["api_key"],
        "--rejected", str(rejected), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary == {
        "requests": 134,  # attributes ride along with events: 75 of each a request
        "attributes_processed": 1,
        "events_processed": 9990,
        "purchases_processed": 0,
        "rejected": 10,
        "unusable_lines": 1,
    }
    assert "line 10002: not JSON" in done.stderr
    refused = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [r["line"] for r in refused] == [1000 * k for k in range(1, 11)]
    assert {r["item"]["name"] for r in refused} == {"$bad"}
    assert all("$" in r["error"] for r in refused)

    query = run(
        "query", "checkout", "--length", "12", "--ending-at", "2025-06-13",
        "--format", "json",
        env={"EVENTTALLY_URL": running.url, "EVENTTALLY_API_KEY": setup["api_key"]},
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    points = json.loads(query.stdout)
    assert points == [
        {"time": f"2025-06-{d:02d}", "count": expected.get(f"2025-06-{d:02d}", 0)}
        for d in range(1, 13)
    ]
    assert sum(p["count"] for p in points) == 9990


def test_query_table_and_csv(server: tuple[Server, dict[str, str]]) -> None:
    running, setup = server
    auth = ["--url", running.url, "--key", setup["api_key"]]
    args = ["query", "checkout", "--length", "3", "--ending-at", "2025-06-04", *auth]
    table_out = run(*args)
    assert table_out.returncode == 0, table_out.stderr
    rows = table_out.stdout.splitlines()
    assert rows[0].split() == ["time", "count", "checkout"]
    assert [row.split()[0] for row in rows[1:]] == [
        "2025-06-01",
        "2025-06-02",
        "2025-06-03",
        "total",
    ]
    assert "█" in table_out.stdout
    csv_out = run(*args, "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "time,count"
    assert [line.split(",")[0] for line in csv_out[1:]] == [
        "2025-06-01",
        "2025-06-02",
        "2025-06-03",
    ]
    counts = [int(line.split(",")[1]) for line in csv_out[1:]]
    assert rows[-1].split()[1].replace(",", "") == str(sum(counts))
    hourly = run("query", "checkout", "--unit", "hour", "--length", "2", "--ending-at",
                 "2025-06-01T02:00:00+02:00", "--format", "json", *auth)  # fmt: skip
    assert [p["time"] for p in json.loads(hourly.stdout)] == [
        "2025-06-01T00:00:00+02:00",
        "2025-06-01T01:00:00+02:00",
    ]


def test_remote_errors_are_one_line(server: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    running, setup = server
    cases = [
        (["query", "e", "--url", running.url, "--key", "et_wrong"], "Invalid API key"),
        (
            ["query", "e", "--length", "0", "--url", running.url, "--key", setup["api_key"]],
            "length",
        ),
        (["query", "e", "--url", running.url], "no API key"),
        (["track", str(tmp_path / "missing.jsonl"), "--key", "k"], "cannot read"),
    ]
    for args, expected in cases:
        done = run(*args, env={"EVENTTALLY_API_KEY": ""})
        assert done.returncode == 1, (args, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert expected in lines[0]
        assert "et_wrong" not in done.stderr


def test_table_draws_bars_proportionally() -> None:
    days = [date(2025, 1, d) for d in (1, 2, 3)]
    text = table("e", list(zip(days, [0, 5, 10], strict=True)))
    rows = text.splitlines()
    assert rows[1].rstrip().endswith("0")
    assert rows[3].count("█") == 40
    assert 19 <= rows[2].count("█") <= 20
    assert rows[-1].split()[:2] == ["total", "15"]
    assert sparkline([0, 5, 10]) == "▁▄█"
