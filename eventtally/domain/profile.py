"""Applying attribute operations to a profile (contract 5.3): set, delete, inc, add, remove."""

from __future__ import annotations

from typing import Any

from eventtally.domain.track import AttributeOp


def apply_attribute_ops(
    attributes: dict[str, Any], ops: tuple[tuple[str, AttributeOp], ...]
) -> dict[str, Any]:
    """A new attribute dict with `ops` applied in order; the input is left unchanged."""
    result = dict(attributes)
    for key, (kind, value) in ops:
        if kind == "set":
            result[key] = value
        elif kind == "delete":
            result.pop(key, None)
        elif kind == "inc":
            current = result.get(key)
            # A missing or non-numeric attribute starts from zero, as Braze's inc does.
            base = current if _is_number(current) else 0
            result[key] = base + value
        elif kind == "add":
            current = result.get(key)
            result[key] = [*(current if isinstance(current, list) else []), *value]
        elif kind == "remove":
            current = result.get(key)
            if isinstance(current, list):
                result[key] = [item for item in current if item not in value]
    return result


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
