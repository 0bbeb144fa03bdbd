"""The embedded store: one SQLite file in the data directory.

One writer thread owns the write connection and drains a queue: every request
waiting when it wakes shares one transaction and one fsync (group commit), and each
is answered only after that commit. Readers use their own connections (WAL), so an
acknowledged event is in the very next query.

The writer shares the GIL with the event loop that parses requests, so what it does
per event in Python, and how many statements it runs (each hands the GIL over and
waits to win it back), bound ingest: a group is applied without savepoints and its
rows are written in a few multi-row statements, the aggregates counted by SQLite
(see `_apply_group` and sqlite_tx.PendingWrites); the users and profiles its requests
name and the caches lack are looked up together (sqlite_tx.WriterCaches.prefetch).
"""

from __future__ import annotations

import bisect
import fcntl
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

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
from eventtally.domain.ratelimit import Limit, RateBucket
from eventtally.domain.track import (
    TrackOutcome,
    TrackRequest,
)
from eventtally.errors import ConflictError, StoreError, StoreFull, Unavailable
from eventtally.store import sqlite_segments as segments
from eventtally.store.base import (
    DEFAULT_TRACKED_LIMIT,
    SLOT_US,
    Store,
    hash_secret,
    split_ranges,
)
from eventtally.store.idempotency import Recorded, record, replay
from eventtally.store.ingest import apply_track
from eventtally.store.ingest_process import IngestProcess
from eventtally.store.migrations import MIGRATIONS, migrate, raw_index_term
from eventtally.store.sqlite_tx import (
    SERIES_FOLD_EVENTS,
    SERIES_FOLD_SECONDS,
    SLOT_OF_E,
    PendingWrites,
    SqliteTx,
    WriterCaches,
    fold_series_counts,
)
from eventtally.store.sqlite_user_counts import FOLD_SECONDS, Folder, UserCounts

T = TypeVar("T")
log = logging.getLogger("eventtally.store")
DB_FILE = "eventtally.db"
BUILD_LOCK = "segment-builds.lock"
READ_ONLY = (
    "the data directory is read-only; writes resume once it is writable and the server restarts"
)
MAX_GROUP = 256  # requests per commit: bounds the latency one commit adds to the first
# Expired idempotency keys deleted per commit at most: more than one commit can add (one
# per request), so the table keeps up, and a backlog never makes one commit slow.
PURGE_BATCH = 2 * MAX_GROUP

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def translate(exc: sqlite3.Error) -> StoreError:
    """A driver error as eventtally's own: full or read-only storage is retryable."""
    text = str(exc).lower()
    if any(s in text for s in ("full", "readonly", "read-only", "disk i/o", "unable to open")):
        return StoreFull(f"the store cannot write now ({exc}); retry later")
    return StoreError(f"the store failed: {exc}")


def connect(path: Path) -> sqlite3.Connection:
    # Room for the statement texts of multi-row inserts (see sqlite_tx.insert_rows).
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=256
    )
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL in WAL mode fsyncs the log at every commit: a 2xx survives kill -9 and power loss.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


class Job:
    """Work for the writer, and the future its result is set on once committed."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


# What the writer's `take` gives: a group of jobs, and whether to stop after it.
Taken = tuple[list[Job], bool]


class _Ingest(Generic[T]):
    """A track request's job. In an optimistic group its rows wait in the group's
    PendingWrites; any other job may read or rewrite those tables (a segment rebuild),
    so they are written before it runs. The group looks up the users its requests name
    all at once (WriterCaches.prefetch)."""

    __slots__ = ("fn", "request", "workspace_id")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], T], workspace_id: int, request: TrackRequest
    ) -> None:
        self.fn = fn
        self.workspace_id = workspace_id
        self.request = request

    def __call__(self, conn: sqlite3.Connection) -> T:
        return self.fn(conn)


class SqliteStore(Store):
    """The default store. Open it with `SqliteStore.open(data_dir)`."""

    def __init__(
        self, data_dir: Path, ingest_process: bool = False, writer_thread: bool = True
    ) -> None:
        self.path = data_dir / DB_FILE
        self._local = threading.local()
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # Writer only: while a group is applied optimistically (no savepoints), its track
        # requests add their rows here, written in a few statements before it commits.
        # (Should any job fail, the whole attempt, these rows with it, is thrown away.)
        self._group_writes: PendingWrites | None = None
        # The latest `now` of a track request in the group being committed (writer thread
        # only): idempotency keys that expired before it are purged before the commit.
        self._purge_before: int | None = None
        # Events event_counts lags by before a commit folds them in (tests lower it), and
        # whether it may lag now (writer thread only): then an idle writer folds them.
        self.series_fold_events = SERIES_FOLD_EVENTS
        self._series_lag = True
        # The writer that adds the events folds them into the per-user counts: with an
        # ingest process, that is the child's, not this thread (one folder, not two taking
        # turns on the counts file's lock).
        self._thread = threading.Thread(
            target=self.run_writer,
            args=(self._take_queued, not ingest_process),
            name="eventtally-writer",
            daemon=True,
        )
        # Track requests applied by a child process (ingest_process.py), or by the thread.
        self._ingest: IngestProcess | None = None
        # A data directory on a read-only volume still serves reads; writes get 503.
        self.read_only = self.path.exists() and not os.access(data_dir, os.W_OK)
        if self.read_only:
            self._check_schema()
            return
        self._writer_conn = connect(self.path)
        # Before migrating: up to schema 8 the events' file held the per-user counts.
        self._user_counts = UserCounts(data_dir, self.path)
        self._caches = WriterCaches(self._user_counts)
        migrate(self._writer_conn)
        if writer_thread:  # else whoever opened the store runs `run_writer` itself
            self._thread.start()
            self._build_segments(wait=False)  # what a process left unfinished when it died
        if ingest_process:
            self._ingest = IngestProcess(data_dir, self._observe_commit)

    def _check_schema(self) -> None:
        version: int = self._reader().execute("PRAGMA user_version").fetchone()[0]
        if version != len(MIGRATIONS):
            raise StoreError(
                f"the data directory is read-only and its store (schema {version}) needs "
                f"an upgrade to schema {len(MIGRATIONS)}; make it writable once"
            )

    @classmethod
    def open(cls, data_dir: Path, ingest_process: bool = False) -> SqliteStore:
        """The store in `data_dir`; with `ingest_process`, track requests are applied by a
        process of its own (for a server or an import: see ingest_process.py)."""
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            return cls(data_dir, ingest_process)
        except OSError as exc:
            raise StoreError(f"cannot use data directory {data_dir}: {exc.strerror}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store in {data_dir}: {exc}") from None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # The writer --------------------------------------------------------------------------
    def run_writer(
        self, take: Callable[[float | None], Taken | None], fold_user_counts: bool = True
    ) -> None:
        """The writer's loop, on the write connection: commit each group of jobs `take`
        gives until it says stop. `take(timeout)` waits for jobs up to `timeout` seconds
        (None: for ever) and returns None when none came; then the writer folds what
        event_counts lags. The writer thread takes jobs from the queue `_submit` fills;
        an ingest process's only thread takes them from its pipe (ingest_process.py).
        With `fold_user_counts`, a thread beside it folds the events into the per-user
        counts (sqlite_user_counts.Folder)."""
        conn = self._writer_conn
        folder = Folder(self.path.parent, self.path, FOLD_SECONDS) if fold_user_counts else None
        while True:
            taken = take(SERIES_FOLD_SECONDS if self._series_lag else None)
            if taken is None:
                self._fold_series_when_idle(conn)
                continue
            jobs, stop = taken
            try:
                if jobs:
                    self._commit_group(conn, jobs)
            except Exception as exc:  # the writer must outlive any one group
                log.exception("writer failed a group of %d requests", len(jobs))
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._caches.clear()
                for failed in jobs:
                    if not failed.future.done():
                        failed.future.set_exception(StoreError(f"the store failed: {exc}"))
            if stop:
                break
        self._fold_series_when_idle(conn)
        if folder is not None:
            folder.stop()
        self._user_counts.close()
        conn.close()

    def _take_queued(self, timeout: float | None) -> Taken | None:
        """Every job waiting in the queue (up to MAX_GROUP), once there is one."""
        try:
            job = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if job is None:
            return [], True
        jobs = [job]
        while len(jobs) < MAX_GROUP:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                return jobs, True
            jobs.append(more)
        return jobs, False

    def _fold_series_when_idle(self, conn: sqlite3.Connection) -> None:
        """Fold every event event_counts lags, in a transaction of its own, so idle series
        reads count none of them themselves."""
        self._series_lag = False  # until the next group, whatever happens here
        try:
            # Read first: most of the time nothing lags, and then no write lock is taken.
            if conn.execute("SELECT series_from FROM counts_pending").fetchone()[0] is None:
                return
            conn.execute("BEGIN IMMEDIATE")
            self._fold_series(conn)
            conn.execute("COMMIT")
        except sqlite3.Error:  # the reads stay exact; the next commit tries again
            log.exception("folding the lagging events into the series counts failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _commit_group(self, conn: sqlite3.Connection, jobs: list[Job]) -> None:
        # A job whose caller gave up before it started is skipped; once running, a job's
        # future cannot be cancelled, so its result can always be set.
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        started = time.perf_counter()
        try:
            results = self._apply_group(conn, jobs, isolated=False)
            if results is None:
                results = self._apply_group(conn, jobs, isolated=True)
                assert results is not None  # isolated, a job's failure is its own result
            conn.execute("COMMIT")
            self._observe_commit(time.perf_counter() - started)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._caches.clear()
            error = translate(exc)
            for job in jobs:
                job.future.set_exception(error)
            return
        for job, value, failure in results:
            if failure is None:
                job.future.set_result(value)
            else:
                job.future.set_exception(
                    translate(failure) if isinstance(failure, sqlite3.Error) else failure
                )

    def _observe_commit(self, seconds: float) -> None:
        if self.commit_observer is not None:
            self.commit_observer(seconds)

    def _apply_group(
        self, conn: sqlite3.Connection, jobs: list[Job], isolated: bool
    ) -> list[tuple[Job, Any, BaseException | None]] | None:
        """Run the jobs in one transaction, left open for the caller to commit.

        Isolated, each job has its own savepoint, so one bad request cannot sink the
        others. Savepoints cost a statement each side of every request, and every
        statement hands the GIL to the event loop and waits to get it back; so a group is
        first applied optimistically, without them, its rows written together at the
        end. If anything fails then, the whole attempt is rolled back and returns None,
        and the group is applied again, isolated: exactly what it would have been.
        """
        group = PendingWrites()
        conn.execute("BEGIN IMMEDIATE")
        self._caches.check(conn)
        results: list[tuple[Job, Any, BaseException | None]] = []
        self._group_writes = None if isolated else group
        if not isolated:
            # Isolated, each request looks its users up itself: a failing lookup is its own.
            named = [(j.fn.workspace_id, j.fn.request) for j in jobs if isinstance(j.fn, _Ingest)]
            self._caches.group = named or None
        try:
            for job in jobs:
                if not isinstance(job.fn, _Ingest):  # it may read or rewrite those rows
                    group.write(conn, self._caches)
                if isolated:
                    conn.execute("SAVEPOINT job")
                try:
                    value = job.fn(conn)
                except Exception as exc:  # one bad request must not sink its batch
                    if not isolated:
                        raise
                    conn.execute("ROLLBACK TO job")
                    # The cache may name rows the rollback just removed (a new event type).
                    self._caches.clear()
                    results.append((job, None, exc))
                else:
                    results.append((job, value, None))
                if isolated:
                    conn.execute("RELEASE job")
            group.write(conn, self._caches)
            self._bound_series_lag(conn)
        except Exception:
            if isolated:
                raise
            conn.execute("ROLLBACK")
            self._caches.clear()
            return None
        finally:
            self._group_writes = None
            self._caches.end_group()
        self._purge_expired_keys(conn)
        return results

    def _bound_series_lag(self, conn: sqlite3.Connection) -> None:
        """Fold the events event_counts lags once they are `series_fold_events`."""
        self._series_lag = True
        lag_from, last = self._caches.series_from, self._caches.last_event
        if lag_from is not None and last - lag_from + 1 >= self.series_fold_events:
            self._fold_series(conn)

    def _fold_series(self, conn: sqlite3.Connection) -> None:
        """Fold every event event_counts lags, in the writer's transaction."""
        fold_series_counts(conn)
        self._caches.series_from = None

    def _purge_expired_keys(self, conn: sqlite3.Connection) -> None:
        now, self._purge_before = self._purge_before, None
        if now is None:
            return
        conn.execute("SAVEPOINT purge")
        try:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM "
                "idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (now, PURGE_BATCH),
            )
        except sqlite3.Error:  # housekeeping: never worth failing the group's requests
            conn.execute("ROLLBACK TO purge")
        conn.execute("RELEASE purge")

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        if self.read_only:
            raise StoreFull(READ_ONLY)
        if not self._thread.is_alive():
            raise StoreError("the store is closed")
        job = Job(fn)
        self._queue.put(job)
        return job.future

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._submit(fn).result()

    def close(self) -> None:
        if self._ingest is not None:
            self._ingest.close()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # Readers -----------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:
                # WAL needs its shared-memory file, which a read-only volume cannot hold;
                # `immutable` reads the file as it is, which is all a read-only volume can be.
                uri = f"{self.path.as_uri()}?mode=ro&immutable=1"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                conn = connect(self.path)
            self._local.conn = conn
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._reader()
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    # Workspaces, apps, keys --------------------------------------------------------------
    def create_workspace(self, name: str, time_zone: str, now: int) -> Workspace:
        def insert(conn: sqlite3.Connection) -> Workspace:
            try:
                cur = conn.execute(
                    "INSERT INTO workspaces (name, time_zone, created_at) VALUES (?, ?, ?)",
                    (name, time_zone, now),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"a workspace named {name!r} already exists") from None
            assert cur.lastrowid is not None
            return Workspace(cur.lastrowid, name, time_zone)

        return self._write(insert)

    _WORKSPACE_COLUMNS = "id, name, time_zone, rate_limits"

    def list_workspaces(self) -> list[Workspace]:
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {self._WORKSPACE_COLUMNS} FROM workspaces ORDER BY id")
            return [_workspace(row) for row in rows]

    def update_workspace(
        self,
        name: str,
        time_zone: str | None = None,
        rate_limits: Mapping[RateBucket, Limit] | None = None,
    ) -> Workspace:
        def update(conn: sqlite3.Connection) -> Workspace:
            row = conn.execute(
                f"SELECT {self._WORKSPACE_COLUMNS} FROM workspaces WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise ConflictError(f"no workspace named {name!r}")
            current = _workspace(row)
            limits = dict(current.rate_limits) | dict(rate_limits or {})
            conn.execute(
                "UPDATE workspaces SET time_zone = ?, rate_limits = ? WHERE id = ?",
                (
                    time_zone or current.time_zone,
                    json.dumps({b.value: [lim.requests, lim.seconds] for b, lim in limits.items()}),
                    current.id,
                ),
            )
            return _workspace(
                conn.execute(
                    f"SELECT {self._WORKSPACE_COLUMNS} FROM workspaces WHERE id = ?", (current.id,)
                ).fetchone()
            )

        return self._auth_changed(self._write(update))

    def create_app(self, workspace_id: int, name: str, now: int) -> App:
        app_id = str(uuid.uuid4())

        def insert(conn: sqlite3.Connection) -> App:
            cur = conn.execute(
                "INSERT INTO apps (workspace_id, app_id, name, created_at) VALUES (?, ?, ?, ?)",
                (workspace_id, app_id, name, now),
            )
            assert cur.lastrowid is not None
            return App(cur.lastrowid, workspace_id, app_id, name)

        return self._write(insert)

    def list_apps(self, workspace_id: int) -> list[App]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, workspace_id, app_id, name FROM apps WHERE workspace_id = ? "
                "ORDER BY id",
                (workspace_id,),
            )
            return [App(*row) for row in rows]

    def add_key(
        self,
        workspace_id: int,
        name: str,
        secret: str,
        permissions: frozenset[str],
        now: int,
        allowed_networks: tuple[str, ...] = (),
    ) -> ApiKey:
        prefix = secret[:8]

        def insert(conn: sqlite3.Connection) -> ApiKey:
            cur = conn.execute(
                "INSERT INTO api_keys (workspace_id, name, prefix, secret_hash, permissions, "
                "created_at, allowed_networks) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    workspace_id,
                    name,
                    prefix,
                    hash_secret(secret),
                    json.dumps(sorted(permissions)),
                    now,
                    json.dumps(list(allowed_networks)),
                ),
            )
            assert cur.lastrowid is not None
            return ApiKey(
                cur.lastrowid,
                workspace_id,
                name,
                prefix,
                permissions,
                now,
                allowed_networks=allowed_networks,
            )

        return self._write(insert)

    _KEY_COLUMNS = (
        "id, workspace_id, name, prefix, permissions, created_at, revoked_at, allowed_networks"
    )

    @staticmethod
    def _key(row: tuple[Any, ...]) -> ApiKey:
        key_id, workspace_id, name, prefix, permissions, created_at, revoked_at, networks = row
        return ApiKey(
            key_id,
            workspace_id,
            name,
            prefix,
            frozenset(json.loads(permissions)),
            created_at,
            revoked_at is not None,
            tuple(json.loads(networks)),
        )

    def list_keys(self, workspace_id: int) -> list[ApiKey]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE workspace_id = ? ORDER BY id",
                (workspace_id,),
            )
            return [self._key(row) for row in rows]

    def revoke_key(self, workspace_id: int, key_id: int, now: int) -> ApiKey:
        def revoke(conn: sqlite3.Connection) -> ApiKey:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) "
                "WHERE id = ? AND workspace_id = ?",
                (now, key_id, workspace_id),
            )
            row = conn.execute(
                f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE id = ? AND workspace_id = ?",
                (key_id, workspace_id),
            ).fetchone()
            if row is None:
                raise ConflictError(f"no key with id {key_id} in this workspace")
            return self._key(row)

        return self._auth_changed(self._write(revoke))

    def authenticate(self, secret: str) -> tuple[Workspace, ApiKey] | None:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT k.id, k.workspace_id, k.name, k.prefix, k.permissions, k.created_at, "
                "k.revoked_at, k.allowed_networks, w.name, w.time_zone, w.rate_limits "
                "FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id "
                "WHERE k.secret_hash = ?",
                (hash_secret(secret),),
            ).fetchone()
        if row is None or row[6] is not None:
            return None
        return _workspace((row[1], *row[8:])), self._key(row[:8])

    # Ingest ------------------------------------------------------------------------------
    def track(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None = None,
    ) -> Future[TrackOutcome]:
        if self._ingest is not None:
            return self._ingest.submit(workspace_id, request, now, idempotency)
        return self._submit(self.ingest_job(workspace_id, request, now, idempotency))

    def ingest_job(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None = None,
    ) -> _Ingest[TrackOutcome]:
        """What the writer runs to apply one track request (see `track`)."""

        def apply(conn: sqlite3.Connection) -> TrackOutcome:
            self._purge_before = max(now, self._purge_before or now)
            if idempotency is not None:
                row = conn.execute(
                    "SELECT body_hash, outcome, expires_at FROM idempotency_keys "
                    "WHERE workspace_id = ? AND key = ?",
                    (workspace_id, idempotency.key),
                ).fetchone()
                again = replay(None if row is None else Recorded(*row), idempotency, now)
                if again is not None:
                    return again
            # Optimistic, the rows join the group's; isolated, they are written now, in
            # the request's savepoint.
            group = self._group_writes
            tx = SqliteTx(conn, workspace_id, now, self._caches, group or PendingWrites())
            outcome = apply_track(tx, request)
            if group is None:
                tx.writes.write(conn, self._caches)
            if idempotency is not None:
                # In the request's transaction: the key is durable exactly when its events are.
                kept = record(outcome, idempotency, now)
                conn.execute(
                    "INSERT INTO idempotency_keys (workspace_id, key, body_hash, outcome, "
                    "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (workspace_id, key) DO UPDATE SET "
                    "body_hash = excluded.body_hash, outcome = excluded.outcome, "
                    "created_at = excluded.created_at, expires_at = excluded.expires_at",
                    (
                        workspace_id,
                        idempotency.key,
                        kept.body_hash,
                        kept.outcome,
                        now,
                        kept.expires_at,
                    ),
                )
            return outcome

        return _Ingest(apply, workspace_id, request)

    # Reads -------------------------------------------------------------------------------
    def count_series(self, query: SeriesQuery) -> list[int]:
        counts = [0] * len(query.ranges)
        with self._reading() as conn:
            row = conn.execute(
                "SELECT id, blocklisted FROM event_types WHERE workspace_id = ? AND name = ?",
                (query.workspace_id, query.event),
            ).fetchone()
            if row is None or row[1]:
                return counts
            event_type = row[0]
            if query.segment is not None:
                (building,) = conn.execute(
                    "SELECT building FROM segments WHERE id = ?", (query.segment,)
                ).fetchone()
                if building is not None:
                    raise Unavailable(
                        "this segment's event series is being built from the stored events; "
                        "retry in a few seconds"
                    )
            on_grid, pieces = split_ranges(query.ranges)
            if on_grid:
                # ?1-?3 name the series; each bucket's (i, lo, hi) follows, numbered from ?4.
                values = ",".join(
                    f"(?{4 + 3 * j}, ?{5 + 3 * j}, ?{6 + 3 * j})" for j in range(len(on_grid))
                )
                params = [event_type, query.segment or 0, query.app or 0]
                params += [v for bucket in on_grid for v in bucket]
                rows = conn.execute(
                    f"WITH b(i, lo, hi) AS (VALUES {values}) "
                    "SELECT b.i, (SELECT coalesce(sum(n), 0) FROM event_counts "
                    "WHERE event_type = ?1 AND segment = ?2 AND app = ?3 "
                    "AND slot >= b.lo AND slot < b.hi) FROM b",
                    params,
                )
                for i, n in rows:
                    counts[i] += n
                (lag_from,) = conn.execute("SELECT series_from FROM counts_pending").fetchone()
                if lag_from is not None:
                    _count_lagging(conn, counts, on_grid, lag_from, event_type, query)
            for i, start, end in pieces:
                if query.segment is None:
                    counts[i] += self._raw_count(conn, event_type, query.app, start, end)
                else:
                    counts[i] += segments.raw_count(
                        conn, event_type, query.segment, query.app, start, end
                    )
        return counts

    @staticmethod
    def _raw_count(
        conn: sqlite3.Connection, event_type: int, app: int | None, start: int, end: int
    ) -> int:
        sql = "SELECT count(*) FROM events WHERE event_type = ? AND time >= ? AND time < ?"
        params: tuple[int, ...] = (event_type, start, end)
        sql += raw_index_term(end)
        if app is not None:
            sql += " AND app = ?"
            params += (app,)
        n: int = conn.execute(sql, params).fetchone()[0]
        return n

    # Segments ----------------------------------------------------------------------------
    def create_segment(
        self,
        workspace_id: int,
        draft: Segment,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        def create(conn: sqlite3.Connection) -> Segment:
            self._caches.clear()  # rules and memberships change
            return segments.create(conn, self._user_counts, workspace_id, draft, tracked_limit, now)

        created = self._write(create)
        self._build_segments(wait=True)
        return created

    def update_segment(
        self,
        workspace_id: int,
        segment_id: str,
        changes: SegmentChanges,
        now: int,
        tracked_limit: int = DEFAULT_TRACKED_LIMIT,
    ) -> Segment:
        def update(conn: sqlite3.Connection) -> Segment:
            self._caches.clear()  # rules and memberships change
            return segments.update(
                conn, self._user_counts, workspace_id, segment_id, changes, tracked_limit, now
            )

        updated = self._write(update)
        self._build_segments(wait=True)
        return updated

    def _build_segments(self, wait: bool) -> None:
        """Write the counts of every tracked segment being built (made, re-filtered or
        tracked again): a pass over the stored events on this thread's reader, which holds
        no write lock, so ingest goes on (at 10M events a pass took 15 s; as one write
        transaction, requests waited that long and some were answered 503), then one
        short transaction. One builder at a time per data directory (a file lock); it
        finishes every build there is, also one a process left when it died. Without
        `wait`, nothing is done while another process builds."""
        with _build_lock(self.path.parent, wait) as held:
            if not held:
                return
            with self._reading() as conn:
                pending = segments.builds(conn)
            for build in pending:
                with self._reading() as conn:
                    rows = segments.count_build(conn, build)
                self._write(functools.partial(segments.finish_build, build=build, rows=rows))

    def list_segments(self, workspace_id: int, include_archived: bool = False) -> list[Segment]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {segments.COLUMNS} FROM segments WHERE workspace_id = ? "
                + ("" if include_archived else "AND NOT archived ")
                + "ORDER BY created_at, id",
                (workspace_id,),
            )
            return [segments.segment_from_row(row) for row in rows]

    def find_segment(self, workspace_id: int, segment_id: str) -> Segment | None:
        with self._reading() as conn:
            return segments.find(conn, workspace_id, segment_id)

    def segment_sizes(self, segment: int, instants: Sequence[int]) -> list[int]:
        with self._reading() as conn:
            return segments.sizes(conn, segment, instants)

    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT name FROM event_types WHERE workspace_id = ? AND NOT blocklisted "
                "ORDER BY name LIMIT ? OFFSET ?",
                (workspace_id, limit, offset),
            )
            return [name for (name,) in rows]

    def event_catalogue(self, workspace_id: int, offset: int, limit: int) -> list[EventInfo]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT name, description, tags, analytics_report, blocklisted FROM event_types "
                "WHERE workspace_id = ? ORDER BY name LIMIT ? OFFSET ?",
                (workspace_id, limit, offset),
            )
            return [_event_info(row) for row in rows]

    def update_event(self, workspace_id: int, name: str, update: EventUpdate) -> EventInfo:
        def apply(conn: sqlite3.Connection) -> EventInfo:
            conn.execute(
                "INSERT INTO event_types (workspace_id, name) VALUES (?, ?) "
                "ON CONFLICT (workspace_id, name) DO NOTHING",
                (workspace_id, name),
            )
            changes: dict[str, object] = {}
            if update.description is not None:
                changes["description"] = update.description
            if update.tags is not None:
                changes["tags"] = json.dumps(list(update.tags))
            if update.blocklisted is not None:
                changes["blocklisted"] = int(update.blocklisted)
            if update.included_in_analytics_report is not None:
                changes["analytics_report"] = int(update.included_in_analytics_report)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(
                    f"UPDATE event_types SET {assignments} WHERE workspace_id = ? AND name = ?",
                    (*changes.values(), workspace_id, name),
                )
            # The writer's own change does not move data_version: forget the cached flag here.
            self._caches.event_types.pop((workspace_id, name), None)
            row = conn.execute(
                "SELECT name, description, tags, analytics_report, blocklisted FROM event_types "
                "WHERE workspace_id = ? AND name = ?",
                (workspace_id, name),
            ).fetchone()
            return _event_info(row)

        return self._write(apply)


def _count_lagging(
    conn: sqlite3.Connection,
    counts: list[int],
    on_grid: list[tuple[int, int, int]],
    first: int,
    event_type: int,
    query: SeriesQuery,
) -> None:
    """Add to `counts` the events from id `first` on, which event_counts does not hold
    yet, by their slots, for the buckets' slots (`on_grid`: (index, first slot, end slot)).
    A scan of the newest rows: normally SERIES_FOLD_EVENTS of them at most."""
    sql = (
        f"SELECT {SLOT_OF_E}, count(*) FROM events e WHERE e.id >= ? AND e.event_type = ? "
        "AND e.time >= ? AND e.time < ?"
    )
    params: list[object] = [first, event_type]
    params += [min(lo for _, lo, _ in on_grid) * SLOT_US, max(hi for _, _, hi in on_grid) * SLOT_US]
    if query.app is not None:
        sql += " AND e.app = ?"
        params.append(query.app)
    if query.segment is not None:
        sql += " AND e.segments LIKE ?"
        params.append(f"%,{query.segment},%")
    slots, totals = [], [0]  # the slots in order, and the running total of their counts
    for slot, n in conn.execute(sql + " GROUP BY 1 ORDER BY 1", params):
        slots.append(slot)
        totals.append(totals[-1] + n)
    for i, lo, hi in on_grid:  # (the ranges of a query may overlap)
        counts[i] += totals[bisect.bisect_left(slots, hi)] - totals[bisect.bisect_left(slots, lo)]


def _workspace(row: tuple[Any, ...]) -> Workspace:
    workspace_id, name, time_zone, limits = row
    overrides = tuple(
        (RateBucket(bucket), Limit(requests, seconds))
        for bucket, (requests, seconds) in sorted(json.loads(limits).items())
    )
    return Workspace(workspace_id, name, time_zone, overrides)


def _event_info(row: tuple[Any, ...]) -> EventInfo:
    name, description, tags, analytics_report, blocklisted = row
    return EventInfo(
        name=name,
        description=description,
        tags=tuple(json.loads(tags)),
        included_in_analytics_report=bool(analytics_report),
        status=EventStatus.BLOCKLISTED if blocklisted else EventStatus.ACTIVE,
    )


@contextmanager
def _build_lock(data_dir: Path, wait: bool) -> Iterator[bool]:
    """Hold the data directory's segment-build lock; yields whether it is held."""
    with (data_dir / BUILD_LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
