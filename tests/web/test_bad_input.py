"""Hostile input on the wire: always a 4xx naming the problem, never a 5xx, nothing lost."""

from __future__ import annotations

import pytest

from tests.support import Api

WHEN = "2025-05-05T05:05:05Z"


def post(api: Api, content: bytes) -> object:
    headers = {**api.auth, "Content-Type": "application/json"}
    return api.client.post("/users/track", content=content, headers=headers)


BASE_PURCHASE = {
    "external_id": "u",
    "product_id": "p",
    "currency": "USD",
    "price": 1,
    "quantity": 1,
    "time": WHEN,
    "name": "n",
}
KEPT_EVENT = b'"events": [{"external_id": "u", "name": "kept", "time": "' + WHEN.encode() + b'"}]'


@pytest.mark.parametrize(
    "number", [b"1" * 5000, b"1e400", b"-1e400"], ids=["5000-digit", "1e400", "-1e400"]
)
@pytest.mark.parametrize("field", ["price", "quantity", "time"])
def test_numbers_json_cannot_hold_refuse_the_body(api: Api, number: bytes, field: str) -> None:
    body = b'{"purchases": [' + _with_raw(BASE_PURCHASE, field, number) + b"], " + KEPT_EVENT + b"}"
    response = post(api, body)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "out of range" in response.json()["message"]  # type: ignore[attr-defined]
    series = api.series(event="kept", length=1, ending_at="2025-05-06").json()
    assert series["data"] == [{"time": "2025-05-05", "count": 0}]


@pytest.mark.parametrize(
    ("field", "processed"), [("price", 1), ("quantity", 0), ("time", 0), ("currency", 0)]
)
def test_large_integers_are_judged_by_the_field(api: Api, field: str, processed: int) -> None:
    body = (
        b'{"purchases": ['
        + _with_raw(BASE_PURCHASE, field, b"123456789012345678901234567890")
        + b"], "
        + KEPT_EVENT
        + b"}"
    )
    response = post(api, body)
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    result = response.json()  # type: ignore[attr-defined]
    assert result["events_processed"] == 1
    assert result["purchases_processed"] == processed


def _with_raw(item: dict[str, object], field: str, raw: bytes) -> bytes:
    parts = [
        b'"' + key.encode() + b'": ' + (raw if key == field else _encode(value))
        for key, value in item.items()
    ]
    return b"{" + b", ".join(parts) + b"}"


def _encode(value: object) -> bytes:
    return f'"{value}"'.encode() if isinstance(value, str) else str(value).encode()


def test_huge_inc_is_applied(api: Api) -> None:
    body = (
        b'{"attributes": [{"external_id": "u", "score": {"inc": 123456789012345678901234567890}}]}'
    )
    response = post(api, body)
    assert response.status_code == 201  # type: ignore[attr-defined]


@pytest.mark.parametrize("length", ["1" * 400, "1e2", "100.0", "+5", "٣", "0x10"])
def test_huge_or_odd_length_is_a_400_naming_it(api: Api, length: str) -> None:
    response = api.series(event="e", length=length)
    assert response.status_code == 400
    assert "length" in response.json()["message"]


@pytest.mark.parametrize("name", ["", " ", "\n\t ", "\r\n"])
def test_empty_and_whitespace_event_names_are_item_errors(api: Api, name: str) -> None:
    body = {"events": [{"external_id": "u", "name": name, "time": WHEN}]}
    response = api.track(body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["input_array"] == "events"


@pytest.mark.parametrize("event", ["", "   "])
def test_empty_event_parameter_is_a_400(api: Api, event: str) -> None:
    response = api.series(event=event, length=1)
    assert response.status_code in (200, 400)
    if event == "":
        assert response.status_code == 400
        assert "event" in response.json()["message"]


def test_bad_requests_lose_nothing_already_acknowledged(api: Api) -> None:
    good = {"events": [{"external_id": "u", "name": "kept", "time": WHEN}]}
    assert api.track(good).status_code == 201
    for content in (b"{", b"[" * 50_000, b'{"events": 5}', b"\xff\xfe", b"null"):
        response = post(api, content)
        assert 400 <= response.status_code < 500  # type: ignore[attr-defined]
    assert api.track(good).status_code == 201
    series = api.series(event="kept", length=1, ending_at="2025-05-06").json()
    assert series["data"] == [{"time": "2025-05-05", "count": 2}]
