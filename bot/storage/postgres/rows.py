"""Rows <-> records for this backend, the statements several tables share,
and the text the search index is built from."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import asyncpg

from bot.models import (
    Chapter,
    ContentKind,
    Destination,
    DestinationKind,
    DigestPeriod,
    Event,
    EventKind,
    EventPurpose,
    Item,
    Platform,
    Route,
    Source,
    SourceSpec,
    StoredItem,
)
from bot.search import tokens
from bot.storage.postgres.base import lock, ts_req
from bot.storage.postgres.schema import LOCK_OUTBOX_INSERT
from bot.storage.records import OutboxRow, OutboxStatus

SOURCE_COLUMNS = (
    "id, name, kind, url, content, every_s, announce_on_first_poll, max_age_s, handle, "
    "provider, api_base_url, paused, synced, etag, last_modified, body_hash, last_polled_at, "
    "last_success_at, last_error, last_error_at, consecutive_failures, next_poll_at, cursor"
)
ITEM_COLUMNS = (
    "i.id, s.name, i.kind, i.identity, i.guid, i.link, i.title, i.summary, i.published_at, "
    "i.updated_at, i.duration_s, i.episode_number, i.enclosure_url, i.image_url, i.video_id, "
    "i.first_seen_at"
)
OUTBOX_COLUMNS = (
    "id, event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key, status, "
    "attempts, outcome_unknown, next_attempt_at, first_attempt_at, lease_owner, lease_until, "
    "last_error, message_id"
)
EVENT_COLUMNS = "id, kind, title, url, created_at, item_id, payload, purpose"
# A lease that has run out: rows left 'sending' by a dead process.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def source(r: asyncpg.Record) -> Source:
    spec = SourceSpec(
        name=r[1], kind=r[2], url=r[3], content=ContentKind(r[4]), every_s=r[5],
        announce_on_first_poll=r[6], max_age_s=r[7], handle=r[8], provider=r[9], api_base_url=r[10],
    )
    return Source(
        id=r[0], spec=spec, paused=r[11], synced=r[12], etag=r[13], last_modified=r[14],
        body_hash=r[15], last_polled_at=r[16], last_success_at=r[17], last_error=r[18],
        last_error_at=r[19], consecutive_failures=r[20], next_poll_at=r[21], cursor=r[22],
    )


def stored_item(r: Sequence[Any], chapters: tuple[Chapter, ...]) -> StoredItem:
    item = Item(
        title=r[6], link=r[5], guid=r[4], summary=r[7], published_at=r[8], updated_at=r[9],
        duration_s=r[10], episode_number=r[11], enclosure_url=r[12], image_url=r[13], video_id=r[14],
        chapters=chapters,
    )
    return StoredItem(id=r[0], source_name=r[1], kind=ContentKind(r[2]), identity=r[3], item=item,
                      first_seen_at=r[15])


def event(r: asyncpg.Record) -> Event:
    payload = r[6] if isinstance(r[6], dict) else {}
    return Event(r[0], EventKind(r[1]), r[2], r[3], r[4], r[5], payload, EventPurpose(r[7]))


def outbox(r: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        id=r[0], event_id=r[1], route_id=r[2],
        destination=Destination(Platform(r[3]), DestinationKind(r[4]), r[5]), mention=r[6],
        idempotency_key=r[7], status=OutboxStatus(r[8]), attempts=r[9], outcome_unknown=r[10],
        next_attempt_at=r[11], first_attempt_at=r[12], lease_owner=r[13], lease_until=r[14],
        last_error=r[15], message_id=r[16],
    )


ROUTE_COLUMNS = (
    "id, platform, channel, kinds, mention, broken_reason, thread, feeds, template, pace_s, daily_cap, digest"
)
ROUTES_SQL = f"SELECT {ROUTE_COLUMNS} FROM routes ORDER BY id"


def route(r: asyncpg.Record) -> Route:
    return Route(
        id=r[0], platform=Platform(r[1]), channel=r[2], kinds=frozenset(EventKind(k) for k in r[3]),
        mention=r[4], broken_reason=r[5], thread=r[6], feeds=frozenset(r[7]), template=r[8],
        pace_s=r[9], daily_cap=r[10], digest=DigestPeriod(r[11]) if r[11] else None,
    )


async def routes(conn: asyncpg.Connection) -> list[Route]:
    return [route(r) for r in await conn.fetch(ROUTES_SQL)]


def route_destination(r: Route) -> Destination:
    return Destination(r.platform, DestinationKind.CHANNEL, r.channel)


async def insert_outbox(
    conn: asyncpg.Connection, rows: Sequence[tuple[int, Destination, int | None, str | None]], now: datetime,
) -> int:
    """Queue (event id, destination, route id, mention) rows, in that order.

    Takes LOCK_OUTBOX_INSERT first and holds it to commit: ids come from a
    sequence, so without it two writers could commit ids out of order (the
    later id visible first), and a claim could send a destination's later
    row before its earlier one. With it, the rows visible at any moment are
    a prefix of the id order. Returns the rows queued."""
    if not rows:
        return 0
    await lock(conn, LOCK_OUTBOX_INSERT)
    at = ts_req(now)
    result = await conn.fetch(
        "INSERT INTO outbox (event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key, "
        "next_attempt_at, created_at) "
        "SELECT e, r, p, k, d, m, key, $8, $8 FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], "
        "$5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS t(e, r, p, k, d, m, key, n) ORDER BY n "
        "ON CONFLICT DO NOTHING RETURNING id",
        [e for e, _, _, _ in rows], [r for _, _, r, _ in rows],
        [d.platform.value for _, d, _, _ in rows], [d.kind.value for _, d, _, _ in rows],
        [d.id for _, d, _, _ in rows], [m for _, _, _, m in rows],
        [uuid.uuid4().hex for _ in rows], at,
    )
    return len(result)


async def queue_alert(conn: asyncpg.Connection, title: str, now: datetime, *, skip_route: int | None = None) -> int:
    event_id = await conn.fetchval(
        "INSERT INTO events (kind, title, created_at) VALUES ('alert', $1, $2) RETURNING id", title, ts_req(now))
    targets = [
        (event_id, route_destination(r), r.id, r.mention)
        for r in await routes(conn)
        if EventKind.ALERT in r.kinds and not r.broken and r.id != skip_route
    ]
    return await insert_outbox(conn, targets, now)


# -- search text -----------------------------------------------------------------------


def fold(token: str) -> str:
    """A token without diacritics (SQLite's ``remove_diacritics 2``)."""
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def search_text(text: str) -> str:
    """What ``to_tsvector`` is given: the core's tokens (``bot.search.tokens``,
    unicode61's split), folded, one space apart. PostgreSQL's own parser would
    keep "HTTP/2" or "a.b@c.d" whole as file/email tokens, which the core's
    queries (``http`` then ``2``) could never match; given only plain words,
    it stems each and positions them one after another, so phrases work."""
    return " ".join(fold(t) for t in tokens(text))


def chapters_text(item: Item) -> str:
    return "\n".join(c.title for c in item.chapters)
