"""The JSONL input of `eventtally track` and `eventtally import`: one JSON object a line,
either a Braze event object or a whole `/users/track` body. Blank lines are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

Array = Literal["attributes", "events", "purchases"]
ARRAYS: tuple[Array, ...] = ("attributes", "events", "purchases")


@dataclass(frozen=True, slots=True)
class Item:
    line: int
    array: Array
    value: Any


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


# What an input gives the importer: a usable line's number and its items by array, or why
# a line is unusable.
Entry = tuple[int, dict[Array, list[Any]]] | BadLine
_decode = msgspec.json.Decoder().decode


def parse_line(text: str) -> dict[Array, list[Any]]:
    """The items one line holds, by array; ValueError says why a line is unusable."""
    try:
        # The API's own decoder: a line is JSON exactly when a request body would be (no
        # NaN, Infinity, numbers out of range or lone surrogates).
        value = _decode(text)
    except (msgspec.DecodeError, UnicodeEncodeError) as refused:
        # json words most errors by column, which is what a person fixing a file wants.
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
        raise ValueError(f"not JSON ({refused})") from None
    if type(value) is not dict:  # what the decoder gives for an object, exactly
        raise ValueError("not a JSON object")
    # Spelled out, not a loop over ARRAYS: this runs for every line of an import.
    if "events" not in value and "attributes" not in value and "purchases" not in value:
        return {"events": [value]}
    found: dict[Array, list[Any]] = {}
    for array in ARRAYS:
        items = value.get(array)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ValueError(f"'{array}' is not an array")
        found[array] = items
    return found


def by_line(lines: Iterable[str]) -> Iterator[Entry]:
    """Every usable line's number and items by array, and every unusable line with why."""
    for number, text in enumerate(lines, start=1):
        if not text or text.isspace():
            continue
        try:
            yield number, parse_line(text)
        except ValueError as exc:
            yield BadLine(number, str(exc))


def items(lines: Iterable[str]) -> Iterator[Item | BadLine]:
    """Every item of the input in order, and every unusable line with its reason."""
    for entry in by_line(lines):
        if isinstance(entry, BadLine):
            yield entry
            continue
        number, found = entry
        for array, values in found.items():
            for value in values:
                yield Item(number, array, value)


@dataclass
class Batch:
    """A whole input in memory: items by array, each with its line number."""

    items: dict[Array, list[Any]] = field(default_factory=lambda: {a: [] for a in ARRAYS})
    lines: dict[Array, list[int]] = field(default_factory=lambda: {a: [] for a in ARRAYS})
    bad_lines: list[BadLine] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(values) for values in self.items.values())


def read(lines: Iterable[str]) -> Batch:
    batch = Batch()
    for entry in items(lines):
        if isinstance(entry, BadLine):
            batch.bad_lines.append(entry)
        else:
            batch.items[entry.array].append(entry.value)
            batch.lines[entry.array].append(entry.line)
    return batch
