"""POST /users/track over HTTP (contract section 5, decisions 8.9-8.12, 8.18-8.21)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from eventtally.domain.model import EventUpdate
from tests.support import Api, running_api

NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
IDENTIFIER_REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
UNKNOWN_APP = "'app_id' is not a known app"
FOUR_MB = 4 * 1024 * 1024

DAY = "2024-03-10"
T = "2024-03-10T12:00:00Z"


def event(name: str = "opened", *, time: str = T, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "time": time}
    if not any(k in fields for k in ("external_id", "user_alias", "braze_id", "email", "phone")):
        item["external_id"] = "user-1"
    item.update(fields)
    return item


def attributes(**fields: Any) -> dict[str, Any]:
    return {"external_id": "user-1", **fields}


def purchase(**fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "external_id": "user-1",
        "product_id": "sku-1",
        "currency": "USD",
        "price": 9.99,
        "time": T,
    }
    item.update(fields)
    return item


def day_count(api: Api, name: str, day: str = DAY, **params: Any) -> int:
    """The count of `name` on one UTC day (the test workspace is in UTC)."""
    following = datetime.fromisoformat(day).toordinal() + 1
    ending_at = datetime.fromordinal(following).date().isoformat()
    response = api.series(event=name, length=1, ending_at=ending_at, **params)
    assert response.status_code == 200, response.text
    ((point,),) = [response.json()["data"]]
    assert point["time"] == day
    count: int = point["count"]
    return count


def users(api: Api) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(f"file:{api.store.path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT braze_id, external_id, alias, email, phone FROM users "
            "WHERE workspace_id = ? ORDER BY id",
            (api.workspace.id,),
        ).fetchall()
        return [dict(row) for row in rows]


def post_raw(api: Api, content: bytes | Iterator[bytes], content_type: str) -> httpx.Response:
    headers = {**api.auth, "Content-Type": content_type}
    response: httpx.Response = api.client.post("/users/track", content=content, headers=headers)
    return response


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"message"}
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


# --- success responses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"events": [event()]}, {"events_processed": 1}),
        ({"attributes": [attributes(plan="pro")]}, {"attributes_processed": 1}),
        ({"purchases": [purchase()]}, {"purchases_processed": 1}),
        (
            {"attributes": [attributes(a=1)], "events": [event(), event()]},
            {"attributes_processed": 1, "events_processed": 2},
        ),
        (
            {"attributes": [attributes()], "events": [event()], "purchases": [purchase()]},
            {"attributes_processed": 1, "events_processed": 1, "purchases_processed": 1},
        ),
        # An empty array was still sent, so its key is there (with 0).
        ({"events": [event()], "purchases": []}, {"events_processed": 1, "purchases_processed": 0}),
        # null is the same as absent; unknown top-level keys are ignored (RudderStack's partner).
        (
            {"events": [event()], "purchases": None, "partner": "RudderStack"},
            {"events_processed": 1},
        ),
    ],
    ids=["events", "attributes", "purchases", "two-arrays", "all-arrays", "empty-array", "null"],
)
def test_success_reports_processed_only_for_arrays_sent(
    api: Api, body: dict[str, Any], expected: dict[str, int]
) -> None:
    response = api.track(body)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "success", **expected}


def test_partial_success_lists_each_refused_item_with_brazes_sentences(api: Api) -> None:
    response = api.track(
        {
            "purchases": [purchase(quantity=0), purchase()],
            "events": [
                event("kept"),
                {"name": "orphan", "time": T},
                {"external_id": "user-1", "time": T},
                event("kept"),
            ],
            "attributes": [attributes(email="not-an-email"), attributes(plan="pro")],
        }
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "message": "success",
        "attributes_processed": 1,
        "events_processed": 2,
        "purchases_processed": 1,
        "errors": [
            {
                "type": "The value provided for the 'email' field is not a valid email.",
                "input_array": "attributes",
                "index": 0,
            },
            {"type": IDENTIFIER_REQUIRED, "input_array": "events", "index": 1},
            {
                "type": "The property '#/' did not contain a required property of 'name'",
                "input_array": "events",
                "index": 2,
            },
            {"type": "'quantity' is not valid", "input_array": "purchases", "index": 0},
        ],
    }
    assert day_count(api, "kept") == 2
    assert day_count(api, "orphan") == 0


# --- fatal responses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, []),
        ({"partner": "RudderStack"}, []),
        ({"events": []}, []),
        (
            {"events": [{"name": "x", "time": T}, {"name": "y", "time": T}]},
            [
                {"type": IDENTIFIER_REQUIRED, "input_array": "events", "index": 0},
                {"type": IDENTIFIER_REQUIRED, "input_array": "events", "index": 1},
            ],
        ),
        (
            {"events": [event(app_id="no-such-app")], "purchases": [purchase(quantity=101)]},
            [
                {"type": UNKNOWN_APP, "input_array": "events", "index": 0},
                {"type": "'quantity' is not valid", "input_array": "purchases", "index": 0},
            ],
        ),
    ],
    ids=["empty-object", "only-unknown-keys", "empty-array", "no-identifiers", "mixed"],
)
def test_nothing_valid_is_a_400_listing_every_bad_item(
    api: Api, body: dict[str, Any], errors: list[dict[str, Any]]
) -> None:
    response = api.track(body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    got = response.json()
    assert got["message"] == NOTHING_VALID
    assert got.get("errors", []) == errors
    assert set(got) <= {"message", "errors"}


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
def test_more_than_75_items_in_an_array_is_a_400(api: Api, array: str) -> None:
    item = {"attributes": attributes(), "events": event("bulk"), "purchases": purchase()}[array]
    response = api.track({array: [item] * 76})
    body = assert_json_error(response, 400)
    assert body["message"].startswith("Max Input Length Exceeded")
    assert day_count(api, "bulk") == 0
    assert users(api) == []


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
def test_exactly_75_items_in_each_array_are_accepted(api: Api, array: str) -> None:
    item = {"attributes": attributes(), "events": event("bulk"), "purchases": purchase()}[array]
    response = api.track({array: [item] * 75})
    assert response.status_code == 201, response.text
    assert response.json() == {"message": "success", f"{array}_processed": 75}


# --- identities -------------------------------------------------------------------------


def test_unknown_app_id_is_an_item_error_and_known_ones_count(api: Api) -> None:
    response = api.track(
        {"events": [event("tap", app_id="not-an-app"), event("tap", app_id=api.app_ids[0])]}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "message": "success",
        "events_processed": 1,
        "errors": [{"type": UNKNOWN_APP, "input_array": "events", "index": 0}],
    }
    assert day_count(api, "tap") == 1
    assert day_count(api, "tap", app_id=api.app_ids[0]) == 1


def test_new_user_alias_needs_update_existing_only_false(api: Api) -> None:
    alias = {"alias_name": "anon-42", "alias_label": "amplitude"}
    refused = api.track({"events": [event("viewed", user_alias=alias)]})
    assert refused.status_code == 400, refused.text
    (error,) = refused.json()["errors"]
    assert error["input_array"] == "events"
    assert error["index"] == 0
    assert "user_alias" in error["type"]
    assert users(api) == []

    created = api.track({"attributes": [{"user_alias": alias, "_update_existing_only": False}]})
    assert created.status_code == 201, created.text
    assert created.json() == {"message": "success", "attributes_processed": 1}

    accepted = api.track({"events": [event("viewed", user_alias=alias)]})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {"message": "success", "events_processed": 1}
    assert day_count(api, "viewed") == 1
    assert len(users(api)) == 1


def test_an_event_may_create_an_alias_when_update_existing_only_is_false(api: Api) -> None:
    alias = {"alias_name": "anon-7", "alias_label": "web"}
    item = event("viewed", user_alias=alias, _update_existing_only=False)
    response = api.track({"events": [item]})
    assert response.json() == {"message": "success", "events_processed": 1}
    assert [u["alias"] for u in users(api)] == ["web\x00anon-7"]


def test_unknown_braze_id_is_an_item_error_and_a_known_one_works(api: Api) -> None:
    refused = api.track({"events": [event(braze_id="0123456789abcdef01234567")]})
    assert refused.status_code == 400, refused.text
    (error,) = refused.json()["errors"]
    assert (error["input_array"], error["index"]) == ("events", 0)
    assert "braze_id" in error["type"]
    assert users(api) == []

    assert api.track({"attributes": [attributes()]}).status_code == 201
    (user,) = users(api)
    assert len(user["braze_id"]) == 24
    assert int(user["braze_id"], 16) >= 0
    accepted = api.track({"events": [event("by-braze-id", braze_id=user["braze_id"])]})
    assert accepted.json() == {"message": "success", "events_processed": 1}
    assert day_count(api, "by-braze-id") == 1
    assert len(users(api)) == 1


def test_email_identity_creates_a_profile_then_finds_it(api: Api) -> None:
    first = api.track({"events": [event("mailed", email="New.User@Example.com")]})
    assert first.json() == {"message": "success", "events_processed": 1}
    (user,) = users(api)
    assert user["email"] == "new.user@example.com"
    assert user["external_id"] is None

    found = api.track(
        {"events": [event("mailed", email="new.user@example.com", _update_existing_only=True)]}
    )
    assert found.json() == {"message": "success", "events_processed": 1}
    missing = api.track(
        {"events": [event("mailed", email="someone@example.com", _update_existing_only=True)]}
    )
    assert missing.status_code == 400, missing.text
    assert [(e["input_array"], e["index"]) for e in missing.json()["errors"]] == [("events", 0)]
    assert len(users(api)) == 1
    assert day_count(api, "mailed") == 2


def test_email_wins_over_phone(api: Api) -> None:
    response = api.track({"events": [event(email="both@example.com", phone="+15550100")]})
    assert response.json() == {"message": "success", "events_processed": 1}
    (user,) = users(api)
    assert (user["email"], user["phone"]) == ("both@example.com", None)


def test_attributes_are_applied_before_events_of_the_same_request(api: Api) -> None:
    alias = {"alias_name": "anon-1", "alias_label": "web"}
    # The events array comes first in the body; Braze's order still applies attributes first.
    body = {
        "events": [
            event("after-alias", user_alias=alias),
            event("after-email", email="late@example.com", _update_existing_only=True),
        ],
        "attributes": [
            {"user_alias": alias, "_update_existing_only": False},
            attributes(email="late@example.com"),
        ],
    }
    response = api.track(body)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "message": "success",
        "attributes_processed": 2,
        "events_processed": 2,
    }
    assert day_count(api, "after-alias") == 1
    assert day_count(api, "after-email") == 1
    assert len(users(api)) == 2


# --- times ------------------------------------------------------------------------------


def test_future_event_time_is_clamped_to_now(tmp_path: Path) -> None:
    now = datetime(2024, 3, 10, 15, 30, 12, tzinfo=UTC)
    now_us = int(now.timestamp()) * 1_000_000
    with running_api(tmp_path / "data", clock=lambda: now_us) as api:
        response = api.track({"events": [event("from-the-future", time="2030-01-01T00:00:00Z")]})
        assert response.json() == {"message": "success", "events_processed": 1}
        hours = api.series(
            event="from-the-future", length=3, unit="hour", ending_at="2024-03-10T17:00:00Z"
        )
        assert hours.json()["data"] == [
            {"time": "2024-03-10T14:00:00+00:00", "count": 0},
            {"time": "2024-03-10T15:00:00+00:00", "count": 1},
            {"time": "2024-03-10T16:00:00+00:00", "count": 0},
        ]
        future = api.series(
            event="from-the-future", length=2, unit="day", ending_at="2030-01-02T00:00:00Z"
        )
        assert [p["count"] for p in future.json()["data"]] == [0, 0]


def test_event_time_without_offset_is_utc(tmp_path: Path) -> None:
    with running_api(tmp_path / "data", time_zone="America/New_York") as api:
        response = api.track({"events": [event("naive", time="2024-01-15T03:30:00")]})
        assert response.json() == {"message": "success", "events_processed": 1}
        # 03:30 UTC is 22:30 the day before in New York.
        days = api.series(event="naive", length=2, ending_at="2024-01-16")
        assert days.json()["data"] == [
            {"time": "2024-01-14", "count": 1},
            {"time": "2024-01-15", "count": 0},
        ]


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("  padded  ", "padded"),
        ("\tTabbed\r\n", "Tabbed"),
        ("line\nbreak", "linebreak"),
        ("crlf\r\ninside", "crlfinside"),
        ("x" * 300, "x" * 255),
        ("é" * 256, "é" * 255),
        (" " + "y" * 254 + "\n" + "z" * 10, "y" * 254 + "z"),
    ],
    ids=["spaces", "tab-crlf", "newline", "crlf", "long", "long-non-ascii", "trim-then-cut"],
)
def test_event_names_are_normalised_at_ingest(api: Api, raw: str, normalised: str) -> None:
    response = api.track({"events": [event(raw)]})
    assert response.json() == {"message": "success", "events_processed": 1}
    assert day_count(api, normalised) == 1
    assert api.get("/events/list").json()["events"] == [normalised]
    if raw[:255] != normalised:
        assert day_count(api, raw[:255]) == 0


@pytest.mark.parametrize("raw", ["$purchase", "  $padded", "", "   ", "\n\r\n"])
def test_dollar_and_empty_event_names_are_refused(api: Api, raw: str) -> None:
    response = api.track({"events": [event(raw), event("fine")]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["events_processed"] == 1
    (error,) = body["errors"]
    assert (error["input_array"], error["index"]) == ("events", 0)
    assert "name" in error["type"]
    assert api.get("/events/list").json()["events"] == ["fine"]


def test_event_name_matching_is_case_sensitive(api: Api) -> None:
    api.track({"events": [event("Signup"), event("Signup"), event("signup")]})
    assert day_count(api, "Signup") == 2
    assert day_count(api, "signup") == 1
    assert day_count(api, "SIGNUP") == 0


# --- blocklist and duplicates -----------------------------------------------------------


def test_blocklisted_events_are_accepted_but_not_counted_or_listed(api: Api) -> None:
    api.store.update_event(api.workspace.id, "spam", EventUpdate(blocklisted=True))
    response = api.track({"events": [event("spam"), event("spam"), event("ham")]})
    assert response.status_code == 201, response.text
    assert response.json() == {"message": "success", "events_processed": 3}
    assert day_count(api, "spam") == 0
    assert day_count(api, "ham") == 1
    assert api.get("/events/list").json()["events"] == ["ham"]
    catalogue = api.get("/events").json()["events"]
    assert [(e["name"], e["status"]) for e in catalogue] == [
        ("ham", "Active"),
        ("spam", "Blocklisted"),
    ]


def test_events_sent_while_blocklisted_stay_dropped_after_unblocklisting(api: Api) -> None:
    assert api.track({"events": [event("flaky")]}).status_code == 201
    api.store.update_event(api.workspace.id, "flaky", EventUpdate(blocklisted=True))
    assert api.track({"events": [event("flaky")]}).json()["events_processed"] == 1
    api.store.update_event(api.workspace.id, "flaky", EventUpdate(blocklisted=False))
    assert day_count(api, "flaky") == 1


def test_unblocklisted_events_are_counted_again(api: Api) -> None:
    api.store.update_event(api.workspace.id, "revived", EventUpdate(blocklisted=True))
    assert api.track({"events": [event("revived")]}).json()["events_processed"] == 1
    api.store.update_event(api.workspace.id, "revived", EventUpdate(blocklisted=False))
    assert api.track({"events": [event("revived")]}).json()["events_processed"] == 1
    assert day_count(api, "revived") == 1


def test_duplicates_count_separately(api: Api) -> None:
    same = event("dup", properties={"k": "v"})
    first = api.track({"events": [same, same, same]})
    assert first.json() == {"message": "success", "events_processed": 3}
    second = api.track({"events": [same]})
    assert second.json() == {"message": "success", "events_processed": 1}
    assert day_count(api, "dup") == 4


# --- transport errors -------------------------------------------------------------------


def test_body_over_4_mb_is_a_413(api: Api) -> None:
    response = post_raw(api, b" " * (FOUR_MB + 1), "application/json")
    assert_json_error(response, 413)


def test_streamed_body_over_4_mb_is_a_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (1024 * 1024)

    response = post_raw(api, chunks(), "application/json")
    assert_json_error(response, 413)


def test_body_of_exactly_4_mb_is_accepted(api: Api) -> None:
    body = b'{"events":[{"external_id":"u","name":"big","time":"2024-03-10T12:00:00Z"}]}'
    response = post_raw(api, body + b" " * (FOUR_MB - len(body)), "application/json")
    assert response.status_code == 201, response.text
    assert day_count(api, "big") == 1


@pytest.mark.parametrize(
    "content",
    [b"{", b"not json", b"{'events': []}", b"", b'{"events": [}', b'{"a": 1} trailing'],
    ids=["truncated", "text", "single-quotes", "empty", "broken-array", "trailing"],
)
def test_invalid_json_is_a_400(api: Api, content: bytes) -> None:
    assert_json_error(post_raw(api, content, "application/json"), 400)


def test_deeply_nested_json_is_a_400(api: Api) -> None:
    content = b"[" * 100_000 + b"]" * 100_000
    assert_json_error(post_raw(api, content, "application/json"), 400)


def test_invalid_utf8_is_dropped_not_refused(api: Api) -> None:
    content = (
        b'{"events":[{"external_id":"u","name":"caf\xff\xfee","time":"2024-03-10T12:00:00Z"}]}'
    )
    response = post_raw(api, content, "application/json")
    assert response.json() == {"message": "success", "events_processed": 1}
    assert day_count(api, "cafe") == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type_is_a_415(api: Api, content_type: str) -> None:
    content = b'{"events":[{"external_id":"u","name":"typed","time":"2024-03-10T12:00:00Z"}]}'
    assert_json_error(post_raw(api, content, content_type), 415)
    assert day_count(api, "typed") == 0


def test_json_content_type_with_charset_is_accepted(api: Api) -> None:
    content = b'{"events":[{"external_id":"u","name":"typed","time":"2024-03-10T12:00:00Z"}]}'
    response = post_raw(api, content, "application/json; charset=utf-8")
    assert response.json() == {"message": "success", "events_processed": 1}


@pytest.mark.parametrize(
    "body",
    [[], [{"events": []}], "events", 42, None, True],
    ids=["empty-array", "array", "string", "number", "null", "bool"],
)
def test_non_object_body_is_a_400(api: Api, body: Any) -> None:
    assert_json_error(api.track(body), 400)


@pytest.mark.parametrize("array", ["attributes", "events", "purchases"])
def test_non_array_field_is_a_400(api: Api, array: str) -> None:
    assert_json_error(api.track({array: {"external_id": "u"}}), 400)
