"""How many times each user did each event, in a SQLite file of its own beside the events.

Segment filters on event counts read these (SqliteTx.profile, WriterCaches.prefetch, a
segment rebuild). They are folded in from the events table many events at a time, one
upsert per (user, event type) a fold touches rather than one per event. A fold of tens
of thousands of events rewrites most of the table's pages (50-115 ms at 100,000 users);
in the events' file it held the write lock that long, and every track request waited
behind it (26-31 group commits over 50 ms in 20 s of ingest at 10M events; none since).
In a file of its own a fold takes only this file's lock: a thread beside the writer
(`Folder`) folds while the writer commits.

`folded.through`: every event whose id is below it is counted, none from it on. Whoever
reads the counts adds the events from there on (`user_event_counts` in sqlite_tx), so
what a reader gets is exact at every moment, however far the folds lag. The file holds
nothing the events do not: lost or deleted, it is counted again from the events.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec

FILE = "user-counts.db"
# A fold counts at most this many events in one transaction (100,000 took ~115 ms
# here), so a folder stops promptly when asked to.
FOLD_CHUNK = 200_000
# The folder looks for new events this often. Every fold rewrites most of the table's
# pages whatever its size, so folding seldom costs less; but until folded, events are
# counted by the writer whenever it loads cold profiles (sqlite_tx.PENDING_SCAN).
FOLD_SECONDS = 0.5

log = logging.getLogger("eventtally.store")
_encode = msgspec.json.Encoder().encode

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS user_event_counts (user_id INTEGER NOT NULL, "
    "event_type INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (user_id, event_type)) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS folded (id INTEGER PRIMARY KEY CHECK (id = 0), "
    "through INTEGER NOT NULL)",
)


class UserCounts:
    """A connection to the counts file, with the events' file attached (as `ev`) to fold
    from. One thread at a time uses it."""

    def __init__(self, data_dir: Path, events_file: Path) -> None:
        conn = sqlite3.connect(data_dir / FILE, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        # The file is derived from the events: should a crash lose its last commits,
        # their folds are simply done again. No fsync per fold.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 10000")
        # The fold rewrites most of the table's pages anyway; a small cache keeps the two
        # connections (writer's and folder's) from adding much to the process's memory.
        conn.execute("PRAGMA cache_size = -8192")
        conn.execute("ATTACH DATABASE ? AS ev", (str(events_file),))
        self.conn = conn
        self._start()

    def _start(self) -> None:
        """Create the tables, the first time from what the events' file kept itself (up to
        schema 8 it held user_event_counts; migration 9 drops it), else from nothing."""
        conn = self.conn
        if (
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'folded'").fetchone()
            and conn.execute("SELECT 1 FROM folded").fetchone()
        ):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            if conn.execute("SELECT 1 FROM folded").fetchone() is None:
                conn.execute("DELETE FROM user_event_counts")
                through = 1
                if conn.execute(
                    "SELECT 1 FROM ev.sqlite_master WHERE name = 'user_event_counts'"
                ).fetchone():
                    conn.execute(
                        "INSERT INTO user_event_counts SELECT user_id, event_type, n "
                        "FROM ev.user_event_counts"
                    )
                    through = conn.execute(
                        "SELECT coalesce((SELECT from_event FROM ev.counts_pending), "
                        "(SELECT max(id) FROM ev.events) + 1, 1)"
                    ).fetchone()[0]
                conn.execute("INSERT INTO folded (id, through) VALUES (0, ?)", (through,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    def fold(self, limit: int | None = FOLD_CHUNK) -> int:
        """Fold in the committed events from `through` on (at most `limit`); returns how
        many events it folded."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            # This file's write lock first, then the events' snapshot: no other fold can
            # move `through` between the two.
            through: int = conn.execute(
                "UPDATE folded SET through = through RETURNING through"
            ).fetchone()[0]
            end: int = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM ev.events").fetchone()[0]
            if limit is not None:
                end = min(end, through + limit)
            if end > through:
                conn.execute(
                    "INSERT INTO user_event_counts (user_id, event_type, n) "
                    "SELECT user_id, event_type, count(*) FROM ev.events "
                    "WHERE id >= ?1 AND id < ?2 GROUP BY user_id, event_type "
                    "ON CONFLICT (user_id, event_type) DO UPDATE SET n = n + excluded.n",
                    (through, end),
                )
                conn.execute("UPDATE folded SET through = ?", (end,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return max(end - through, 0)

    def read(self, users: Sequence[int] | None) -> tuple[int, list[tuple[int, int, int]]]:
        """`through` and the folded counts (user, event type id, n) of these users (None:
        every user), from one snapshot."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            (through,) = conn.execute("SELECT through FROM folded").fetchone()
            if users is None:
                rows = conn.execute("SELECT user_id, event_type, n FROM user_event_counts")
            else:
                rows = conn.execute(
                    "SELECT user_id, event_type, n FROM user_event_counts "
                    "WHERE user_id IN (SELECT value FROM json_each(?))",
                    (_encode(users),),
                )
            counts: list[tuple[int, int, int]] = rows.fetchall()
        finally:
            conn.execute("COMMIT")
        return through, counts


class Folder:
    """A thread that folds new events into the counts file every `seconds`, until stopped."""

    def __init__(self, data_dir: Path, events_file: Path, seconds: float = FOLD_SECONDS) -> None:
        self._counts = UserCounts(data_dir, events_file)
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eventtally-counts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing = False
        try:
            while not self._stop.wait(self._seconds):
                try:
                    while self._counts.fold() == FOLD_CHUNK and not self._stop.is_set():
                        pass  # behind: the next chunk at once
                    failing = False
                except sqlite3.Error:  # readers stay exact; the next round tries again
                    if not failing:  # once, not twice a second while the disk is full
                        log.exception("folding events into the per-user counts failed")
                    failing = True
        finally:
            self._counts.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
