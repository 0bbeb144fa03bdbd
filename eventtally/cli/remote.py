"""The CLI commands that talk to a running server over HTTP, through `eventtally.Client`:
`query` draws a series in the terminal, `track` sends a JSONL file of Braze objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from eventtally import jsonl, terminal
from eventtally.client import Client
from eventtally.errors import EventtallyError

DEFAULT_URL = "http://127.0.0.1:8080"


class RemoteError(EventtallyError):
    """A remote command that cannot start (no key, unreadable file)."""


def add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help=f"server URL (default: $EVENTTALLY_URL or {DEFAULT_URL})"
    )
    parser.add_argument("--key", default=None, help="REST API key (default: $EVENTTALLY_API_KEY)")


def connect(args: argparse.Namespace) -> Client:
    url = args.url or os.environ.get("EVENTTALLY_URL") or DEFAULT_URL
    key = args.key or os.environ.get("EVENTTALLY_API_KEY")
    if not key:
        raise RemoteError("no API key: pass --key or set EVENTTALLY_API_KEY")
    return Client(url, key)


def cmd_query(args: argparse.Namespace) -> None:
    with connect(args) as client:
        points = client.data_series(
            args.event,
            args.length,
            unit=args.unit,
            ending_at=args.ending_at,
            app_id=args.app,
            segment_id=args.segment,
        )
    pairs = [(point.time, point.count) for point in points]
    if args.format == "json":
        print(terminal.as_json(pairs))
    elif args.format == "csv":
        print(terminal.as_csv(pairs))
    else:
        print(terminal.table(args.event, pairs))


@contextmanager
def _opened(path: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdin
        return
    try:
        with Path(path).open(encoding="utf-8") as stream:
            yield stream
    except OSError as exc:
        raise RemoteError(f"cannot read {path}: {exc.strerror}") from None


def cmd_track(args: argparse.Namespace) -> None:
    with _opened(args.file) as stream:
        batch = jsonl.read(stream)
    err = Console(stderr=True, soft_wrap=True)
    for bad in batch.bad_lines:
        err.print(f"line {bad.line}: {bad.reason}", markup=False, highlight=False)
    if batch.bad_lines and args.strict:
        raise RemoteError(f"{len(batch.bad_lines)} unusable line(s); nothing was sent")
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=args.quiet,
    )
    with connect(args) as client, progress:
        task = progress.add_task("send", total=batch.size)
        result = client.track(
            attributes=batch.items["attributes"],
            events=batch.items["events"],
            purchases=batch.items["purchases"],
            on_progress=lambda n: progress.advance(task, n),
        )
    rejected = [
        {
            "line": batch.lines[error.input_array][error.index],  # type: ignore[index]
            "input_array": error.input_array,
            "error": error.type,
            "item": batch.items[error.input_array][error.index],  # type: ignore[index]
        }
        for error in result.errors
    ]
    if rejected:
        with Path(args.rejected).open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(entry) + "\n" for entry in rejected)
    summary = {
        "requests": result.requests,
        "attributes_processed": result.attributes_processed,
        "events_processed": result.events_processed,
        "purchases_processed": result.purchases_processed,
        "rejected": len(rejected),
        "unusable_lines": len(batch.bad_lines),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"sent {batch.size} items in {result.requests} requests: "
            f"{result.events_processed} events, {result.attributes_processed} attributes, "
            f"{result.purchases_processed} purchases processed; {len(rejected)} rejected"
            + (f" (written to {args.rejected})" if rejected else "")
            + (f"; {len(batch.bad_lines)} unusable lines" if batch.bad_lines else "")
        )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    query = commands.add_parser(
        "query",
        help="Show an event's series in the terminal.",
        description="Ask a running server for an event's series and draw it in the terminal.",
    )
    query.add_argument("event", help="custom event name")
    query.add_argument("--length", type=int, default=14, help="number of points (default: 14)")
    query.add_argument("--unit", choices=["day", "hour"], default="day", help="(default: day)")
    query.add_argument("--ending-at", default=None, help="end of the series (default: now)")
    query.add_argument("--app", default=None, help="only this app_id")
    query.add_argument("--segment", default=None, help="only this segment_id")
    query.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", help="(default: table)"
    )
    add_connection(query)
    query.set_defaults(remote=cmd_query)

    track = commands.add_parser(
        "track",
        help="Send a JSONL file of Braze objects through the HTTP API.",
        description="Send a JSONL file (one Braze event object or one /users/track body a "
        "line) through POST /users/track: 75 items a request, concurrent, retried, with an "
        "Idempotency-Key so a retry never counts twice.",
    )
    track.add_argument("file", help="JSONL file, or - for standard input")
    track.add_argument(
        "--rejected",
        default="rejected.jsonl",
        help="where rejected items go, with their line and error (default: rejected.jsonl)",
    )
    track.add_argument("--strict", action="store_true", help="send nothing if any line is unusable")
    track.add_argument("--quiet", action="store_true", help="no progress bar")
    track.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_connection(track)
    track.set_defaults(remote=cmd_track)
