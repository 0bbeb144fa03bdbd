"""The `eventtally` command: set up workspaces, apps and keys, curate the catalogue, serve.

Every failure is one line on stderr and exit status 1; secrets are printed only by the
command that creates them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from eventtally import remote
from eventtally.client import EventtallyClientError
from eventtally.domain.instants import from_us
from eventtally.domain.model import (
    PERMISSIONS,
    EventUpdate,
    Segment,
    SegmentChanges,
    Workspace,
    parse_network,
)
from eventtally.domain.names import name_problem, normalize_name
from eventtally.domain.ratelimit import RateBucket, parse_limit
from eventtally.domain.segments import FilterError, filter_to_json, parse_filter
from eventtally.errors import EventtallyError
from eventtally.importer import import_lines
from eventtally.settings import Settings
from eventtally.store.base import Store, new_secret
from eventtally.store.sqlite import SqliteStore

DEFAULT_WORKSPACE = "default"


class CliError(EventtallyError):
    """A command that cannot be carried out; printed as one line, exit status 1."""


def now_us() -> int:
    return time.time_ns() // 1000


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return name


def open_store(args: argparse.Namespace) -> Store:
    settings = Settings.load({"data": args.data})
    return SqliteStore.open(settings.data)


def find_workspace(store: Store, name: str) -> Workspace:
    workspace = store.workspace(name)
    if workspace is None:
        known = ", ".join(w.name for w in store.list_workspaces()) or "none yet: run init"
        raise CliError(f"no workspace named {name!r} (workspaces: {known})")
    return workspace


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value) if getattr(args, "json", False) else text)


# Commands -------------------------------------------------------------------------------
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


def _filter(text: str) -> object:
    """A filter from JSON text, or from a file named after `@`; one-line errors."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return filter_to_json(parse_filter(json.loads(text)))
    except json.JSONDecodeError as exc:
        raise CliError(f"filter: not JSON ({exc.msg} at column {exc.colno})") from None
    except FilterError as exc:
        raise CliError(str(exc)) from None


def _segment_record(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.segment_id,
        "name": segment.name,
        "analytics_tracking_enabled": segment.tracking,
        "filter": segment.filter,
        "description": segment.description,
        "tags": list(segment.tags),
        "teams": list(segment.teams),
        "archived": segment.archived,
        "created_at": from_us(segment.created_at).isoformat(),
        "updated_at": from_us(segment.updated_at).isoformat(),
    }


def _segment_line(segment: Segment) -> str:
    tracking = "tracked" if segment.tracking else "not tracked"
    archived = ", archived" if segment.archived else ""
    return f"{segment.segment_id}  {segment.name}  ({tracking}{archived})"


def _tracked_limit(args: argparse.Namespace) -> int:
    return Settings.load().max_tracked_segments


def cmd_segments_create(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    draft = Segment(
        id=0,
        workspace_id=workspace.id,
        segment_id="",
        name=args.name,
        filter=_filter(args.filter),
        tracking=not args.no_tracking,
        description=args.description,
        tags=tuple(args.tag or ()),
        teams=tuple(args.team or ()),
    )
    segment = store.create_segment(workspace.id, draft, now_us(), _tracked_limit(args))
    emit(args, _segment_record(segment), _segment_line(segment))


def cmd_segments_list(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    found = store.list_segments(workspace.id, include_archived=args.archived)
    emit(
        args,
        [_segment_record(s) for s in found],
        "\n".join(_segment_line(s) for s in found) or "no segments",
    )


def _existing_segment(store: Store, workspace: Workspace, segment_id: str) -> Segment:
    segment = store.find_segment(workspace.id, segment_id)
    if segment is None:
        raise CliError(f"no segment {segment_id!r} in workspace {workspace.name!r}")
    return segment


def cmd_segments_show(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    segment = _existing_segment(store, workspace, args.segment_id)
    record = _segment_record(segment)
    emit(args, record, "\n".join(f"{k}: {json.dumps(v)}" for k, v in record.items()))


def cmd_segments_update(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    _existing_segment(store, workspace, args.segment_id)
    changes = SegmentChanges(
        name=args.name,
        filter=None if args.filter is None else _filter(args.filter),
        tracking=args.tracking,
        description=args.description,
        tags=None if args.tag is None else tuple(args.tag),
        teams=None if args.team is None else tuple(args.team),
    )
    if changes == SegmentChanges():
        raise CliError("nothing to change: give --name, --filter, --tracking, ...")
    segment = store.update_segment(
        workspace.id, args.segment_id, changes, now_us(), _tracked_limit(args)
    )
    emit(args, _segment_record(segment), _segment_line(segment))


def cmd_segments_archive(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    _existing_segment(store, workspace, args.segment_id)
    segment = store.update_segment(
        workspace.id, args.segment_id, SegmentChanges(archived=True), now_us()
    )
    emit(args, _segment_record(segment), _segment_line(segment))


def cmd_import(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    with _input(args.file) as (stream, total):
        progress = Progress(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True, soft_wrap=True),
            disable=args.quiet,
        )
        with progress:
            task = progress.add_task("import", total=total)

            def lines() -> Iterator[str]:
                for line in stream:
                    progress.advance(task, len(line.encode()))
                    yield line

            summary = import_lines(store, workspace.id, lines(), strict=args.strict)
    err = Console(stderr=True, soft_wrap=True)
    for bad in summary.bad_lines:
        err.print(f"line {bad.line}: {bad.reason}", markup=False, highlight=False)
    for rejection in summary.rejected:
        err.print(
            f"line {rejection.line}: {rejection.input_array}: {rejection.error}",
            markup=False,
            highlight=False,
        )
    emit(
        args,
        {
            "attributes_processed": summary.attributes,
            "events_processed": summary.events,
            "purchases_processed": summary.purchases,
            "rejected": len(summary.rejected),
            "unusable_lines": len(summary.bad_lines),
        },
        f"imported {summary.events} events, {summary.attributes} attributes, "
        f"{summary.purchases} purchases; {len(summary.rejected)} items rejected, "
        f"{len(summary.bad_lines)} lines unusable",
    )


@contextmanager
def _input(path: str) -> Iterator[tuple[TextIO, int | None]]:
    """The input stream and its size in bytes, when known (not for stdin)."""
    if path == "-":
        yield sys.stdin, None
        return
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as stream:
            yield stream, Path(path).stat().st_size
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


# Parser ---------------------------------------------------------------------------------
def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data directory of the store (default: $EVENTTALLY_DATA or ./data)",
    )


def _workspace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace",
        default=DEFAULT_WORKSPACE,
        help=f"workspace name (default: {DEFAULT_WORKSPACE})",
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="listen address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: 8080)")


Handler = Callable[[argparse.Namespace, Store], None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventtally",
        description="Self-hosted custom-event analytics that speaks Braze's REST API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        group: Any, name: str, handler: Handler, help_text: str, *options: Callable[..., None]
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
        for option in (_data, *options):
            option(sub)
        sub.set_defaults(handler=handler)
        return sub

    init = add(commands, "init", cmd_init, "Create a workspace with one app and one full key.")
    init.add_argument(
        "--workspace", default=DEFAULT_WORKSPACE, help="workspace name (default: default)"
    )
    init.add_argument("--time-zone", default="UTC", help="IANA reporting zone (default: UTC)")
    _json(init)
    add(commands, "serve", cmd_serve, "Serve the API on the embedded store.", _server)
    add(
        commands,
        "demo",
        cmd_demo,
        "Serve with a demo workspace of sample events and a fresh API key.",
        _server,
    )

    apps = commands.add_parser("apps", help="Manage apps.", description="Manage apps.")
    apps_cmds = apps.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    create = add(apps_cmds, "create", cmd_apps_create, "Add an app.", _workspace, _json)
    create.add_argument("--name", required=True, help="app name")
    add(apps_cmds, "list", cmd_apps_list, "List apps and their app_id.", _workspace, _json)

    keys = commands.add_parser("keys", help="Manage REST API keys.", description="Manage keys.")
    keys_cmds = keys.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    create = add(keys_cmds, "create", cmd_keys_create, "Create a key.", _workspace, _json)
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
    add(keys_cmds, "list", cmd_keys_list, "List keys (prefixes only).", _workspace, _json)
    revoke = add(keys_cmds, "revoke", cmd_keys_revoke, "Revoke a key.", _workspace, _json)
    revoke.add_argument("key_id", type=int, help="the key's id, from keys list")

    spaces = commands.add_parser(
        "workspaces", help="List and update workspaces.", description="Manage workspaces."
    )
    spaces_cmds = spaces.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    add(spaces_cmds, "list", cmd_workspaces_list, "List workspaces.", _json)
    update = add(
        spaces_cmds,
        "update",
        cmd_workspaces_update,
        "Change a workspace's reporting zone or rate limits.",
        _json,
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
        _workspace,
        _json,
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
    segments = commands.add_parser(
        "segments",
        help="Manage segments.",
        description="Manage segments (filter language: docs/segments.md).",
    )
    segments_cmds = segments.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    create = add(
        segments_cmds,
        "create",
        cmd_segments_create,
        "Create a segment; a tracked one gets event series built from stored events.",
        _workspace,
        _json,
    )
    create.add_argument("--name", required=True, help="segment name")
    create.add_argument(
        "--filter", required=True, metavar="JSON_OR_@FILE", help="the filter, or @file holding it"
    )
    create.add_argument(
        "--no-tracking", action="store_true", help="no analytics tracking (no event series)"
    )
    create.add_argument("--description", help="text_description shown by /segments/details")
    create.add_argument("--tag", action="append", metavar="T", help="a tag (repeatable)")
    create.add_argument("--team", action="append", metavar="T", help="a team (repeatable)")
    listing = add(segments_cmds, "list", cmd_segments_list, "List segments.", _workspace, _json)
    listing.add_argument("--archived", action="store_true", help="include archived segments")
    show = add(segments_cmds, "show", cmd_segments_show, "Show one segment.", _workspace, _json)
    show.add_argument("segment_id", help="the segment's id")
    update = add(
        segments_cmds,
        "update",
        cmd_segments_update,
        "Change a segment; a new filter, or tracking switched on, rebuilds its series.",
        _workspace,
        _json,
    )
    update.add_argument("segment_id", help="the segment's id")
    update.add_argument("--name", help="new name")
    update.add_argument("--filter", metavar="JSON_OR_@FILE", help="new filter")
    tracking = update.add_mutually_exclusive_group()
    tracking.add_argument(
        "--tracking", dest="tracking", action="store_const", const=True, help="track it"
    )
    tracking.add_argument(
        "--no-tracking", dest="tracking", action="store_const", const=False, help="stop tracking"
    )
    update.add_argument("--description", help="new text_description")
    update.add_argument("--tag", action="append", metavar="T", help="replace the tags")
    update.add_argument("--team", action="append", metavar="T", help="replace the teams")
    archive = add(
        segments_cmds, "archive", cmd_segments_archive, "Archive a segment.", _workspace, _json
    )
    archive.add_argument("segment_id", help="the segment's id")

    imports = add(
        commands,
        "import",
        cmd_import,
        "Import a JSONL file of Braze objects straight into the store (also while serving).",
        _workspace,
        _json,
    )
    imports.add_argument(
        "file", help="JSONL: a Braze event object or a /users/track body a line; - for stdin"
    )
    imports.add_argument(
        "--strict", action="store_true", help="stop at the first unusable line (default: skip it)"
    )
    imports.add_argument("--quiet", action="store_true", help="no progress bar")
    remote.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "remote"):
            args.remote(args)
        else:
            store = open_store(args)
            try:
                args.handler(args, store)
            finally:
                store.close()
    except (EventtallyError, EventtallyClientError) as exc:
        print(f"eventtally: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _one_line(exc: Exception) -> str:
    text = exc.message if isinstance(exc, EventtallyError) else str(exc)
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
