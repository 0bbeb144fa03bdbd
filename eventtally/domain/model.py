"""The records eventtally keeps: workspaces, apps, API keys and the event catalogue."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from eventtally.domain.ratelimit import DEFAULT_LIMITS, Limit, RateBucket

# Braze's permission names (contract 1.6), plus eventtally's own `workspace.get`.
PERMISSIONS: tuple[str, ...] = (
    "users.track",
    "events.list",
    "events.data_series",
    "events.get",
    "segments.list",
    "segments.details",
    "segments.data_series",
    "sessions.data_series",
    "kpi.dau.data_series",
    "kpi.mau.data_series",
    "kpi.new_users.data_series",
    "kpi.uninstalls.data_series",
    "workspace.get",
)


class EventStatus(enum.StrEnum):
    ACTIVE = "Active"
    BLOCKLISTED = "Blocklisted"


@dataclass(frozen=True, slots=True)
class Workspace:
    id: int
    name: str
    time_zone: str
    # Overrides of Braze's default rate limits, as ((bucket, limit), ...).
    rate_limits: tuple[tuple[RateBucket, Limit], ...] = ()

    def limit(self, bucket: RateBucket) -> Limit:
        return dict(self.rate_limits).get(bucket, DEFAULT_LIMITS[bucket])


@dataclass(frozen=True, slots=True)
class App:
    id: int
    workspace_id: int
    app_id: str  # the Braze-style API identifier (a UUID)
    name: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public record. The secret is never kept; only its hash is stored."""

    id: int
    workspace_id: int
    name: str
    prefix: str  # the first characters of the secret, to tell keys apart in listings
    permissions: frozenset[str]
    created_at: int  # microseconds since the epoch
    revoked: bool = False
    # Networks (CIDR) requests may come from; empty means anywhere. Fixed at creation.
    allowed_networks: tuple[str, ...] = ()

    def allows(self, permission: str) -> bool:
        return not self.revoked and permission in self.permissions

    def admits(self, address: str | None) -> bool:
        """Whether a request from `address` may use this key (its IP allowlist)."""
        if not self.allowed_networks:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net) for net in self.allowed_networks)


def parse_network(text: str) -> str:
    """A CIDR network or single address in canonical form; ValueError says what is wrong."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR network") from None


@dataclass(frozen=True, slots=True)
class EventInfo:
    """One custom event of the catalogue (`GET /events`)."""

    name: str
    description: str | None = None
    tags: tuple[str, ...] = ()
    included_in_analytics_report: bool = False
    status: EventStatus = EventStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class EventUpdate:
    """Catalogue metadata to change; None leaves a field as it is."""

    description: str | None = None
    tags: tuple[str, ...] | None = None
    blocklisted: bool | None = None
    included_in_analytics_report: bool | None = None


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """What to count: one event, optionally one app, in each [start, end) range of microseconds."""

    workspace_id: int
    event: str
    ranges: tuple[tuple[int, int], ...]
    app: int | None = None  # an App.id
    segment: int | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A user segment: a filter over profiles, optionally tracked for analytics."""

    id: int  # the store's key
    workspace_id: int
    segment_id: str  # the API identifier (a UUID)
    name: str
    filter: object  # canonical filter JSON (eventtally.domain.segments.filter_to_json)
    tracking: bool  # analytics_tracking_enabled: event series are kept for it
    description: str | None = None
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    archived: bool = False
    created_at: int = 0  # microseconds since the epoch
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class SegmentChanges:
    """What to change on a segment; None leaves a field as it is."""

    name: str | None = None
    filter: object | None = None
    tracking: bool | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    teams: tuple[str, ...] | None = None
    archived: bool | None = None
