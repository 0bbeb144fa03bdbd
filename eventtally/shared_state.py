"""State several API nodes share through Redis (`--redis URL`): who writes now, and the
rate-limit windows. A single node needs none of it.

Writing. Every node keeps caches (profiles, segment rules, identifiers) that are exact
only while nobody else writes, and segment membership is decided from a profile as it
is: two nodes applying requests for one user at once could each miss the other's change.
So writing is serialized across nodes: a node holds the writer lease while it applies a
group of requests and inserts it (group commit keeps that cheap: one lease per group, not
per request), and each holder bumps an epoch when done. A node that finds the epoch moved
since its own last group drops its caches and reads profiles afresh from ClickHouse,
which has every earlier group (inserts are synchronous). Idempotency keys need nothing
more: a repeat of a key applied by another node waits for the lease, then finds the
record, inserted in the same block as the request's events.

The lease expires unless renewed (a node that dies releases it by expiring); a watchdog
renews it while the holder works. A holder stalled past the lease (a pause longer than
LEASE_MS, with the watchdog stalled too) may overlap the next holder: the one window
left, documented in docs/deploy.md.

Rate limits. Braze's fixed windows, counted with one INCR per request on a key that
expires with its window: exact across every node that shares the Redis.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis import exceptions as redis_errors

from eventtally.domain.ratelimit import Decision, Limit, RateBucket, window_end
from eventtally.errors import StoreError

log = logging.getLogger("eventtally.shared")
# A dead holder stops every node's writes until its lease expires; a live one renews it
# several times per lease, so only a holder frozen that long can lose it mid-write.
LEASE_MS = 5_000
RENEW_EVERY_S = LEASE_MS / 1000 / 5
WAIT_STEP_S = 0.002  # between attempts to take a busy lease
WAIT_LIMIT_S = 120.0  # a lease never free for this long means something is wrong

# Extend / release the lease only while it is still ours.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"  # noqa: E501
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"  # noqa: E501


def connect(url: str) -> redis.Redis:
    try:
        client: redis.Redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    except ValueError as exc:
        raise StoreError(f"--redis: {exc}") from None
    return client


def _failed(exc: Exception) -> StoreError:
    return StoreError(f"Redis is unavailable: {exc}")


class WriterLease:
    """The lease on writing to one store (`namespace`: its ClickHouse database)."""

    def __init__(self, url: str, namespace: str) -> None:
        self._redis = connect(url)
        self._key = f"eventtally:{namespace}:writer"
        self._epoch_key = f"eventtally:{namespace}:epoch"
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._epoch: int | None = None  # the epoch after our own last group

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the lease; yields whether another node wrote since our last hold."""
        token = secrets.token_hex(16)
        try:
            self._acquire(token)
            epoch = int(self._redis.get(self._epoch_key) or 0)
        except redis_errors.RedisError as exc:
            raise _failed(exc) from None
        stop = threading.Event()
        watchdog = threading.Thread(
            target=self._keep, args=(token, stop), name="eventtally-lease", daemon=True
        )
        watchdog.start()
        completed = False
        try:
            yield epoch != self._epoch
            completed = True
        finally:
            stop.set()
            watchdog.join()
            try:
                # Bumped even after a failure: an insert may have landed all the same.
                after = int(self._redis.incr(self._epoch_key))
                self._epoch = after if completed else None
                self._release(keys=[self._key], args=[token])
            except redis_errors.RedisError as exc:
                self._epoch = None
                log.error("could not release the writer lease (it expires): %s", exc)

    def _acquire(self, token: str) -> None:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not self._redis.set(self._key, token, nx=True, px=LEASE_MS):
            if time.monotonic() > deadline:
                raise StoreError(f"the writer lease was busy for {WAIT_LIMIT_S:.0f} s")
            time.sleep(WAIT_STEP_S)

    def _keep(self, token: str, stop: threading.Event) -> None:
        while not stop.wait(RENEW_EVERY_S):
            try:
                if not self._renew(keys=[self._key], args=[token, LEASE_MS]):
                    log.error("the writer lease was lost while writing")
                    return
            except redis_errors.RedisError as exc:
                log.error("could not renew the writer lease: %s", exc)

    def close(self) -> None:
        self._redis.close()


class SharedWindowCounter:
    """`FixedWindowCounter` (eventtally.domain.ratelimit) with its windows in Redis."""

    def __init__(self, url: str, namespace: str) -> None:
        self._redis = connect(url)
        self._prefix = f"eventtally:{namespace}:rate"

    def hit(self, workspace_id: int, bucket: RateBucket, limit: Limit, now: int) -> Decision:
        end = window_end(now, limit.seconds)
        key = f"{self._prefix}:{workspace_id}:{bucket.value}:{limit.seconds}:{end}"
        try:
            pipe: Any = self._redis.pipeline(transaction=False)
            pipe.incr(key)
            # Kept until a second past its window's end, reckoned on the same clock as
            # `now` (not Redis's), then gone.
            pipe.pexpire(key, end * 1000 - now // 1000 + 1000)
            used = int(pipe.execute()[0])
        except redis_errors.RedisError as exc:
            raise _failed(exc) from None
        return Decision(used <= limit.requests, limit.requests, max(0, limit.requests - used), end)
