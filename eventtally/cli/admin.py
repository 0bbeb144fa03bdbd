"""Setting up: workspaces, apps, keys, the event catalogue, and serving."""

from __future__ import annotations

import argparse
from typing import Any

from eventtally.cli.common import (
    DEFAULT_WORKSPACE,
    CliError,
    add,
    check_zone,
    emit,
    find_workspace,
    json_option,
    now_us,
)
from eventtally.domain.model import PERMISSIONS, EventUpdate, Workspace, parse_network
from eventtally.domain.names import name_problem, normalize_name
from eventtally.domain.ratelimit import RateBucket, parse_limit
from eventtally.settings import Settings
from eventtally.store.base import Store, new_secret


def cmd_init(args: argparse.Namespace, store: Store) -> None:
    zone = check_zone(args.time_zone)
    now = now_us()
    workspace = store.create_workspace(args.workspace, zone, now)
    app = store.create_app(workspace.id, "default app", now)
    secret = new_secret()
    store.add_key(workspace.id, "init", secret, frozenset(PERMISSIONS), now)
    emit(
        args,
        {"workspace": workspace.name, "app_id": app.app_id, "api_key": secret},
        f"workspace: {workspace.name} (reporting zone {zone})\n"
        f"app_id:    {app.app_id}\n"
        f"api_key:   {secret}\n"
        "The key is shown only now; keep it somewhere safe.",
    )


def cmd_serve(args: argparse.Namespace, store: Store) -> None:
    from eventtally.server import run

    settings = Settings.load({"data": args.data, "host": args.host, "port": args.port})
    url = f"http://{settings.host}:{settings.port}"
    run(store, settings, on_ready=lambda: print(f"eventtally serving on {url}", flush=True))


def cmd_demo(args: argparse.Namespace, store: Store) -> None:
    from eventtally.demo import ensure_demo
    from eventtally.server import run

    settings = Settings.load({"data": args.data, "host": args.host, "port": args.port})
    workspace, apps = ensure_demo(store, now_us())
    secret = new_secret()
    store.add_key(workspace.id, "demo", secret, frozenset(PERMISSIONS), now_us())
    url = f"http://{settings.host}:{settings.port}"

    def ready() -> None:
        print(
            f"eventtally demo serving on {url}\n"
            f"  workspace {workspace.name} (reporting zone {workspace.time_zone}), "
            f"apps {', '.join(a.app_id for a in apps)}\n"
            f"  API key (new on every run): {secret}\n"
            f"  try: curl -G -d event=app_open -d length=7 -d unit=day "
            f'-H "Authorization: Bearer {secret}" {url}/events/data_series',
            flush=True,
        )

    run(store, settings, on_ready=ready)


def cmd_apps_create(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    app = store.create_app(workspace.id, args.name, now_us())
    emit(args, {"app_id": app.app_id, "name": app.name}, app.app_id)


def cmd_apps_list(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    apps = store.list_apps(workspace.id)
    emit(
        args,
        [{"app_id": a.app_id, "name": a.name} for a in apps],
        "\n".join(f"{a.app_id}  {a.name}" for a in apps) or "no apps",
    )


def cmd_keys_create(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    permissions = set(PERMISSIONS if args.all_permissions else args.permission or [])
    if not permissions:
        raise CliError("give at least one --permission, or --all-permissions")
    unknown = sorted(permissions - set(PERMISSIONS))
    if unknown:
        raise CliError(f"unknown permission {unknown[0]!r} (known: {', '.join(PERMISSIONS)})")
    try:
        networks = tuple(parse_network(text) for text in args.allow_ip or [])
    except ValueError as exc:
        raise CliError(str(exc)) from None
    secret = new_secret()
    key = store.add_key(workspace.id, args.name, secret, frozenset(permissions), now_us(), networks)
    emit(
        args,
        {
            "id": key.id,
            "api_key": secret,
            "permissions": sorted(permissions),
            "allowed_networks": list(networks),
        },
        f"key {key.id}: {secret}\nThe key is shown only now; keep it somewhere safe.",
    )


def cmd_keys_list(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    keys = store.list_keys(workspace.id)
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "permissions": sorted(k.permissions),
            "allowed_networks": list(k.allowed_networks),
            "revoked": k.revoked,
        }
        for k in keys
    ]
    text = "\n".join(
        f"{k.id:>4}  {k.prefix}…  {k.name}{'  (revoked)' if k.revoked else ''}  "
        f"{','.join(sorted(k.permissions))}"
        + (f"  from {','.join(k.allowed_networks)}" if k.allowed_networks else "")
        for k in keys
    )
    emit(args, rows, text or "no keys")


def cmd_keys_revoke(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    key = store.revoke_key(workspace.id, args.key_id, now_us())
    emit(args, {"id": key.id, "revoked": True}, f"key {key.id} revoked")


def _workspace_record(workspace: Workspace) -> dict[str, Any]:
    return {
        "name": workspace.name,
        "time_zone": workspace.time_zone,
        "rate_limits": {b.value: str(workspace.limit(b)) for b in RateBucket},
    }


def _workspace_line(workspace: Workspace) -> str:
    limits = ", ".join(f"{b.value} {workspace.limit(b)}" for b in RateBucket)
    return f"{workspace.name}  {workspace.time_zone}  (rate limits: {limits})"


def cmd_workspaces_list(args: argparse.Namespace, store: Store) -> None:
    workspaces = store.list_workspaces()
    emit(
        args,
        [_workspace_record(w) for w in workspaces],
        "\n".join(_workspace_line(w) for w in workspaces) or "no workspaces",
    )


def cmd_workspaces_update(args: argparse.Namespace, store: Store) -> None:
    find_workspace(store, args.name)
    if args.time_zone is None and not args.rate_limit:
        raise CliError("give --time-zone and/or --rate-limit")
    try:
        limits = dict(parse_limit(text) for text in args.rate_limit or [])
    except ValueError as exc:
        raise CliError(str(exc)) from None
    zone = None if args.time_zone is None else check_zone(args.time_zone)
    workspace = store.update_workspace(args.name, zone, limits)
    emit(args, _workspace_record(workspace), _workspace_line(workspace))


def cmd_events_update(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    name = normalize_name(args.name)
    problem = name_problem(name)
    if problem is not None:
        raise CliError(f"event name {args.name!r}: {problem}")
    info = store.update_event(
        workspace.id,
        name,
        EventUpdate(
            description=args.description,
            tags=tuple(args.tag) if args.tag is not None else None,
            blocklisted=args.blocklist,
            included_in_analytics_report=args.analytics_report,
        ),
    )
    emit(
        args,
        {
            "name": info.name,
            "description": info.description,
            "tag_names": list(info.tags),
            "status": str(info.status),
            "included_in_analytics_report": info.included_in_analytics_report,
        },
        f"{info.name}: {info.status}, tags {list(info.tags)}",
    )


def register(commands: Any) -> None:
    init = add(commands, "init", cmd_init, "Create a workspace with one app and one full key.")
    init.add_argument(
        "--workspace", default=DEFAULT_WORKSPACE, help="workspace name (default: default)"
    )
    init.add_argument("--time-zone", default="UTC", help="IANA reporting zone (default: UTC)")
    json_option(init)
    add(commands, "serve", cmd_serve, "Serve the API on the store.", server=True, ingest=True)
    add(
        commands,
        "demo",
        cmd_demo,
        "Serve with a demo workspace of sample events and a fresh API key.",
        server=True,
        ingest=True,
    )

    apps = commands.add_parser("apps", help="Manage apps.", description="Manage apps.")
    apps_cmds = apps.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    create = add(apps_cmds, "create", cmd_apps_create, "Add an app.", workspace=True, json=True)
    create.add_argument("--name", required=True, help="app name")
    add(
        apps_cmds,
        "list",
        cmd_apps_list,
        "List apps and their app_id.",
        workspace=True,
        json=True,
    )

    keys = commands.add_parser("keys", help="Manage REST API keys.", description="Manage keys.")
    keys_cmds = keys.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    create = add(keys_cmds, "create", cmd_keys_create, "Create a key.", workspace=True, json=True)
    create.add_argument("--name", required=True, help="a name to recognise the key by")
    create.add_argument(
        "--permission",
        action="append",
        metavar="NAME",
        help=f"a Braze permission name, repeatable ({', '.join(PERMISSIONS)})",
    )
    create.add_argument("--all-permissions", action="store_true", help="every permission")
    create.add_argument(
        "--allow-ip",
        action="append",
        metavar="CIDR",
        help="only accept the key from this address or network (repeatable; default: anywhere)",
    )
    add(
        keys_cmds,
        "list",
        cmd_keys_list,
        "List keys (prefixes only).",
        workspace=True,
        json=True,
    )
    revoke = add(keys_cmds, "revoke", cmd_keys_revoke, "Revoke a key.", workspace=True, json=True)
    revoke.add_argument("key_id", type=int, help="the key's id, from keys list")

    spaces = commands.add_parser(
        "workspaces", help="List and update workspaces.", description="Manage workspaces."
    )
    spaces_cmds = spaces.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    add(spaces_cmds, "list", cmd_workspaces_list, "List workspaces.", json=True)
    update = add(
        spaces_cmds,
        "update",
        cmd_workspaces_update,
        "Change a workspace's reporting zone or rate limits.",
        json=True,
    )
    update.add_argument("name", help="workspace name")
    update.add_argument("--time-zone", help="new IANA reporting zone")
    update.add_argument(
        "--rate-limit",
        action="append",
        metavar="BUCKET=N/SECONDS",
        help="override a rate limit, repeatable: default=250000/3600, catalogue=1000/3600, "
        "track=3000/3 are Braze's",
    )

    events = commands.add_parser(
        "events", help="Curate the event catalogue.", description="Curate the event catalogue."
    )
    events_cmds = events.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    update = add(
        events_cmds,
        "update",
        cmd_events_update,
        "Set an event's catalogue metadata.",
        workspace=True,
        json=True,
    )
    update.add_argument("name", help="event name")
    update.add_argument("--description", help="description shown by GET /events")
    update.add_argument("--tag", action="append", metavar="T", help="a tag (repeatable)")
    block = update.add_mutually_exclusive_group()
    block.add_argument(
        "--blocklist",
        dest="blocklist",
        action="store_const",
        const=True,
        help="drop the event at ingest; hidden from /events/list and series",
    )
    block.add_argument(
        "--unblocklist",
        dest="blocklist",
        action="store_const",
        const=False,
        help="accept the event again",
    )
    report = update.add_mutually_exclusive_group()
    report.add_argument(
        "--analytics-report",
        dest="analytics_report",
        action="store_const",
        const=True,
        help="set included_in_analytics_report",
    )
    report.add_argument(
        "--no-analytics-report",
        dest="analytics_report",
        action="store_const",
        const=False,
        help="clear included_in_analytics_report",
    )
