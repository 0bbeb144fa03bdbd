"""docs/cli.md and docs/settings.md are generated from the code; these tests keep them so.

Regenerate both with `.venv/bin/python -m tests.test_docs`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from pathlib import Path

from eventtally.cli import build_parser
from eventtally.settings import SETTINGS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
    return found


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], str]]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        parser.print_help()
    pages = [(path, buffer.getvalue())]
    for name, sub in _subparsers(parser):
        pages += _walk(sub, (*path, name))
    return pages


def render_cli() -> str:
    # argparse wraps to the terminal's width; fix it so the docs do not depend on who runs this.
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        pages = _walk(build_parser(), ("eventtally",))
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    lines = [
        "# The eventtally command",
        "",
        "Generated from `--help` (regenerate with `.venv/bin/python -m tests.test_docs`).",
        "Every command prints one line on stderr and exits 1 when it cannot do what was asked.",
        "",
    ]
    for path, text in pages:
        lines += [f"## `{' '.join(path)}`", "", "```", text.rstrip(), "```", ""]
    return "\n".join(lines)


def render_settings() -> str:
    lines = [
        "# Settings",
        "",
        "Generated from `eventtally/settings.py` (regenerate with "
        "`.venv/bin/python -m tests.test_docs`). Each can be set in the environment; "
        "a command-line flag, where there is one, wins.",
        "",
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        lines.append(f"| `{s.name}` | `{s.env}` | `{s.default}` | {s.help} |")
    return "\n".join(lines) + "\n"


def test_cli_doc_matches_help() -> None:
    assert (DOCS / "cli.md").read_text() == render_cli(), "run python -m tests.test_docs"


def test_settings_doc_matches_table() -> None:
    assert (DOCS / "settings.md").read_text() == render_settings(), "run python -m tests.test_docs"


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    for path, _ in _walk(build_parser(), ("eventtally",)):
        assert f"## `{' '.join(path)}`" in text


if __name__ == "__main__":
    (DOCS / "cli.md").write_text(render_cli())
    (DOCS / "settings.md").write_text(render_settings())
