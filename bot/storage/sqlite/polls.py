"""Polls: the state a poll decides from, and writing what it decided.

``load_poll_state`` reads; ``write_poll`` writes one ``PollIntent`` in one
transaction and decides nothing (the planner, bot.plan, did): items with
their chapters and search index rows, updates, the snapshot, events in
order with their outbox rows, a book anchor's new links, and the source's
progress.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from bot.detect import KnownItem, NewItem
from bot.errors import ClaimLost, Stale
from bot.intents import BookAnchor, FilterRule, PollIntent, PollState, SnapshotRow, SourceProgress, Subscription
from bot.holds import HeldItem, TrackedLive
from bot.models import ContentKind, Event, EventKind, Item, LiveState, Platform, Source, StoredItem
from bot.intents import AnnouncedEvent
from bot.storage.announced import EDITABLE_KINDS, LIVE_STATUSES, assemble_announced
from bot.storage.records import PollWrite
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, from_db_time, to_db_time
from bot.storage.sqlite.schema import CHAPTER_ROWID_SPAN
from bot.verdicts import ItemVerdict, routing_to_json, verdict_to_json


class PollsTable(SqliteBase):
    async def known_items(self, source_id: int) -> list[KnownItem]:
        found = await self._all(
            "SELECT id, identity, norm_link, title_key, content_hash FROM items WHERE source_id = ?", (source_id,))
        return [KnownItem(r[0], r[1], r[2], r[3], r[4]) for r in found]

    async def load_poll_state(self, source: Source, now: datetime, *, book_window_s: float,
                              edit_window_s: float = 0.0) -> PollState:
        known = await self.known_items(source.id)
        filters = [FilterRule(r[0], r[1]) for r in await self._all(
            "SELECT mode, pattern FROM filters WHERE source_id = ? ORDER BY id", (source.id,))]
        subscriptions = [Subscription(Platform(r[0]), r[1], r[2]) for r in await self._all(
            "SELECT platform, user_id, topic FROM subscriptions ORDER BY id")]
        async with self._errors("reading routes"):
            routes = await rows.routes(self._read)
        anchor = await self._book_anchor(now, book_window_s)
        previous = best = None
        if source.spec.kind == "x":
            row = await self._one(
                "SELECT raw_json FROM profile_snapshots WHERE source_id = ? ORDER BY taken_at DESC LIMIT 1",
                (source.id,))
            previous = row[0].encode() if row else None
            row = await self._one("SELECT max(followers) FROM profile_snapshots WHERE source_id = ?", (source.id,))
            best = row[0] if row else None
        announced: tuple[AnnouncedEvent, ...] = ()
        last_event_id = 0
        announced_since = None
        if edit_window_s > 0:
            # The newest id first: an event written between the two reads is
            # then newer than last_event_id, and the write re-decides.
            row = await self._one("SELECT coalesce(max(id), 0) FROM events")
            last_event_id = int(row[0]) if row else 0
            announced = await self._announced(now, edit_window_s)
            announced_since = now - timedelta(seconds=edit_window_s)  # (its check needs only the id)
        return PollState(tuple(known), tuple(filters), tuple(subscriptions), tuple(routes), anchor, previous, best,
                         announced, last_event_id, announced_since,
                         held=tuple(await self._held(source.id)), live=tuple(await self._live(source.id)))

    async def _announced(self, now: datetime, window_s: float,
                         event_ids: Sequence[int] | None = None) -> tuple[AnnouncedEvent, ...]:
        """Announcements made within the window (or those of ``event_ids``:
        the premieres a source follows, however old)."""
        kinds = ",".join(f"'{k}'" for k in EDITABLE_KINDS)
        params: list[Any]
        if event_ids is None:
            where, params = "e.created_at >= ?", [to_db_time(now - timedelta(seconds=window_s))]
        else:
            where, params = f"e.id IN ({','.join('?' * len(event_ids))})", list(event_ids)
        events = await self._all(
            "SELECT e.id, e.kind, e.item_id, s.name, i.title, i.link, e.created_at, i.published_at, i.summary, "
            "i.enclosure_url, i.video_id FROM events e JOIN items i ON i.id = e.item_id LEFT JOIN sources s ON s.id = i.source_id "
            f"WHERE e.purpose = 'announce' AND e.kind IN ({kinds}) AND {where} "
            "AND json_extract(e.payload, '$.follow_up_of') IS NULL ORDER BY e.id",
            params, doing="reading recent announcements")
        if not events:
            return ()
        ids = [r[0] for r in events]
        marks = ",".join("?" * len(ids))
        statuses = ",".join(f"'{s}'" for s in LIVE_STATUSES)
        deliveries = await self._all(
            "SELECT event_id, route_id, platform, dest_kind, dest_id, mention FROM outbox "
            f"WHERE event_id IN ({marks}) AND status IN ({statuses}) ORDER BY id", ids,
            doing="reading recent announcements")
        edits = await self._all(
            "SELECT id, payload FROM events WHERE kind = 'edit' "
            f"AND json_extract(payload, '$.edit_of') IN ({marks}) ORDER BY id", ids,
            doing="reading recent announcements")
        return assemble_announced([tuple(r) for r in events], [tuple(r) for r in deliveries],
                                  [(r[0], r[1]) for r in edits])

    async def has_waiting(self, source_id: int) -> bool:
        row = await self._one(
            "SELECT EXISTS (SELECT 1 FROM held_items WHERE source_id = ?) OR EXISTS (SELECT 1 FROM live_videos "
            "WHERE source_id = ? AND state != 'none' AND event_id IS NOT NULL)", (source_id, source_id))
        return bool(row and row[0])

    async def _held(self, source_id: int) -> list[HeldItem]:
        found = await self._all(
            f"SELECT {rows.ITEM_COLUMNS}, h.content_hash, h.held_since_at, h.steady_since_at, h.waiting_playable, "
            "h.check_failed "
            "FROM held_items h JOIN items i ON i.id = h.item_id JOIN sources s ON s.id = i.source_id "
            "WHERE h.source_id = ? ORDER BY h.held_since_at, h.item_id", (source_id,))
        out = []
        for r in found:
            held_since, steady = from_db_time(r[17]), from_db_time(r[18])
            assert held_since is not None and steady is not None
            out.append(HeldItem(r[0], rows.stored_item(r, ()).item, r[16], held_since, steady, bool(r[19]),
                                bool(r[20])))
        return out

    async def _live(self, source_id: int) -> list[TrackedLive]:
        found = await self._all(
            "SELECT item_id, event_id, video_id, state, scheduled_start_at FROM live_videos "
            "WHERE source_id = ? AND state != 'none' AND event_id IS NOT NULL ORDER BY item_id", (source_id,))
        live = [TrackedLive(r[0], r[1], r[2], LiveState(r[3]), from_db_time(r[4])) for r in found]
        if not live:
            return live
        anchors = {a.event_id: a for a in await self._announced(datetime.min, 0, [t.event_id for t in live])}
        return [replace(t, anchor=anchors.get(t.event_id)) for t in live]

    async def _book_anchor(self, now: datetime, window_s: float) -> BookAnchor | None:
        """The first book event announced within the window (not a follow-up)."""
        row = await self._one(
            "SELECT id, url, payload FROM events WHERE kind = 'book' AND purpose = 'announce' AND created_at >= ? "
            "AND json_extract(payload, '$.follow_up_of') IS NULL ORDER BY id LIMIT 1",
            (to_db_time(now - timedelta(seconds=window_s)),),
        )
        if row is None:
            return None
        payload = json.loads(row[2] or "{}")
        links = tuple(payload.get("links") or ([row[1]] if row[1] else []))
        routed = await self._all(
            "SELECT DISTINCT route_id FROM outbox WHERE event_id = ? AND route_id IS NOT NULL AND status != 'failed'",
            (row[0],))
        return BookAnchor(row[0], links, frozenset(r[0] for r in routed))

    async def write_poll(
        self, source: Source, intent: PollIntent, progress: SourceProgress, *, claim: str | None = None,
    ) -> PollWrite:
        kind = source.spec.content
        now = progress.polled_at
        t_now = to_db_time(now)
        events: list[Event] = []
        queued = 0
        async with self._tx(f"storing a poll of {source.name!r}") as db:
            if claim is not None:
                async with db.execute(
                    "SELECT 1 FROM poll_claims WHERE source_id = ? AND owner = ?", (source.id, claim)
                ) as cur:
                    if await cur.fetchone() is None:
                        raise ClaimLost(f"the poll of {source.name!r} was taken over; not storing it")
            if intent.merge_check is not None:
                # Writers take turns (BEGIN IMMEDIATE): what this sees is all
                # that was written before, so two sources announcing one
                # release at once can't both post it.
                kinds = ",".join(f"'{k}'" for k in EDITABLE_KINDS)
                async with db.execute(
                    f"SELECT 1 FROM events WHERE id > ? AND purpose = 'announce' AND kind IN ({kinds}) "
                    "AND item_id IS NOT NULL AND (source_id IS NULL OR source_id != ?) LIMIT 1",
                    (intent.merge_check.last_event_id, source.id),
                ) as cur:
                    if await cur.fetchone() is not None:
                        raise Stale(f"another source announced while {source.name!r} was deciding")
            try:
                item_ids = await _insert_items(db, source.id, kind, intent.new_items, now, intent.verdicts)
            except sqlite3.IntegrityError:
                # Only a poll racing another of the same source gets here, and
                # claims prevent that: refuse rather than write stale decisions.
                raise ClaimLost(f"items of {source.name!r} were stored by another poll meanwhile") from None
            for upd in intent.updates:
                await _update_item(db, upd.item_id, upd.identity, upd.item, upd.content_hash)
            if intent.snapshot is not None:
                await _insert_snapshot(db, source.id, intent.snapshot)
            event_ids: list[int] = []
            for planned in intent.events:
                payload = dict(planned.payload)
                routing = planned.routing
                if planned.follow_up_of_planned is not None:
                    payload["follow_up_of"] = event_ids[planned.follow_up_of_planned]
                    if routing is not None:  # the anchor's id exists only now
                        routing = replace(routing, follow_up_of=payload["follow_up_of"])
                item_id = item_ids[planned.item] if planned.item is not None else planned.item_id
                cur = await db.execute(
                    "INSERT INTO events (source_id, item_id, kind, title, url, payload, created_at, routing) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (source.id, item_id, planned.kind.value, planned.title, planned.url, json.dumps(payload), t_now,
                     routing_to_json(routing) if routing is not None else None),
                )
                event_id = cur.lastrowid
                assert event_id is not None
                event_ids.append(event_id)
                events.append(Event(event_id, planned.kind, planned.title, planned.url, now, item_id, payload))
                for delivery in planned.deliveries:
                    queued += await rows.insert_outbox(db, event_id, delivery.destination, now,
                                                       route_id=delivery.route_id, mention=delivery.mention)
            if intent.anchor_links is not None:
                await _set_links(db, intent.anchor_links.event_id, intent.anchor_links.links)
            await _write_holds(db, source.id, intent, item_ids, events, now)
            if claim is not None:
                await db.execute("DELETE FROM poll_claims WHERE source_id = ? AND owner = ?", (source.id, claim))
            await db.execute(
                "UPDATE sources SET synced = 1, last_polled_at = ?, last_success_at = ?, "
                "last_error = NULL, consecutive_failures = 0, next_poll_at = ?, "
                "etag = ?, last_modified = ?, body_hash = ?, cursor = COALESCE(?, cursor) WHERE id = ?",
                (t_now, t_now, to_db_time(progress.next_poll_at), progress.etag, progress.last_modified,
                 progress.body_hash, progress.cursor, source.id),
            )
        stored = tuple(
            StoredItem(item_id, source.name, kind, new.identity, new.item, now)
            for item_id, new in zip(item_ids, intent.new_items)
        )
        return PollWrite(stored, tuple(events), queued)

    async def queue_alert(self, title: str, now: datetime, *, skip_route: int | None = None) -> int:
        async with self._tx("queueing a moderator alert") as db:
            return await rows.queue_alert(db, title, now, skip_route=skip_route)


async def _write_holds(db: aiosqlite.Connection, source_id: int, intent: PollIntent, item_ids: Sequence[int],
                       events: Sequence[Event], now: datetime) -> None:
    """Held announcements stored or replaced, released ones deleted (their
    decision record rewritten), premieres and streams tracked or moved on."""
    for h in intent.holds:
        item_id = item_ids[h.new_index] if h.new_index is not None else h.item_id
        assert item_id is not None
        await db.execute(
            "INSERT INTO held_items (item_id, source_id, content_hash, held_since_at, steady_since_at, "
            "waiting_playable, check_failed) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET "
            "content_hash = excluded.content_hash, steady_since_at = excluded.steady_since_at, "
            "waiting_playable = excluded.waiting_playable, check_failed = excluded.check_failed",
            (item_id, source_id, h.content_hash, to_db_time(h.held_since_at), to_db_time(h.steady_since_at),
             int(h.waiting_playable), int(h.check_failed)))
    for r in intent.releases:
        await db.execute("DELETE FROM held_items WHERE item_id = ?", (r.item_id,))
        await db.execute("UPDATE items SET decision = ? WHERE id = ?", (verdict_to_json(r.verdict), r.item_id))
    # The event that announced each item (not an edit of another
    # announcement about it, which a merge plans after it).
    announced = {e.item_id: e.id for e in events if e.item_id is not None and e.kind is not EventKind.EDIT}
    for lv in intent.live:
        item_id = item_ids[lv.new_index] if lv.new_index is not None else lv.item_id
        assert item_id is not None
        if lv.start:
            video_id = (intent.new_items[lv.new_index].item.video_id if lv.new_index is not None
                        else await _video_id(db, item_id)) or ""
            await db.execute(
                "INSERT OR REPLACE INTO live_videos (item_id, source_id, event_id, video_id, state, "
                "scheduled_start_at, actual_start_at, actual_end_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, source_id, announced.get(item_id), video_id, lv.state.value,
                 to_db_time(lv.scheduled_start_at), to_db_time(lv.actual_start_at),
                 to_db_time(lv.actual_end_at), to_db_time(now)))
        else:
            await db.execute(
                "UPDATE live_videos SET state = ?, scheduled_start_at = COALESCE(?, scheduled_start_at), "
                "actual_start_at = COALESCE(?, actual_start_at), actual_end_at = COALESCE(?, actual_end_at), "
                "updated_at = ? WHERE item_id = ?",
                (lv.state.value, to_db_time(lv.scheduled_start_at), to_db_time(lv.actual_start_at),
                 to_db_time(lv.actual_end_at), to_db_time(now), item_id))


async def _video_id(db: aiosqlite.Connection, item_id: int) -> str | None:
    async with db.execute("SELECT video_id FROM items WHERE id = ?", (item_id,)) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


async def _set_links(db: aiosqlite.Connection, event_id: int, links: Sequence[str]) -> None:
    async with db.execute("SELECT payload FROM events WHERE id = ?", (event_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return  # the anchor's source was removed meanwhile: nothing to extend
    payload = json.loads(row[0] or "{}")
    payload["links"] = list(links)
    await db.execute("UPDATE events SET payload = ? WHERE id = ?", (json.dumps(payload), event_id))


async def _insert_snapshot(db: aiosqlite.Connection, source_id: int, snap: SnapshotRow) -> None:
    await db.execute(
        "INSERT INTO profile_snapshots (source_id, taken_at, followers, following, posts, bio, "
        "pinned_id, pinned_text, pinned_url, raw_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (source_id, to_db_time(snap.taken_at), snap.followers, snap.following, snap.posts, snap.bio,
         snap.pinned_id, snap.pinned_text, snap.pinned_url, snap.raw_json),
    )


_INSERT_ITEM = (
    "INSERT INTO items (source_id, identity, guid, link, norm_link, title_key, content_hash, kind, "
    "title, summary, published_at, updated_at, first_seen_at, duration_s, episode_number, "
    "enclosure_url, image_url, video_id, decision) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _insert_items(
    db: aiosqlite.Connection, source_id: int, kind: ContentKind, new_items: Sequence[NewItem],
    now: datetime, verdicts: Sequence[ItemVerdict] = (),
) -> list[int]:
    """Insert a poll's new items with their chapters, FTS rows and decision
    records in a few batched statements (each await is a hop to aiosqlite's
    thread; 540 items one by one cost more than parsing them). Returns ids
    in input order."""
    if not new_items:
        return []
    seen = to_db_time(now)
    decisions = ([verdict_to_json(v) for v in verdicts] if len(verdicts) == len(new_items)
                 else [None] * len(new_items))
    await db.executemany(_INSERT_ITEM, [
        (source_id, n.identity, n.item.guid, n.item.link, n.norm_link, n.title_key, n.content_hash,
         kind.value, n.item.title, n.item.summary, to_db_time(n.item.published_at),
         to_db_time(n.item.updated_at), seen, n.item.duration_s, n.item.episode_number,
         n.item.enclosure_url, n.item.image_url, n.item.video_id, decision)
        for n, decision in zip(new_items, decisions)
    ])
    async with db.execute("SELECT identity, id FROM items WHERE source_id = ?", (source_id,)) as cur:
        ids = {identity: item_id for identity, item_id in await cur.fetchall()}
    item_ids = [ids[n.identity] for n in new_items]
    await _insert_chapters(db, [(item_id, n.item) for item_id, n in zip(item_ids, new_items)])
    await db.executemany(
        "INSERT INTO catalog_fts (rowid, title, chapters, summary, kind) VALUES (?, ?, ?, ?, ?)",
        [(item_id, *fts_columns(n.item), kind.value) for item_id, n in zip(item_ids, new_items)],
    )
    return item_ids


async def _insert_chapters(db: aiosqlite.Connection, items: Sequence[tuple[int, Item]]) -> None:
    """Chapters and their chapters_fts rows (rowid = item_id * 10000 + position),
    two batched statements: see migration 4 for why not an insert trigger."""
    found = [(item_id, i, c.start_s, c.title) for item_id, item in items for i, c in enumerate(item.chapters)]
    if not found:
        return
    await db.executemany("INSERT INTO chapters (item_id, position, start_s, title) VALUES (?, ?, ?, ?)", found)
    await db.executemany(
        "INSERT INTO chapters_fts (rowid, title) VALUES (?, ?)",
        [(item_id * CHAPTER_ROWID_SPAN + i, title) for item_id, i, _, title in found if i < CHAPTER_ROWID_SPAN],
    )


def fts_columns(item: Item) -> tuple[str, str, str]:
    return item.title, "\n".join(c.title for c in item.chapters), item.summary


async def _update_item(
    db: aiosqlite.Connection, item_id: int, identity: str, item: Item, chash: str
) -> None:
    await db.execute(
        "UPDATE items SET identity = ?, guid = ?, link = ?, title = ?, summary = ?, content_hash = ?, "
        "updated_at = ?, duration_s = ?, episode_number = ?, enclosure_url = ?, image_url = ?, "
        "video_id = ? WHERE id = ?",
        (identity, item.guid, item.link, item.title, item.summary, chash,
         to_db_time(item.updated_at), item.duration_s, item.episode_number, item.enclosure_url,
         item.image_url, item.video_id, item_id),
    )
    await _write_chapters_and_fts(db, item_id, item, replace=True)


async def _write_chapters_and_fts(
    db: aiosqlite.Connection, item_id: int, item: Item, *, replace: bool
) -> None:
    if replace:
        await db.execute("DELETE FROM chapters WHERE item_id = ?", (item_id,))
        await db.execute("DELETE FROM catalog_fts WHERE rowid = ?", (item_id,))
    await _insert_chapters(db, [(item_id, item)])
    await db.execute(
        "INSERT INTO catalog_fts (rowid, title, chapters, summary, kind) "
        "SELECT ?, ?, ?, ?, kind FROM items WHERE id = ?",
        (item_id, *fts_columns(item), item_id),
    )


