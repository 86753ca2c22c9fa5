"""Rows <-> records for this backend, and the statements several tables share."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime

import aiosqlite

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
from bot.storage.records import OutboxRow, OutboxStatus
from bot.storage.sqlite.base import from_db_time, to_db_time

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
EPOCH = "1970-01-01T00:00:00.000000+00:00"


def source(r: sqlite3.Row) -> Source:
    spec = SourceSpec(
        name=r[1], kind=r[2], url=r[3], content=ContentKind(r[4]), every_s=r[5],
        announce_on_first_poll=r[6], max_age_s=r[7], handle=r[8], provider=r[9], api_base_url=r[10],
    )
    return Source(
        id=r[0], spec=spec, paused=bool(r[11]), synced=bool(r[12]), etag=r[13], last_modified=r[14],
        body_hash=r[15], last_polled_at=from_db_time(r[16]), last_success_at=from_db_time(r[17]),
        last_error=r[18], last_error_at=from_db_time(r[19]), consecutive_failures=r[20],
        next_poll_at=from_db_time(r[21]), cursor=r[22],
    )


def stored_item(r: sqlite3.Row, chapters: tuple[Chapter, ...]) -> StoredItem:
    item = Item(
        title=r[6], link=r[5], guid=r[4], summary=r[7], published_at=from_db_time(r[8]),
        updated_at=from_db_time(r[9]), duration_s=r[10], episode_number=r[11],
        enclosure_url=r[12], image_url=r[13], video_id=r[14], chapters=chapters,
    )
    first_seen = from_db_time(r[15])
    assert first_seen is not None
    return StoredItem(id=r[0], source_name=r[1], kind=ContentKind(r[2]), identity=r[3], item=item,
                      first_seen_at=first_seen)


def event(r: sqlite3.Row) -> Event:
    created = from_db_time(r[4])
    assert created is not None
    return Event(r[0], EventKind(r[1]), r[2], r[3], created, r[5], json.loads(r[6] or "{}"), EventPurpose(r[7]))


def outbox(r: sqlite3.Row) -> OutboxRow:
    due = from_db_time(r[11])
    assert due is not None
    return OutboxRow(
        id=r[0], event_id=r[1], route_id=r[2],
        destination=Destination(Platform(r[3]), DestinationKind(r[4]), r[5]), mention=r[6],
        idempotency_key=r[7], status=OutboxStatus(r[8]), attempts=r[9], outcome_unknown=bool(r[10]),
        next_attempt_at=due, first_attempt_at=from_db_time(r[12]),
        lease_owner=r[13], lease_until=from_db_time(r[14]), last_error=r[15], message_id=r[16],
    )


async def routes(db: aiosqlite.Connection) -> list[Route]:
    async with db.execute(
        "SELECT id, platform, channel, kinds, mention, broken_reason, thread, feeds, template, pace_s, "
        "daily_cap, digest FROM routes ORDER BY id"
    ) as cur:
        found = await cur.fetchall()
    return [
        Route(
            id=r[0], platform=Platform(r[1]), channel=r[2],
            kinds=frozenset(EventKind(k) for k in r[3].split(",") if k),
            mention=r[4], broken_reason=r[5], thread=bool(r[6]),
            feeds=frozenset(f for f in (r[7] or "").split(",") if f),
            template=r[8], pace_s=r[9], daily_cap=r[10],
            digest=DigestPeriod(r[11]) if r[11] else None,
        )
        for r in found
    ]


def route_destination(route: Route) -> Destination:
    return Destination(route.platform, DestinationKind.CHANNEL, route.channel)


async def insert_outbox(
    db: aiosqlite.Connection, event_id: int, destination: Destination, now: datetime,
    *, route_id: int | None = None, mention: str | None = None,
) -> int:
    cur = await db.execute(
        "INSERT INTO outbox (event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key, "
        "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (event_id, route_id, destination.platform.value, destination.kind.value, destination.id,
         mention, uuid.uuid4().hex, to_db_time(now), to_db_time(now)),
    )
    return cur.rowcount


async def queue_alert(db: aiosqlite.Connection, title: str, now: datetime, *, skip_route: int | None = None) -> int:
    cur = await db.execute(
        "INSERT INTO events (kind, title, created_at) VALUES ('alert', ?, ?)", (title, to_db_time(now)))
    event_id = cur.lastrowid
    assert event_id is not None
    queued = 0
    for route in await routes(db):
        if EventKind.ALERT in route.kinds and not route.broken and route.id != skip_route:
            queued += await insert_outbox(db, event_id, route_destination(route), now,
                                          route_id=route.id, mention=route.mention)
    return queued
