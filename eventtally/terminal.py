"""A series drawn for the terminal: a table with a bar per point and the total, or CSV/JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime

BAR_WIDTH = 40
SPARKS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(count: int, peak: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a cell; any non-zero count shows at least a sliver."""
    if peak <= 0 or count <= 0:
        return ""
    eighths = max(1, round(count * width * 8 / peak))
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def sparkline(counts: Sequence[int]) -> str:
    peak = max(counts, default=0)
    if peak <= 0:
        return SPARKS[0] * len(counts)
    return "".join(SPARKS[min(len(SPARKS) - 1, c * len(SPARKS) // (peak + 1))] for c in counts)


def _label(time: date | datetime) -> str:
    return time.isoformat()


def table(event: str, points: Sequence[tuple[date | datetime, int]]) -> str:
    """The series as aligned rows `time  count  bar`, then the total and a sparkline."""
    counts = [count for _, count in points]
    peak = max(counts, default=0)
    labels = [_label(time) for time, _ in points]
    label_width = max((len(label) for label in labels), default=4)
    count_width = max(len(f"{peak:,}"), 5)
    lines = [f"{'time'.ljust(label_width)}  {'count'.rjust(count_width)}  {event}"]
    lines += [
        f"{label.ljust(label_width)}  {count:>{count_width},}  {_bar(count, peak)}"
        for label, count in zip(labels, counts, strict=True)
    ]
    lines.append(
        f"{'total'.ljust(label_width)}  {sum(counts):>{count_width},}  {sparkline(counts)}"
    )
    return "\n".join(lines)


def as_csv(points: Sequence[tuple[date | datetime, int]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "count"])
    writer.writerows((_label(time), count) for time, count in points)
    return out.getvalue().rstrip("\n")


def as_json(points: Sequence[tuple[date | datetime, int]]) -> str:
    return json.dumps([{"time": _label(time), "count": count} for time, count in points])
