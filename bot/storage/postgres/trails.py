"""Decision trails (`why`, the status page), read back: the records were
written by ``write_poll`` and ``record_deliveries`` when each decision was
made (PostgreSQL migration 3). ``backup`` is PostgreSQL's own tool's job."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.errors import UserError
from bot.models import Destination, DestinationKind, Platform, StoredItem
from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase
from bot.storage.records import (
    DeliveryTrail,
    EventTrail,
    ItemTrail,
    OutboxStatus,
    RouteActivity,
    SourceActivity,
)
from bot.verdicts import routing_from_json, verdict_from_json

_TRAIL_COLUMNS = (
    "o.id, o.event_id, o.platform, o.dest_kind, o.dest_id, o.route_id, o.status, o.attempts, o.created_at, "
    "o.next_attempt_at, o.sent_at, o.last_error, o.message_url, o.outcome_unknown, "
    # Rows of one destination go out in id order: what is queued before an
    # unsent row is what it waits behind.
    "CASE WHEN o.status IN ('pending', 'sending') THEN (SELECT count(*) FROM outbox b "
    "  WHERE b.platform = o.platform AND b.dest_kind = o.dest_kind AND b.dest_id = o.dest_id "
    "  AND b.status IN ('pending', 'sending') AND b.id < o.id) ELSE 0 END"
)
_EVENT_COLUMNS = ("e.id, e.kind, e.title, e.url, e.created_at, e.item_id, e.payload, e.purpose, e.routing, "
                  "coalesce(s.name, '')")
_ITEM_COLUMNS = rows.ITEM_COLUMNS


def _trail(r: Sequence[Any]) -> DeliveryTrail:
    return DeliveryTrail(
        outbox_id=r[0], event_id=r[1], destination=Destination(Platform(r[2]), DestinationKind(r[3]), r[4]),
        route_id=r[5], status=OutboxStatus(r[6]), attempts=r[7], created_at=r[8], next_attempt_at=r[9],
        sent_at=r[10], last_error=r[11], message_url=r[12], outcome_unknown=bool(r[13]), ahead=int(r[14] or 0),
    )


class TrailsTable(PostgresBase):
    async def _items(self, where: str, params: Sequence[object], limit: int) -> list[StoredItem]:
        n = len(params) + 1
        found = await self._all(
            f"SELECT {_ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id "
            f"WHERE {where} ORDER BY i.first_seen_at DESC, i.id DESC LIMIT ${n}",
            (*params, limit), "looking an item up")
        return [rows.stored_item(r, ()) for r in found]

    async def items_by_link(self, links: Sequence[str], limit: int = 10) -> list[StoredItem]:
        wanted = [link for link in dict.fromkeys(links) if link]
        if not wanted:
            return []
        return await self._items(
            "i.link = ANY($1::text[]) OR i.norm_link = ANY($1::text[]) OR i.enclosure_url = ANY($1::text[])",
            (wanted,), limit)

    async def items_by_title(self, folded: str, raw: str, limit: int = 10) -> list[StoredItem]:
        return await self._items("i.title = $1 OR left(i.title_key, length($2) + 1) = $2 || '|'",
                                 (raw, folded), limit)

    async def _deliveries(self, event_ids: Sequence[int]) -> dict[int, list[DeliveryTrail]]:
        out: dict[int, list[DeliveryTrail]] = {}
        if not event_ids:
            return out
        for r in await self._all(
                f"SELECT {_TRAIL_COLUMNS} FROM outbox o WHERE o.event_id = ANY($1::bigint[]) ORDER BY o.id",
                (list(event_ids),)):
            out.setdefault(r[1], []).append(_trail(r))
        return out

    async def _event_trails(self, where: str, params: Sequence[object], order: str) -> list[EventTrail]:
        found = await self._all(
            f"SELECT {_EVENT_COLUMNS} FROM events e LEFT JOIN sources s ON s.id = e.source_id "
            f"WHERE {where} ORDER BY {order}", params, "reading events")
        deliveries = await self._deliveries([r[0] for r in found])
        return [
            EventTrail(event=rows.event(r), source=r[9], routing=routing_from_json(r[8]),
                       deliveries=tuple(deliveries.get(r[0], ())))
            for r in found
        ]

    async def item_trail(self, item_id: int) -> ItemTrail | None:
        row = await self._one(
            f"SELECT {_ITEM_COLUMNS}, i.source_id, i.decision FROM items i "
            "JOIN sources s ON s.id = i.source_id WHERE i.id = $1", (item_id,), "reading an item")
        if row is None:
            return None
        # Its events, and the edits of its announcements made by other items
        # (another source's release merged into it).
        events = await self._event_trails(
            "e.item_id = $1 OR (e.kind = 'edit' AND (e.payload->>'edit_of')::bigint IN "
            "(SELECT id FROM events WHERE item_id = $1))", (item_id,), "e.id")
        return ItemTrail(item=rows.stored_item(row, ()), source_id=row[16],
                         verdict=verdict_from_json(row[17]), events=tuple(events))

    async def recent_event_trails(self, limit: int = 50) -> list[EventTrail]:
        return await self._event_trails("true", (), f"e.id DESC LIMIT {max(0, int(limit))}")

    async def outbox_queue(self, limit: int = 50) -> list[DeliveryTrail]:
        found = await self._all(
            f"SELECT {_TRAIL_COLUMNS} FROM outbox o WHERE o.status IN ('pending', 'sending') ORDER BY o.id LIMIT $1",
            (limit,), "reading the outbox")
        return [_trail(r) for r in found]

    async def source_activity(self) -> dict[int, SourceActivity]:
        found = await self._all(
            "SELECT DISTINCT ON (source_id) source_id, title, first_seen_at FROM items "
            "ORDER BY source_id, first_seen_at DESC, published_at DESC NULLS LAST, id DESC")
        return {r[0]: SourceActivity(r[1], r[2]) for r in found}

    async def route_activity(self) -> dict[int, RouteActivity]:
        found = await self._all(
            "SELECT route_id, max(sent_at), count(*) FILTER (WHERE status IN ('pending', 'sending')), "
            "count(*) FILTER (WHERE status = 'failed') FROM outbox WHERE route_id IS NOT NULL GROUP BY route_id")
        return {r[0]: RouteActivity(r[1], int(r[2] or 0), int(r[3] or 0)) for r in found}

    async def backup(self, target: Path) -> None:
        raise UserError("showbot backup copies an SQLite database; for PostgreSQL use pg_dump "
                        "(e.g. pg_dump --format=custom --file backup.dump <database>)")
