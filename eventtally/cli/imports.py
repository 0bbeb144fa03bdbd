"""`eventtally import`: JSONL or CSV straight into the store, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from eventtally import jsonl
from eventtally.cli.common import CliError, add, emit, find_workspace
from eventtally.csv_events import CsvEvents, MappingError
from eventtally.importer import import_entries
from eventtally.settings import Settings
from eventtally.store.base import Store

PROGRESS_EVERY = 4096  # lines


def cmd_import(args: argparse.Namespace, store: Store) -> None:
    workspace = find_workspace(store, args.workspace)
    csv_input = (args.format or ("csv" if args.file.lower().endswith(".csv") else "jsonl")) == "csv"
    if args.map and not csv_input:
        raise CliError("--map maps the columns of CSV input (--format csv, or a .csv file)")
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
                # The bar moves by the bytes read, every few thousand lines: redrawing
                # it costs more than a line's import.
                read = 0
                for number, line in enumerate(stream, start=1):
                    read += len(line.encode())
                    if number % PROGRESS_EVERY == 0:
                        progress.update(task, completed=read)
                    yield line
                progress.update(task, completed=read)

            entries: Iterable[jsonl.Entry]
            if csv_input:
                try:
                    entries = CsvEvents(lines(), args.map)
                except MappingError as exc:
                    raise CliError(str(exc)) from None
                if entries.ignored:
                    progress.console.print(
                        f"ignored columns: {', '.join(entries.ignored)}",
                        markup=False,
                        highlight=False,
                    )
            else:
                entries = jsonl.by_line(lines())
            summary = import_entries(
                store,
                workspace.id,
                entries,
                strict=args.strict,
                retention_s=Settings.load().idempotency_retention,
            )
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
            "already_processed": summary.already_processed,
        },
        f"imported {summary.events} events, {summary.attributes} attributes, "
        f"{summary.purchases} purchases; {len(summary.rejected)} items rejected, "
        f"{len(summary.bad_lines)} lines unusable"
        + (
            f"; {summary.already_processed} items processed by an earlier run, skipped"
            if summary.already_processed
            else ""
        ),
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


def register(commands: Any) -> None:
    imports = add(
        commands,
        "import",
        cmd_import,
        "Import a JSONL or CSV file of Braze objects straight into the store (also while serving).",
        workspace=True,
        json=True,
        ingest=True,
    )
    imports.add_argument(
        "file",
        help="JSONL: a Braze event object or a /users/track body a line; CSV: a header row, "
        "then an event a row (docs/import.md); - for stdin",
    )
    imports.add_argument(
        "--format",
        choices=["jsonl", "csv"],
        help="the input's format (default: csv for a .csv file, else jsonl)",
    )
    imports.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD[:TYPE]=COLUMN",
        help="CSV: fill an event field (name, time, external_id, app_id, "
        "user_alias.alias_name, properties.KEY, ...) from this column; a property may be "
        "typed: string (default), integer, float, boolean. A column headed with a field's "
        "name fills it without --map",
    )
    imports.add_argument(
        "--strict", action="store_true", help="stop at the first unusable line (default: skip it)"
    )
    imports.add_argument("--quiet", action="store_true", help="no progress bar")
