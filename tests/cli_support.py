"""Running the `eventtally` command in process, for the CLI tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventtally.cli import main
from eventtally.store.sqlite import SqliteStore


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        assert self.err == ""
        lines = self.out.splitlines()
        assert len(lines) == 1, self.out  # exactly one JSON document, on one line
        return json.loads(lines[0])


@dataclass
class Cli:
    data: Path
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> Run:
        self.capsys.readouterr()
        code = main([*args, "--data", str(self.data)])
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def fails(self, *args: str) -> str:
        """A command that must fail: exit 1, nothing on stdout, one line on stderr; returns
        that line without its `eventtally: ` prefix."""
        run = self(*args)
        assert run.code == 1, run
        assert run.out == ""
        lines = run.err.splitlines()
        assert len(lines) == 1, run.err
        assert lines[0].startswith("eventtally: ")
        assert "Traceback" not in run.err
        return lines[0].removeprefix("eventtally: ")

    def segments(self, *args: str) -> Any:
        """`segments ... --json`, which must succeed."""
        return self("segments", *args, "--json").json()

    @contextmanager
    def store(self) -> Iterator[SqliteStore]:
        store = SqliteStore.open(self.data)
        try:
            yield store
        finally:
            store.close()
