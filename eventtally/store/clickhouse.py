"""The ClickHouse store: the same behaviour as the SQLite store on a distributed engine.

Open it with `ClickHouseStore.open("clickhouse://HOST:PORT/DATABASE")`. As in the SQLite
store, one writer thread applies what changes data: track requests waiting when it wakes
are applied together and inserted as one journal block (group commit), each answered
once the insert returned; everything else (workspaces, keys, segments) runs alone in the
same thread, so ingest never sees half of a change. Reads run on the caller's thread.

Durability: an insert returns once ClickHouse has written the block's parts to its data
directory (and, through a Distributed table with `insert_distributed_sync`, to every
shard). ClickHouse 18.16 does not fsync those parts: an acknowledged event survives a
crash of eventtally or of ClickHouse, but power loss of the ClickHouse host only when it
is replicated (docs/deploy.md).
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from eventtally.domain.idempotency import Idempotency
from eventtally.domain.model import (
    ApiKey,
    App,
    EventInfo,
    EventStatus,
    EventUpdate,
    Segment,
    SegmentChanges,
    SeriesQuery,
    Workspace,
)
from eventtally.domain.ratelimit import Limit, RateBucket, WindowCounter
from eventtally.domain.track import TrackOutcome, TrackRequest
from eventtally.errors import ConflictError, StoreError
from eventtally.store import clickhouse_segments as segments
from eventtally.store.base import DEFAULT_TRACKED_LIMIT, Store, hash_secret, split_ranges
from eventtally.store.clickhouse_conn import (
    BULK_TIMEOUT,
    DEFAULT_TIMEOUT,
    ClickHouseUrl,
    Connections,
    layout_of,
    migrate,
    settle,
)
from eventtally.store.clickhouse_ingest import (
    Clock,
    Group,
    IngestJob,
    WriterCaches,
    insert_journal,
    journal_row,
)
from eventtally.store.clickhouse_schema import IDEMPOTENCY
from eventtally.store.idempotency import Recorded, record, replay
from eventtally.store.ingest import apply_track

if TYPE_CHECKING:
    from eventtally.shared_state import WriterLease

T = TypeVar("T")
log = logging.getLogger("eventtally.store")
MAX_GROUP = 512  # requests per insert
DAY_US = 86_400_000_000
PURGE_EVERY_S = 60.0  # how often expired idempotency keys are dropped


class _Track:
    __slots__ = ("future", "idempotency", "now", "request", "workspace_id")

    def __init__(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None,
    ) -> None:
        self.workspace_id = workspace_id
        self.request = request
        self.now = now
        self.idempotency = idempotency
        self.future: Future[TrackOutcome] = Future()


class _Alone:
    """A change that runs by itself in the writer thread."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


_Job = _Track | _Alone


class ClickHouseStore(Store):
    blocking_reads = True  # every read is a round trip to ClickHouse

    def __init__(
        self,
        url: ClickHouseUrl,
        redis: str | None = None,
        cluster: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        # With the URL of a Redis, one of several nodes: they take turns writing and count
        # rate limits together (eventtally.shared_state, imported only then).
        self._redis = redis
        self._lease: WriterLease | None = None
        if redis:
            from eventtally.shared_state import WriterLease

            self._lease = WriterLease(redis, url.database)
        self.conn = Connections(url, timeout)
        try:
            self.layout, self.servers = layout_of(self.conn, cluster)
            migrate(self.conn, self.layout, self.servers)
            settle(self.conn, self.servers)  # a predecessor's insert, if killed mid-way
        except BaseException:
            self.conn.close()
            if self._lease is not None:
                self._lease.close()
            raise
        # Segment rebuilds read every stored event: they may take far longer than a request.
        self.bulk = Connections(url, BULK_TIMEOUT)
        self.bulk.settings = self.conn.settings
        self.clock = Clock()
        self._caches = WriterCaches(self.conn)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._purged_at = 0.0
        self._unsettled = False  # whether the last insert failed (see clickhouse_conn.settle)
        self._thread = threading.Thread(
            target=self._run, name="eventtally-clickhouse-writer", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(
        cls,
        url: str,
        redis: str | None = None,
        cluster: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ClickHouseStore:
        """The store at `url`; with `redis`, one of several nodes writing to it; with
        `cluster`, its tables sharded over that cluster of ClickHouse's remote_servers;
        a statement waits `timeout` seconds for ClickHouse at most."""
        return cls(ClickHouseUrl.parse(url), redis, cluster, timeout)

    def window_counter(self) -> WindowCounter:
        if self._redis is None:
            return super().window_counter()
        from eventtally.shared_state import SharedWindowCounter

        return SharedWindowCounter(self._redis, self.url.database)

    def __repr__(self) -> str:
        return f"ClickHouseStore({str(self.url)!r})"

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.conn.close()
        self.bulk.close()
        if self._lease is not None:
            self._lease.close()

    # The writer --------------------------------------------------------------------------
    def _run(self) -> None:
        held: _Job | None = None
        while True:
            job = held if held is not None else self._queue.get()
            held = None
            if job is None:
                break
            if isinstance(job, _Alone):
                self._run_alone(job)
                continue
            group = [job]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(more, _Track):
                    held = more
                    if more is None:  # stop after this group
                        self._queue.put(None)
                        held = None
                    break
                group.append(more)
            try:
                self._commit_group(group)
            except Exception as exc:  # the writer must outlive any one group
                log.exception("writer failed a group of %d requests", len(group))
                self._caches.clear()
                for failed in group:
                    if not failed.future.done():
                        failed.future.set_exception(StoreError(f"the store failed: {exc}"))

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the right to write (alone, or the shared lease), with caches that are
        current: dropped when another node wrote since this one last did."""
        if self._lease is None:
            yield
            return
        with self._lease.held() as others_wrote:
            if others_wrote:
                self._caches.clear()
            yield

    def _run_alone(self, job: _Alone) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            with self._writing():
                value = job.fn()
        except Exception as exc:
            self._caches.clear()  # it may have changed what is cached before failing
            job.future.set_exception(exc)
        else:
            job.future.set_result(value)

    def _commit_group(self, jobs: list[_Track]) -> None:
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        started = time.perf_counter()
        try:
            with self._writing():
                results = self._apply_group(jobs)
        except StoreError as exc:
            self._caches.clear()  # what the group cached was never stored
            self._unsettled = True
            for job in jobs:
                job.future.set_exception(exc)
            return
        if self.commit_observer is not None:
            self.commit_observer(time.perf_counter() - started)
        self._caches.trim()
        for job, value, failure in results:
            if failure is not None:
                job.future.set_exception(failure)
            else:
                assert value is not None
                job.future.set_result(value)
        self._purge_expired_keys(jobs[-1].now)

    def _apply_group(
        self, jobs: list[_Track]
    ) -> list[tuple[_Track, TrackOutcome | None, BaseException | None]]:
        """Apply each request of the group in memory, then insert all as one block."""
        results: list[tuple[_Track, TrackOutcome | None, BaseException | None]] = []
        if self._unsettled:  # the last insert failed: ClickHouse may still be applying it
            settle(self.conn, self.servers)
            self._unsettled = False
        self._caches.check()
        for workspace_id in {job.workspace_id for job in jobs}:
            self._caches.prefetch(
                workspace_id, (job.request for job in jobs if job.workspace_id == workspace_id)
            )
        group = Group()
        records = self._recorded([job for job in jobs if job.idempotency is not None])
        for job in jobs:
            try:
                outcome = self._apply(job, group, records)
            except Exception as exc:  # one bad request must not sink its group
                results.append((job, None, exc))
            else:
                results.append((job, outcome, None))
        insert_journal(self.conn, group.journal(self._caches, self.clock()))
        return results

    def _apply(
        self, job: _Track, group: Group, records: dict[tuple[int, str], Recorded]
    ) -> TrackOutcome:
        slot = (job.workspace_id, job.idempotency.key) if job.idempotency else None
        if job.idempotency is not None and slot is not None:
            again = replay(records.get(slot), job.idempotency, job.now)
            if again is not None:
                return again
        tx = IngestJob(self._caches, group, job.workspace_id, job.now, self.clock)
        outcome = apply_track(tx, job.request)
        if job.idempotency is not None and slot is not None:
            kept = records[slot] = record(outcome, job.idempotency, job.now)
            tx.rows.append(
                journal_row(
                    kind=IDEMPOTENCY,
                    workspace_id=job.workspace_id,
                    key=job.idempotency.key,
                    body_hash=kept.body_hash,
                    outcome=kept.outcome.decode(),
                    expires_at=kept.expires_at,
                    version=self.clock(),
                )
            )
        group.take(tx, self._caches)
        return outcome

    def _recorded(self, jobs: list[_Track]) -> dict[tuple[int, str], Recorded]:
        """The recorded outcomes of these jobs' idempotency keys, a query per workspace (an
        import sends a key with every request: one query each cost more than the insert)."""
        keys: dict[int, set[str]] = {}
        for job in jobs:
            assert job.idempotency is not None
            keys.setdefault(job.workspace_id, set()).add(job.idempotency.key)
        found: dict[tuple[int, str], Recorded] = {}
        for workspace_id, wanted in keys.items():
            rows = self.conn.query(
                "SELECT key, argMax(body_hash, version), argMax(outcome, version), "
                "argMax(expires_at, version) FROM {db}.idempotency "
                "WHERE workspace_id = %(w)s AND key IN %(k)s GROUP BY key",
                {"w": workspace_id, "k": tuple(sorted(wanted))},
            )
            for key, body_hash, outcome, expires_at in rows:
                found[(workspace_id, key)] = Recorded(body_hash, outcome.encode(), expires_at)
        return found

    def _purge_expired_keys(self, now: int) -> None:
        """Drop the partitions (days of expiry) of idempotency keys that have all expired."""
        if time.monotonic() - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = time.monotonic()
        table = self.layout.local("idempotency")
        try:
            for url in self.servers:
                server = self.conn if url == self.url else Connections(url)
                try:
                    rows = server.query(
                        "SELECT DISTINCT partition FROM system.parts "
                        "WHERE database = %(d)s AND table = %(t)s AND active",
                        {"d": self.conn.db, "t": table},
                    )
                    for (partition,) in rows:
                        if (int(partition) + 1) * DAY_US <= now:
                            server.query(f"ALTER TABLE {{db}}.{table} DROP PARTITION {partition}")
                finally:
                    if server is not self.conn:
                        server.close()
        except StoreError:  # housekeeping: never worth failing ingest; next time
            log.warning("could not drop expired idempotency keys", exc_info=True)

    def _submit(self, job: _Job) -> None:
        if not self._thread.is_alive():
            raise StoreError("the store is closed")
        self._queue.put(job)

    def _alone(self, fn: Callable[[], T]) -> T:
        job = _Alone(fn)
        self._submit(job)
        result: T = job.future.result()
        return result

    # Workspaces, apps and keys ---------------------------------------------------------
    def _next_id(self, table: str) -> int:
        """The next id of a small table. Ids are made by one writer per process; two
        processes creating records at the same instant is an operator's race (docs)."""
        ((top,),) = self.conn.query(f"SELECT max(id) FROM {{db}}.{table}")
        return int(top) + 1

    def create_workspace(self, name: str, time_zone: str, now: int) -> Workspace:
        def create() -> Workspace:
            if self.workspace(name) is not None:
                raise ConflictError(f"a workspace named {name!r} already exists")
            workspace = Workspace(self._next_id("workspaces"), name, time_zone)
            self._insert_workspace(workspace, now)
            return workspace

        return self._alone(create)

    def _insert_workspace(self, workspace: Workspace, now: int) -> None:
        limits = {
            bucket.value: [limit.requests, limit.seconds] for bucket, limit in workspace.rate_limits
        }
        self.conn.insert(
            "INSERT INTO {db}.workspaces "
            "(id, name, time_zone, rate_limits, created_at, version) VALUES",
            [
                (
                    workspace.id,
                    workspace.name,
                    workspace.time_zone,
                    json.dumps(limits),
                    now,
                    self.clock(),
                )
            ],
        )

    def list_workspaces(self) -> list[Workspace]:
        rows = self.conn.query(f"{_WORKSPACES} GROUP BY id ORDER BY id")
        return [_workspace(row) for row in rows]

    def update_workspace(
        self,
        name: str,
        time_zone: str | None = None,
        rate_limits: Mapping[RateBucket, Limit] | None = None,
    ) -> Workspace:
        def update() -> Workspace:
            current = self.workspace(name)
            if current is None:
                raise ConflictError(f"no workspace named {name!r}")
            limits = dict(current.rate_limits) | dict(rate_limits or {})
            updated = Workspace(
                current.id,
                current.name,
                time_zone or current.time_zone,
                tuple(sorted(limits.items())),
            )
            self._insert_workspace(updated, 0)
            return updated

        return self._auth_changed(self._alone(update))

    def create_app(self, workspace_id: int, name: str, now: int) -> App:
        def create() -> App:
            app = App(self._next_id("apps"), workspace_id, str(uuid.uuid4()), name)
            self.conn.insert(
                "INSERT INTO {db}.apps (id, workspace_id, app_id, name, created_at) VALUES",
                [(app.id, workspace_id, app.app_id, name, now)],
            )
            return app

        return self._alone(create)

    def list_apps(self, workspace_id: int) -> list[App]:
        rows = self.conn.query(
            "SELECT id, workspace_id, app_id, name FROM {db}.apps "
            "WHERE workspace_id = %(w)s ORDER BY id",
            {"w": workspace_id},
        )
        return [App(*row) for row in rows]

    _KEY_COLUMNS = (
        "id, argMax(workspace_id, version), argMax(name, version), argMax(prefix, version), "
        "argMax(permissions, version), argMax(created_at, version), argMax(revoked, version), "
        "argMax(allowed_networks, version)"
    )

    def add_key(
        self,
        workspace_id: int,
        name: str,
        secret: str,
        permissions: frozenset[str],
        now: int,
        allowed_networks: tuple[str, ...] = (),
    ) -> ApiKey:
        def add() -> ApiKey:
            key = ApiKey(
                self._next_id("api_keys"),
                workspace_id,
                name,
                secret[:8],
                permissions,
                now,
                allowed_networks=allowed_networks,
            )
            self._insert_key(key, hash_secret(secret))
            return key

        return self._alone(add)

    def _insert_key(self, key: ApiKey, digest: str) -> None:
        self.conn.insert(
            "INSERT INTO {db}.api_keys (id, workspace_id, name, prefix, secret_hash, "
            "permissions, allowed_networks, created_at, revoked, version) VALUES",
            [
                (
                    key.id,
                    key.workspace_id,
                    key.name,
                    key.prefix,
                    digest,
                    sorted(key.permissions),
                    list(key.allowed_networks),
                    key.created_at,
                    int(key.revoked),
                    self.clock(),
                )
            ],
        )

    def list_keys(self, workspace_id: int) -> list[ApiKey]:
        rows = self.conn.query(
            f"SELECT {self._KEY_COLUMNS} FROM {{db}}.api_keys GROUP BY id "
            "HAVING argMax(workspace_id, version) = %(w)s ORDER BY id",
            {"w": workspace_id},
        )
        return [_key(row) for row in rows]

    def revoke_key(self, workspace_id: int, key_id: int, now: int) -> ApiKey:
        def revoke() -> ApiKey:
            rows = self.conn.query(
                f"SELECT {self._KEY_COLUMNS}, argMax(secret_hash, version) FROM {{db}}.api_keys "
                "WHERE id = %(k)s GROUP BY id",
                {"k": key_id},
            )
            if not rows or rows[0][1] != workspace_id:
                raise ConflictError(f"no key with id {key_id} in this workspace")
            key = _key(rows[0][:-1])
            revoked = ApiKey(
                key.id,
                key.workspace_id,
                key.name,
                key.prefix,
                key.permissions,
                key.created_at,
                revoked=True,
                allowed_networks=key.allowed_networks,
            )
            self._insert_key(revoked, rows[0][-1])
            return revoked

        return self._auth_changed(self._alone(revoke))

    def authenticate(self, secret: str) -> tuple[Workspace, ApiKey] | None:
        rows = self.conn.query(
            f"SELECT {self._KEY_COLUMNS} FROM {{db}}.api_keys "
            "WHERE id GLOBAL IN (SELECT id FROM {db}.api_keys WHERE secret_hash = %(h)s) "
            "GROUP BY id",
            {"h": hash_secret(secret)},
        )
        if not rows:
            return None
        key = _key(rows[0])
        if key.revoked:
            return None
        rows = self.conn.query(
            f"{_WORKSPACES} WHERE id = %(w)s GROUP BY id", {"w": key.workspace_id}
        )
        return (_workspace(rows[0]), key) if rows else None

    # Ingest ----------------------------------------------------------------------------
    def track(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None = None,
    ) -> Future[TrackOutcome]:
        job = _Track(workspace_id, request, now, idempotency)
        self._submit(job)
        return job.future

    # Reads -------------------------------------------------------------------------------
    def count_series(self, query: SeriesQuery) -> list[int]:
        counts = [0] * len(query.ranges)
        if self._blocklisted(query.workspace_id, query.event) is not False:
            return counts
        series = 0
        if query.segment is not None:
            series = segments.series_of(self.conn, query.segment)
            if not series:
                return counts
        on_grid, pieces = split_ranges(query.ranges)
        where = "workspace_id = %(w)s AND name = %(n)s"
        params: dict[str, Any] = {"w": query.workspace_id, "n": query.event, "s": series}
        if query.app is not None:
            where += " AND app = %(a)s"
            params["a"] = query.app
        if on_grid:
            # The series' sum per slot in the window, then each range's sum from prefix
            # sums (ranges may overlap): one scan, however many ranges there are.
            rows = self.conn.query(
                f"SELECT slot, sum(n) FROM {{db}}.counts WHERE {where} AND series = %(s)s "
                "AND slot >= %(lo)s AND slot < %(hi)s GROUP BY slot ORDER BY slot",
                params
                | {"lo": min(lo for _, lo, _ in on_grid), "hi": max(hi for _, _, hi in on_grid)},
            )
            slots = [slot for slot, _ in rows]
            prefix = [0, *itertools.accumulate(n for _, n in rows)]
            for i, lo, hi in on_grid:
                counts[i] += (
                    prefix[bisect.bisect_left(slots, hi)] - prefix[bisect.bisect_left(slots, lo)]
                )
        if pieces:
            table = "events" if query.segment is None else "segment_events"
            if query.segment is not None:
                where += " AND series = %(s)s"
            within = [f"time >= {start} AND time < {end}" for _, start, end in pieces]
            ((*found,),) = self.conn.query(
                "SELECT "
                + ", ".join(f"countIf({term})" for term in within)
                + f" FROM {{db}}.{table} WHERE {where} AND (({') OR ('.join(within)}))",
                params,
            )
            for (i, _, _), n in zip(pieces, found, strict=True):
                counts[i] += n
        return counts

    def _blocklisted(self, workspace_id: int, name: str) -> bool | None:
        """Whether the event is blocklisted; None when it is not in the catalogue."""
        rows = self.conn.query(
            "SELECT argMax(blocklisted, version) FROM {db}.catalogue "
            "WHERE workspace_id = %(w)s AND name = %(n)s GROUP BY name",
            {"w": workspace_id, "n": name},
        )
        return bool(rows[0][0]) if rows else None

    def _catalogue(self, workspace_id: int, where: str, offset: int, limit: int) -> list[Any]:
        return self.conn.query(
            "SELECT name, argMax(description, version), argMax(tags, version), "
            "argMax(analytics_report, version), argMax(blocklisted, version) AS blocked "
            "FROM {db}.catalogue WHERE workspace_id = %(w)s GROUP BY name "
            f"{where} ORDER BY name LIMIT %(l)s OFFSET %(o)s",
            {"w": workspace_id, "l": limit, "o": offset},
        )

    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        rows = self._catalogue(workspace_id, "HAVING blocked = 0", offset, limit)
        return [row[0] for row in rows]

    def event_catalogue(self, workspace_id: int, offset: int, limit: int) -> list[EventInfo]:
        return [_event_info(row) for row in self._catalogue(workspace_id, "", offset, limit)]

    def update_event(self, workspace_id: int, name: str, update: EventUpdate) -> EventInfo:
        def apply() -> EventInfo:
            rows = self._catalogue_entry(workspace_id, name)
            info = _event_info(rows[0]) if rows else EventInfo(name)
            description = info.description if update.description is None else update.description
            tags = info.tags if update.tags is None else update.tags
            blocklisted = (
                info.status is EventStatus.BLOCKLISTED
                if update.blocklisted is None
                else update.blocklisted
            )
            report = (
                info.included_in_analytics_report
                if update.included_in_analytics_report is None
                else update.included_in_analytics_report
            )
            self.conn.insert(
                "INSERT INTO {db}.catalogue (workspace_id, name, description, tags, "
                "analytics_report, blocklisted, version) VALUES",
                [
                    (
                        workspace_id,
                        name,
                        description,
                        list(tags),
                        int(report),
                        int(blocklisted),
                        self.clock(),
                    )
                ],
            )
            self._caches.event_names.pop((workspace_id, name), None)
            return _event_info(self._catalogue_entry(workspace_id, name)[0])

        return self._alone(apply)

    def _catalogue_entry(self, workspace_id: int, name: str) -> list[Any]:
        return self.conn.query(
            "SELECT name, argMax(description, version), argMax(tags, version), "
            "argMax(analytics_report, version), argMax(blocklisted, version) "
            "FROM {db}.catalogue WHERE workspace_id = %(w)s AND name = %(n)s GROUP BY name",
            {"w": workspace_id, "n": name},
        )

    # Segments ----------------------------------------------------------------------------
    def create_segment(
        self,
        workspace_id: int,
        draft: Segment,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        def create() -> Segment:
            self._caches.clear()  # rules and memberships change
            return segments.create(self.bulk, self.clock, workspace_id, draft, tracked_limit, now)

        return self._alone(create)

    def update_segment(
        self,
        workspace_id: int,
        segment_id: str,
        changes: SegmentChanges,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        def update() -> Segment:
            self._caches.clear()  # rules and memberships change
            return segments.update(
                self.bulk, self.clock, workspace_id, segment_id, changes, tracked_limit, now
            )

        return self._alone(update)

    def list_segments(self, workspace_id: int, include_archived: bool = False) -> list[Segment]:
        found = segments.load(self.conn, workspace_id)
        return [s for s in found if include_archived or not s.archived]

    def segment_sizes(self, segment: int, instants: Sequence[int]) -> list[int]:
        return segments.sizes(self.conn, segment, instants)


_WORKSPACES = (
    "SELECT id, argMax(name, version), argMax(time_zone, version), "
    "argMax(rate_limits, version) FROM {db}.workspaces"
)


def _workspace(row: tuple[Any, ...]) -> Workspace:
    workspace_id, name, time_zone, limits = row
    overrides = tuple(
        (RateBucket(bucket), Limit(requests, seconds))
        for bucket, (requests, seconds) in sorted(json.loads(limits).items())
    )
    return Workspace(workspace_id, name, time_zone, overrides)


def _key(row: Sequence[Any]) -> ApiKey:
    key_id, workspace_id, name, prefix, permissions, created_at, revoked, networks = row
    return ApiKey(
        key_id,
        workspace_id,
        name,
        prefix,
        frozenset(permissions),
        created_at,
        revoked=bool(revoked),
        allowed_networks=tuple(networks),
    )


def _event_info(row: Sequence[Any]) -> EventInfo:
    name, description, tags, analytics_report, blocklisted = row
    return EventInfo(
        name=name,
        description=description,
        tags=tuple(tags),
        included_in_analytics_report=bool(analytics_report),
        status=EventStatus.BLOCKLISTED if blocklisted else EventStatus.ACTIVE,
    )
