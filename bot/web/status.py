"""What the status page shows, read in one go (reads only: the page is read-only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.models import Platform, Route, Source
from bot.storage import Storage
from bot.storage.records import (
    Cadence,
    DeliveryTrail,
    EventTrail,
    ProfileStats,
    RouteActivity,
    SourceActivity,
    SourceFacts,
)

ANNOUNCEMENTS = 50
QUEUE_ROWS = 20


@dataclass(frozen=True, slots=True)
class StatusData:
    now: datetime
    sources: list[Source]
    facts: dict[int, SourceFacts]
    activity: dict[int, SourceActivity]
    routes: list[Route]
    route_activity: dict[int, RouteActivity]
    unsent: dict[Platform, int]
    queue: list[DeliveryTrail]
    announcements: list[EventTrail]
    adapters: Mapping[str, bool]
    profile: ProfileStats | None
    episodes_per_month: list[tuple[str, int]]
    cadence: list[Cadence]


async def gather(store: Storage, now: datetime, adapters: Mapping[str, bool]) -> StatusData:
    return StatusData(
        now=now,
        sources=await store.list_sources(),
        facts=await store.source_facts(),
        activity=await store.source_activity(),
        routes=await store.list_routes(),
        route_activity=await store.route_activity(),
        unsent=await store.count_unsent(),
        queue=await store.outbox_queue(QUEUE_ROWS),
        announcements=await store.recent_event_trails(ANNOUNCEMENTS),
        adapters=dict(adapters),
        profile=await store.profile_stats(now),
        episodes_per_month=await store.episodes_per_month(now, 12),
        cadence=await store.cadence(now, 90),
    )
