"""`eventtally segments create/list/show/update/archive`, run in process."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest

from eventtally.domain.model import SeriesQuery
from eventtally.domain.track import parse_track
from eventtally.store.sqlite import SqliteStore
from tests.cli_support import Cli

PRO = '{"attribute": "plan", "op": "eq", "value": "pro"}'
NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
DAY_START = 1_748_736_000_000_000  # 2025-06-01T00:00:00Z


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in ("EVENTTALLY_DATA", "EVENTTALLY_MAX_TRACKED_SEGMENTS"):
        monkeypatch.delenv(name, raising=False)
    made = Cli(tmp_path / "data", capsys)
    made("init", "--json").json()
    return made


def test_create_prints_the_segment_as_json(cli: Cli) -> None:
    created = cli.segments(
        "create",
        "--name",
        "Pro",
        "--filter",
        '{"all": [{"attribute": " plan", "op": "eq", "value": "pro"}, '
        '{"attribute": "email", "op": "exists"}]}',
        "--description",
        "paying users",
        "--tag",
        "billing",
        "--tag",
        "core",
        "--team",
        "growth",
    )
    assert isinstance(created, dict)
    uuid.UUID(created["id"])
    assert created["name"] == "Pro"
    assert created["analytics_tracking_enabled"] is True
    # The filter is kept in canonical form: names cleaned.
    assert created["filter"] == {
        "all": [
            {"attribute": "plan", "op": "eq", "value": "pro"},
            {"attribute": "email", "op": "exists"},
        ]
    }
    assert created["description"] == "paying users"
    assert (created["tags"], created["teams"], created["archived"]) == (
        ["billing", "core"],
        ["growth"],
        False,
    )
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None
    assert created["updated_at"] == created["created_at"]
    text = cli("segments", "create", "--name", "Second", "--filter", PRO)
    assert text.code == 0
    assert text.out.split()[1:] == ["Second", "(tracked)"]
    uuid.UUID(text.out.split()[0])


def test_create_reads_the_filter_from_a_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "filter.json"
    path.write_text('{"not": {"event": "signup", "op": "gte", "count": 1}}\n', encoding="utf-8")
    created = cli.segments("create", "--name", "never", "--filter", f"@{path}", "--no-tracking")
    assert created["filter"] == {"not": {"event": "signup", "op": "gte", "count": 1}}
    assert created["analytics_tracking_enabled"] is False
    missing = cli.fails("segments", "create", "--name", "x", "--filter", f"@{tmp_path}/nope")
    assert missing.startswith(f"cannot read {tmp_path}/nope")


@pytest.mark.parametrize(
    ("filter_text", "error"),
    [
        (
            '{"all": [{"used_app": "a"}, {"event": "e", "op": "gte", "count": 1}, '
            '{"attribute": "age", "op": "gt=", "value": 1}]}',
            'filter.all[2].op: unknown operator "gt="',
        ),
        (
            '{"any": [{"attribute": "x", "op": "eq", "vlaue": 1}]}',
            'filter.any[0]: unknown key "vlaue"',
        ),
        (
            '{"event": "e", "op": "gt", "count": 1}',
            'filter.op: "gt" does not apply to an event count; use "gte", "lte" or "eq"',
        ),
        (
            "{}",
            'filter: needs one of the keys "all", "any", "not", "attribute", "used_app" or "event"',
        ),
        ('{"all": [', "filter: not JSON (Expecting value at column 10)"),
    ],
)
def test_a_bad_filter_fails_with_one_line_naming_its_path(
    cli: Cli, filter_text: str, error: str
) -> None:
    assert cli.fails("segments", "create", "--name", "x", "--filter", filter_text) == error
    assert cli.segments("list") == []  # nothing made


def test_list_show_update_and_archive(cli: Cli) -> None:
    first = cli.segments("create", "--name", "first", "--filter", PRO)
    second = cli.segments("create", "--name", "second", "--filter", PRO, "--no-tracking")
    assert [s["id"] for s in cli.segments("list")] == [first["id"], second["id"]]
    text = cli("segments", "list")
    assert text.out.splitlines() == [
        f"{first['id']}  first  (tracked)",
        f"{second['id']}  second  (not tracked)",
    ]
    assert cli.segments("show", first["id"]) == first
    shown = cli("segments", "show", first["id"]).out.splitlines()
    assert shown[0] == f'id: "{first["id"]}"'
    assert 'name: "first"' in shown

    updated = cli.segments(
        "update",
        second["id"],
        "--name",
        "renamed",
        "--filter",
        '{"used_app": "x"}',
        "--tracking",
        "--description",
        "d",
        "--tag",
        "t",
    )
    assert updated["id"] == second["id"]
    assert updated["name"] == "renamed"
    assert updated["filter"] == {"used_app": "x"}
    assert updated["analytics_tracking_enabled"] is True
    assert (updated["description"], updated["tags"]) == ("d", ["t"])
    assert updated["created_at"] == second["created_at"]
    assert (
        cli.segments("update", second["id"], "--no-tracking")["analytics_tracking_enabled"] is False
    )
    assert "nothing to change" in cli.fails("segments", "update", second["id"])
    bad = cli.fails("segments", "update", second["id"], "--filter", '{"not": []}')
    assert bad == "filter.not: must be an object, not an empty array"

    archived = cli.segments("archive", first["id"])
    assert archived["archived"] is True
    assert [s["id"] for s in cli.segments("list")] == [second["id"]]
    assert [s["archived"] for s in cli.segments("list", "--archived")] == [True, False]
    assert "(tracked, archived)" in cli("segments", "list", "--archived").out
    assert cli.segments("show", first["id"])["archived"] is True
    assert first["id"] in cli.fails("segments", "archive", first["id"])
    assert first["id"] in cli.fails("segments", "update", first["id"], "--name", "x")


def test_unknown_segments_and_workspaces_fail(cli: Cli) -> None:
    for command in (("show", "nope"), ("update", "nope", "--name", "x"), ("archive", "nope")):
        assert "nope" in cli.fails("segments", *command)
    assert "elsewhere" in cli.fails("segments", "list", "--workspace", "elsewhere")
    made = cli.segments("create", "--name", "x", "--filter", PRO)
    cli("init", "--workspace", "other", "--json").json()
    assert made["id"] in cli.fails("segments", "show", made["id"], "--workspace", "other")


def test_the_tracked_limit_comes_from_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTTALLY_MAX_TRACKED_SEGMENTS", "1")
    first = cli.segments("create", "--name", "one", "--filter", PRO)
    error = cli.fails("segments", "create", "--name", "two", "--filter", PRO)
    assert "limit" in error
    assert "EVENTTALLY_MAX_TRACKED_SEGMENTS" in error
    untracked = cli.segments("create", "--name", "two", "--filter", PRO, "--no-tracking")
    assert "limit" in cli.fails("segments", "update", untracked["id"], "--tracking")
    assert [s["name"] for s in cli.segments("list")] == ["one", "two"]
    cli.segments("archive", first["id"])
    assert cli.segments("update", untracked["id"], "--tracking")["analytics_tracking_enabled"]
    monkeypatch.setenv("EVENTTALLY_MAX_TRACKED_SEGMENTS", "2")
    assert cli.segments("create", "--name", "three", "--filter", PRO)["name"] == "three"


def test_a_tracked_segment_made_by_the_cli_counts_stored_events(cli: Cli) -> None:
    store = SqliteStore.open(cli.data)
    try:
        workspace = store.workspace("default")
        assert workspace is not None
        body = {
            "attributes": [
                {"external_id": "u1", "plan": "pro"},
                {"external_id": "u2", "plan": "free"},
            ],
            "events": [
                {"external_id": u, "name": "e", "time": "2025-06-01T12:00:00Z"}
                for u in ("u1", "u1", "u2")
            ],
        }
        store.track(workspace.id, parse_track(body, NOW), NOW).result()
    finally:
        store.close()
    created = cli.segments("create", "--name", "pro", "--filter", PRO)
    store = SqliteStore.open(cli.data)
    try:
        segment = store.find_segment(workspace.id, created["id"])
        assert segment is not None
        day = ((DAY_START, DAY_START + 24 * 3600 * 1_000_000),)
        query = SeriesQuery(workspace.id, "e", day, segment=segment.id)
        assert store.count_series(query) == [2]
    finally:
        store.close()
