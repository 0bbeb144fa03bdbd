"""Every setting, declared once: name, default, help. The CLI, env vars and docs read this table.

Each setting can be given as an `EVENTTALLY_<NAME>` environment variable; a CLI flag,
where there is one, wins over the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from eventtally.errors import EventtallyError


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "EVENTTALLY_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data", Path("data"), "Directory of the embedded SQLite store."),
    Setting(
        "store",
        "",
        "Store URL: `clickhouse://HOST:PORT/DATABASE` for ClickHouse; empty for the embedded "
        "SQLite store in `data`.",
    ),
    Setting(
        "cluster",
        "",
        "ClickHouse cluster (a name in its `remote_servers`) the store's tables are sharded "
        "over: local tables on every server and Distributed tables, replicated when ZooKeeper "
        "is configured. Empty: one ClickHouse server.",
    ),
    Setting(
        "clickhouse_timeout",
        30.0,
        "Seconds a request waits for ClickHouse before it is answered 503 (a hung or "
        "unreachable server); segment rebuilds and migrations may take longer.",
    ),
    Setting(
        "redis",
        "",
        "Redis URL (`redis://HOST:PORT/DB`) shared by several API nodes on one ClickHouse "
        "store: they take turns writing and count rate-limit windows together. Empty: one node.",
    ),
    Setting("host", "127.0.0.1", "Address `serve` listens on."),
    Setting("port", 8080, "Port `serve` listens on."),
    Setting(
        "max_body_bytes",
        4 * 1024 * 1024,
        "Largest request body accepted; larger ones get 413 (Braze's 4 MB limit).",
    ),
    Setting(
        "trusted_proxies",
        "",
        "Comma-separated addresses or CIDR networks of reverse proxies whose "
        "`X-Forwarded-For` is believed when checking a key's IP allowlist.",
    ),
    Setting(
        "max_tracked_segments",
        25,
        "Segments a workspace may track for analytics at once (Braze allows 25 per app).",
    ),
    Setting(
        "legacy_api_key",
        False,
        "Also accept the deprecated `api_key` query parameter (contract 8.17).",
    ),
    Setting(
        "key_cache_seconds",
        1.0,
        "Seconds `serve` trusts an API key it has checked before asking the store again: a "
        "key revoked, or a workspace's limits or zone changed, by another process (the CLI, "
        "another node) takes effect within this; changes made by the server itself, at once. "
        "0: ask the store on every request.",
    ),
    Setting(
        "idempotency_retention",
        3600,
        "Seconds an `Idempotency-Key` of `POST /users/track` (and the key of each request "
        "of `eventtally import`: docs/import.md) is remembered (contract 8.24); a reuse "
        "after that is a new request.",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    data: Path = Path("data")
    # The URL may carry a password (clickhouse://USER:PASSWORD@HOST/DATABASE).
    store: str = field(default="", repr=False)
    cluster: str = ""
    clickhouse_timeout: float = 30.0
    redis: str = field(default="", repr=False)  # may carry a password too
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    trusted_proxies: str = ""
    max_tracked_segments: int = 25
    legacy_api_key: bool = False
    key_cache_seconds: float = 1.0
    idempotency_retention: int = 3600

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Defaults, then `EVENTTALLY_*` variables, then explicit overrides (None is skipped)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is not None:
                values[setting.name] = _cast(setting, raw)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        return cls(**values)


def _cast(setting: Setting, raw: str) -> Any:
    kind = type(setting.default)
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise EventtallyError(f"{setting.env}={raw!r} is not a valid {kind.__name__}") from None


assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings)], "settings table drift"
