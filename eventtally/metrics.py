"""Prometheus metrics in the text exposition format, with no dependency.

A handful of counters and one histogram; labels are bounded (endpoint paths the API
has, status codes, rate buckets), so memory stays flat whatever clients send.
"""

from __future__ import annotations

import threading
from collections import defaultdict

# Commit latency buckets, in seconds: group commits are fsync-bound (about 1-20 ms).
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


def _escape(value: str) -> str:
    """A label value as the exposition format writes it: \\, " and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: defaultdict[tuple[tuple[str, str], ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] += amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in items]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self._counts = [0] * len(buckets)
        self._sum = 0.0
        self._count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._sum += value
            self._count += 1
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[i] += 1

    @property
    def count(self) -> int:
        return self._count

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            counts, total, count = list(self._counts), self._sum, self._count
        lines += [
            f'{self.name}_bucket{{le="{bound:g}"}} {n}'
            for bound, n in zip(self.buckets, counts, strict=True)
        ]
        lines += [
            f'{self.name}_bucket{{le="+Inf"}} {count}',
            f"{self.name}_sum {total:g}",
            f"{self.name}_count {count}",
        ]
        return lines


class Metrics:
    """The server's metrics; one instance per app."""

    def __init__(self) -> None:
        self.requests = Counter(
            "eventtally_requests_total", "HTTP requests by endpoint, method and status"
        )
        self.events = Counter("eventtally_ingested_events_total", "Events stored by /users/track")
        self.rate_limited = Counter(
            "eventtally_rate_limited_total", "Requests refused with 429, by rate-limit bucket"
        )
        self.commit_seconds = Histogram(
            "eventtally_commit_seconds",
            "Time for one group commit of the store (write and fsync)",
            COMMIT_BUCKETS,
        )

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.events, self.rate_limited, self.commit_seconds):
            lines += metric.render()
        return "\n".join(lines) + "\n"
