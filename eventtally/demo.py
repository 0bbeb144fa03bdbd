"""The demo workspace: a few days of believable sample events, made once per data directory."""

from __future__ import annotations

import math
import random

from eventtally.domain.instants import US_PER_SECOND, from_us
from eventtally.domain.model import App, Segment, Workspace
from eventtally.domain.track import MAX_ITEMS_PER_ARRAY, parse_track
from eventtally.store.base import Store

DEMO_WORKSPACE = "demo"
DEMO_ZONE = "America/New_York"
DEMO_DAYS = 4
DEMO_USERS = 200
# name: mean events per hour at the daily peak
DEMO_EVENTS = {"app_open": 60.0, "add_to_cart": 18.0, "purchase_completed": 4.0}


def ensure_demo(store: Store, now: int) -> tuple[Workspace, list[App]]:
    """The demo workspace and its apps, created and filled with sample events on first use."""
    workspace = store.workspace(DEMO_WORKSPACE)
    if workspace is not None:
        return workspace, store.list_apps(workspace.id)
    workspace = store.create_workspace(DEMO_WORKSPACE, DEMO_ZONE, now)
    apps = [store.create_app(workspace.id, name, now) for name in ("ios", "android")]
    rng = random.Random(7)
    users = [f"demo-user-{i}" for i in range(DEMO_USERS)]
    plans = [
        {"external_id": user, "plan": "pro" if i % 4 == 0 else "free"}
        for i, user in enumerate(users)
    ]
    for i in range(0, len(plans), MAX_ITEMS_PER_ARRAY):
        body = {"attributes": plans[i : i + MAX_ITEMS_PER_ARRAY]}
        store.track(workspace.id, parse_track(body, now), now).result()
    events = []
    hours = DEMO_DAYS * 24
    for hour in range(hours):
        start = now - (hours - hour) * 3600 * US_PER_SECOND
        # Busy afternoons, quiet nights: a daily wave peaking at 15:00 in UTC-5, where the
        # demo zone mostly is.
        local_hour = (start // (3600 * US_PER_SECOND) - 5) % 24
        daily = 0.55 + 0.45 * math.sin(2 * math.pi * (local_hour - 9) / 24)
        for name, peak in DEMO_EVENTS.items():
            for _ in range(rng.randint(0, int(2 * peak * daily))):
                moment = start + rng.randrange(3600 * US_PER_SECOND)
                events.append(
                    {
                        "external_id": rng.choice(users),
                        "app_id": rng.choice(apps).app_id,
                        "name": name,
                        "time": from_us(moment).isoformat(),
                    }
                )
    for i in range(0, len(events), MAX_ITEMS_PER_ARRAY):
        body = {"events": events[i : i + MAX_ITEMS_PER_ARRAY]}
        store.track(workspace.id, parse_track(body, now), now).result()
    pro = {"attribute": "plan", "op": "eq", "value": "pro"}
    store.create_segment(workspace.id, Segment(0, workspace.id, "", "Pro users", pro, True), now)
    return workspace, apps
