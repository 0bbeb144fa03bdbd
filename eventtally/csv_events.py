"""The CSV input of `eventtally import`: a header row, then one Braze event object a row.

Which column fills which field of the event object is the mapping: a column headed with
a field's name fills it (`external_id`, `name`, `time`, `user_alias.alias_name`,
`properties.plan`, ...), and `--map FIELD=COLUMN` says it for any other header. A
property may be typed, `--map properties.price:float=price`; other fields are strings,
as the API takes them. An empty cell leaves its field out. The objects then go through
exactly what a JSONL line's do (`importer`), so the API's rules decide what is accepted;
a cell that is not of its column's type makes its row unusable, named by line.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eventtally.jsonl import BadLine, Entry

IDENTIFIERS = (
    "external_id",
    "braze_id",
    "email",
    "phone",
    "user_alias.alias_name",
    "user_alias.alias_label",
)
FIELDS = (*IDENTIFIERS, "app_id", "name", "time")
PROPERTY = "properties."
_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


class MappingError(ValueError):
    """The header and the `--map` options do not make event objects."""


def _integer(cell: str) -> int:
    if not _INTEGER.fullmatch(cell):
        raise ValueError("not an integer")
    return int(cell)


def _float(cell: str) -> float:
    value = float(cell) if _FLOAT.fullmatch(cell) else math.nan
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _boolean(cell: str) -> bool:
    lowered = cell.lower()
    if lowered not in ("true", "false"):
        raise ValueError("not true or false")
    return lowered == "true"


TYPES: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
}


@dataclass(frozen=True, slots=True)
class Column:
    """A mapped column: where it is in a row, the field it fills, how its cells convert."""

    index: int
    header: str
    # ("name", None), ("user_alias", "alias_name"), ("properties", key)
    path: tuple[str, str | None]
    convert: Callable[[str], Any]


def parse_map(option: str) -> tuple[str, str, str]:
    """`FIELD[:TYPE]=COLUMN` as (field, type, column); MappingError says what is wrong."""
    target, equals, column = option.partition("=")
    if not equals or not target or not column:
        raise MappingError(f"--map {option!r}: expected FIELD=COLUMN")
    field, kind = target, "string"
    head, colon, tail = target.rpartition(":")
    if colon and tail in TYPES:
        field, kind = head, tail
    if not field.startswith(PROPERTY):
        if field not in FIELDS:
            raise MappingError(
                f"--map {option!r}: {field!r} is not a field of an event object "
                f"({', '.join(FIELDS)} or properties.KEY)"
            )
        if kind != "string":
            raise MappingError(f"--map {option!r}: only a property can be typed")
    elif len(field) == len(PROPERTY):
        raise MappingError(f"--map {option!r}: a property needs a name (properties.KEY)")
    return field, kind, column


def _path(field: str) -> tuple[str, str | None]:
    if field.startswith(PROPERTY):
        return "properties", field[len(PROPERTY) :]
    head, _, tail = field.partition(".")
    return head, tail or None


def columns(header: Sequence[str], maps: Sequence[str]) -> tuple[list[Column], list[str]]:
    """The mapped columns of a header, and the headers left unmapped (ignored)."""
    where: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        where.setdefault(name, []).append(index)

    def index_of(name: str) -> int:
        found = where.get(name, [])
        if len(found) != 1:
            raise MappingError(
                f"the header has no column {name!r}"
                if not found
                else f"the header has {len(found)} columns {name!r}"
            )
        return found[0]

    fields: dict[str, tuple[str, str]] = {}  # field -> (type, column)
    for name in header:
        if name in FIELDS or (name.startswith(PROPERTY) and len(name) > len(PROPERTY)):
            fields[name] = ("string", name)
    for option in maps:  # given last, a mapping overrides a column's own name
        field, kind, column = parse_map(option)
        fields[field] = (kind, column)
    for required in ("name", "time"):
        if required not in fields:
            raise MappingError(
                f"no column gives {required!r} (a column headed {required}, or --map "
                f"{required}=COLUMN)"
            )
    if not any(field in fields for field in IDENTIFIERS):
        raise MappingError(
            "no column gives a user: head one external_id, braze_id, email, phone or "
            "user_alias.alias_name, or --map external_id=COLUMN"
        )
    mapped = [
        Column(index_of(column), column, _path(field), TYPES[kind])
        for field, (kind, column) in fields.items()
    ]
    used = {column.index for column in mapped}
    ignored = [name for index, name in enumerate(header) if index not in used and name]
    return mapped, ignored


class CsvEvents:
    """A CSV input read as the importer's entries: (line, items by array) or a BadLine.
    Lines are counted in the input, so a row with a quoted line break is named by its
    first line."""

    def __init__(self, lines: Iterable[str], maps: Sequence[str]) -> None:
        self._reader = csv.reader(lines, strict=True)
        try:
            header = next(self._reader)
        except StopIteration:
            raise MappingError("the input is empty: CSV starts with a header row") from None
        except csv.Error as exc:
            raise MappingError(f"the header row is not CSV ({exc})") from None
        if header:
            header[0] = header[0].removeprefix("\ufeff")  # a spreadsheet's byte order mark
        self._width = len(header)
        self.columns, self.ignored = columns([name.strip() for name in header], maps)

    def __iter__(self) -> Iterator[Entry]:
        reader = self._reader
        before = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader goes on with the next line
                yield BadLine(before + 1, f"not CSV ({exc})")
                before = reader.line_num
                continue
            line, before = before + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if len(row) > self._width:
                yield BadLine(line, f"{len(row)} cells, the header has {self._width}")
                continue
            row += [""] * (self._width - len(row))  # a short row's missing cells are empty
            try:
                yield line, {"events": [self._event(row)]}
            except ValueError as exc:
                yield BadLine(line, str(exc))

    def _event(self, row: list[str]) -> dict[str, Any]:
        event: dict[str, Any] = {}
        for column in self.columns:
            cell = row[column.index]
            if not cell:
                continue
            try:
                value = column.convert(cell)
            except ValueError as exc:
                raise ValueError(f"column {column.header!r}: {cell!r} is {exc}") from None
            head, tail = column.path
            if tail is None:
                event[head] = value
            else:
                event.setdefault(head, {})[tail] = value
        return event
