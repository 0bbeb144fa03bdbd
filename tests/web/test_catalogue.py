"""GET /events/list and GET /events: paging, Link headers and fields (contract 3-4, 8.15, 8.23)."""

from __future__ import annotations

import base64
import re

import httpx2 as httpx
import pytest

from eventtally.domain.model import EventUpdate
from tests.support import Api

LINK_PART = re.compile(r'<(?P<url>/events\?cursor=[A-Za-z0-9+/=_-]+)>; rel="(?P<rel>prev|next)"')
FIELDS = {"name", "description", "included_in_analytics_report", "status", "tag_names"}


def create_events(api: Api, names: list[str]) -> None:
    """Each name sent once, 75 per request (the per-array maximum)."""
    for start in range(0, len(names), 75):
        items = [
            {"external_id": "u", "name": name, "time": "2024-03-10T12:00:00Z"}
            for name in names[start : start + 75]
        ]
        response = api.track({"events": items})
        assert response.status_code == 201, response.text
        assert response.json()["events_processed"] == len(items)


def numbered(count: int) -> list[str]:
    return [f"event-{i:04d}" for i in range(count)]


def ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, object] = response.json()
    assert body["message"] == "success"
    return body


def names_of(response: httpx.Response) -> list[str]:
    events = ok(response)["events"]
    assert isinstance(events, list)
    return [e["name"] for e in events]


def links(response: httpx.Response) -> dict[str, str]:
    """The Link header as {rel: url}, checked to be exactly Braze's catalog format."""
    header = response.headers.get("link")
    if header is None:
        return {}
    parts = header.split(",")
    matches = [LINK_PART.fullmatch(part) for part in parts]
    assert all(matches), header
    found = {m["rel"]: m["url"] for m in matches if m}
    assert len(found) == len(parts), header
    # prev comes before next, as in Braze's example.
    assert list(found) == [rel for rel in ("prev", "next") if rel in found]
    return found


def bad_request(response: httpx.Response, parameter: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message"}
    assert parameter in body["message"]


# --- /events/list -----------------------------------------------------------------------


def test_events_list_is_alphabetical(api: Api) -> None:
    create_events(api, ["zeta", "alpha", "mid", "beta", "alpha2"])
    assert ok(api.get("/events/list"))["events"] == ["alpha", "alpha2", "beta", "mid", "zeta"]


def test_events_list_is_empty_before_any_event(api: Api) -> None:
    assert ok(api.get("/events/list")) == {"message": "success", "events": []}


def test_events_list_pages_hold_250_names_from_page_0(api: Api) -> None:
    names = numbered(260)
    create_events(api, list(reversed(names)))
    default = ok(api.get("/events/list"))["events"]
    page0 = ok(api.get("/events/list", page=0))["events"]
    page1 = ok(api.get("/events/list", page=1))["events"]
    assert default == page0 == names[:250]
    assert page1 == names[250:]
    assert ok(api.get("/events/list", page=2)) == {"message": "success", "events": []}
    assert ok(api.get("/events/list", page=1000)) == {"message": "success", "events": []}


def test_events_list_page_of_exactly_250(api: Api) -> None:
    names = numbered(250)
    create_events(api, names)
    assert ok(api.get("/events/list", page=0))["events"] == names
    assert ok(api.get("/events/list", page=1))["events"] == []


@pytest.mark.parametrize("page", ["-1", "abc", "1.5", "1e3", "0x1", " ", "--1"])
def test_events_list_bad_page_is_a_400(api: Api, page: str) -> None:
    bad_request(api.get("/events/list", page=page), "page")


def test_events_list_page_given_twice_is_a_400(api: Api) -> None:
    response = api.client.get(
        "/events/list", params=[("page", "0"), ("page", "1")], headers=api.auth
    )
    bad_request(response, "page")


# --- /events ----------------------------------------------------------------------------


def test_events_fields_and_defaults(api: Api) -> None:
    create_events(api, ["signed_up"])
    body = ok(api.get("/events"))
    assert body == {
        "message": "success",
        "events": [
            {
                "name": "signed_up",
                "description": None,
                "included_in_analytics_report": False,
                "status": "Active",
                "tag_names": [],
            }
        ],
    }


def test_events_shows_metadata_set_in_the_store(api: Api) -> None:
    create_events(api, ["added_to_cart", "checkout", "spam"])
    store, ws = api.store, api.workspace.id
    store.update_event(
        ws,
        "added_to_cart",
        EventUpdate(
            description="A product went into the cart",
            tags=("Tag One", "Tag Two"),
            included_in_analytics_report=True,
        ),
    )
    store.update_event(ws, "spam", EventUpdate(blocklisted=True, description="noise"))
    # A later update that leaves a field out keeps it.
    store.update_event(ws, "added_to_cart", EventUpdate(tags=("Tag One",)))
    events = ok(api.get("/events"))["events"]
    assert events == [
        {
            "name": "added_to_cart",
            "description": "A product went into the cart",
            "included_in_analytics_report": True,
            "status": "Active",
            "tag_names": ["Tag One"],
        },
        {
            "name": "checkout",
            "description": None,
            "included_in_analytics_report": False,
            "status": "Active",
            "tag_names": [],
        },
        {
            "name": "spam",
            "description": "noise",
            "included_in_analytics_report": False,
            "status": "Blocklisted",
            "tag_names": [],
        },
    ]
    assert ok(api.get("/events/list"))["events"] == ["added_to_cart", "checkout"]


def test_events_has_no_link_when_everything_fits_one_page(api: Api) -> None:
    names = numbered(50)
    create_events(api, names)
    response = api.get("/events")
    assert names_of(response) == names
    assert "link" not in response.headers


def test_events_empty_catalogue(api: Api) -> None:
    response = api.get("/events")
    assert ok(response) == {"message": "success", "events": []}
    assert "link" not in response.headers


def test_events_51_has_only_next_then_only_prev(api: Api) -> None:
    names = numbered(51)
    create_events(api, names)
    first = api.get("/events")
    assert names_of(first) == names[:50]
    first_links = links(first)
    assert list(first_links) == ["next"]
    second = api.client.get(first_links["next"], headers=api.auth)
    assert names_of(second) == names[50:]
    assert list(links(second)) == ["prev"]


def test_events_cursor_walk_visits_every_event_once_in_order(api: Api) -> None:
    names = numbered(120)
    create_events(api, list(reversed(names)))

    first = api.get("/events")
    assert list(links(first)) == ["next"]
    seen = names_of(first)
    pages = [first]
    response = first
    while "next" in links(response):
        response = api.client.get(links(response)["next"], headers=api.auth)
        pages.append(response)
        seen += names_of(response)
    assert seen == names
    assert [len(names_of(p)) for p in pages] == [50, 50, 20]
    assert [list(links(p)) for p in pages] == [["next"], ["prev", "next"], ["prev"]]

    # prev walks back over the same pages.
    middle = pages[1]
    back = api.client.get(links(middle)["prev"], headers=api.auth)
    assert names_of(back) == names[:50]
    back_from_last = api.client.get(links(pages[2])["prev"], headers=api.auth)
    assert names_of(back_from_last) == names[50:100]
    assert links(back_from_last) == links(middle)


def test_events_cursor_of_exactly_full_pages_has_no_next_on_the_last(api: Api) -> None:
    names = numbered(100)
    create_events(api, names)
    first = api.get("/events")
    second = api.client.get(links(first)["next"], headers=api.auth)
    assert names_of(second) == names[50:]
    assert list(links(second)) == ["prev"]


@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",
        "!!!",
        "c2tpcDo",  # truncated base64
        base64.b64encode(b"hello").decode(),
        base64.b64encode(b"skip:-1").decode(),
        base64.b64encode(b"skip:abc").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
def test_events_bad_cursor_is_a_400(api: Api, cursor: str) -> None:
    create_events(api, ["one"])
    bad_request(api.get("/events", cursor=cursor), "cursor")


def test_events_cursor_given_twice_is_a_400(api: Api) -> None:
    params = httpx.QueryParams([("cursor", "c2tpcDow"), ("cursor", "c2tpcDow")])
    bad_request(api.client.get("/events", params=params, headers=api.auth), "cursor")
