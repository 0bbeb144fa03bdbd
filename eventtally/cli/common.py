"""What every CLI command shares: one-line errors, the store, the workspace, output."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventtally.domain.model import Workspace
from eventtally.errors import EventtallyError
from eventtally.settings import Settings
from eventtally.store.base import Store
from eventtally.store.sqlite import SqliteStore

DEFAULT_WORKSPACE = "default"
STORE_URL = "clickhouse://HOST:PORT/DATABASE"


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
    """The store --store names (or $EVENTTALLY_STORE); without one, SQLite in --data."""
    settings = Settings.load(
        {"data": args.data, "store": args.store, "redis": args.redis, "cluster": args.cluster}
    )
    if not settings.store:
        for name in ("redis", "cluster"):
            if getattr(settings, name):
                raise CliError(
                    f"--{name} is for a ClickHouse store (give --store too, or leave --{name} out)"
                )
        return SqliteStore.open(settings.data, ingest_process=args.ingest_process)
    _check_store_url(settings.store, "--store" if args.store is not None else "EVENTTALLY_STORE")
    # Imported only here: commands on the SQLite store need not load the ClickHouse driver.
    from eventtally.store.clickhouse import ClickHouseStore

    return ClickHouseStore.open(
        settings.store,
        redis=settings.redis or None,
        cluster=settings.cluster or None,
        timeout=settings.clickhouse_timeout,
    )


def _check_store_url(url: str, source: str) -> None:
    # Only the scheme is named back: the rest of the URL may hold a password.
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise CliError(
            f"{source}: not a store URL (expected {STORE_URL}; the SQLite store takes --data)"
        )
    if scheme.lower() != "clickhouse":
        raise CliError(f"{source}: unknown store scheme {scheme!r} (expected {STORE_URL})")


def find_workspace(store: Store, name: str) -> Workspace:
    workspace = store.workspace(name)
    if workspace is None:
        known = ", ".join(w.name for w in store.list_workspaces()) or "none yet: run init"
        raise CliError(f"no workspace named {name!r} (workspaces: {known})")
    return workspace


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value) if getattr(args, "json", False) else text)


# Options ------------------------------------------------------------------------------------
def data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data directory of the SQLite store (default: $EVENTTALLY_DATA or ./data)",
    )


def store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help=f"store URL: {STORE_URL} (default: $EVENTTALLY_STORE, or the SQLite store in --data)",
    )


def cluster_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        default=None,
        help="shard the ClickHouse store over this cluster of ClickHouse's remote_servers "
        "(default: $EVENTTALLY_CLUSTER; none: one server)",
    )


def redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help="Redis shared by several nodes on one ClickHouse store: redis://HOST:PORT/DB "
        "(default: $EVENTTALLY_REDIS; none for a single node)",
    )


def workspace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace",
        default=DEFAULT_WORKSPACE,
        help=f"workspace name (default: {DEFAULT_WORKSPACE})",
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="listen address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: 8080)")


Handler = Callable[[argparse.Namespace, Store], None]


def add(
    group: Any,
    name: str,
    handler: Handler,
    help_text: str,
    *,
    workspace: bool = False,
    json: bool = False,
    server: bool = False,
    ingest: bool = False,
) -> argparse.ArgumentParser:
    """A command that works on the store: it takes --data and --store, and the options
    asked for. An `ingest` command (serve, import) applies track requests in a process
    of their own on the SQLite store (store/ingest_process.py)."""
    sub: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
    data_option(sub)
    store_option(sub)
    cluster_option(sub)
    redis_option(sub)
    if workspace:
        workspace_option(sub)
    if json:
        json_option(sub)
    if server:
        server_option(sub)
    sub.set_defaults(handler=handler, ingest_process=ingest)
    return sub
