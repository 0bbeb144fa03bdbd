from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventtally.domain.names import (
    MAX_NAME_LENGTH,
    clean_text,
    name_problem,
    normalize_name,
    utf8_only,
)

EMPTY = "the name is empty once whitespace and newlines are removed"
DOLLAR = "the name must not start with '$'"


def test_max_name_length_is_brazes() -> None:
    assert MAX_NAME_LENGTH == 255


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Added to cart", "Added to cart"),
        ("  padded\t ", "padded"),
        ("line\nbreak", "linebreak"),
        ("carriage\rreturn", "carriagereturn"),
        ("crlf\r\ninside", "crlfinside"),
        ("\n\r edges \r\n", "edges"),
        ("a \n b", "a  b"),
        ("\u00a0nbsp\u3000", "nbsp"),
        ("café 😀", "café 😀"),
        ("lone\ud800surrogate", "lonesurrogate"),
        ("\udfffleading", "leading"),
        ("", ""),
        (" \n\r\t ", ""),
        ("$reserved", "$reserved"),
        ("Case Kept", "Case Kept"),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a" * 254, "a" * 254),
        ("a" * 255, "a" * 255),
        ("a" * 256, "a" * 255),
        ("b" * 1000, "b" * 255),
        # Code points, not bytes or UTF-16 units.
        ("é" * 300, "é" * 255),
        ("😀" * 300, "😀" * 255),
        # Trimming happens before the cut, so leading blanks do not use up the budget.
        ("   " + "c" * 300, "c" * 255),
        # Newlines removed before the cut do not count.
        ("\n".join("d" * 255), "d" * 255),
        # A cut that lands after a space drops the space too.
        ("e" * 254 + " f" + "g" * 10, "e" * 254),
    ],
)
def test_normalize_name_cuts_to_255_code_points(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", EMPTY),
        ("$", DOLLAR),
        ("$purchase", DOLLAR),
        ("ok", None),
        ("ends$", None),
        ("a $b", None),
        ("😀", None),
    ],
)
def test_name_problem(name: str, expected: str | None) -> None:
    assert name_problem(name) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("  kept  \n", "  kept  \n"),
        ("x" * 255, "x" * 255),
        ("x" * 256, "x" * 255),
        ("ü" * 400, "ü" * 255),
        ("a\ud800b", "ab"),
    ],
)
def test_clean_text_keeps_whitespace_and_cuts(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_utf8_only_returns_clean_text_unchanged() -> None:
    text = "déjà vu"
    assert utf8_only(text) is text


@given(st.text())
def test_normalize_name_is_idempotent_and_clean(raw: str) -> None:
    name = normalize_name(raw)
    assert normalize_name(name) == name
    assert len(name) <= MAX_NAME_LENGTH
    assert "\n" not in name
    assert "\r" not in name
    assert name == name.strip()
    name.encode("utf-8")  # must not raise
