"""Sanitising of event names, property and attribute keys, string values (contract 5.4, 8.21).

Braze truncates rather than rejects long names, so everything here cuts to
`MAX_NAME_LENGTH` code points. Only an empty name or one starting with `$` is refused,
and that decision is left to the caller through `name_problem`.
"""

from __future__ import annotations

MAX_NAME_LENGTH = 255


def utf8_only(text: str) -> str:
    """`text` without what UTF-8 cannot encode (lone surrogates)."""
    # Almost every name is ASCII: skip the encode round trip for those.
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "ignore").decode("utf-8")
    return text


def clean_text(value: str) -> str:
    """A string value as stored: encodable as UTF-8, at most `MAX_NAME_LENGTH` code points."""
    return utf8_only(value)[:MAX_NAME_LENGTH]


def normalize_name(raw: str) -> str:
    """The name Braze keeps: trimmed, no newlines, valid UTF-8, at most 255 code points."""
    name = utf8_only(raw).strip()
    # After strip both ends are non-whitespace, so removing inner newlines cannot
    # expose new leading or trailing whitespace.
    if "\n" in name or "\r" in name:
        name = name.replace("\r", "").replace("\n", "")
    if len(name) > MAX_NAME_LENGTH:
        # The cut may land after a space; strip again so that normalising is idempotent
        # (a name read back and normalised again must not change).
        name = name[:MAX_NAME_LENGTH].rstrip()
    return name


def name_problem(name: str) -> str | None:
    """Why a normalised name cannot be used (a sentence), or None when it can."""
    if not name:
        return "the name is empty once whitespace and newlines are removed"
    if name[0] == "$":
        return "the name must not start with '$'"
    return None
