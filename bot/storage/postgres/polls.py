"""Polls: the state a poll decides from, and writing what it decided.

``load_poll_state`` reads one consistent snapshot; ``write_poll`` writes one
``PollIntent`` in one transaction and decides nothing (the planner,
bot.plan, did): items with their chapters and search vectors, updates, the
snapshot, events in order with their outbox rows, a book anchor's new links,
and the source's progress.
"""

from __future__ import annotations

from dataclasses import replace

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bot.detect import KnownItem, NewItem
from bot.errors import ClaimLost, Stale
from bot.intents import BookAnchor, FilterRule, PollIntent, PollState, SnapshotRow, SourceProgress, Subscription
from bot.holds import HeldItem, TrackedLive
from bot.models import ContentKind, Destination, Event, EventKind, Item, LiveState, Platform, Source, StoredItem
from bot.storage.postgres import rows
from bot.verdicts import ItemVerdict, routing_to_json, verdict_to_json
from bot.storage.postgres.base import PostgresBase, ts, ts_req
from bot.storage.postgres.schema import TS_CONFIG
from bot.intents import AnnouncedEvent
from bot.storage.announced import EDITABLE_KINDS, LIVE_STATUSES, assemble_announced
from bot.storage.records import PollWrite


# pg_advisory_xact_lock key of "a poll that announces is being written"
# (any 64-bit number no other user of the database picks: "showmrge").
MERGE_LOCK = 0x73686F776D726765


async def _announced(conn: asyncpg.Connection, since: datetime,
                     event_ids: Sequence[int] | None = None) -> tuple[AnnouncedEvent, ...]:
    """Announcements made since ``since`` (or those of ``event_ids``: the
    premieres a source follows, however old), with their live rows and
    their newest edit."""
    where = ("e.created_at >= $2" if event_ids is None else "e.id = ANY($2::bigint[])")
    events = await conn.fetch(
        "SELECT e.id, e.kind, e.item_id, s.name, i.title, i.link, e.created_at, i.published_at, i.summary, "
        "i.enclosure_url, i.video_id FROM events e JOIN items i ON i.id = e.item_id LEFT JOIN sources s ON s.id = i.source_id "
        f"WHERE e.purpose = 'announce' AND e.kind = ANY($1::text[]) AND {where} "
        "AND (e.payload ->> 'follow_up_of') IS NULL ORDER BY e.id",
        list(EDITABLE_KINDS), since if event_ids is None else list(event_ids))
    if not events:
        return ()
    ids = [r[0] for r in events]
    deliveries = await conn.fetch(
        "SELECT event_id, route_id, platform, dest_kind, dest_id, mention FROM outbox "
        "WHERE event_id = ANY($1::bigint[]) AND status = ANY($2::text[]) ORDER BY id", ids, list(LIVE_STATUSES))
    edits = await conn.fetch(
        "SELECT id, payload FROM events WHERE kind = 'edit' AND (payload->>'edit_of')::bigint = ANY($1::bigint[]) "
        "ORDER BY id", ids)
    return assemble_announced([tuple(r) for r in events], [tuple(r) for r in deliveries],
                              [(r[0], r[1]) for r in edits])

# The weighted vector of one item, from the three texts ``rows.search_text`` made.
SEARCH_VECTOR = (
    f"setweight(to_tsvector('{TS_CONFIG}', {{title}}), 'A') || "
    f"setweight(to_tsvector('{TS_CONFIG}', {{chapters}}), 'B') || "
    f"setweight(to_tsvector('{TS_CONFIG}', {{summary}}), 'C')"
)


def search_params(item: Item) -> tuple[str, str, str, int]:
    """The three texts of an item's vector, and how many words they hold."""
    texts = (rows.search_text(item.title), rows.search_text(rows.chapters_text(item)),
             rows.search_text(item.summary))
    return (*texts, sum(t.count(" ") + 1 for t in texts if t))


class PollsTable(PostgresBase):
    async def known_items(self, source_id: int) -> list[KnownItem]:
        found = await self._all(
            "SELECT id, identity, norm_link, title_key, content_hash FROM items WHERE source_id = $1", (source_id,))
        return [KnownItem(r[0], r[1], r[2], r[3], r[4]) for r in found]

    async def load_poll_state(self, source: Source, now: datetime, *, book_window_s: float,
                              edit_window_s: float = 0.0) -> PollState:
        since = ts_req(now) - timedelta(seconds=book_window_s)
        async with self._snapshot("reading what a poll decides from") as conn:
            known = [KnownItem(r[0], r[1], r[2], r[3], r[4]) for r in await conn.fetch(
                "SELECT id, identity, norm_link, title_key, content_hash FROM items WHERE source_id = $1",
                source.id)]
            filters = [FilterRule(r[0], r[1]) for r in await conn.fetch(
                "SELECT mode, pattern FROM filters WHERE source_id = $1 ORDER BY id", source.id)]
            subscriptions = [Subscription(Platform(r[0]), r[1], r[2]) for r in await conn.fetch(
                "SELECT platform, user_id, topic FROM subscriptions ORDER BY id")]
            routes = await rows.routes(conn)
            anchor = await _book_anchor(conn, since)
            previous = best = None
            if source.spec.kind == "x":
                raw = await conn.fetchval(
                    "SELECT raw_json FROM profile_snapshots WHERE source_id = $1 ORDER BY taken_at DESC LIMIT 1",
                    source.id)
                previous = raw.encode() if raw is not None else None
                best = await conn.fetchval("SELECT max(followers) FROM profile_snapshots WHERE source_id = $1",
                                           source.id)
            held = [HeldItem(r[0], rows.stored_item(r, ()).item, r[16], r[17], r[18], r[19], r[20])
                    for r in await conn.fetch(
                f"SELECT {rows.ITEM_COLUMNS}, h.content_hash, h.held_since_at, h.steady_since_at, "
                "h.waiting_playable, h.check_failed FROM held_items h JOIN items i ON i.id = h.item_id "
                "JOIN sources s ON s.id = i.source_id WHERE h.source_id = $1 "
                "ORDER BY h.held_since_at, h.item_id", source.id)]
            live = [TrackedLive(r[0], r[1], r[2], LiveState(r[3]), r[4]) for r in await conn.fetch(
                "SELECT item_id, event_id, video_id, state, scheduled_start_at FROM live_videos "
                "WHERE source_id = $1 AND state != 'none' AND event_id IS NOT NULL ORDER BY item_id", source.id)]
            if live:
                anchors = {a.event_id: a for a in await _announced(conn, now, [t.event_id for t in live])}
                live = [replace(t, anchor=anchors.get(t.event_id)) for t in live]
            announced: tuple[AnnouncedEvent, ...] = ()
            last_event_id = 0
            announced_since = None
            if edit_window_s > 0:  # one snapshot: the newest id and the announcements agree
                last_event_id = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))
                announced_since = ts_req(now) - timedelta(seconds=edit_window_s)
                announced = await _announced(conn, announced_since)
        return PollState(tuple(known), tuple(filters), tuple(subscriptions), tuple(routes), anchor, previous, best,
                         announced, last_event_id, announced_since, held=tuple(held), live=tuple(live))

    async def has_waiting(self, source_id: int) -> bool:
        row = await self._one(
            "SELECT EXISTS (SELECT 1 FROM held_items WHERE source_id = $1) OR EXISTS (SELECT 1 FROM live_videos "
            "WHERE source_id = $1 AND state != 'none' AND event_id IS NOT NULL)", (source_id,))
        return bool(row and row[0])

    async def write_poll(
        self, source: Source, intent: PollIntent, progress: SourceProgress, *, claim: str | None = None,
    ) -> PollWrite:
        kind = source.spec.content
        now = ts_req(progress.polled_at)
        ts_req(progress.next_poll_at)
        events: list[Event] = []
        queued = 0
        async with self._tx(f"storing a poll of {source.name!r}") as conn:
            if claim is not None:
                # FOR UPDATE: a takeover of the claim waits for this commit,
                # so the claim cannot be lost between this check and it.
                held = await conn.fetchval(
                    "SELECT 1 FROM poll_claims WHERE source_id = $1 AND owner = $2 FOR UPDATE", source.id, claim)
                if held is None:
                    raise ClaimLost(f"the poll of {source.name!r} was taken over; not storing it")
            if intent.merge_check is not None:
                # Polls that announce take turns (a transaction lock, held to
                # this commit), and each sees what the one before committed:
                # two instances polling two sources of one release at once
                # can't both post it; the second decides again and merges.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MERGE_LOCK)
                # Newer than what was read, or in the window read but not seen
                # (ids are taken at insert: one committed after the read may
                # have a lower id). The same filter as ``_announced``.
                check = intent.merge_check
                newer = await conn.fetchval(
                    "SELECT 1 FROM events e JOIN items i ON i.id = e.item_id WHERE e.purpose = 'announce' "
                    "AND e.kind = ANY($2::text[]) AND e.source_id IS DISTINCT FROM $3 "
                    "AND (e.payload ->> 'follow_up_of') IS NULL AND (e.id > $1 OR "
                    "($4::timestamptz IS NOT NULL AND e.created_at >= $4 AND NOT (e.id = ANY($5::bigint[])))) "
                    "LIMIT 1",
                    check.last_event_id, list(EDITABLE_KINDS), source.id, check.since, list(check.seen))
                if newer is not None:
                    raise Stale(f"another source announced while {source.name!r} was deciding")
            try:
                async with conn.transaction():  # a savepoint: the violation is ours to map
                    item_ids = await _insert_items(conn, source.id, kind, intent.new_items, now, intent.verdicts)
            except asyncpg.UniqueViolationError:
                # Only a poll racing another of the same source gets here, and
                # claims prevent that: refuse rather than write stale decisions.
                raise ClaimLost(f"items of {source.name!r} were stored by another poll meanwhile") from None
            for upd in intent.updates:
                await _update_item(conn, upd.item_id, upd.identity, upd.item, upd.content_hash)
            if intent.snapshot is not None:
                await _insert_snapshot(conn, source.id, intent.snapshot)
            event_ids: list[int] = []
            deliveries: list[tuple[int, Destination, int | None, str | None]] = []
            for planned in intent.events:
                payload: dict[str, Any] = dict(planned.payload)
                routing = planned.routing
                if planned.follow_up_of_planned is not None:
                    payload["follow_up_of"] = event_ids[planned.follow_up_of_planned]
                    if routing is not None:  # the anchor's id exists only now
                        routing = replace(routing, follow_up_of=payload["follow_up_of"])
                item_id = item_ids[planned.item] if planned.item is not None else planned.item_id
                event_id = await conn.fetchval(
                    "INSERT INTO events (source_id, item_id, kind, title, url, payload, created_at, routing) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    source.id, item_id, planned.kind.value, planned.title, planned.url, payload, now,
                    routing_to_json(routing) if routing is not None else None,
                )
                event_ids.append(event_id)
                events.append(Event(event_id, planned.kind, planned.title, planned.url, now, item_id, payload))
                deliveries.extend((event_id, d.destination, d.route_id, d.mention) for d in planned.deliveries)
            # Last, and in one statement: the outbox lock is held from here to
            # commit only (see rows.insert_outbox).
            queued = await rows.insert_outbox(conn, deliveries, now)
            if intent.anchor_links is not None:
                await conn.execute(
                    "UPDATE events SET payload = payload || jsonb_build_object('links', $2::jsonb) WHERE id = $1",
                    intent.anchor_links.event_id, list(intent.anchor_links.links),
                )  # no row: the anchor's source was removed meanwhile, nothing to extend
            await _write_holds(conn, source.id, intent, item_ids, events, now)
            if claim is not None:
                await conn.execute("DELETE FROM poll_claims WHERE source_id = $1 AND owner = $2", source.id, claim)
            await conn.execute(
                "UPDATE sources SET synced = true, last_polled_at = $1, last_success_at = $1, "
                "last_error = NULL, consecutive_failures = 0, next_poll_at = $2, "
                "etag = $3, last_modified = $4, body_hash = $5, cursor = COALESCE($6, cursor) WHERE id = $7",
                now, progress.next_poll_at, progress.etag, progress.last_modified,
                progress.body_hash, progress.cursor, source.id,
            )
        if intent.new_items or intent.updates:
            self._catalogue_changed()
            await self._flush_search_index(episodes=kind is ContentKind.EPISODE)
        stored = tuple(
            StoredItem(item_id, source.name, kind, new.identity, new.item, now)
            for item_id, new in zip(item_ids, intent.new_items)
        )
        return PollWrite(stored, tuple(events), queued)

    async def queue_alert(self, title: str, now: datetime, *, skip_route: int | None = None) -> int:
        async with self._tx("queueing a moderator alert") as conn:
            return await rows.queue_alert(conn, title, now, skip_route=skip_route)


async def _write_holds(conn: asyncpg.Connection, source_id: int, intent: PollIntent, item_ids: Sequence[int],
                       events: Sequence[Event], now: datetime) -> None:
    """Held announcements stored or replaced, released ones deleted (their
    decision record rewritten), premieres and streams tracked or moved on."""
    for h in intent.holds:
        item_id = item_ids[h.new_index] if h.new_index is not None else h.item_id
        await conn.execute(
            "INSERT INTO held_items (item_id, source_id, content_hash, held_since_at, steady_since_at, "
            "waiting_playable, check_failed) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (item_id) DO UPDATE SET "
            "content_hash = excluded.content_hash, steady_since_at = excluded.steady_since_at, "
            "waiting_playable = excluded.waiting_playable, check_failed = excluded.check_failed",
            item_id, source_id, h.content_hash, ts_req(h.held_since_at), ts_req(h.steady_since_at),
            h.waiting_playable, h.check_failed)
    for r in intent.releases:
        await conn.execute("DELETE FROM held_items WHERE item_id = $1", r.item_id)
        await conn.execute("UPDATE items SET decision = $2 WHERE id = $1", r.item_id, verdict_to_json(r.verdict))
    # The event that announced each item (not an edit of another
    # announcement about it, which a merge plans after it).
    announced = {e.item_id: e.id for e in events if e.item_id is not None and e.kind is not EventKind.EDIT}
    for lv in intent.live:
        item_id = item_ids[lv.new_index] if lv.new_index is not None else lv.item_id
        assert item_id is not None
        if lv.start:
            video_id = (intent.new_items[lv.new_index].item.video_id if lv.new_index is not None
                        else await conn.fetchval("SELECT video_id FROM items WHERE id = $1", item_id))
            await conn.execute(
                "INSERT INTO live_videos (item_id, source_id, event_id, video_id, state, scheduled_start_at, "
                "actual_start_at, actual_end_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                "ON CONFLICT (item_id) DO UPDATE SET source_id = excluded.source_id, event_id = excluded.event_id, "
                "video_id = excluded.video_id, state = excluded.state, "
                "scheduled_start_at = excluded.scheduled_start_at, actual_start_at = excluded.actual_start_at, "
                "actual_end_at = excluded.actual_end_at, updated_at = excluded.updated_at",
                item_id, source_id, announced.get(item_id), video_id or "",
                lv.state.value, ts(lv.scheduled_start_at), ts(lv.actual_start_at), ts(lv.actual_end_at), now)
        else:
            await conn.execute(
                "UPDATE live_videos SET state = $2, scheduled_start_at = COALESCE($3, scheduled_start_at), "
                "actual_start_at = COALESCE($4, actual_start_at), actual_end_at = COALESCE($5, actual_end_at), "
                "updated_at = $6 WHERE item_id = $1",
                item_id, lv.state.value, ts(lv.scheduled_start_at), ts(lv.actual_start_at), ts(lv.actual_end_at), now)


async def _book_anchor(conn: asyncpg.Connection, since: datetime) -> BookAnchor | None:
    """The first book event announced within the window (not a follow-up)."""
    row = await conn.fetchrow(
        "SELECT id, url, payload FROM events WHERE kind = 'book' AND purpose = 'announce' AND created_at >= $1 "
        "AND (payload ->> 'follow_up_of') IS NULL ORDER BY id LIMIT 1",
        since,
    )
    if row is None:
        return None
    payload = row[2] if isinstance(row[2], dict) else {}
    links = tuple(payload.get("links") or ([row[1]] if row[1] else []))
    routed = await conn.fetch(
        "SELECT DISTINCT route_id FROM outbox WHERE event_id = $1 AND route_id IS NOT NULL AND status != 'failed'",
        row[0])
    return BookAnchor(row[0], links, frozenset(r[0] for r in routed))


async def _insert_snapshot(conn: asyncpg.Connection, source_id: int, snap: SnapshotRow) -> None:
    await conn.execute(
        "INSERT INTO profile_snapshots (source_id, taken_at, followers, following, posts, bio, "
        "pinned_id, pinned_text, pinned_url, raw_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT DO NOTHING",
        source_id, ts_req(snap.taken_at), snap.followers, snap.following, snap.posts, snap.bio,
        snap.pinned_id, snap.pinned_text, snap.pinned_url, snap.raw_json,
    )


_INSERT_ITEMS = (
    "INSERT INTO items (source_id, kind, first_seen_at, identity, guid, link, norm_link, title_key, "
    "content_hash, title, summary, published_at, updated_at, duration_s, episode_number, enclosure_url, "
    "image_url, video_id, search, search_len, decision) "
    "SELECT $1, $2, $3, t.identity, t.guid, t.link, t.norm_link, t.title_key, t.content_hash, t.title, "
    "t.summary, t.published_at, t.updated_at, t.duration_s, t.episode_number, t.enclosure_url, t.image_url, "
    f"t.video_id, {SEARCH_VECTOR.format(title='t.s_title', chapters='t.s_chapters', summary='t.s_summary')}, t.s_len, "
    "t.decision "
    "FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], "
    "$11::text[], $12::timestamptz[], $13::timestamptz[], $14::bigint[], $15::bigint[], $16::text[], "
    "$17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::int[], $23::text[]) "
    "WITH ORDINALITY AS t(identity, "
    "guid, link, norm_link, title_key, content_hash, title, summary, published_at, updated_at, duration_s, "
    "episode_number, enclosure_url, image_url, video_id, s_title, s_chapters, s_summary, s_len, decision, n) "
    "ORDER BY t.n "
    "RETURNING id, identity"
)


async def _insert_items(
    conn: asyncpg.Connection, source_id: int, kind: ContentKind, new_items: Sequence[NewItem], now: datetime,
    verdicts: Sequence[ItemVerdict] = (),
) -> list[int]:
    """A poll's new items with their search vectors in one statement, then
    their chapters in one more (540 items one by one would cost more than
    parsing them). Returns ids in input order."""
    if not new_items:
        return []
    its = [n.item for n in new_items]
    texts = [search_params(i) for i in its]
    found = await conn.fetch(
        _INSERT_ITEMS, source_id, kind.value, now,
        [n.identity for n in new_items], [i.guid for i in its], [i.link for i in its],
        [n.norm_link for n in new_items], [n.title_key for n in new_items], [n.content_hash for n in new_items],
        [i.title for i in its], [i.summary for i in its], [ts(i.published_at) for i in its],
        [ts(i.updated_at) for i in its], [i.duration_s for i in its], [i.episode_number for i in its],
        [i.enclosure_url for i in its], [i.image_url for i in its], [i.video_id for i in its],
        [t[0] for t in texts], [t[1] for t in texts], [t[2] for t in texts], [t[3] for t in texts],
        [verdict_to_json(v) for v in verdicts] if len(verdicts) == len(new_items) else [None] * len(new_items),
    )
    await conn.execute("UPDATE search_stats SET items = items + $1, words = words + $2",
                       len(new_items), sum(t[3] for t in texts))
    ids = {r[1]: r[0] for r in found}
    item_ids = [ids[n.identity] for n in new_items]
    await _insert_chapters(conn, list(zip(item_ids, its)))
    return item_ids


async def _insert_chapters(conn: asyncpg.Connection, items: Sequence[tuple[int, Item]]) -> None:
    found = [(item_id, i, c.start_s, c.title) for item_id, item in items for i, c in enumerate(item.chapters)]
    if not found:
        return
    await conn.execute(
        "INSERT INTO chapters (item_id, position, start_s, title, search) "
        f"SELECT i, p, s, t, to_tsvector('{TS_CONFIG}', st) "
        "FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[], $5::text[]) AS u(i, p, s, t, st)",
        [f[0] for f in found], [f[1] for f in found], [f[2] for f in found], [f[3] for f in found],
        [rows.search_text(f[3]) for f in found],
    )


async def _update_item(conn: asyncpg.Connection, item_id: int, identity: str, item: Item, chash: str) -> None:
    params = search_params(item)
    await conn.execute(
        "UPDATE search_stats SET words = words + $1 - coalesce((SELECT search_len FROM items WHERE id = $2), $1)",
        params[3], item_id)
    await conn.execute(
        "UPDATE items SET identity = $1, guid = $2, link = $3, title = $4, summary = $5, content_hash = $6, "
        "updated_at = $7, duration_s = $8, episode_number = $9, enclosure_url = $10, image_url = $11, "
        f"video_id = $12, search = {SEARCH_VECTOR.format(title='$14::text', chapters='$15::text', summary='$16::text')}, "
        "search_len = $17 "
        "WHERE id = $13",
        identity, item.guid, item.link, item.title, item.summary, chash, ts(item.updated_at), item.duration_s,
        item.episode_number, item.enclosure_url, item.image_url, item.video_id, item_id, *params,
    )
    await conn.execute("DELETE FROM chapters WHERE item_id = $1", item_id)
    await _insert_chapters(conn, [(item_id, item)])
