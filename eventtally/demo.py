"""The demo workspace: a few days of believable sample events, made once per data directory."""

from __future__ import annotations

import math
import random

from eventtally.domain.instants import US_PER_SECOND, from_us
from eventtally.domain.model import App, Workspace
from eventtally.domain.track import MAX_ITEMS_PER_ARRAY, parse_track
from eventtally.store.base import Store

DEMO_WORKSPACE = "demo"
DEMO_ZONE = "America/New_York"
DEMO_DAYS = 4
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
    events = []
    hours = DEMO_DAYS * 24
    for hour in range(hours):
        start = now - (hours - hour) * 3600 * US_PER_SECOND
        # Busy afternoons, quiet nights (in UTC-5, where the demo zone mostly is).
        daily = 0.55 + 0.45 * math.sin(2 * math.pi * (((start // 3_600_000_000) - 5) % 24 - 9) / 24)
        for name, peak in DEMO_EVENTS.items():
            for _ in range(rng.randint(0, int(2 * peak * daily))):
                moment = start + rng.randrange(3600 * US_PER_SECOND)
                events.append(
                    {
                        "external_id": f"demo-user-{rng.randrange(200)}",
                        "app_id": rng.choice(apps).app_id,
                        "name": name,
                        "time": from_us(moment).isoformat(),
                    }
                )
    for i in range(0, len(events), MAX_ITEMS_PER_ARRAY):
        body = {"events": events[i : i + MAX_ITEMS_PER_ARRAY]}
        store.track(workspace.id, parse_track(body, now), now).result()
    return workspace, apps
