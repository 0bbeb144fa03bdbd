"""The ClickHouse schema, as numbered migrations (`schema_migrations` records what ran).

Valid on ClickHouse 18.16 (Debian's) and current releases: no `toStartOfInterval`, TTL,
`WITH FILL` or positional GROUP BY; materialized views read only from the table that
is inserted into (18.16 does not cascade a view's rows into the views of its target).

Times are Int64 microseconds since the epoch (UTC), as in the SQLite store.

Ingest writes one block into `journal` (engine Null: it keeps nothing) per group of
requests; materialized views fan its rows out by `kind` into the tables below. One
block is one insert: when the server has it, every view gets its rows, so a node that
dies mid-insert leaves either all of a group (events, profiles, idempotency keys) or
none of it, never events without the key that would stop their retry counting twice.

ClickHouse itself pushes a block through the views one after another, in the order of
their names, and keeps what each wrote if a later one fails (killed, disk full): its
views have no common transaction. The views are named in the order that matters: the
idempotency keys (and migration markers) last, so a key is never stored without the
rest of its request, and a request whose insert failed is applied again, whole, when
retried; what the failed attempt left in the earlier views then counts twice
(docs/deploy.md).

Mutable records (workspaces, keys, the catalogue, segments, profiles, idempotency keys)
are ReplacingMergeTree rows: a change inserts the whole record again with a higher
`version`, and readers take the latest version of each key (argMax), so rows of one key
on several shards, or not merged yet, read the same.

On a cluster (`Layout.cluster`), every table is a local table `NAME_local` on every
server plus a Distributed table `NAME` over them, sharded by user where rows have one;
readers and writers use the Distributed names, so every query is the same text on one
server and on a cluster. The materialized views stay local (journal_local -> X_local): a
block inserted into the Distributed journal reaches each shard's views with its rows.
With ZooKeeper (`Layout.replicated`), local tables are Replicated*MergeTree, keyed in
ZooKeeper by the server's {shard} and {replica} macros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Kinds of journal rows.
EVENT: Final = 1
PROFILE: Final = 2
SIZE_CHANGE: Final = 3
IDEMPOTENCY: Final = 4
NEW_EVENT_NAME: Final = 5
PURCHASE: Final = 6
MIGRATION: Final = 7  # progress of `eventtally migrate` (eventtally.migrate)

# Column name -> type of the journal; ingest fills what its kind uses, defaults elsewhere.
JOURNAL_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("kind", "UInt8"),
    ("workspace_id", "UInt64"),
    ("user", "UInt64"),
    ("name", "String"),
    ("time", "Int64"),
    ("app", "UInt64"),
    ("series", "Array(UInt64)"),
    ("properties", "String"),
    ("braze_id", "String"),
    ("external_id", "String"),
    ("alias", "String"),
    ("email", "String"),
    ("phone", "String"),
    ("attributes", "String"),
    ("segments", "Array(UInt64)"),
    ("updated_at", "Int64"),
    ("created", "UInt64"),
    ("segment", "UInt64"),
    ("delta", "Int64"),
    ("key", "String"),
    ("body_hash", "String"),
    ("outcome", "String"),
    ("expires_at", "Int64"),
    ("version", "UInt64"),
    ("product_id", "String"),
    ("currency", "String"),
    ("price", "Float64"),
    ("quantity", "UInt32"),
    # One random value per inserted block: on a cluster the block goes whole to one shard
    # (the journal is sharded by it), so one insert stays all-or-nothing.
    ("batch", "UInt64"),
)

# A calendar month per partition; times before 1970 share the first one.
_MONTH = "toYYYYMM(toDate(intDiv(greatest(time, toInt64(0)), 86400000000)))"
# The 15-minute slot (store.base.SLOT_US) of `time`, floored (intDiv truncates toward
# zero). `modulo`, not `%`, which the driver's parameter substitution would take.
SLOT = "intDiv(time - modulo(modulo(time, 900000000) + 900000000, 900000000), 900000000)"
_IDENTITY_KINDS = ("external_id", "alias", "braze_id", "email", "phone")


@dataclass(frozen=True)
class Table:
    name: str
    columns: str
    engine: str  # MergeTree, ReplacingMergeTree(version), SummingMergeTree(n) or Null
    order_by: str = ""
    partition_by: str = ""
    shard_by: str = "rand()"  # how a Distributed table spreads rows over the shards


@dataclass(frozen=True)
class View:
    """A materialized view from the journal into `target`; `select` reads `{journal}`."""

    name: str
    target: str
    select: str


@dataclass(frozen=True)
class Layout:
    """Where the tables live: one server, or the shards (and replicas) of a cluster."""

    cluster: str | None = None
    replicated: bool = False

    def local(self, name: str) -> str:
        return f"{name}_local" if self.cluster else name

    def create(self, item: Table | View) -> list[str]:
        """The statements that create `item` on one server (run on every server of a
        cluster), each tolerating what already exists: DDL is not transactional."""
        if isinstance(item, View):
            select = item.select.replace("{journal}", "{db}." + self.local("journal"))
            return [
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{item.name} "
                f"TO {{db}}.{self.local(item.target)} AS {select}"
            ]
        local = self.local(item.name)
        clauses = f"ENGINE = {self._engine(item)}"
        if item.partition_by:
            clauses += f" PARTITION BY {item.partition_by}"
        if item.order_by:
            clauses += f" ORDER BY ({item.order_by})"
        statements = [f"CREATE TABLE IF NOT EXISTS {{db}}.{local} ({item.columns}) {clauses}"]
        if self.cluster:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {{db}}.{item.name} AS {{db}}.{local} "
                f"ENGINE = Distributed({self.cluster}, {{db}}, {local}, {item.shard_by})"
            )
        return statements

    def _engine(self, table: Table) -> str:
        if not self.replicated or table.engine == "Null":
            return table.engine
        kind, _, args = table.engine.partition("(")
        path = f"'/clickhouse/tables/{{shard}}/{{db}}/{table.name}', '{{replica}}'"
        args = args.rstrip(")")
        return f"Replicated{kind}({path}{', ' + args if args else ''})"


_JOURNAL = ", ".join(f"{name} {kind}" for name, kind in JOURNAL_COLUMNS)

MIGRATIONS: Final[tuple[tuple[Table | View, ...], ...]] = (
    (
        Table(
            "workspaces",
            "id UInt64, name String, time_zone String, rate_limits String, "
            "created_at Int64, version UInt64",
            "ReplacingMergeTree(version)",
            "id",
        ),
        Table(
            "apps",
            "id UInt64, workspace_id UInt64, app_id String, name String, created_at Int64",
            "MergeTree",
            "workspace_id, id",
        ),
        Table(
            "api_keys",
            "id UInt64, workspace_id UInt64, name String, prefix String, secret_hash String, "
            "permissions Array(String), allowed_networks Array(String), created_at Int64, "
            "revoked UInt8, version UInt64",
            "ReplacingMergeTree(version)",
            "id",
        ),
        Table(
            "catalogue",
            "workspace_id UInt64, name String, description Nullable(String), "
            "tags Array(String), analytics_report UInt8, blocklisted UInt8, version UInt64",
            "ReplacingMergeTree(version)",
            "workspace_id, name",
        ),
        # `series`: the key its event counts are kept under while tracked (0: not tracked).
        # Every rebuild takes a new one, so counts of an earlier membership never mix in.
        Table(
            "segments",
            "id UInt64, workspace_id UInt64, segment_id String, name String, "
            "description Nullable(String), tags Array(String), teams Array(String), "
            "filter String, tracking UInt8, archived UInt8, created_at Int64, "
            "updated_at Int64, series UInt64, version UInt64",
            "ReplacingMergeTree(version)",
            "workspace_id, id",
        ),
        # A profile as segment filters and identity lookups need it; event counts and
        # apps used are derived from events (user_event_counts, user_apps).
        Table(
            "profiles",
            "workspace_id UInt64, user UInt64, braze_id String, external_id String, "
            "alias String, email String, phone String, attributes String, "
            "segments Array(UInt64), updated_at Int64, created UInt64, version UInt64",
            "ReplacingMergeTree(version)",
            "workspace_id, user",
            shard_by="user",
        ),
        # Who has an identifier (any version of a profile); email and phone change, so a
        # reader checks the profile's current value.
        Table(
            "identities",
            "workspace_id UInt64, identifier String, value String, user UInt64",
            "ReplacingMergeTree",
            "workspace_id, identifier, value, user",
            shard_by="user",
        ),
        Table(
            "events",
            "workspace_id UInt64, name String, time Int64, app UInt64, user UInt64, "
            "series Array(UInt64), properties String",
            "MergeTree",
            "workspace_id, name, time",
            _MONTH,
            shard_by="user",
        ),
        # Events as counted for tracked segments: one row per event and series.
        Table(
            "segment_events",
            "workspace_id UInt64, name String, series UInt64, app UInt64, time Int64",
            "MergeTree",
            "workspace_id, name, series, time",
            _MONTH,
        ),
        Table(
            "purchases",
            "workspace_id UInt64, user UInt64, app UInt64, product_id String, "
            "currency String, price Float64, quantity UInt32, time Int64, properties String",
            "MergeTree",
            "workspace_id, time",
            _MONTH,
            shard_by="user",
        ),
        # The pre-aggregated counts: per event name, series (0: every event), app (0: no
        # app) and 15-minute UTC slot. Readers sum `n`; merges only make that cheaper.
        Table(
            "counts",
            "workspace_id UInt64, name String, series UInt64, app UInt64, slot Int64, n UInt64",
            "SummingMergeTree(n)",
            "workspace_id, name, series, app, slot",
        ),
        Table(
            "user_event_counts",
            "workspace_id UInt64, user UInt64, name String, n UInt64",
            "SummingMergeTree(n)",
            "workspace_id, user, name",
            shard_by="user",
        ),
        Table(
            "user_apps",
            "workspace_id UInt64, user UInt64, app UInt64",
            "ReplacingMergeTree",
            "workspace_id, user, app",
            shard_by="user",
        ),
        Table(
            "segment_changes",
            "segment UInt64, time Int64, delta Int64",
            "MergeTree",
            "segment, time",
        ),
        # Who was a member when a tracked segment's series was rebuilt.
        Table("segment_snapshots", "series UInt64, user UInt64", "MergeTree", "series, user"),
        # One partition per day of expiry: expired keys go a partition at a time.
        Table(
            "idempotency",
            "workspace_id UInt64, key String, body_hash String, outcome String, "
            "expires_at Int64, version UInt64",
            "ReplacingMergeTree(version)",
            "workspace_id, key",
            "intDiv(expires_at, 86400000000)",
        ),
        Table("journal", _JOURNAL, "Null", shard_by="batch"),
        View(
            "journal_01_events",
            "events",
            "SELECT workspace_id, name, time, app, user, series, properties "
            f"FROM {{journal}} WHERE kind = {EVENT}",
        ),
        View(
            "journal_02_segment_events",
            "segment_events",
            "SELECT workspace_id, name, arrayJoin(series) AS series, app, time "
            f"FROM {{journal}} WHERE kind = {EVENT}",
        ),
        View(
            "journal_03_counts",
            "counts",
            f"SELECT workspace_id, name, toUInt64(0) AS series, app, {SLOT} AS slot, "
            f"count() AS n FROM {{journal}} WHERE kind = {EVENT} "
            "GROUP BY workspace_id, name, app, slot",
        ),
        View(
            "journal_04_segment_counts",
            "counts",
            f"SELECT workspace_id, name, arrayJoin(series) AS series, app, {SLOT} AS slot, "
            f"count() AS n FROM {{journal}} WHERE kind = {EVENT} "
            "GROUP BY workspace_id, name, series, app, slot",
        ),
        View(
            "journal_05_user_event_counts",
            "user_event_counts",
            "SELECT workspace_id, user, name, count() AS n "
            f"FROM {{journal}} WHERE kind = {EVENT} GROUP BY workspace_id, user, name",
        ),
        View(
            "journal_06_user_apps",
            "user_apps",
            "SELECT workspace_id, user, app FROM {journal} "
            f"WHERE kind IN ({EVENT}, {PURCHASE}) AND app != 0",
        ),
        View(
            "journal_07_purchases",
            "purchases",
            "SELECT workspace_id, user, app, product_id, currency, price, quantity, time, "
            f"properties FROM {{journal}} WHERE kind = {PURCHASE}",
        ),
        View(
            "journal_08_profiles",
            "profiles",
            "SELECT workspace_id, user, braze_id, external_id, alias, email, phone, "
            "attributes, segments, updated_at, created, version "
            f"FROM {{journal}} WHERE kind = {PROFILE}",
        ),
        *(
            View(
                f"journal_09_identities_{kind}",
                "identities",
                f"SELECT workspace_id, '{kind}' AS identifier, {kind} AS value, user "
                f"FROM {{journal}} WHERE kind = {PROFILE} AND {kind} != ''",
            )
            for kind in _IDENTITY_KINDS
        ),
        View(
            "journal_10_size_changes",
            "segment_changes",
            f"SELECT segment, time, delta FROM {{journal}} WHERE kind = {SIZE_CHANGE}",
        ),
        View(
            "journal_99_idempotency",
            "idempotency",
            "SELECT workspace_id, key, body_hash, outcome, expires_at, version "
            f"FROM {{journal}} WHERE kind = {IDEMPOTENCY}",
        ),
        View(
            "journal_11_catalogue",
            "catalogue",
            "SELECT workspace_id, name, CAST(NULL AS Nullable(String)) AS description, "
            "CAST([] AS Array(String)) AS tags, toUInt8(0) AS analytics_report, "
            "toUInt8(0) AS blocklisted, toUInt64(0) AS version "
            f"FROM {{journal}} WHERE kind = {NEW_EVENT_NAME}",
        ),
    ),
    # `eventtally migrate`: how far each step of a copy from a SQLite store got; a
    # marker is inserted in the same block as the rows it counts (eventtally.migrate).
    (
        Table(
            "migration_progress",
            "migration String, step String, position Int64, rows Int64, at Int64",
            "MergeTree",
            "migration, step, position",
        ),
        View(
            "journal_99_migration_progress",
            "migration_progress",
            "SELECT key AS migration, name AS step, time AS position, delta AS rows, "
            f"updated_at AS at FROM {{journal}} WHERE kind = {MIGRATION}",
        ),
    ),
)
