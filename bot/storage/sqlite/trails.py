"""Decision trails (`why`, the status page) and the online backup.

Reads only, plus ``backup``: the records were written by ``write_poll`` and
``record_deliveries`` when each decision was made (migration 7)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from bot.errors import StorageError
from bot.models import Destination, DestinationKind, Platform, StoredItem
from bot.storage.records import (
    DeliveryTrail,
    EventTrail,
    ItemTrail,
    OutboxStatus,
    RouteActivity,
    SourceActivity,
)
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, from_db_time
from bot.verdicts import routing_from_json, verdict_from_json

_TRAIL_COLUMNS = (
    "o.id, o.event_id, o.platform, o.dest_kind, o.dest_id, o.route_id, o.status, o.attempts, o.created_at, "
    "o.next_attempt_at, o.sent_at, o.last_error, o.message_url, o.outcome_unknown, "
    # Rows of one destination go out in id order: what is queued before an
    # unsent row is what it waits behind (the outbox_unsent index).
    "CASE WHEN o.status IN ('pending', 'sending') THEN (SELECT count(*) FROM outbox b "
    "  WHERE b.platform = o.platform AND b.dest_kind = o.dest_kind AND b.dest_id = o.dest_id "
    "  AND b.status IN ('pending', 'sending') AND b.id < o.id) ELSE 0 END"
)
_EVENT_COLUMNS = ("e.id, e.kind, e.title, e.url, e.created_at, e.item_id, e.payload, e.purpose, e.routing, "
                  "coalesce(s.name, '')")


def _trail(r: sqlite3.Row) -> DeliveryTrail:
    created, due = from_db_time(r[8]), from_db_time(r[9])
    assert created is not None and due is not None
    return DeliveryTrail(
        outbox_id=r[0], event_id=r[1], destination=Destination(Platform(r[2]), DestinationKind(r[3]), r[4]),
        route_id=r[5], status=OutboxStatus(r[6]), attempts=r[7], created_at=created, next_attempt_at=due,
        sent_at=from_db_time(r[10]), last_error=r[11], message_url=r[12], outcome_unknown=bool(r[13]),
        ahead=int(r[14] or 0),
    )


class TrailsTable(SqliteBase):
    async def _items(self, where: str, params: Sequence[object], limit: int) -> list[StoredItem]:
        found = await self._all(
            f"SELECT {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id "
            f"WHERE {where} ORDER BY i.first_seen_at DESC, i.id DESC LIMIT ?",
            (*params, limit), "looking an item up")
        return [rows.stored_item(r, ()) for r in found]

    async def items_by_link(self, links: Sequence[str], limit: int = 10) -> list[StoredItem]:
        wanted = [link for link in dict.fromkeys(links) if link]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        return await self._items(
            f"i.link IN ({marks}) OR i.norm_link IN ({marks}) OR i.enclosure_url IN ({marks})",
            (*wanted, *wanted, *wanted), limit)

    async def items_by_title(self, folded: str, raw: str, limit: int = 10) -> list[StoredItem]:
        return await self._items(
            "i.title = ? OR substr(i.title_key, 1, length(?) + 1) = ? || '|'", (raw, folded, folded), limit)

    async def _deliveries(self, event_ids: Sequence[int]) -> dict[int, list[DeliveryTrail]]:
        out: dict[int, list[DeliveryTrail]] = {}
        # Id order per event holds across chunks: an event's rows are all in its chunk.
        for r in await self._all_in(
                f"SELECT {_TRAIL_COLUMNS} FROM outbox o WHERE o.event_id IN ({{marks}}) ORDER BY o.id", event_ids):
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
            f"SELECT {rows.ITEM_COLUMNS}, i.source_id, i.decision FROM items i "
            "JOIN sources s ON s.id = i.source_id WHERE i.id = ?", (item_id,), "reading an item")
        if row is None:
            return None
        # Its events, and the edits of its announcements made by other items
        # (another source's release merged into it).
        events = await self._event_trails(
            "e.item_id = ? OR (e.kind = 'edit' AND json_extract(e.payload, '$.edit_of') IN "
            "(SELECT id FROM events WHERE item_id = ?))", (item_id, item_id), "e.id")
        return ItemTrail(item=rows.stored_item(row, ()), source_id=row[16],
                         verdict=verdict_from_json(row[17]), events=tuple(events))

    async def recent_event_trails(self, limit: int = 50) -> list[EventTrail]:
        return await self._event_trails("1 = 1", (), f"e.id DESC LIMIT {max(0, int(limit))}")

    async def outbox_queue(self, limit: int = 50) -> list[DeliveryTrail]:
        found = await self._all(
            f"SELECT {_TRAIL_COLUMNS} FROM outbox o WHERE o.status IN ('pending', 'sending') ORDER BY o.id LIMIT ?",
            (limit,), "reading the outbox")
        return [_trail(r) for r in found]

    async def source_activity(self) -> dict[int, SourceActivity]:
        # A first poll stores many items at one moment: among them the newest
        # published is the "last new item".
        found = await self._all(
            "SELECT source_id, title, first_seen_at FROM ("
            "  SELECT source_id, title, first_seen_at, row_number() OVER (PARTITION BY source_id "
            "    ORDER BY first_seen_at DESC, published_at DESC NULLS LAST, id DESC) AS n FROM items"
            ") WHERE n = 1")
        out = {}
        for source_id, title, seen in found:
            at = from_db_time(seen)
            assert at is not None
            out[source_id] = SourceActivity(title, at)
        return out

    async def route_activity(self) -> dict[int, RouteActivity]:
        found = await self._all(
            "SELECT route_id, max(sent_at), sum(status IN ('pending', 'sending')), sum(status = 'failed') "
            "FROM outbox WHERE route_id IS NOT NULL GROUP BY route_id")
        return {r[0]: RouteActivity(from_db_time(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in found}

    async def backup(self, target: Path) -> None:
        """SQLite's online backup API, from this connection into a fresh file
        next to ``target``, then renamed over it: a reader of ``target`` sees
        the old copy or the whole new one. One step, under this storage's
        lock: none of our own transactions is half-done while it reads, and
        in WAL mode it is a reader like any other, so another process (the
        running bot, when ``showbot backup`` runs beside it) goes on writing
        and the copy is one consistent moment."""
        target = Path(target)
        if target.exists() and self.path.exists() and os.path.samefile(target, self.path):
            raise StorageError("the backup must go to another file than the database itself")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.unlink(missing_ok=True)
            # Used from aiosqlite's thread by backup(), so not bound to this one.
            copy = sqlite3.connect(tmp, check_same_thread=False)
            try:
                async with self._lock, self._errors("backing up the database"):
                    await self._conn.backup(copy, pages=-1)
                # A standalone file: no -wal beside it to lose when it is copied away.
                await asyncio.to_thread(copy.execute, "PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
            os.replace(tmp, target)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot write the backup {str(target)!r}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
