"""Shared test helpers: an in-process API over a real store (SQLite in a temporary
directory unless a test brings its own)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from eventtally.domain.model import PERMISSIONS, Workspace
from eventtally.settings import Settings
from eventtally.store.base import Store, new_secret
from eventtally.store.sqlite import SqliteStore
from eventtally.web.app import create_app, now_us


@dataclass
class Api:
    client: TestClient
    store: Store
    workspace: Workspace
    key: str
    app_ids: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def track(self, body: Any) -> Any:
        return self.client.post("/users/track", json=body, headers=self.auth)

    def series(self, **params: Any) -> Any:
        return self.client.get("/events/data_series", params=params, headers=self.auth)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.auth)

    def new_key(self, *permissions: str, networks: tuple[str, ...] = ()) -> str:
        secret = new_secret()
        self.store.add_key(
            self.workspace.id, "test", secret, frozenset(permissions), now_us(), networks
        )
        return secret


@contextmanager
def running_api(
    data_dir: Path,
    time_zone: str = "UTC",
    apps: int = 2,
    clock: Any = now_us,
    settings: Settings | None = None,
    peer: str = "testclient",
    store_class: type[SqliteStore] = SqliteStore,
    store: Store | None = None,
) -> Iterator[Api]:
    """A workspace with `apps` apps and an all-permission key, served in process, on
    `store` if given (the caller closes it), else on a SQLite store in `data_dir`."""
    own = store is None
    if store is None:
        store = store_class.open(data_dir)
    try:
        now = now_us()
        workspace = store.create_workspace("test", time_zone, now)
        app_ids = [store.create_app(workspace.id, f"app{i}", now).app_id for i in range(apps)]
        secret = new_secret()
        store.add_key(workspace.id, "all", secret, frozenset(PERMISSIONS), now)
        app = create_app(store, settings, clock=clock)
        with TestClient(app, raise_server_exceptions=False, client=(peer, 50000)) as client:
            yield Api(client, store, workspace, secret, app_ids)
    finally:
        if own:
            store.close()


@contextmanager
def held(store: SqliteStore) -> Iterator[None]:
    """Hold the writer: what is submitted meanwhile is applied as one group."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)

    done = store._submit(hold)
    assert entered.wait(10)
    try:
        yield
    finally:
        release.set()
        done.result(10)
