"""The one response shape: JSON with no charset suffix, and `{"message": ...}` for errors."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_encode = msgspec.json.Encoder().encode


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"message": message}, status_code=status, headers=headers)
