"""`eventtally import`: JSONL straight into the store, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
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

from eventtally.cli.common import CliError, add, emit, find_workspace
from eventtally.importer import import_lines
from eventtally.store.base import Store

PROGRESS_EVERY = 4096  # lines


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
                # The bar moves by the bytes read, every few thousand lines: redrawing
                # it costs more than a line's import.
                read = 0
                for number, line in enumerate(stream, start=1):
                    read += len(line.encode())
                    if number % PROGRESS_EVERY == 0:
                        progress.update(task, completed=read)
                    yield line
                progress.update(task, completed=read)

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


def register(commands: Any) -> None:
    imports = add(
        commands,
        "import",
        cmd_import,
        "Import a JSONL file of Braze objects straight into the store (also while serving).",
        workspace=True,
        json=True,
        ingest=True,
    )
    imports.add_argument(
        "file", help="JSONL: a Braze event object or a /users/track body a line; - for stdin"
    )
    imports.add_argument(
        "--strict", action="store_true", help="stop at the first unusable line (default: skip it)"
    )
    imports.add_argument("--quiet", action="store_true", help="no progress bar")
