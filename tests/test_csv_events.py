"""CSV rows as Braze event objects (`eventtally import` of a .csv file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventtally.cli import main
from eventtally.csv_events import CsvEvents, MappingError, parse_map
from eventtally.jsonl import BadLine, Entry
from tests.smoke.server import init


def read(text: str, *maps: str) -> list[Entry]:
    return list(CsvEvents(text.splitlines(keepends=True), maps))


def test_columns_named_for_fields_fill_them_and_empty_cells_are_left_out() -> None:
    text = (
        "\ufeffexternal_id,name,time,app_id,user_alias.alias_name,user_alias.alias_label,"
        "properties.plan,notes\n"
        "u1,open,2025-01-01T00:00:00Z,,,,pro,ignored\n"
        ",buy,2025-01-02T00:00:00Z,app-1,crm,id-7,,\n"
    )
    events = CsvEvents(text.splitlines(keepends=True), [])
    assert events.ignored == ["notes"]
    assert list(events) == [
        (
            2,
            {
                "events": [
                    {
                        "external_id": "u1",
                        "name": "open",
                        "time": "2025-01-01T00:00:00Z",
                        "properties": {"plan": "pro"},
                    }
                ]
            },
        ),
        (
            3,
            {
                "events": [
                    {
                        "name": "buy",
                        "time": "2025-01-02T00:00:00Z",
                        "app_id": "app-1",
                        "user_alias": {"alias_name": "crm", "alias_label": "id-7"},
                    }
                ]
            },
        ),
    ]


def test_map_options_fill_fields_from_any_column_with_typed_properties() -> None:
    text = "user,event,at,qty,price,ok,name\nu1,open,T,3,-1.5e2,TRUE,unused\n"
    entries = read(
        text,
        "external_id=user",
        "name=event",  # overrides the column headed `name`
        "time=at",
        "properties.qty:integer=qty",
        "properties.price:float=price",
        "properties.ok:boolean=ok",
        "properties.a:b=qty",  # not a type: part of the property's name
    )
    assert entries == [
        (
            2,
            {
                "events": [
                    {
                        "external_id": "u1",
                        "name": "open",
                        "time": "T",
                        "properties": {"qty": 3, "price": -150.0, "ok": True, "a:b": "3"},
                    }
                ]
            },
        )
    ]


@pytest.mark.parametrize(
    ("kind", "cell", "reason"),
    [
        ("integer", "1.5", "not an integer"),
        ("integer", "1_000", "not an integer"),
        ("float", "nan", "not a finite number"),
        ("float", "1e999", "not a finite number"),
        ("float", "1,5", "not a finite number"),
        ("boolean", "yes", "not true or false"),
    ],
)
def test_a_cell_not_of_its_type_makes_its_row_unusable(kind: str, cell: str, reason: str) -> None:
    text = f'external_id,name,time,v\nu,e,T,"{cell}"\nu,e,T,\n'
    entries = read(text, f"properties.v:{kind}=v")
    assert entries[0] == BadLine(2, f"column 'v': {cell!r} is {reason}")
    assert entries[1] == (3, {"events": [{"external_id": "u", "name": "e", "time": "T"}]})


def test_rows_are_named_by_their_first_line() -> None:
    text = (
        "external_id,name,time\n"
        '"u\n1",open,T\n'  # a quoted line break: one row over two lines
        "\n"
        "u2,open,T,extra\n"
        "u3,open\n"  # a short row: the missing cells are empty
    )
    assert read(text) == [
        (2, {"events": [{"external_id": "u\n1", "name": "open", "time": "T"}]}),
        BadLine(5, "4 cells, the header has 3"),
        (6, {"events": [{"external_id": "u3", "name": "open"}]}),
    ]


@pytest.mark.parametrize(
    ("header", "maps", "message"),
    [
        ("external_id,time", [], "no column gives 'name'"),
        ("external_id,name", [], "no column gives 'time'"),
        ("name,time,user", [], "no column gives a user"),
        ("name,time,user", ["external_id=who"], "the header has no column 'who'"),
        ("name,time,u,u", ["external_id=u"], "the header has 2 columns 'u'"),
        ("name,time", ["external_id"], "expected FIELD=COLUMN"),
        ("name,time", ["user_id=u"], "'user_id' is not a field of an event object"),
        ("name,time", ["name:integer=n"], "only a property can be typed"),
        ("name,time", ["properties.=p"], "a property needs a name"),
        ("", [], "the input is empty"),
    ],
)
def test_a_mapping_that_makes_no_events_is_refused(
    header: str, maps: list[str], message: str
) -> None:
    with pytest.raises(MappingError, match=message):
        CsvEvents([header + "\n"] if header else [], maps)


def test_parse_map_splits_at_the_first_equals_sign() -> None:
    assert parse_map("properties.k=a=b") == ("properties.k", "string", "a=b")
    assert parse_map("properties.k:float=c") == ("properties.k", "float", "c")


def test_the_cli_imports_csv_and_reports_rows_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    init(data, "UTC")
    path = tmp_path / "events.txt"  # not .csv: --format says it
    path.write_text(
        "user,name,time,qty,note\n"
        "u1,open,2025-01-01T00:00:00Z,2,x\n"
        "u1,open,2025-01-01T00:00:00Z,two,x\n"
        "u2,open,not a time,3,x\n"
    )
    common = ["import", str(path), "--data", str(data), "--quiet"]
    maps = ["--map", "external_id=user", "--map", "properties.qty:integer=qty"]
    assert main([*common, "--format", "csv", *maps, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["events_processed"] == 1
    assert err.splitlines() == [
        "ignored columns: note",
        "line 3: column 'qty': 'two' is not an integer",
        "line 4: events: 'time' is not a valid ISO 8601 datetime: the value is not an ISO "
        "8601 date or datetime",
    ]
    assert main([*common, "--format", "csv", *maps, "--strict"]) == 1
    assert "line 3: column 'qty'" in capsys.readouterr().err
    assert main([*common, *maps]) == 1  # a .txt file is JSONL unless told
    assert capsys.readouterr().err.strip() == (
        "eventtally: --map maps the columns of CSV input (--format csv, or a .csv file)"
    )
    assert main([*common, "--format", "csv"]) == 1
    assert "no column gives a user" in capsys.readouterr().err
