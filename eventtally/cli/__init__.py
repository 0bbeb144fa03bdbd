"""The `eventtally` command: set up workspaces, apps, keys and segments, import, serve,
and talk to a running server (`query`, `track`).

Every failure is one line on stderr and exit status 1; secrets are printed only by the
command that creates them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from eventtally.cli import admin, imports, migrate, remote, segments
from eventtally.cli.common import CliError, open_store
from eventtally.client import EventtallyClientError
from eventtally.errors import EventtallyError

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventtally",
        description="Self-hosted custom-event analytics that speaks Braze's REST API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(commands)
    segments.register(commands)
    imports.register(commands)
    migrate.register(commands)
    remote.register(commands)
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
