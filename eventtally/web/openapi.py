"""The OpenAPI 3 document of the whole API, served at `/openapi.json`.

Written by hand to say what Braze's clients see; schemathesis checks every response
of a real server against it in the test suite.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventtally.domain.buckets import MAX_LENGTH, MIN_LENGTH
from eventtally.domain.idempotency import HEADER, MAX_KEY_LENGTH
from eventtally.domain.track import MAX_ITEMS_PER_ARRAY
from eventtally.web.responses import JSON


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _rate_headers(required: bool = True) -> dict[str, Any]:
    text = {"schema": {"type": "string"}, "required": required}
    return {
        "X-RateLimit-Limit": {**text, "description": "Requests allowed in the window"},
        "X-RateLimit-Remaining": {**text, "description": "Requests left in the window"},
        "X-RateLimit-Reset": {**text, "description": "Epoch seconds when the window ends"},
    }


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "A parameter or the body breaks a rule; the message names it",
        401: "No key, or an unknown or revoked one",
        403: "The key lacks the permission, or is not allowed from this address",
        413: "The body is over 4 MB",
        409: "A request with the same Idempotency-Key is still being processed; retry later",
        415: "The body is not application/json",
        422: "The Idempotency-Key was already used with a different body",
        429: "Rate limit exceeded",
        503: "The store cannot write now; retry later",
    }
    found: dict[str, Any] = {}
    for status in statuses:
        # 401 carries the headers empty; 413 is refused before the key is looked at.
        headers = _rate_headers(required=status not in (401, 413))
        if status == 429:
            headers["Retry-After"] = {"schema": {"type": "string"}, "required": True}
        found[str(status)] = _json(_ref("Error"), descriptions[status], headers)
    return found


_IDENTIFIED: dict[str, Any] = {
    # Each item names its user with one of Braze's identifiers.
    "anyOf": [
        {"required": [key]} for key in ("external_id", "user_alias", "braze_id", "email", "phone")
    ],
}
_IDENTIFIERS: dict[str, Any] = {
    "external_id": {"type": "string", "minLength": 1, "maxLength": 511},
    "user_alias": {
        "type": "object",
        "required": ["alias_name", "alias_label"],
        "properties": {"alias_name": {"type": "string"}, "alias_label": {"type": "string"}},
    },
    "braze_id": {"type": "string"},
    "email": {"type": "string"},
    "phone": {"type": "string"},
    "_update_existing_only": {"type": "boolean"},
    "app_id": {"type": "string"},
}
_ITEMS: dict[str, Any] = {
    "attributes": {"type": "object", **_IDENTIFIED, "properties": _IDENTIFIERS},
    "events": {
        "type": "object",
        **_IDENTIFIED,
        "required": ["name", "time"],
        "properties": {
            **_IDENTIFIERS,
            "name": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "properties": {"type": "object"},
        },
    },
    "purchases": {
        "type": "object",
        **_IDENTIFIED,
        "required": ["product_id", "currency", "price", "time"],
        "properties": {
            **_IDENTIFIERS,
            "product_id": {"type": "string"},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
            "price": {"type": "number"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
            "time": {"type": "string", "format": "date-time"},
            "properties": {"type": "object"},
        },
    },
}


def _points(value: str, time_format: str) -> dict[str, Any]:
    """A series answer: `length` points of {time, <value>}."""
    return {
        "type": "object",
        "required": ["message", "data"],
        "properties": {
            "message": {"const": "success"},
            "data": {
                "type": "array",
                "minItems": MIN_LENGTH,
                "maxItems": MAX_LENGTH,
                "items": {
                    "type": "object",
                    "required": ["time", value],
                    "properties": {
                        "time": {"type": "string", "description": time_format},
                        value: {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1},
            "errors": {"type": "array", "items": _ref("ItemError")},
        },
    },
    "ItemError": {
        "type": "object",
        "required": ["type", "input_array", "index"],
        "properties": {
            "type": {"type": "string"},
            "input_array": {"enum": ["attributes", "events", "purchases"]},
            "index": {"type": "integer", "minimum": 0},
        },
    },
    "TrackBody": {
        "type": "object",
        "properties": {
            name: {"type": "array", "maxItems": MAX_ITEMS_PER_ARRAY, "items": item}
            for name, item in _ITEMS.items()
        },
    },
    "TrackResult": {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"const": "success"},
            "attributes_processed": {"type": "integer", "minimum": 0},
            "events_processed": {"type": "integer", "minimum": 0},
            "purchases_processed": {"type": "integer", "minimum": 0},
            "errors": {"type": "array", "items": _ref("ItemError")},
        },
    },
    "Series": _points("count", "YYYY-MM-DD, or ISO 8601 with offset"),
    "EventNames": {
        "type": "object",
        "required": ["message", "events"],
        "properties": {
            "message": {"const": "success"},
            "events": {"type": "array", "maxItems": 250, "items": {"type": "string"}},
        },
    },
    "Catalogue": {
        "type": "object",
        "required": ["message", "events"],
        "properties": {
            "message": {"const": "success"},
            "events": {
                "type": "array",
                "maxItems": 50,
                "items": {
                    "type": "object",
                    "required": [
                        "name",
                        "description",
                        "included_in_analytics_report",
                        "status",
                        "tag_names",
                    ],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": ["string", "null"]},
                        "included_in_analytics_report": {"type": "boolean"},
                        "status": {"enum": ["Active", "Blocklisted"]},
                        "tag_names": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "SegmentList": {
        "type": "object",
        "required": ["message", "segments"],
        "properties": {
            "message": {"const": "success"},
            "segments": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["id", "name", "analytics_tracking_enabled", "tags"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "analytics_tracking_enabled": {"type": "boolean"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "SegmentDetails": {
        "type": "object",
        "required": [
            "message",
            "created_at",
            "updated_at",
            "name",
            "description",
            "text_description",
            "tags",
            "teams",
        ],
        "properties": {
            "message": {"const": "success"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string", "description": "The filter in words"},
            "text_description": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "teams": {"type": "array", "items": {"type": "string"}},
        },
    },
    "SegmentSizes": _points("size", "YYYY-MM-DD"),
    "Workspace": {
        "type": "object",
        "required": ["message", "name", "time_zone", "apps"],
        "properties": {
            "message": {"const": "success"},
            "name": {"type": "string"},
            "time_zone": {"type": "string", "description": "IANA name of the reporting zone"},
            "apps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["app_id", "name"],
                    "properties": {"app_id": {"type": "string"}, "name": {"type": "string"}},
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"const": "ok"}},
    },
}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def document() -> dict[str, Any]:
    """The OpenAPI document (3.1: JSON Schema types such as ["string", "null"])."""
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eventtally",
            "version": "1",
            "description": "Braze-compatible custom-event analytics. See docs/api.md.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
        },
        "paths": {
            "/users/track": {
                "post": {
                    "operationId": "usersTrack",
                    "summary": "Record attributes, events and purchases",
                    "security": secured,
                    # The header is described, not declared as a parameter: a fuzzer reuses
                    # its few short keys with random bodies, and a reused key is rightly a 422.
                    "description": f"eventtally's extension: an optional `{HEADER}` header "
                    f"(1 to {MAX_KEY_LENGTH} printable ASCII characters) makes a repeat with the "
                    "same key and body answer as the first did and change nothing; the same key "
                    "with another body is a 422, and a repeat while the first is still being "
                    "processed a 409. See docs/api.md.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("TrackBody")}},
                    },
                    "responses": {
                        "201": _json(_ref("TrackResult"), "Applied", _rate_headers()),
                        **_errors(400, 401, 403, 409, 413, 415, 422, 429, 503),
                    },
                }
            },
            "/events/data_series": {
                "get": {
                    "operationId": "eventsDataSeries",
                    "summary": "Occurrences of a custom event per hour or day",
                    "security": secured,
                    "parameters": [
                        _query("event", {"type": "string", "minLength": 1}, required=True),
                        _query(
                            "length",
                            {"type": "integer", "minimum": MIN_LENGTH, "maximum": MAX_LENGTH},
                            required=True,
                        ),
                        _query("unit", {"enum": ["day", "hour"]}),
                        _query("ending_at", {"type": "string"}),
                        _query("app_id", {"type": "string"}),
                        _query("segment_id", {"type": "string"}),
                    ],
                    "responses": {
                        "200": _json(_ref("Series"), "The series", _rate_headers()),
                        **_errors(400, 401, 403, 429),
                    },
                }
            },
            "/events/list": {
                "get": {
                    "operationId": "eventsList",
                    "summary": "Custom event names, 250 a page",
                    "security": secured,
                    "parameters": [_query("page", {"type": "integer", "minimum": 0})],
                    "responses": {
                        "200": _json(_ref("EventNames"), "A page of names", _rate_headers()),
                        **_errors(400, 401, 403, 429),
                    },
                }
            },
            "/events": {
                "get": {
                    "operationId": "events",
                    "summary": "The custom event catalogue, 50 a page",
                    "security": secured,
                    "parameters": [_query("cursor", {"type": "string"})],
                    "responses": {
                        "200": _json(
                            _ref("Catalogue"),
                            "A page of the catalogue; Link holds rel=next/prev",
                            {**_rate_headers(), "Link": {"schema": {"type": "string"}}},
                        ),
                        **_errors(400, 401, 403, 429),
                    },
                }
            },
            "/segments/list": {
                "get": {
                    "operationId": "segmentsList",
                    "summary": "Live segments, 100 a page, by creation time",
                    "security": secured,
                    "parameters": [
                        _query("page", {"type": "integer", "minimum": 0}),
                        _query("sort_direction", {"enum": ["asc", "desc"]}),
                    ],
                    "responses": {
                        "200": _json(_ref("SegmentList"), "A page of segments", _rate_headers()),
                        **_errors(400, 401, 403, 429),
                    },
                }
            },
            "/segments/details": {
                "get": {
                    "operationId": "segmentDetails",
                    "summary": "One segment",
                    "security": secured,
                    "parameters": [_query("segment_id", {"type": "string"}, required=True)],
                    "responses": {
                        "200": _json(_ref("SegmentDetails"), "The segment", _rate_headers()),
                        **_errors(400, 401, 403, 429),
                    },
                }
            },
            "/segments/data_series": {
                "get": {
                    "operationId": "segmentDataSeries",
                    "summary": "A segment's size at the end of each day",
                    "security": secured,
                    "parameters": [
                        _query("segment_id", {"type": "string"}, required=True),
                        _query(
                            "length",
                            {"type": "integer", "minimum": MIN_LENGTH, "maximum": MAX_LENGTH},
                            required=True,
                        ),
                        _query("ending_at", {"type": "string"}),
                    ],
                    "responses": {
                        "200": _json(_ref("SegmentSizes"), "Daily sizes", _rate_headers()),
                        **_errors(400, 401, 403, 429),
                    },
                }
            },
            "/workspace": {
                "get": {
                    "operationId": "workspaceGet",
                    "summary": "The key's workspace, reporting zone and apps",
                    "description": "eventtally's extension (permission `workspace.get`, the "
                    "default rate bucket); the dashboard signs in with it. See docs/dashboard.md.",
                    "security": secured,
                    "responses": {
                        "200": _json(_ref("Workspace"), "The workspace", _rate_headers()),
                        **_errors(401, 403, 429),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness; needs no key",
                    "responses": {"200": _json(_ref("Health"), "Serving", {})},
                }
            },
        },
    }


_DOCUMENT = document()


async def openapi_json(request: Request) -> Response:
    return JSON(_DOCUMENT)
