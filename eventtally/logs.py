"""Structured logs: one JSON object a line on stderr. Never a key, a body or a query string."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are: formatting and writing them there
    keeps the serving thread from writing to stderr, a system call that hands the
    interpreter lock to other threads on every request (an access-log line each)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def configure(level: int = logging.INFO) -> None:
    """Send eventtally's logs to stderr as JSON lines (once per process), written by a
    thread of their own; what is queued is written at exit."""
    logger = logging.getLogger("eventtally")
    if any(isinstance(h, _Enqueue) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.handlers.QueueListener(records, handler)
    writer.start()
    atexit.register(writer.stop)
    logger.addHandler(_Enqueue(records))
    logger.setLevel(level)
    logger.propagate = False
