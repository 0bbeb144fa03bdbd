"""The SQLite store's track requests applied in a process of their own.

In one process, parsing requests (the event loop) and applying them (the writer thread)
are both Python and take turns on one interpreter lock, so on two cores ingest used
little more than one. `SqliteStore.open(..., ingest_process=True)` (what `serve` and
`import` use) starts a child process that opens a SqliteStore on the same file and
applies every track request there, with the same group commit; the parent parses,
sends each validated request over a pipe (JSON) and answers the client when the
child says the request is committed. The child's one thread reads what the pipe holds,
applies it as one group, commits and answers, then reads again. Everything else, reads
and the rare other writes, stays in the parent: SQLite serialises the two writers, and
each drops its caches when the other has committed (`PRAGMA data_version`, see
sqlite_tx.WriterCaches).

The child holds no state a crash could lose: it dies with the parent (end of file on the
pipe), a request it had not answered when it died is answered 503 (never acknowledged,
so a retry is right), and the next request starts a new child.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec

from eventtally import errors
from eventtally.domain.idempotency import Idempotency
from eventtally.domain.track import TrackOutcome, TrackRequest
from eventtally.errors import EventtallyError, StoreError, StoreFull

log = logging.getLogger("eventtally.store")

# Parent to child: batches of requests; an empty message asks the child to finish. JSON,
# not msgpack: a property may hold an integer wider than 64 bits, which JSON carries.
_Request = tuple[int, int, TrackRequest, int, Idempotency | None]  # id, workspace, body, now, key
_encode_batch = msgspec.json.Encoder().encode
_decode_batch = msgspec.json.Decoder(list[_Request]).decode


# Child to parent: (id, outcome, None) or (id, None, (error class, message)), and the
# seconds each commit took (for the parent's metrics).
_Answer = tuple[int, TrackOutcome | None, tuple[str, str] | None]


class _Answers(msgspec.Struct, array_like=True):
    done: list[_Answer]
    commits: list[float]


_encode_answers = msgspec.json.Encoder().encode
_decode_answers = msgspec.json.Decoder(_Answers).decode
_STOP = b""
STOPPED = "the ingest process stopped; retry the request"


class IngestProcess:
    """The parent's side: `submit` returns a future set when the child has committed."""

    def __init__(self, data_dir: Path, on_commit: Callable[[float], None]) -> None:
        self._data_dir = data_dir
        self._on_commit = on_commit
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: dict[int, Future[TrackOutcome]] = {}
        self._outbox: queue.SimpleQueue[bytes | None] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._alive = False  # whether the current child takes requests (under the lock)
        self._start()

    def _start(self) -> None:
        # A fresh interpreter (not a fork: nothing of this process's threads and locks),
        # started as a module so it never re-runs whatever started the parent.
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(self._data_dir), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
            )
        conn = Connection(ours.detach())
        outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._process, self._outbox, self._alive = process, outbox, True
        sender = threading.Thread(target=self._send, args=(conn, outbox), daemon=True)
        receiver = threading.Thread(target=self._receive, args=(conn, sender), daemon=True)
        self._threads = [sender, receiver]
        for thread in self._threads:
            thread.start()

    def submit(
        self,
        workspace_id: int,
        request: TrackRequest,
        now: int,
        idempotency: Idempotency | None,
    ) -> Future[TrackOutcome]:
        future: Future[TrackOutcome] = Future()
        # Once sent, the request is applied whether or not its caller still waits.
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._process is None:
                raise StoreError("the store is closed")
            if not self._alive:  # the last child died; its requests were answered 503
                self._process.wait()  # it closed its end of the pipe: it is exiting
                self._start()
            job_id = next(self._ids)
            self._pending[job_id] = future
            assert self._outbox is not None
            self._outbox.put(_encode_batch([(job_id, workspace_id, request, now, idempotency)]))
        return future

    def _send(self, conn: Connection, outbox: queue.SimpleQueue[bytes | None]) -> None:
        """Forward what `submit` queued, all that waits in one write (one wake of the child).

        Requests are encoded one by one as they come, so a batch is their arrays joined."""
        while True:
            item = outbox.get()
            batch = [item]
            while len(batch) < 256:
                try:
                    batch.append(outbox.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            encoded = [each for each in batch if each is not None]
            try:
                if encoded:
                    conn.send_bytes(_join(encoded))
                if stop:
                    conn.send_bytes(_STOP)
            except OSError:  # the child is gone: the receiver fails what was pending
                return
            if stop:
                return

    def _receive(self, conn: Connection, sender: threading.Thread) -> None:
        try:
            while True:
                answers = _decode_answers(conn.recv_bytes())
                for seconds in answers.commits:
                    self._on_commit(seconds)
                for job_id, outcome, failure in answers.done:
                    with self._lock:
                        future = self._pending.pop(job_id)
                    if failure is None:
                        assert outcome is not None
                        future.set_result(outcome)
                    else:
                        future.set_exception(_error(*failure))
        except (EOFError, OSError):
            pass
        with self._lock:
            lost, self._pending, self._alive = self._pending, {}, False
            if self._outbox is not None:
                self._outbox.put(None)  # the sender stops too (it may be waiting)
        sender.join()
        conn.close()
        if lost:
            log.error("the ingest process stopped with %d requests unanswered", len(lost))
        for future in lost.values():
            future.set_exception(StoreError(STOPPED))

    def close(self) -> None:
        """Let the child commit and answer what it holds, then wait for it to exit."""
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            assert self._outbox is not None
            self._outbox.put(None)
        for thread in self._threads:
            thread.join()
        process.wait()


def _join(encoded: list[bytes]) -> bytes:
    """JSON arrays of one request each, as one array of requests."""
    return b"[" + b",".join(part[1:-1] for part in encoded) + b"]"


def _error(name: str, message: str) -> Exception:
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, EventtallyError):
        return kind(message)
    return StoreError(message)


def _child(data_dir: str, fd: int) -> None:
    """The child: apply the requests the parent sends until it asks to stop or goes away."""
    # Stopping is the parent's to decide: a Ctrl-C or SIGTERM to the whole process group
    # must not end the child before the parent has stopped sending.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from eventtally import logs
    from eventtally.gc_tuning import relax_collections
    from eventtally.store.sqlite import MAX_GROUP, READ_ONLY, Job, SqliteStore, Taken

    logs.configure()  # the writer's errors, as JSON lines on the server's stderr

    conn = Connection(fd)
    # One thread does everything: reads a batch, applies and commits it, answers it. A
    # reading thread, the writer thread and an answering thread handing work to each
    # other and taking turns on the interpreter lock cost more than the reading they
    # overlapped (measured: 10M-event store, 32 connections: 107,000 events/s with them,
    # 121,000 without; an import 12% less CPU).
    store = SqliteStore(Path(data_dir), writer_thread=False)
    relax_collections()
    done: list[_Answer] = []
    commits: list[float] = []
    store.commit_observer = commits.append

    def answer(job_id: int, future: Future[TrackOutcome]) -> None:
        exc = future.exception()
        if exc is None:
            done.append((job_id, future.result(), None))
        else:
            done.append((job_id, None, (type(exc).__name__, _message(exc))))

    def send_answers() -> None:
        """The answers of the groups committed since the last call, in one write."""
        if done or commits:
            message = _encode_answers(_Answers(done, commits))
            done.clear()
            commits.clear()
            with contextlib.suppress(OSError):  # else the parent is gone: nobody waits
                conn.send_bytes(message)

    def take(timeout: float | None) -> Taken | None:
        """The requests the parent has sent (up to MAX_GROUP), once there are any; first,
        the answers to the last group."""
        send_answers()
        if not conn.poll(timeout):
            return None
        jobs: list[Job] = []
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                return jobs, True
            if message == _STOP:
                return jobs, True
            for job_id, workspace_id, request, now, idempotency in _decode_batch(message):
                job = Job(store.ingest_job(workspace_id, request, now, idempotency))
                job.future.add_done_callback(functools.partial(answer, job_id))
                if store.read_only:  # the volume was read-only when this process started
                    job.future.set_exception(StoreFull(READ_ONLY))
                else:
                    jobs.append(job)
            if len(jobs) >= MAX_GROUP or not conn.poll(0):
                return jobs, False

    try:
        if store.read_only:  # `take` answers every request 503, until told to stop
            while (taken := take(None)) is None or not taken[1]:
                pass
        else:
            store.run_writer(take)  # commits what it took before stopping
    finally:
        send_answers()
        store.close()
        conn.close()


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, EventtallyError) else f"the store failed: {exc}"


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
