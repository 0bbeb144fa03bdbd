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

Mutable records (workspaces, keys, the catalogue, segments, profiles, idempotency keys)
are ReplacingMergeTree rows: a change inserts the whole record again with a higher
`version`, and readers take the latest version of each key.
"""

from __future__ import annotations

from typing import Final

# Kinds of journal rows.
EVENT: Final = 1
PROFILE: Final = 2
SIZE_CHANGE: Final = 3
IDEMPOTENCY: Final = 4
NEW_EVENT_NAME: Final = 5
PURCHASE: Final = 6

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
)

# A calendar month per partition; times before 1970 share the first one.
_MONTH = "toYYYYMM(toDate(intDiv(greatest(time, toInt64(0)), 86400000000)))"
# The 15-minute slot (store.base.SLOT_US) of `time`, floored (intDiv truncates toward
# zero). `modulo`, not `%`, which the driver's parameter substitution would take.
SLOT = "intDiv(time - modulo(modulo(time, 900000000) + 900000000, 900000000), 900000000)"
_IDENTITY_KINDS = ("external_id", "alias", "braze_id", "email", "phone")


def _journal() -> str:
    columns = ", ".join(f"{name} {kind}" for name, kind in JOURNAL_COLUMNS)
    return f"CREATE TABLE {{db}}.journal ({columns}) ENGINE = Null"


MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE {db}.workspaces (
            id UInt64, name String, time_zone String, rate_limits String,
            created_at Int64, version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
        """CREATE TABLE {db}.apps (
            id UInt64, workspace_id UInt64, app_id String, name String, created_at Int64
        ) ENGINE = MergeTree ORDER BY (workspace_id, id)""",
        """CREATE TABLE {db}.api_keys (
            id UInt64, workspace_id UInt64, name String, prefix String, secret_hash String,
            permissions Array(String), allowed_networks Array(String), created_at Int64,
            revoked UInt8, version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
        """CREATE TABLE {db}.catalogue (
            workspace_id UInt64, name String, description Nullable(String),
            tags Array(String), analytics_report UInt8, blocklisted UInt8, version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY (workspace_id, name)""",
        # `series`: the key its event counts are kept under while tracked (0: not tracked).
        # Every rebuild takes a new one, so counts of an earlier membership never mix in.
        """CREATE TABLE {db}.segments (
            id UInt64, workspace_id UInt64, segment_id String, name String,
            description Nullable(String), tags Array(String), teams Array(String),
            filter String, tracking UInt8, archived UInt8, created_at Int64,
            updated_at Int64, series UInt64, version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY (workspace_id, id)""",
        # A profile as segment filters and identity lookups need it; event counts and
        # apps used are derived from events (user_event_counts, user_apps).
        """CREATE TABLE {db}.profiles (
            workspace_id UInt64, user UInt64, braze_id String, external_id String,
            alias String, email String, phone String, attributes String,
            segments Array(UInt64), updated_at Int64, created UInt64, version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY (workspace_id, user)""",
        # Who has an identifier (any version of a profile); email and phone change, so a
        # reader checks the profile's current value.
        """CREATE TABLE {db}.identities (
            workspace_id UInt64, identifier String, value String, user UInt64
        ) ENGINE = ReplacingMergeTree ORDER BY (workspace_id, identifier, value, user)""",
        f"""CREATE TABLE {{db}}.events (
            workspace_id UInt64, name String, time Int64, app UInt64, user UInt64,
            series Array(UInt64), properties String
        ) ENGINE = MergeTree PARTITION BY {_MONTH} ORDER BY (workspace_id, name, time)""",
        # Events as counted for tracked segments: one row per event and series.
        f"""CREATE TABLE {{db}}.segment_events (
            workspace_id UInt64, name String, series UInt64, app UInt64, time Int64
        ) ENGINE = MergeTree PARTITION BY {_MONTH}
        ORDER BY (workspace_id, name, series, time)""",
        f"""CREATE TABLE {{db}}.purchases (
            workspace_id UInt64, user UInt64, app UInt64, product_id String,
            currency String, price Float64, quantity UInt32, time Int64, properties String
        ) ENGINE = MergeTree PARTITION BY {_MONTH} ORDER BY (workspace_id, time)""",
        # The pre-aggregated counts: per event name, series (0: every event), app (0: no
        # app) and 15-minute UTC slot. Readers sum `n`; merges only make that cheaper.
        """CREATE TABLE {db}.counts (
            workspace_id UInt64, name String, series UInt64, app UInt64, slot Int64, n UInt64
        ) ENGINE = SummingMergeTree(n) ORDER BY (workspace_id, name, series, app, slot)""",
        """CREATE TABLE {db}.user_event_counts (
            workspace_id UInt64, user UInt64, name String, n UInt64
        ) ENGINE = SummingMergeTree(n) ORDER BY (workspace_id, user, name)""",
        """CREATE TABLE {db}.user_apps (
            workspace_id UInt64, user UInt64, app UInt64
        ) ENGINE = ReplacingMergeTree ORDER BY (workspace_id, user, app)""",
        """CREATE TABLE {db}.segment_changes (
            segment UInt64, time Int64, delta Int64
        ) ENGINE = MergeTree ORDER BY (segment, time)""",
        # Who was a member when a tracked segment's series was rebuilt.
        """CREATE TABLE {db}.segment_snapshots (
            series UInt64, user UInt64
        ) ENGINE = MergeTree ORDER BY (series, user)""",
        # One partition per day of expiry: expired keys go a partition at a time.
        """CREATE TABLE {db}.idempotency (
            workspace_id UInt64, key String, body_hash String, outcome String,
            expires_at Int64, version UInt64
        ) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(expires_at, 86400000000)
        ORDER BY (workspace_id, key)""",
        _journal(),
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_events TO {{db}}.events AS
        SELECT workspace_id, name, time, app, user, series, properties
        FROM {{db}}.journal WHERE kind = {EVENT}""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_segment_events TO {{db}}.segment_events AS
        SELECT workspace_id, name, arrayJoin(series) AS series, app, time
        FROM {{db}}.journal WHERE kind = {EVENT}""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_counts TO {{db}}.counts AS
        SELECT workspace_id, name, toUInt64(0) AS series, app, {SLOT} AS slot, count() AS n
        FROM {{db}}.journal WHERE kind = {EVENT} GROUP BY workspace_id, name, app, slot""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_segment_counts TO {{db}}.counts AS
        SELECT workspace_id, name, arrayJoin(series) AS series, app, {SLOT} AS slot,
            count() AS n
        FROM {{db}}.journal WHERE kind = {EVENT}
        GROUP BY workspace_id, name, series, app, slot""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_user_event_counts
        TO {{db}}.user_event_counts AS
        SELECT workspace_id, user, name, count() AS n
        FROM {{db}}.journal WHERE kind = {EVENT} GROUP BY workspace_id, user, name""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_user_apps TO {{db}}.user_apps AS
        SELECT workspace_id, user, app FROM {{db}}.journal
        WHERE kind IN ({EVENT}, {PURCHASE}) AND app != 0""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_purchases TO {{db}}.purchases AS
        SELECT workspace_id, user, app, product_id, currency, price, quantity, time, properties
        FROM {{db}}.journal WHERE kind = {PURCHASE}""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_profiles TO {{db}}.profiles AS
        SELECT workspace_id, user, braze_id, external_id, alias, email, phone, attributes,
            segments, updated_at, created, version
        FROM {{db}}.journal WHERE kind = {PROFILE}""",
        *(
            f"""CREATE MATERIALIZED VIEW {{db}}.journal_identities_{kind} TO {{db}}.identities AS
            SELECT workspace_id, '{kind}' AS identifier, {kind} AS value, user FROM {{db}}.journal
            WHERE kind = {PROFILE} AND {kind} != ''"""
            for kind in _IDENTITY_KINDS
        ),
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_size_changes TO {{db}}.segment_changes AS
        SELECT segment, time, delta FROM {{db}}.journal WHERE kind = {SIZE_CHANGE}""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_idempotency TO {{db}}.idempotency AS
        SELECT workspace_id, key, body_hash, outcome, expires_at, version
        FROM {{db}}.journal WHERE kind = {IDEMPOTENCY}""",
        f"""CREATE MATERIALIZED VIEW {{db}}.journal_catalogue TO {{db}}.catalogue AS
        SELECT workspace_id, name, CAST(NULL AS Nullable(String)) AS description,
            CAST([] AS Array(String)) AS tags, toUInt8(0) AS analytics_report,
            toUInt8(0) AS blocklisted, toUInt64(0) AS version
        FROM {{db}}.journal WHERE kind = {NEW_EVENT_NAME}""",
    ),
)
