"""`eventtally migrate`: copy a SQLite store into a ClickHouse store, with a progress bar
and a table of counts in both at the end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from eventtally.cli.common import STORE_URL, CliError, cluster_option
from eventtally.errors import StoreError
from eventtally.migrate import CHUNK, Outcome, migrate_sqlite
from eventtally.settings import Settings


class _Rate(ProgressColumn):
    """Records a second (rich's own speed columns count bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s")


class _Bar:
    """eventtally.migrate.Progress as rich bars, one per step, shown from the first step
    on: a migration refused before it starts prints only its error."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.shown = False

    def start(self, step: str, total: int, done: int) -> None:
        if not self.tasks:
            self.progress.start()
            self.shown = True
        self.tasks[step] = self.progress.add_task(step, total=total, completed=done)

    def advance(self, step: str, rows: int) -> None:
        self.progress.advance(self.tasks[step], rows)

    def stop(self) -> None:
        if self.shown:
            self.progress.stop()
            self.shown = False


def cmd_migrate(args: argparse.Namespace) -> None:
    if args.chunk < 1:
        raise CliError("--chunk must be at least 1")
    err = Console(stderr=True, soft_wrap=True)
    bar = _Bar(
        Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TimeRemainingColumn(),
            console=err,
            disable=args.quiet,
        )
    )
    try:
        outcome = migrate_sqlite(
            args.source,
            args.target,
            chunk=args.chunk,
            progress=bar,
            cluster=Settings.load({"cluster": args.cluster}).cluster or None,
        )
    except KeyboardInterrupt:
        bar.stop()
        # Each chunk copied landed with its marker: the next run goes on after the last.
        err.print("interrupted: run the same command again to resume", highlight=False)
        raise
    except StoreError as exc:  # ClickHouse went away, say: what is in stays in
        raise CliError(f"{exc.message}; run the same command again to resume") from None
    finally:
        bar.stop()
    Console(soft_wrap=True).print(_table(outcome))
    differ = [check for check in outcome.checks if not check.ok]
    if differ:
        raise CliError(
            f"{len(differ)} of {len(outcome.checks)} counts differ between the source and "
            f"{outcome.target} (marked in the table)"
        )
    how = "already migrated" if outcome.finished_before else "migrated"
    print(f"{how} into {outcome.target}: all {len(outcome.checks)} counts match")


def _table(outcome: Outcome) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("workspace")
    table.add_column("record")
    table.add_column("SQLite", justify="right")
    table.add_column("ClickHouse", justify="right")
    table.add_column("")
    for check in outcome.checks:
        table.add_row(
            Text(check.workspace),
            Text(check.record),
            f"{check.source:,}",
            f"{check.target:,}",
            "ok" if check.ok else Text("DIFFERS", style="bold red"),
        )
    return table


def register(commands: Any) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="Copy a SQLite store into a ClickHouse store.",
        description="Copy a SQLite store (also while it serves) into a ClickHouse store: "
        "workspaces, keys, apps, users, the catalogue, segments, events, purchases and live "
        "idempotency keys; then compare the counts of both. Cut short, it resumes where it "
        "stopped when run again; a target already holding the source's workspaces is refused.",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="DIR",
        type=Path,
        required=True,
        help="data directory of the SQLite store",
    )
    migrate.add_argument(
        "--to",
        dest="target",
        metavar="URL",
        required=True,
        help=f"the ClickHouse store: {STORE_URL}",
    )
    migrate.add_argument(
        "--chunk",
        type=int,
        default=CHUNK,
        metavar="N",
        help=f"source records per insert (default: {CHUNK:,})",
    )
    cluster_option(migrate)
    migrate.add_argument("--quiet", action="store_true", help="no progress bar")
    # Runs without a store of its own (cli.main's `remote` path): it opens both itself.
    migrate.set_defaults(remote=cmd_migrate)
