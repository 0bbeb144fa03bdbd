"""`eventtally segments`: create, list, show, update, archive."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eventtally.cli.common import (
    CliError,
    add,
    emit,
    find_workspace,
    now_us,
)
from eventtally.domain.instants import from_us
from eventtally.domain.model import Segment, SegmentChanges, Workspace
from eventtally.domain.segments import FilterError, filter_to_json, parse_filter
from eventtally.settings import Settings
from eventtally.store.base import Store


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


def _tracked_limit() -> int:
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
    segment = store.create_segment(workspace.id, draft, now_us(), _tracked_limit())
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
        workspace.id, args.segment_id, changes, now_us(), _tracked_limit()
    )
    emit(args, _segment_record(segment), _segment_line(segment))


def cmd_segments_archive(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    _existing_segment(store, workspace, args.segment_id)
    segment = store.update_segment(
        workspace.id, args.segment_id, SegmentChanges(archived=True), now_us()
    )
    emit(args, _segment_record(segment), _segment_line(segment))


def register(commands: Any) -> None:
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
        workspace=True,
        json=True,
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
    listing = add(
        segments_cmds, "list", cmd_segments_list, "List segments.", workspace=True, json=True
    )
    listing.add_argument("--archived", action="store_true", help="include archived segments")
    show = add(
        segments_cmds, "show", cmd_segments_show, "Show one segment.", workspace=True, json=True
    )
    show.add_argument("segment_id", help="the segment's id")
    update = add(
        segments_cmds,
        "update",
        cmd_segments_update,
        "Change a segment; a new filter, or tracking switched on, rebuilds its series.",
        workspace=True,
        json=True,
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
        segments_cmds,
        "archive",
        cmd_segments_archive,
        "Archive a segment.",
        workspace=True,
        json=True,
    )
    archive.add_argument("segment_id", help="the segment's id")
