"""The dashboard in real headless Chromium (Playwright) against a real `eventtally serve`.

Events are ingested over HTTP; what the page shows is checked against the API's own
answers fetched with httpx. Screenshots go to test-artifacts/ at the repository root;
with EVENTTALLY_DOCS_SCREENSHOT=1 the event view is also saved as docs/dashboard.png.

Needs Debian's chromium (/usr/bin/chromium) and the `playwright` package; the browser
Playwright would download is never used.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from eventtally.settings import Settings
from tests.smoke.server import Server, eventtally, init, serving

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
    ),
]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright: pip install playwright"
)
Browser = playwright_api.Browser
Page = playwright_api.Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ZONE = "America/New_York"
TIMEOUT_MS = 10_000


@dataclass
class Site:
    server: Server
    data: Path
    key: str
    app_ids: list[str]
    tracked: str  # segment ids
    untracked: str
    limited_key: str  # a workspace with 3 requests an hour in the default bucket
    empty_key: str  # a workspace without events

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, path: str, key: str | None = None, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}",
            params={k: v for k, v in params.items() if v not in (None, "")},
            headers={"Authorization": f"Bearer {key or self.key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def track(self, body: dict[str, list[dict[str, Any]]]) -> None:
        """POST /users/track, 75 events a request."""
        headers = {"Authorization": f"Bearer {self.key}"}
        events = body.get("events", [])
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            if "attributes" in body:
                response = client.post("/users/track", json={"attributes": body["attributes"]})
                assert response.status_code == 201, response.text
            for start in range(0, len(events), 75):
                response = client.post("/users/track", json={"events": events[start : start + 75]})
                assert response.status_code == 201, response.text


def _cli(*args: str) -> dict[str, Any]:
    done = eventtally(*args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _events(app_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    """Ten days of made-up traffic, the same for the same `now`: app_open follows the
    day (busy afternoons, none in the small hours), signups every fifth hour, purchases by
    users 0-5 (the tracked segment's members) every third hour."""
    zone = ZoneInfo(ZONE)
    events = []
    for hour in range(24 * 10):
        moment = now - timedelta(hours=hour, minutes=7)
        local = moment.astimezone(zone).hour
        busy = max(0.0, math.sin(math.pi * (local - 5) / 18)) if 5 <= local <= 23 else 0.0
        growth = 1.25 - hour / 480  # a little busier each day
        for n in range(round(9 * busy * growth) + (hour * 7) % 3 * (busy > 0)):
            events.append(
                {
                    "external_id": f"user-{(hour + n) % 12}",
                    "name": "app_open",
                    "app_id": app_ids[n % 2],
                    "time": (moment - timedelta(minutes=n)).isoformat(),
                }
            )
        if hour % 5 == 0:
            events.append(
                {"external_id": f"user-{hour % 12}", "name": "signup", "time": moment.isoformat()}
            )
        if hour % 3 == 0:
            events.append(
                {
                    "external_id": f"user-{(hour // 3) % 6}",
                    "name": "purchase",
                    "app_id": app_ids[0],
                    "time": moment.isoformat(),
                }
            )
    return events


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard")
    data = root / "data"
    made = init(data, ZONE)
    app_ids = [
        made["app_id"],
        _cli("apps", "create", "--data", str(data), "--name", "android", "--json")["app_id"],
    ]
    tracked = _cli(
        "segments", "create", "--data", str(data), "--name", "Buyers", "--tag", "billing",
        "--filter", '{"event": "purchase", "op": "gte", "count": 1}', "--json",
    )["id"]  # fmt: skip
    untracked = _cli(
        "segments", "create", "--data", str(data), "--name", "Pro plan", "--no-tracking",
        "--filter", '{"attribute": "plan", "op": "eq", "value": "pro"}', "--json",
    )["id"]  # fmt: skip
    limited_key = _cli("init", "--data", str(data), "--workspace", "limited", "--json")["api_key"]
    done = eventtally(
        "workspaces", "update", "limited", "--data", str(data), "--rate-limit", "default=3/3600"
    )
    assert done.returncode == 0, done.stderr
    empty_key = _cli("init", "--data", str(data), "--workspace", "empty", "--json")["api_key"]
    with serving(data, log=root / "server.log") as server:
        site = Site(
            server, data, made["api_key"], app_ids, tracked, untracked, limited_key, empty_key
        )
        site.track({"attributes": [{"external_id": f"user-{i}", "plan": "pro"} for i in (0, 4, 8)]})
        site.track({"events": _events(app_ids, datetime.now(UTC))})
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What a page did that it must not: call another host, break its CSP, throw."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def open_page(browser: Browser, site: Site) -> Iterator[Callable[..., Page]]:
    contexts = []
    watches = []

    def open_page(width: int = 1280, height: int = 900, mobile: bool = False) -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            is_mobile=mobile,
            has_touch=mobile,
            device_scale_factor=2 if mobile else 1,
            accept_downloads=True,
            timezone_id="UTC",
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        watch = Watch(site.url)
        watches.append(watch)

        def request(req: Any) -> None:
            if not (req.url.startswith(site.url + "/") or req.url.startswith(("data:", "blob:"))):
                watch.foreign.append(req.url)

        def console(message: Any) -> None:
            # A refused request (401, 429) is logged by Chromium itself; that is expected.
            if message.type == "error" and "Failed to load resource" not in message.text:
                watch.errors.append(message.text)

        page.on("request", request)
        page.on("console", console)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    for watch in watches:
        watch.check()


def sign_in(
    page: Page, site: Site, key: str | None = None, hash_: str = "", path: str = "/"
) -> None:
    page.goto(f"{site.url}{path}{hash_}")
    page.locator("#api-key").fill(key or site.key)
    page.keyboard.press("Enter")
    page.locator("#workspace-info").wait_for(state="visible")


def wait_series(page: Page, **expected: Any) -> dict[str, Any]:
    """Wait until the event view shows a series with these query values; its data."""
    condition = " && ".join(f"s[{json.dumps(k)}] === {json.dumps(v)}" for k, v in expected.items())
    page.wait_for_function(
        f"() => {{ const s = window.__series; return !!s && {condition or 'true'} "
        "&& document.querySelector('#series-panel').dataset.state === 'ready'; }"
    )
    series: dict[str, Any] = page.evaluate("() => window.__series")
    return series


def table(
    page: Page, selector: str = "#series-table", value: str = "count"
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.evaluate(
        """([selector, value]) => [...document.querySelectorAll(`${selector} tbody tr`)].map(
            (row) => ({time: row.dataset.time, [value]: Number(row.dataset[value]),
                       text: row.cells[1].textContent}))""",
        [selector, value],
    )
    for row in rows:  # the shown number is the same number
        assert int(row.pop("text").replace(",", "")) == row[value]
    return rows


def assert_table_is_api(page: Page, site: Site, **params: Any) -> list[dict[str, Any]]:
    """The table equals /events/data_series for the same query (asked again if a bucket
    boundary passed between the page's request and ours)."""
    for _ in range(3):
        shown = table(page)
        answer = site.api("/events/data_series", **params)["data"]
        if shown == answer:
            return answer
        if shown and answer and shown[-1]["time"] != answer[-1]["time"]:
            page.reload()
            wait_series(page, event=params["event"])
            continue
        break
    assert shown == answer
    return answer


def shot(page: Page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px viewport"


# The tests --------------------------------------------------------------------------------
def test_sign_in_pick_event_and_compare_with_api(
    open_page: Callable[..., Page], site: Site
) -> None:
    page = open_page()
    page.goto(f"{site.url}/")
    assert page.locator("#signin-view").is_visible()
    assert page.evaluate("() => document.activeElement.id") == "api-key"
    page.keyboard.type(site.key)
    page.keyboard.press("Enter")
    page.locator("#workspace-info").wait_for(state="visible")
    assert page.evaluate("() => document.activeElement.id") == "events-title"
    assert page.locator("#workspace-name").text_content() == "default"
    assert page.locator("#workspace-zone").text_content() == ZONE
    # The key lives in sessionStorage only: not in the URL, a cookie or localStorage.
    assert page.evaluate("() => sessionStorage.getItem('eventtally.apiKey')") == site.key
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []

    # The first event is shown at once; the catalogue holds all three.
    wait_series(page, event="app_open")
    assert re.fullmatch(r"\d+ events", page.locator("#event-note").text_content() or "")

    # Pick "purchase" from the keyboard: type to search, arrows, Enter.
    page.locator("#event-input").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("pur")
    options = page.locator("#event-options [role=option]")
    assert options.all_text_contents() == ["purchase"]
    assert page.locator("#event-input").get_attribute("aria-expanded") == "true"
    page.keyboard.press("Enter")
    series = wait_series(page, event="purchase", unit="day", length=30)
    assert "event=purchase" in page.url
    assert site.key not in page.url

    answer = assert_table_is_api(page, site, event="purchase", length=30, unit="day")
    assert series["data"] == answer
    # The total and the change against the window before, which ends where this begins.
    previous = site.api(
        "/events/data_series", event="purchase", length=30, unit="day", ending_at=answer[0]["time"]
    )["data"]
    total, before = sum(p["count"] for p in answer), sum(p["count"] for p in previous)
    assert page.locator("#total").text_content() == f"{total:,}"
    assert page.locator("#previous-total").text_content() == f"{before:,}"
    assert series["previous"] == previous
    change = page.locator("#change").text_content() or ""
    assert change.startswith("+" if total > before else "−" if total < before else "±")
    # Zero buckets are rows too (ten days of data in a thirty-day window).
    assert sum(1 for row in answer if row["count"] == 0) >= 19
    assert page.locator("#series-table tr.zero").count() == sum(
        1 for r in answer if r["count"] == 0
    )

    # The chart is drawn, and the arrows read it out from the keyboard.
    assert page.locator("#chart canvas").count() == 1
    page.locator("#chart").focus()
    page.keyboard.press("End")
    tip = page.locator("#chart .tip")
    tip.wait_for(state="visible")
    assert f"{answer[-1]['count']} event" in (tip.text_content() or "")
    page.keyboard.press("Home")
    assert answer[0]["time"] in (tip.text_content() or "")
    page.keyboard.press("Escape")

    # The URL alone brings the same view back in a new tab (after signing in there).
    other = open_page()
    sign_in(other, site, hash_="#" + page.url.split("#", 1)[1])
    assert wait_series(other, event="purchase")["data"] == series["data"]

    page.evaluate("() => document.activeElement.blur()")  # no focus ring in the picture
    shot(page, "dashboard-events.png")


def test_hover_shows_time_and_count(open_page: Callable[..., Page], site: Site) -> None:
    page = open_page()
    sign_in(page, site, hash_="#/events?event=app_open&unit=hour&length=48")
    series = wait_series(page, event="app_open", unit="hour", length=48)
    box = page.locator("#chart .u-over").bounding_box()
    assert box is not None
    # Hover the bucket two thirds of the way along; the tooltip names it and its count.
    page.mouse.move(box["x"] + box["width"] * 2 / 3, box["y"] + box["height"] / 2)
    tip = page.locator("#chart .tip")
    tip.wait_for(state="visible")
    row = page.locator("#series-table tr.current")
    assert row.count() == 1
    index = int(row.get_attribute("data-index") or "-1")
    assert index in (31, 32)
    point = series["data"][index]
    hour = point["time"][:16].replace("T", " ")
    assert (tip.text_content() or "").startswith(hour)
    assert f"{point['count']} event" in (tip.text_content() or "")
    shot(page, "dashboard-hourly.png", full_page=False)
    if os.environ.get("EVENTTALLY_DOCS_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / "dashboard.png"))


def test_switch_unit_app_segment_and_chart(open_page: Callable[..., Page], site: Site) -> None:
    page = open_page()
    sign_in(page, site, hash_="#/events?event=app_open")
    wait_series(page, event="app_open", unit="day")

    page.locator("#unit-select").select_option("hour")
    wait_series(page, event="app_open", unit="hour", length=24)
    assert "unit=hour" in page.url
    assert_table_is_api(page, site, event="app_open", length=24, unit="hour")
    labels = [row["time"] for row in table(page)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00-0[45]:00", label) for label in labels)

    page.locator("#length-input").fill("12")
    page.locator("#length-input").press("Enter")
    wait_series(page, unit="hour", length=12)
    assert_table_is_api(page, site, event="app_open", length=12, unit="hour")

    # An explicit end: wall-clock time in the reporting zone, as the API reads it.
    page.locator("#ending-input").fill("2026-01-15T12:00")
    wait_series(page, ending_at="2026-01-15T12:00", length=12)
    assert "ending_at=2026-01-15T12%3A00" in page.url
    labels = [
        row["time"]
        for row in assert_table_is_api(
            page, site, event="app_open", length=12, unit="hour", ending_at="2026-01-15T12:00"
        )
    ]
    assert labels[-1] == "2026-01-15T11:00:00-05:00"
    page.locator("#ending-now").click()
    wait_series(page, ending_at=None, length=12)

    page.locator("#app-select").select_option(site.app_ids[1])
    wait_series(page, app_id=site.app_ids[1], length=12)
    assert_table_is_api(
        page, site, event="app_open", length=12, unit="hour", app_id=site.app_ids[1]
    )

    # Only tracked segments can be picked.
    assert page.locator(f"#segment-select option[value='{site.untracked}']").is_disabled()
    page.locator("#event-input").fill("purchase")
    page.keyboard.press("Enter")
    wait_series(page, event="purchase")
    page.locator("#app-select").select_option("")
    page.locator("#unit-select").select_option("day")
    wait_series(page, event="purchase", unit="day", app_id=None)
    page.locator("#segment-select").select_option(site.tracked)
    series = wait_series(page, event="purchase", unit="day", segment_id=site.tracked)
    answer = assert_table_is_api(
        page, site, event="purchase", length=12, unit="day", segment_id=site.tracked
    )
    assert series["length"] == 12
    assert sum(p["count"] for p in answer) > 0
    assert "Buyers" in (page.locator("#series-title").text_content() or "")

    page.locator("input[name=chart][value=line]").check()
    wait_series(page, chart="line", segment_id=site.tracked)
    assert "chart=line" in page.url
    assert_table_is_api(
        page, site, event="purchase", length=12, unit="day", segment_id=site.tracked
    )


def test_csv_and_png_downloads(open_page: Callable[..., Page], site: Site) -> None:
    page = open_page()
    sign_in(page, site, hash_="#/events?event=signup&unit=hour&length=48")
    wait_series(page, event="signup", unit="hour", length=48)
    answer = assert_table_is_api(page, site, event="signup", length=48, unit="hour")

    with page.expect_download() as csv_download:
        page.locator("#download-csv").click()
    download = csv_download.value
    assert download.suggested_filename.startswith("eventtally-signup-hour-48-")
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_bytes().decode()
    lines = text.split("\r\n")
    assert lines[0] == "time,count"
    assert lines[1:-1] == [f"{p['time']},{p['count']}" for p in answer]
    assert lines[-1] == ""

    with page.expect_download() as png_download:
        page.locator("#download-png").click()
    png = Path(png_download.value.path()).read_bytes()
    assert png_download.value.suggested_filename.endswith(".png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5_000


def test_segments_view_and_click_through(open_page: Callable[..., Page], site: Site) -> None:
    page = open_page()
    sign_in(page, site, hash_="#/events?event=purchase")
    wait_series(page, event="purchase")
    page.locator("#nav-segments").click()
    page.locator("#segment-panel[data-state=ready]").wait_for()
    rows = page.locator("#segments-table tbody tr")
    assert rows.count() == 2
    assert (rows.nth(0).text_content() or "").startswith("Buyers")
    assert "tracked" in (rows.nth(0).locator(".badge").text_content() or "")
    assert rows.nth(1).locator(".badge").text_content() == "not tracked"
    assert rows.nth(1).locator("a").count() == 0  # no event series for an untracked one

    # The untracked one has sizes all the same.
    rows.nth(1).locator("button").click()
    page.wait_for_function(
        f"() => window.__segmentSeries && window.__segmentSeries.segment_id === '{site.untracked}'"
    )
    page.locator("#segment-panel[data-state=ready]").wait_for()
    sizes = site.api("/segments/data_series", segment_id=site.untracked, length=30)["data"]
    assert table(page, "#segment-sizes-table", "size") == sizes
    assert not page.locator("#segment-events-link").is_visible()

    rows.nth(0).locator("button").click()
    page.wait_for_function(
        f"() => window.__segmentSeries && window.__segmentSeries.segment_id === '{site.tracked}'"
    )
    page.locator("#segment-panel[data-state=ready]").wait_for()
    sizes = site.api("/segments/data_series", segment_id=site.tracked, length=30)["data"]
    assert table(page, "#segment-sizes-table", "size") == sizes
    assert sizes[-1]["size"] == 6  # users 0-5 bought
    assert page.locator("#segment-size").text_content() == "6"
    assert "purchase" in (page.locator("#segment-description").text_content() or "")
    shot(page, "dashboard-segments.png")

    page.locator("#segment-events-link").click()
    series = wait_series(page, event="purchase", segment_id=site.tracked)
    assert page.locator("#segment-select").input_value() == site.tracked
    assert_table_is_api(
        page, site, event="purchase", length=30, unit="day", segment_id=site.tracked
    )
    assert series["unit"] == "day"


def test_live_mode_shows_new_events(open_page: Callable[..., Page], site: Site) -> None:
    page = open_page()
    sign_in(page, site, hash_="#/events?event=live_ping&unit=hour&length=6")
    before = wait_series(page, event="live_ping", unit="hour")
    assert before["total"] == 0
    assert page.locator("#series-zero").is_visible()
    page.locator("#live-toggle").check()
    page.locator("#live-status", has_text="Live: refreshing every 5 s").wait_for()
    now = datetime.now(UTC).isoformat()
    site.track({"events": [{"external_id": "user-1", "name": "live_ping", "time": now}] * 3})
    page.wait_for_function(
        "() => window.__series && window.__series.live_added === 3", timeout=15_000
    )
    assert "+3 new events" in (page.locator("#live-status").text_content() or "")
    assert page.locator("#total").text_content() == "3"
    assert page.locator("#series-table tr.flash").count() == 1
    page.locator("#live-toggle").uncheck()
    page.wait_for_function("() => !/live=1/.test(location.hash)")


def test_unknown_and_revoked_keys_ask_for_a_key_again(
    open_page: Callable[..., Page], site: Site
) -> None:
    page = open_page()
    page.goto(f"{site.url}/")
    page.locator("#api-key").fill("et_not-a-key")
    page.keyboard.press("Enter")
    error = page.locator("#signin-error")
    error.wait_for(state="visible")
    assert error.text_content() == "Invalid API key: non-existent"
    assert page.locator("#signin-view").is_visible()
    assert page.evaluate("() => sessionStorage.length") == 0

    # A key revoked while it is in use: the next request sends the page back to sign-in.
    made = _cli(
        "keys", "create", "--data", str(site.data), "--name", "soon-revoked",
        "--all-permissions", "--json",
    )  # fmt: skip
    sign_in(page, site, key=made["api_key"], hash_="#/events?event=app_open")
    wait_series(page, event="app_open")
    assert eventtally("keys", "revoke", "--data", str(site.data), str(made["id"])).returncode == 0
    # Revoked by another process: the server notices once it stops trusting what it
    # checked (EVENTTALLY_KEY_CACHE_SECONDS).
    time.sleep(Settings().key_cache_seconds)
    page.locator("#unit-select").select_option("hour")
    error.wait_for(state="visible")
    assert error.text_content() == "Invalid API key: non-existent. Paste an API key again."
    assert page.locator("#api-key").is_visible()
    assert not page.locator("#events-view").is_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    # Signing in again with a good key returns to the view that was asked for.
    page.locator("#api-key").fill(site.key)
    page.keyboard.press("Enter")
    wait_series(page, event="app_open", unit="hour")


def test_rate_limited_workspace_shows_when_to_retry(
    open_page: Callable[..., Page], site: Site
) -> None:
    page = open_page()
    # 3 requests an hour: /workspace, /segments/list and one series; the second series is refused.
    sign_in(page, site, key=site.limited_key, hash_="#/events?event=anything")
    assert page.locator("#workspace-name").text_content() == "limited"
    banner = page.locator("#banner")
    banner.wait_for(state="visible")
    text = banner.locator("#banner-text").text_content() or ""
    shown = re.fullmatch(
        r"Rate limit exceeded\. Retry after (\d\d:\d\d:\d\d) \(in [0-9.]+ (s|min|h)\)\.", text
    )
    assert shown is not None, text
    # The time shown is the server's: when the window ends (the page's clock is UTC).
    refused = httpx.get(
        f"{site.url}/workspace", headers={"Authorization": f"Bearer {site.limited_key}"}
    )
    assert refused.status_code == 429
    reset = int(refused.headers["x-ratelimit-reset"])
    near = {datetime.fromtimestamp(reset + d, UTC).strftime("%H:%M:%S") for d in (-2, -1, 0, 1)}
    assert shown.group(1) in near
    assert page.locator("#series-panel").get_attribute("data-state") == "error"
    shot(page, "dashboard-rate-limited.png", full_page=False)


def test_empty_workspace_shows_how_to_send_an_event(
    open_page: Callable[..., Page], site: Site
) -> None:
    page = open_page()
    sign_in(page, site, key=site.empty_key, path="/dashboard")  # the page's other address
    empty = page.locator("#events-empty")
    empty.wait_for(state="visible")
    assert "No events yet" in (empty.text_content() or "")
    curl = page.locator("#curl-example").text_content() or ""
    assert curl.startswith(f"curl -X POST '{site.url}/users/track'")
    assert "$EVENTTALLY_API_KEY" in curl
    assert site.empty_key not in curl
    # The example is a request the server accepts as it stands (with a real key).
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])
    response = httpx.post(
        f"{site.url}/users/track", json=body, headers={"Authorization": f"Bearer {site.empty_key}"}
    )
    assert response.status_code == 201
    page.locator("#reload-events").click()
    wait_series(page, event="app_open")
    assert page.locator("#events-empty").is_hidden()


def test_phone_width_has_no_horizontal_scroll(open_page: Callable[..., Page], site: Site) -> None:
    page = open_page(width=375, height=740, mobile=True)
    page.goto(f"{site.url}/")
    no_horizontal_scroll(page)
    sign_in(page, site, hash_="#/events?event=app_open&unit=hour")
    wait_series(page, event="app_open", unit="hour")
    no_horizontal_scroll(page)
    chart = page.locator("#chart canvas").bounding_box()
    assert chart is not None
    assert chart["width"] <= 375
    shot(page, "dashboard-phone.png")
    # Open the event list, then the segments view: still nothing wider than the screen.
    page.locator("#event-input").click()
    page.locator("#event-options").wait_for(state="visible")
    no_horizontal_scroll(page)
    page.keyboard.press("Escape")
    page.locator("#nav-segments").click()
    page.locator("#segment-panel[data-state=ready]").wait_for()
    no_horizontal_scroll(page)
    shot(page, "dashboard-phone-segments.png")


def test_key_without_list_permissions_can_still_chart(
    open_page: Callable[..., Page], site: Site
) -> None:
    made = _cli(
        "keys", "create", "--data", str(site.data), "--name", "series-only", "--json",
        "--permission", "workspace.get", "--permission", "events.data_series",
    )  # fmt: skip
    page = open_page()
    sign_in(page, site, key=made["api_key"])
    note = page.locator("#event-note")
    note.wait_for(state="visible")
    page.wait_for_function("() => /lacks/.test(document.querySelector('#event-note').textContent)")
    assert "this API key lacks the 'events.list' permission" in (note.text_content() or "")
    segment_note = page.locator("#segment-note").text_content() or ""
    assert "this API key lacks the 'segments.list' permission" in segment_note
    assert page.locator("#segment-select").is_disabled()
    page.locator("#event-input").fill("signup")
    page.keyboard.press("Enter")
    wait_series(page, event="signup")
    assert_table_is_api(page, site, event="signup", length=30, unit="day")
