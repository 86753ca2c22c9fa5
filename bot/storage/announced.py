"""Assembling ``PollState.announced`` from rows, the same for every backend.

Each backend reads three lists (the announcements made within the window,
their outbox rows that may still carry an edit, the edits already queued
for them) in its own dialect; this puts them together. Decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bot.edits import EditSpec, parse_edit
from bot.intents import AnnouncedEvent, PlannedDelivery
from bot.models import Destination, DestinationKind, EventKind, Platform

# The events an edit may change: announcements of items (not alerts,
# digests, profile changes, or follow-ups, which are replies of their own).
EDITABLE_KINDS = ("episode", "video", "article", "post", "book")
# Rows that will be, or are, a message on the platform.
LIVE_STATUSES = ("pending", "sending", "sent")


def assemble_announced(
    events: Iterable[tuple[Any, ...]],
    deliveries: Iterable[tuple[Any, ...]],
    edits: Iterable[tuple[int, Any]],
) -> tuple[AnnouncedEvent, ...]:
    """``events``: (id, kind, item_id, source name, title, link, created_at,
    published_at, summary, enclosure_url, video_id) in id order; ``deliveries``:
    (event_id, route_id, platform, dest_kind, dest_id, mention) in id order;
    ``edits``: (id, payload) of edit events in id order (the newest of each
    announcement wins)."""
    rows_of: dict[int, list[PlannedDelivery]] = {}
    for event_id, route_id, platform, dest_kind, dest_id, mention in deliveries:
        rows_of.setdefault(int(event_id), []).append(PlannedDelivery(
            Destination(Platform(platform), DestinationKind(dest_kind), str(dest_id)), route_id, mention))
    last: dict[int, EditSpec] = {}
    for _, payload in edits:
        raw: Mapping[str, Any] = json.loads(payload) if isinstance(payload, str) else (payload or {})
        try:
            spec = parse_edit(raw)
        except ValueError:
            continue
        last[spec.edit_of] = spec
    out = []
    for (event_id, kind, item_id, source, title, link, created_at, published_at, summary,
         enclosure, video_id) in events:
        out.append(AnnouncedEvent(
            event_id=int(event_id), kind=EventKind(kind), item_id=int(item_id), source=source,
            title=title or "", url=link or enclosure, created_at=_time(created_at),
            published_at=_time(published_at) if published_at is not None else None,
            deliveries=tuple(rows_of.get(int(event_id), ())), last_edit=last.get(int(event_id)),
            summary=summary or "", links=tuple(u for u in (link, enclosure) if u), video_id=video_id or None,
        ))
    return tuple(out)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
