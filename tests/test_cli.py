"""The `eventtally` command, run in process (and twice as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventtally.cli import main
from eventtally.domain.model import PERMISSIONS, EventInfo, EventStatus
from tests.cli_support import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in ("EVENTTALLY_DATA", "EVENTTALLY_HOST", "EVENTTALLY_PORT"):
        monkeypatch.delenv(name, raising=False)
    return Cli(tmp_path / "data", capsys)


@pytest.fixture
def initialised(cli: Cli) -> dict[str, str]:
    created: dict[str, str] = cli("init", "--json").json()
    return created


# --- init -------------------------------------------------------------------------------


def test_init_json_prints_one_object_with_workspace_app_and_key(cli: Cli) -> None:
    created = cli("init", "--json", "--workspace", "shop", "--time-zone", "Europe/Berlin").json()
    assert set(created) == {"workspace", "app_id", "api_key"}
    assert created["workspace"] == "shop"
    with cli.store() as store:
        found = store.authenticate(created["api_key"])
        assert found is not None
        workspace, key = found
        assert (workspace.name, workspace.time_zone) == ("shop", "Europe/Berlin")
        assert key.permissions == frozenset(PERMISSIONS)
        assert [a.app_id for a in store.list_apps(workspace.id)] == [created["app_id"]]


def test_init_defaults_to_workspace_default_in_utc(cli: Cli) -> None:
    created = cli("init", "--json").json()
    assert created["workspace"] == "default"
    with cli.store() as store:
        assert [(w.name, w.time_zone) for w in store.list_workspaces()] == [("default", "UTC")]


def test_init_text_output_shows_the_key(cli: Cli) -> None:
    run = cli("init")
    assert run.code == 0
    with cli.store() as store:
        (workspace,) = store.list_workspaces()
        (app,) = store.list_apps(workspace.id)
    assert app.app_id in run.out
    assert "api_key:" in run.out
    secret = run.out.split("api_key:")[1].split()[0]
    with cli.store() as store:
        assert store.authenticate(secret) is not None


def test_init_twice_with_the_same_workspace_fails(cli: Cli, initialised: dict[str, str]) -> None:
    line = cli.fails("init", "--json")
    assert "default" in line
    with cli.store() as store:
        assert len(store.list_workspaces()) == 1
        assert store.authenticate(initialised["api_key"]) is not None
    # Another name is fine.
    assert cli("init", "--json", "--workspace", "second").json()["workspace"] == "second"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "EST+5", "utc+1"])
def test_init_with_unknown_zone_fails_and_creates_nothing(cli: Cli, zone: str) -> None:
    line = cli.fails("init", "--time-zone", zone)
    assert "zone" in line
    with cli.store() as store:
        assert store.list_workspaces() == []


def test_unwritable_data_dir_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main(["init", "--data", str(blocker / "data")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("eventtally: ")
    assert str(blocker / "data") in lines[0]


def test_data_dir_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTTALLY_DATA", str(tmp_path / "from-env"))
    assert main(["init", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["workspace"] == "default"
    assert (tmp_path / "from-env" / "eventtally.db").is_file()


# --- --store ----------------------------------------------------------------------------


def test_store_with_another_scheme_fails_without_showing_the_url(cli: Cli) -> None:
    line = cli.fails("init", "--store", "postgres://admin:hunter2@db.example/analytics")
    assert line.startswith("--store: ")
    assert "'postgres'" in line
    assert "clickhouse://HOST:PORT/DATABASE" in line
    assert "hunter2" not in line
    assert not cli.data.exists()


def test_store_that_is_not_a_url_points_to_data(cli: Cli) -> None:
    line = cli.fails("apps", "list", "--store", "./data")
    assert line.startswith("--store: not a store URL")
    assert "--data" in line


def test_store_from_the_environment_is_named_in_its_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTTALLY_STORE", "sqlite:///tmp/x.db")
    assert cli.fails("init").startswith("EVENTTALLY_STORE: unknown store scheme 'sqlite'")
    # An empty --store wins over the environment: the SQLite store in --data.
    assert cli("init", "--json", "--store", "").json()["workspace"] == "default"
    assert cli.data.is_dir()


def test_store_clickhouse_url_opens_clickhouse(cli: Cli, clickhouse_url: str) -> None:
    created = cli("init", "--json", "--store", clickhouse_url).json()
    listed = cli("apps", "list", "--json", "--store", clickhouse_url).json()
    assert listed == [{"app_id": created["app_id"], "name": "default app"}]
    assert not cli.data.exists()


@pytest.mark.parametrize("option", ["--cluster", "--redis"])
def test_cluster_and_redis_need_a_clickhouse_store(cli: Cli, option: str) -> None:
    line = cli.fails("init", option, "x")
    assert line.startswith(f"{option} is for a ClickHouse store")
    assert not cli.data.exists()


def test_an_unknown_cluster_is_named(cli: Cli, clickhouse_url: str) -> None:
    line = cli.fails("init", "--store", clickhouse_url, "--cluster", "nowhere")
    assert "has no cluster 'nowhere' in its remote_servers" in line


# --- apps -------------------------------------------------------------------------------


def test_apps_create_and_list(cli: Cli, initialised: dict[str, str]) -> None:
    created = cli("apps", "create", "--name", "ios", "--json").json()
    assert created["name"] == "ios"
    plain = cli("apps", "create", "--name", "android")
    assert plain.code == 0
    android_id = plain.out.strip()
    assert android_id
    listed = cli("apps", "list", "--json").json()
    assert listed == [
        {"app_id": initialised["app_id"], "name": "default app"},
        {"app_id": created["app_id"], "name": "ios"},
        {"app_id": android_id, "name": "android"},
    ]
    text = cli("apps", "list")
    assert text.code == 0
    assert [line.split()[0] for line in text.out.splitlines()] == [
        initialised["app_id"],
        created["app_id"],
        android_id,
    ]


def test_apps_in_an_unknown_workspace_fail(cli: Cli, initialised: dict[str, str]) -> None:
    assert "nope" in cli.fails("apps", "create", "--name", "x", "--workspace", "nope")
    assert "nope" in cli.fails("apps", "list", "--workspace", "nope")


def test_commands_before_init_fail(cli: Cli) -> None:
    cli.fails("apps", "list")
    cli.fails("keys", "list")


# --- keys -------------------------------------------------------------------------------


def test_keys_create_with_permissions(cli: Cli, initialised: dict[str, str]) -> None:
    created = cli(
        "keys", "create", "--name", "ingest", "--permission", "users.track", "--json"
    ).json()
    assert created["permissions"] == ["users.track"]
    two = cli(
        "keys",
        "create",
        "--name",
        "read",
        "--permission",
        "events.list",
        "--permission",
        "events.data_series",
        "--json",
    ).json()
    assert two["permissions"] == ["events.data_series", "events.list"]
    full = cli("keys", "create", "--name", "admin", "--all-permissions", "--json").json()
    assert full["permissions"] == sorted(PERMISSIONS)
    with cli.store() as store:
        for made in (created, two, full):
            found = store.authenticate(made["api_key"])
            assert found is not None
            assert found[1].id == made["id"]
            assert found[1].permissions == frozenset(made["permissions"])


@pytest.mark.parametrize(
    "args",
    [
        ["--permission", "users.trak"],
        ["--permission", "users.track", "--permission", "admin"],
        [],
    ],
    ids=["typo", "one-unknown", "none"],
)
def test_keys_create_refuses_unknown_or_no_permission(
    cli: Cli, initialised: dict[str, str], args: list[str]
) -> None:
    cli.fails("keys", "create", "--name", "bad", *args)
    with cli.store() as store:
        (workspace,) = store.list_workspaces()
        assert [k.name for k in store.list_keys(workspace.id)] == ["init"]


def test_keys_list_never_shows_the_secret(cli: Cli, initialised: dict[str, str]) -> None:
    made = cli("keys", "create", "--name", "reader", "--permission", "events.get", "--json").json()
    secrets = [initialised["api_key"], made["api_key"]]
    text = cli("keys", "list")
    listed = cli("keys", "list", "--json")
    for run in (text, listed):
        assert run.code == 0
        for secret in secrets:
            assert secret not in run.out
            assert secret[8:] not in run.out
            assert secret[:8] in run.out
    rows = listed.json()
    assert [(r["name"], r["prefix"], r["revoked"]) for r in rows] == [
        ("init", initialised["api_key"][:8], False),
        ("reader", made["api_key"][:8], False),
    ]
    assert rows[1]["permissions"] == ["events.get"]


def test_keys_revoke(cli: Cli, initialised: dict[str, str]) -> None:
    made = cli("keys", "create", "--name", "temp", "--all-permissions", "--json").json()
    revoked = cli("keys", "revoke", str(made["id"]), "--json").json()
    assert revoked == {"id": made["id"], "revoked": True}
    rows = cli("keys", "list", "--json").json()
    assert {r["name"]: r["revoked"] for r in rows} == {"init": False, "temp": True}
    with cli.store() as store:
        assert store.authenticate(made["api_key"]) is None
        assert store.authenticate(initialised["api_key"]) is not None
    # Revoking again is harmless; an unknown id is an error.
    assert cli("keys", "revoke", str(made["id"])).code == 0
    assert "999" in cli.fails("keys", "revoke", "999")


def test_keys_of_one_workspace_cannot_be_revoked_from_another(
    cli: Cli, initialised: dict[str, str]
) -> None:
    cli("init", "--json", "--workspace", "other").json()
    rows = cli("keys", "list", "--json").json()
    cli.fails("keys", "revoke", str(rows[0]["id"]), "--workspace", "other")
    with cli.store() as store:
        assert store.authenticate(initialised["api_key"]) is not None


# --- workspaces -------------------------------------------------------------------------


def test_workspaces_list_and_update(cli: Cli, initialised: dict[str, str]) -> None:
    cli("init", "--json", "--workspace", "eu", "--time-zone", "Europe/Paris").json()
    assert cli("workspaces", "list", "--json").json() == [
        {"name": "default", "time_zone": "UTC", "rate_limits": BRAZE_LIMITS},
        {"name": "eu", "time_zone": "Europe/Paris", "rate_limits": BRAZE_LIMITS},
    ]
    updated = cli("workspaces", "update", "default", "--time-zone", "Asia/Tokyo", "--json").json()
    assert updated == {"name": "default", "time_zone": "Asia/Tokyo", "rate_limits": BRAZE_LIMITS}
    text = cli("workspaces", "list")
    assert text.code == 0
    limits = "(rate limits: default 250000/3600s, catalogue 1000/3600s, track 3000/3s)"
    assert text.out.splitlines() == [
        f"default  Asia/Tokyo  {limits}",
        f"eu  Europe/Paris  {limits}",
    ]


BRAZE_LIMITS = {"default": "250000/3600s", "catalogue": "1000/3600s", "track": "3000/3s"}


def test_workspaces_update_rate_limits(cli: Cli, initialised: dict[str, str]) -> None:
    updated = cli(
        "workspaces", "update", "default", "--rate-limit", "track=100000/3",
        "--rate-limit", "catalogue=5/60", "--json",
    ).json()  # fmt: skip
    assert updated["rate_limits"] == {
        "default": "250000/3600s",
        "catalogue": "5/60s",
        "track": "100000/3s",
    }
    assert updated["time_zone"] == "UTC"
    # Later overrides merge into earlier ones.
    again = cli("workspaces", "update", "default", "--rate-limit", "default=10/1", "--json").json()
    assert again["rate_limits"]["catalogue"] == "5/60s"
    assert again["rate_limits"]["default"] == "10/1s"


@pytest.mark.parametrize(
    "limit", ["weekly=1/1", "track=abc", "track=0/3", "track=5/0", "track=5", "track=-1/3"]
)
def test_workspaces_update_with_bad_rate_limit_fails(
    cli: Cli, initialised: dict[str, str], limit: str
) -> None:
    cli.fails("workspaces", "update", "default", "--rate-limit", limit)


@pytest.mark.parametrize("zone", ["Nowhere/City", "", "+05:00"])
def test_workspaces_update_with_bad_zone_fails(
    cli: Cli, initialised: dict[str, str], zone: str
) -> None:
    cli.fails("workspaces", "update", "default", "--time-zone", zone)
    assert [w["time_zone"] for w in cli("workspaces", "list", "--json").json()] == ["UTC"]


def test_workspaces_update_of_unknown_workspace_fails(
    cli: Cli, initialised: dict[str, str]
) -> None:
    assert "nope" in cli.fails("workspaces", "update", "nope", "--time-zone", "UTC")


# --- events -----------------------------------------------------------------------------


def catalogue(cli: Cli) -> list[EventInfo]:
    with cli.store() as store:
        (workspace,) = [w for w in store.list_workspaces() if w.name == "default"]
        return store.event_catalogue(workspace.id, 0, 100)


def test_events_update_sets_every_field(cli: Cli, initialised: dict[str, str]) -> None:
    shown = cli(
        "events",
        "update",
        "checkout",
        "--description",
        "Paid",
        "--tag",
        "Revenue",
        "--tag",
        "Core",
        "--blocklist",
        "--analytics-report",
        "--json",
    ).json()
    assert shown == {
        "name": "checkout",
        "description": "Paid",
        "tag_names": ["Revenue", "Core"],
        "status": "Blocklisted",
        "included_in_analytics_report": True,
    }
    assert catalogue(cli) == [
        EventInfo("checkout", "Paid", ("Revenue", "Core"), True, EventStatus.BLOCKLISTED)
    ]

    # Flags left out keep their values; the opposite flags clear them.
    again = cli("events", "update", "checkout", "--unblocklist", "--no-analytics-report", "--json")
    assert again.json() == {
        "name": "checkout",
        "description": "Paid",
        "tag_names": ["Revenue", "Core"],
        "status": "Active",
        "included_in_analytics_report": False,
    }
    assert catalogue(cli) == [
        EventInfo("checkout", "Paid", ("Revenue", "Core"), False, EventStatus.ACTIVE)
    ]


def test_events_update_normalises_the_name(cli: Cli, initialised: dict[str, str]) -> None:
    shown = cli("events", "update", "  sign\nup  ", "--description", "d", "--json").json()
    assert shown["name"] == "signup"
    assert [e.name for e in catalogue(cli)] == ["signup"]


@pytest.mark.parametrize("name", ["$internal", "   ", "\n"])
def test_events_update_refuses_bad_names(cli: Cli, initialised: dict[str, str], name: str) -> None:
    cli.fails("events", "update", name, "--blocklist")
    assert catalogue(cli) == []


def test_events_update_in_unknown_workspace_fails(cli: Cli, initialised: dict[str, str]) -> None:
    assert "nope" in cli.fails("events", "update", "x", "--workspace", "nope")


@pytest.mark.parametrize(
    "args",
    [
        ["events", "update", "x", "--blocklist", "--unblocklist"],
        ["events", "update", "x", "--analytics-report", "--no-analytics-report"],
    ],
)
def test_events_update_contradictory_flags_are_a_usage_error(
    cli: Cli, initialised: dict[str, str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(*args)
    assert exit_info.value.code == 2


# --- help -------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["init"],
    ["serve"],
    ["demo"],
    ["apps"],
    ["apps", "create"],
    ["apps", "list"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["workspaces"],
    ["workspaces", "list"],
    ["workspaces", "update"],
    ["events"],
    ["events", "update"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "eventtally" for c in COMMANDS])
def test_help_works_for_every_command(
    command: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("usage: eventtally")
    assert " ".join(["eventtally", *command]) in captured.out.splitlines()[0]
    assert not (tmp_path / "data").exists()


def test_console_script_help() -> None:
    script = Path(sys.executable).parent / "eventtally"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: eventtally")
    for command in ("init", "serve", "apps", "keys", "workspaces", "events"):
        assert command in result.stdout


def test_module_runs_as_a_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ok = subprocess.run(
        [sys.executable, "-m", "eventtally.cli", "init", "--json", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert set(json.loads(ok.stdout)) == {"workspace", "app_id", "api_key"}
    again = subprocess.run(
        [sys.executable, "-m", "eventtally.cli", "init", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    assert again.returncode == 1
    assert again.stdout == ""
    assert len(again.stderr.splitlines()) == 1
    assert again.stderr.startswith("eventtally: ")
