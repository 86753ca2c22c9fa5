"""The SQLite store: the only module that speaks SQL.

Contract:
- one aiosqlite connection per Store, WAL, foreign keys on, a busy timeout;
- every write runs in one explicit transaction (``BEGIN IMMEDIATE``) under an
  asyncio lock, so coroutines never interleave inside a transaction;
- operational sqlite errors (locked, disk full, corrupt) become StorageError
  at this boundary; constraint failures are mapped to domain errors
  (AlreadyExists) at the statement that can raise them;
- migrations run at open, keyed by PRAGMA user_version.
"""

from __future__ import annotations

import asyncio
import enum
import json
import sqlite3
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Mapping, Sequence

import aiosqlite

from bot.detect import Decision, KnownItem, NewItem, plan_deliveries
from bot.errors import AlreadyExists, ClaimLost, NotFound, StorageError
from bot.models import (
    Chapter,
    ContentKind,
    Destination,
    DestinationKind,
    Event,
    EventKind,
    Item,
    Platform,
    Route,
    Source,
    SourceSpec,
    StoredItem,
)
from bot.storage.schema import CHAPTER_ROWID_SPAN, MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from bot.profile import ProfileChange


def to_db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime reached the store; use UTC-aware datetimes")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting its turn (next_attempt_at)
    SENDING = "sending"  # claimed by lease_owner until lease_until; maybe being posted right now
    SENT = "sent"
    FAILED = "failed"  # given up: the route broke or was removed, or a DM can't be received


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: int
    route_id: int | None
    destination: Destination
    mention: str | None
    idempotency_key: str
    status: OutboxStatus
    attempts: int
    outcome_unknown: bool
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str | None
    message_id: str | None

    @property
    def platform(self) -> Platform:
        return self.destination.platform

    @property
    def channel(self) -> str:
        return self.destination.id


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # back to pending at next_attempt_at
    FAILED = "failed"
    RELEASED = "released"  # claimed but not attempted: back to pending as it was


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What became of one claimed outbox row; written by ``record_deliveries``."""

    outbox_id: int
    outcome: DeliveryOutcome
    at: datetime
    attempted: bool = True
    message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None  # RETRY (and RELEASED, to postpone it)
    outcome_unknown: bool = False  # RETRY: the platform may have the post; ask before re-posting
    break_route: int | None = None  # FAILED because this route can never work: mark it broken...
    alert: str | None = None  # ...and tell the moderators' channels this, once


@dataclass(frozen=True, slots=True)
class PollWrite:
    """What one successful poll wrote, for reports (``poll --json``)."""

    new_items: tuple[StoredItem, ...]
    events: tuple[Event, ...]
    outbox_rows: int


_SOURCE_COLUMNS = (
    "id, name, kind, url, content, every_s, announce_on_first_poll, max_age_s, handle, "
    "provider, api_base_url, paused, synced, etag, last_modified, body_hash, last_polled_at, "
    "last_success_at, last_error, last_error_at, consecutive_failures, next_poll_at, cursor"
)
_ITEM_COLUMNS = (
    "i.id, s.name, i.kind, i.identity, i.guid, i.link, i.title, i.summary, i.published_at, "
    "i.updated_at, i.duration_s, i.episode_number, i.enclosure_url, i.image_url, i.video_id, "
    "i.first_seen_at"
)


class Store:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    async def open(cls, path: Path | str) -> "Store":
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {str(path)!r}: {exc}") from exc
        store = cls(conn)
        try:
            await store._setup()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _setup(self) -> None:
        async with self._errors("opening the database"):
            await self._conn.execute("PRAGMA journal_mode=WAL")
            await self._conn.execute("PRAGMA foreign_keys=ON")
            await self._conn.execute("PRAGMA busy_timeout=5000")
            await self._conn.execute("PRAGMA synchronous=NORMAL")
            async with self._conn.execute("PRAGMA user_version") as cur:
                (version,) = await cur.fetchone()  # type: ignore[misc]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"database schema version {version} is newer than this showbot "
                    f"({SCHEMA_VERSION}); upgrade showbot"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _split_sql(MIGRATIONS[target - 1]):
                        await self._conn.execute(statement)
                    await self._conn.execute(f"PRAGMA user_version = {target}")
                    await self._conn.execute("COMMIT")
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except sqlite3.IntegrityError:
            raise  # mapped to domain errors at the statement that can raise it
        except sqlite3.Error as exc:  # OperationalError, DatabaseError: locked, full, corrupt
            raise StorageError(f"storage error while {doing}: {exc}") from exc

    @asynccontextmanager
    async def _tx(self, doing: str, *, durable: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. ``durable``: its COMMIT is fsynced. The
        connection runs ``synchronous=NORMAL`` (WAL: a power cut may undo the
        last commits, never corrupt); a claim on a delivery must survive a
        power cut, or a post the platform already has could be sent again,
        so claims commit with FULL. Everything committed before a durable
        commit is durable with it (the WAL is one sequential log)."""
        async with self._lock, self._errors(doing):
            if durable:
                await self._conn.execute("PRAGMA synchronous=FULL")
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                else:
                    await self._conn.execute("COMMIT")
            finally:
                if durable:
                    await self._conn.execute("PRAGMA synchronous=NORMAL")

    async def _all(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> list[sqlite3.Row]:
        async with self._errors(doing):
            async with self._conn.execute(sql, params) as cur:
                return list(await cur.fetchall())

    async def _one(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> Any:
        rows = await self._all(sql, params, doing)
        return rows[0] if rows else None

    # -- settings ------------------------------------------------------------

    async def find_setting(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_setting(self, key: str, value: str) -> None:
        async with self._tx("saving a setting") as db:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def check_writable(self, now: datetime) -> None:
        """A real write (health checks): raises StorageError when the
        database can't take one (disk full, read-only, locked for long)."""
        async with self._tx("checking that the database takes writes") as db:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES ('health.checked_at', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (to_db_time(now),),
            )

    # -- sources -------------------------------------------------------------

    async def add_source(self, spec: SourceSpec, now: datetime) -> Source:
        async with self._tx("adding a source") as db:
            await self._insert_source(db, spec, now)
        return await self.get_source(spec.name)

    async def _insert_source(self, db: aiosqlite.Connection, spec: SourceSpec, now: datetime) -> None:
        try:
            await db.execute(
                "INSERT INTO sources (name, kind, url, content, every_s, announce_on_first_poll, "
                "max_age_s, handle, provider, api_base_url, next_poll_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (spec.name, spec.kind, spec.url, spec.content.value, spec.every_s,
                 spec.announce_on_first_poll, spec.max_age_s, spec.handle, spec.provider,
                 spec.api_base_url, to_db_time(now), to_db_time(now)),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"a source named {spec.name!r} already exists") from None

    async def seed(
        self, sources: Iterable[SourceSpec], routes: Iterable["RouteSeed"], now: datetime
    ) -> None:
        """Copy config entries into the database once each; afterwards the
        database is the truth (moderators may have removed or changed them)."""
        async with self._tx("seeding from config") as db:
            for spec in sources:
                key = f"source:{spec.name}"
                if await self._claim_seed(db, key, now):
                    existing = await (await db.execute(
                        "SELECT 1 FROM sources WHERE name = ?", (spec.name,))).fetchone()
                    if existing is None:
                        await self._insert_source(db, spec, now)
            for route in routes:
                key = f"route:{route.platform.value}:{route.channel}"
                if await self._claim_seed(db, key, now):
                    await self._upsert_route(db, route.platform, route.channel, route.kinds,
                                             route.mention, now, route.thread)

    async def _claim_seed(self, db: aiosqlite.Connection, key: str, now: datetime) -> bool:
        cur = await db.execute(
            "INSERT INTO config_seeds (key, seeded_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (key, to_db_time(now)),
        )
        return cur.rowcount == 1

    async def list_sources(self) -> list[Source]:
        rows = await self._all(f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY name")
        return [_source(r) for r in rows]

    async def find_source(self, name: str) -> Source | None:
        row = await self._one(f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE name = ?", (name,))
        return _source(row) if row else None

    async def get_source(self, name: str) -> Source:
        source = await self.find_source(name)
        if source is None:
            raise NotFound(f"no source named {name!r}")
        return source

    async def remove_source(self, name: str) -> None:
        async with self._tx("removing a source") as db:
            cur = await db.execute("DELETE FROM sources WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"no source named {name!r}")

    async def set_paused(self, name: str, paused: bool) -> None:
        async with self._tx("pausing a source") as db:
            cur = await db.execute("UPDATE sources SET paused = ? WHERE name = ?", (int(paused), name))
            if cur.rowcount == 0:
                raise NotFound(f"no source named {name!r}")

    async def known_items(self, source_id: int) -> list[KnownItem]:
        rows = await self._all(
            "SELECT id, identity, norm_link, title_key, content_hash FROM items WHERE source_id = ?",
            (source_id,),
        )
        return [KnownItem(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def record_unchanged(
        self, source_id: int, *, now: datetime, next_poll_at: datetime,
        etag: str | None, last_modified: str | None,
    ) -> None:
        """A 304 or a body identical to the last one: a success that writes no items."""
        async with self._tx("recording a poll") as db:
            await db.execute(
                "UPDATE sources SET last_polled_at = ?, last_success_at = ?, last_error = NULL, "
                "consecutive_failures = 0, next_poll_at = ?, "
                "etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified) WHERE id = ?",
                (to_db_time(now), to_db_time(now), to_db_time(next_poll_at), etag, last_modified,
                 source_id),
            )

    async def record_failure(
        self, source_id: int, error: str, *, now: datetime, next_poll_at: datetime
    ) -> int:
        """Store the error on the source; returns the failures in a row."""
        async with self._tx("recording a failed poll") as db:
            await db.execute(
                "UPDATE sources SET last_polled_at = ?, last_error = ?, last_error_at = ?, "
                "consecutive_failures = consecutive_failures + 1, next_poll_at = ? WHERE id = ?",
                (to_db_time(now), error, to_db_time(now), to_db_time(next_poll_at), source_id),
            )
            row = await (await db.execute(
                "SELECT consecutive_failures FROM sources WHERE id = ?", (source_id,))).fetchone()
        return int(row[0]) if row else 0

    async def claim_poll(self, source_id: int, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Take the one claim on polling ``source_id`` (until ``lease_until``):
        True when ``owner`` holds it now (also when it already did), False
        while another owner's lease runs. Atomic across processes."""
        async with self._tx("claiming a poll") as db:
            async with db.execute(
                "INSERT INTO poll_claims (source_id, owner, lease_until) VALUES (?, ?, ?) "
                "ON CONFLICT (source_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until "
                "WHERE poll_claims.owner = excluded.owner OR poll_claims.lease_until < ? "
                "RETURNING owner",
                (source_id, owner, to_db_time(lease_until), to_db_time(now)),
            ) as cur:
                return await cur.fetchone() is not None

    async def release_poll(self, source_id: int, owner: str) -> None:
        """Give the claim up (no-op when ``owner`` no longer holds it)."""
        async with self._tx("releasing a poll claim") as db:
            await db.execute("DELETE FROM poll_claims WHERE source_id = ? AND owner = ?", (source_id, owner))

    async def apply_poll(
        self,
        source: Source,
        decision: Decision,
        *,
        now: datetime,
        next_poll_at: datetime,
        etag: str | None,
        last_modified: str | None,
        body_hash: str | None,
        direct_messages: Sequence[tuple[int, Platform, str]] = (),
        snapshot: SnapshotRow | None = None,
        changes: Sequence[ProfileChange] = (),
        cursor: str | None = None,
        book_window_s: float = 3 * 86400,
        claim: str | None = None,
    ) -> PollWrite:
        """Write a poll's items, snapshot, events and outbox rows and advance
        the source's validators, all in ONE transaction: if any of it fails,
        none of it happened, and the next poll fetches the same body again.

        Book news already announced within ``book_window_s`` (the same book
        seen on the podcast, then in the bio, then pinned) is stored as a
        follow-up of the first: its link joins that event's ``links`` and,
        when the link is new, each channel that got the first announcement
        gets the follow-up as a reply to it (never a second announcement).
        """
        new_stored: list[StoredItem] = []
        events: list[Event] = []
        rows = 0
        kind = source.spec.content
        async with self._tx(f"storing a poll of {source.name!r}") as db:
            if claim is not None:
                async with db.execute(
                    "SELECT 1 FROM poll_claims WHERE source_id = ? AND owner = ?", (source.id, claim)
                ) as cur:
                    if await cur.fetchone() is None:
                        raise ClaimLost(f"the poll of {source.name!r} was taken over; not storing it")
            item_ids = await _insert_items(db, source.id, kind, decision.new_items, now)
            new_stored = [
                StoredItem(item_id, source.name, kind, new.identity, new.item, now)
                for item_id, new in zip(item_ids, decision.new_items)
            ]
            for upd in decision.updates:
                await _update_item(db, upd.item_id, upd.identity, upd.item, upd.content_hash)
            if snapshot is not None:
                await _insert_snapshot(db, source.id, snapshot)

            intents: list[tuple[int | None, EventKind, str, str | None, dict[str, Any]]] = [
                (item_ids[i.new_index], i.kind, i.title, i.url, {}) for i in decision.events
            ] + [(None, c.kind, c.title, c.url, dict(c.payload)) for c in changes]
            book_anchor = await _recent_book_event(db, now, book_window_s)
            event_refs: list[tuple[int | None, EventKind]] = []
            announced: list[Event] = []
            follow_ups: list[Event] = []
            for item_id, event_kind, title, url, payload in intents:
                follow_up = event_kind is EventKind.BOOK and book_anchor is not None
                if follow_up:
                    payload["follow_up_of"] = book_anchor
                cur = await db.execute(
                    "INSERT INTO events (source_id, item_id, kind, title, url, payload, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (source.id, item_id, event_kind.value, title, url, json.dumps(payload), to_db_time(now)),
                )
                if cur.rowcount != 1:
                    continue
                event_id = cur.lastrowid
                assert event_id is not None
                event = Event(event_id, event_kind, title, url, now, item_id, payload)
                events.append(event)
                if follow_up:
                    if await _add_book_link(db, book_anchor, url):  # type: ignore[arg-type]
                        follow_ups.append(event)
                    continue
                if event_kind is EventKind.BOOK:
                    book_anchor = event_id
                announced.append(event)
                event_refs.append((item_id, event_kind))

            routes = await _routes(db)
            for index, route in plan_deliveries(event_refs, routes):
                rows += await _insert_outbox(db, announced[index].id, _route_destination(route), now,
                                             route=route)
            # After the anchor's rows (it may have been announced in this very
            # poll), so a channel's follow-up always queues behind its anchor.
            for event in follow_ups:
                rows += await _queue_follow_up(db, event.id, event.payload["follow_up_of"], routes, now)
            # Personal subscriptions: a DM per member, attached to the item's
            # content event (the last of its events), at most one per item.
            content_event = {e.item_id: e for e in announced if e.item_id is not None}
            for new_index, platform, user_id in direct_messages:
                event = content_event.get(item_ids[new_index])
                if event is not None:
                    rows += await _insert_outbox(
                        db, event.id, Destination(platform, DestinationKind.USER, user_id), now)

            await db.execute(
                "UPDATE sources SET synced = 1, last_polled_at = ?, last_success_at = ?, "
                "last_error = NULL, consecutive_failures = 0, next_poll_at = ?, "
                "etag = ?, last_modified = ?, body_hash = ?, cursor = COALESCE(?, cursor) WHERE id = ?",
                (to_db_time(now), to_db_time(now), to_db_time(next_poll_at), etag, last_modified,
                 body_hash, cursor, source.id),
            )
        return PollWrite(tuple(new_stored), tuple(events), rows)

    async def queue_alert(self, title: str, now: datetime, *, skip_route: int | None = None) -> int:
        """Tell the moderators' channels (routes selecting ``alert``) once:
        an event plus an outbox row each, in one transaction. Returns rows queued."""
        async with self._tx("queueing a moderator alert") as db:
            return await _queue_alert(db, title, now, skip_route=skip_route)

    # -- profile snapshots ---------------------------------------------------

    async def latest_snapshot_json(self, source_id: int) -> bytes | None:
        row = await self._one(
            "SELECT raw_json FROM profile_snapshots WHERE source_id = ? ORDER BY taken_at DESC LIMIT 1",
            (source_id,),
        )
        return row[0].encode() if row else None

    async def max_followers(self, source_id: int) -> int | None:
        row = await self._one("SELECT max(followers) FROM profile_snapshots WHERE source_id = ?", (source_id,))
        return row[0] if row else None

    # -- items ---------------------------------------------------------------

    async def find_item(self, item_id: int) -> StoredItem | None:
        row = await self._one(
            f"SELECT {_ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id WHERE i.id = ?",
            (item_id,),
        )
        if row is None:
            return None
        chapters = await self._chapters([item_id])
        return _stored_item(row, chapters.get(item_id, ()))

    async def latest_items(
        self, kind: ContentKind | None = None, limit: int = 5, offset: int = 0
    ) -> list[StoredItem]:
        where = "WHERE i.kind = ?" if kind else ""
        params: list[Any] = [kind.value] if kind else []
        rows = await self._all(
            f"SELECT {_ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id {where} "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return await self._with_chapters(rows)

    async def count_items(self, source_id: int | None = None) -> int:
        if source_id is None:
            row = await self._one("SELECT count(*) FROM items")
        else:
            row = await self._one("SELECT count(*) FROM items WHERE source_id = ?", (source_id,))
        return int(row[0])

    async def _with_chapters(self, rows: Sequence[sqlite3.Row]) -> list[StoredItem]:
        chapters = await self._chapters([r[0] for r in rows])
        return [_stored_item(r, chapters.get(r[0], ())) for r in rows]

    async def _chapters(self, item_ids: Sequence[int]) -> dict[int, tuple[Chapter, ...]]:
        if not item_ids:
            return {}
        out: dict[int, list[Chapter]] = {}
        # Chunk to stay under SQLite's bound-parameter limit.
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for r in await self._all(
                f"SELECT item_id, start_s, title FROM chapters WHERE item_id IN ({marks}) "
                "ORDER BY item_id, position",
                chunk,
            ):
                out.setdefault(r[0], []).append(Chapter(r[1], r[2]))
        return {k: tuple(v) for k, v in out.items()}

    # -- routes --------------------------------------------------------------

    async def list_routes(self) -> list[Route]:
        async with self._errors("reading routes"):
            return await _routes(self._conn)

    async def upsert_route(
        self, platform: Platform, channel: str, kinds: frozenset[EventKind],
        mention: str | None, now: datetime, *, thread: bool = False,
    ) -> Route:
        async with self._tx("saving a route") as db:
            await self._upsert_route(db, platform, channel, kinds, mention, now, thread)
        routes = [r for r in await self.list_routes() if r.platform == platform and r.channel == channel]
        return routes[0]

    async def _upsert_route(
        self, db: aiosqlite.Connection, platform: Platform, channel: str,
        kinds: frozenset[EventKind], mention: str | None, now: datetime, thread: bool = False,
    ) -> None:
        await db.execute(
            "INSERT INTO routes (platform, channel, kinds, mention, thread, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(platform, channel) DO UPDATE SET kinds = excluded.kinds, "
            "mention = excluded.mention, thread = excluded.thread, broken_reason = NULL",
            (platform.value, channel, ",".join(sorted(k.value for k in kinds)), mention, int(thread),
             to_db_time(now)),
        )

    async def remove_route(self, platform: Platform, channel: str) -> None:
        async with self._tx("removing a route") as db:
            cur = await db.execute(
                "DELETE FROM routes WHERE platform = ? AND channel = ?", (platform.value, channel))
            if cur.rowcount == 0:
                raise NotFound(f"no announcements are routed to {channel!r}")

    async def mark_route_broken(self, route_id: int, reason: str) -> bool:
        """True when this call broke it (so moderators are told once)."""
        async with self._tx("marking a route broken") as db:
            cur = await db.execute(
                "UPDATE routes SET broken_reason = ? WHERE id = ? AND broken_reason IS NULL",
                (reason, route_id),
            )
            return cur.rowcount == 1

    # -- outbox --------------------------------------------------------------

    async def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        where = "WHERE status = ?" if status else ""
        rows = await self._all(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox {where} ORDER BY id",
            (status,) if status else (),
        )
        return [_outbox(r) for r in rows]

    async def count_unsent(self) -> dict[Platform, int]:
        """Rows not delivered yet (pending or being sent), per platform."""
        rows = await self._all(
            "SELECT platform, count(*) FROM outbox WHERE status IN ('pending', 'sending') GROUP BY platform")
        return {Platform(p): n for p, n in rows}

    async def find_outbox_row(self, event_id: int, destination: Destination) -> OutboxRow | None:
        """The row that carries ``event_id`` to one destination (a follow-up's anchor), if any."""
        row = await self._one(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox "
            "WHERE event_id = ? AND platform = ? AND dest_kind = ? AND dest_id = ?",
            (event_id, destination.platform.value, destination.kind.value, destination.id),
        )
        return _outbox(row) if row is not None else None

    async def claim_outbox(
        self, owner: str, now: datetime, lease_until: datetime, *,
        budgets: Mapping[Platform, int], per_destination: int,
    ) -> list[OutboxRow]:
        """Claim work for ``owner``: for up to ``budgets[p]`` destinations of
        platform ``p`` whose head (oldest unsent row) is due -- pending with
        ``next_attempt_at <= now``, or sending under a lease that ran out --
        the first ``per_destination`` rows of that destination, in id order.

        Claimed rows are ``sending`` under ``owner`` until ``lease_until``. A
        row taken over from an expired lease may have been posted by its
        previous holder: it comes back with ``outcome_unknown`` set.
        Atomic, and durable before it returns (fsync, whatever the
        connection's ``synchronous``): a power cut after this never loses a
        claim whose post the platform may already have. Rows of one
        destination are never claimed while an earlier row of it is claimed
        by someone else. Returns rows in id order; [] without writing when
        nothing is due."""
        wanted = {p.value: n for p, n in budgets.items() if n > 0}
        if not wanted:
            return []
        if not await self._claimable_heads(now, wanted):
            return []  # the common case: a read, no write transaction
        async with self._tx("claiming deliveries", durable=True) as db:
            heads = await self._claimable_heads(now, wanted, db)
            if not heads:
                return []
            chosen: list[tuple[str, str, str]] = []
            left = dict(wanted)
            for platform, kind, dest in heads:
                if left.get(platform, 0) > 0:
                    left[platform] -= 1
                    chosen.append((platform, kind, dest))
            ids: list[int] = []
            t_now, t_lease = to_db_time(now), to_db_time(lease_until)
            for platform, kind, dest in chosen:
                async with db.execute(
                    "SELECT id, status, next_attempt_at, lease_until FROM outbox "
                    "WHERE platform = ? AND dest_kind = ? AND dest_id = ? AND status IN ('pending', 'sending') "
                    "ORDER BY id LIMIT ?",
                    (platform, kind, dest, per_destination),
                ) as cur:
                    for row_id, status, due, lease in await cur.fetchall():
                        claimable = (status == "pending" and due <= t_now) or (
                            status == "sending" and (lease is None or lease < t_now))
                        if not claimable:
                            break  # never past a row that isn't ours to send
                        ids.append(row_id)
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            async with db.execute(
                f"UPDATE outbox SET outcome_unknown = CASE WHEN status = 'sending' THEN 1 ELSE outcome_unknown END, "
                "status = 'sending', lease_owner = ?, lease_until = ?, "
                f"first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id IN ({marks}) "
                f"RETURNING {_OUTBOX_COLUMNS}",
                (owner, t_lease, t_now, *ids),
            ) as cur:
                claimed = [_outbox(r) for r in await cur.fetchall()]
        return sorted(claimed, key=lambda r: r.id)

    async def _claimable_heads(
        self, now: datetime, platforms: Mapping[str, int], db: aiosqlite.Connection | None = None,
    ) -> list[tuple[str, str, str]]:
        marks = ",".join("?" * len(platforms))
        t_now = to_db_time(now)
        sql = (
            "SELECT o.platform, o.dest_kind, o.dest_id FROM outbox o JOIN ("
            "  SELECT min(id) AS id FROM outbox WHERE status IN ('pending', 'sending') "
            f"  AND platform IN ({marks}) GROUP BY platform, dest_kind, dest_id"
            ") h ON o.id = h.id "
            "WHERE (o.status = 'pending' AND o.next_attempt_at <= ?) "
            "   OR (o.status = 'sending' AND (o.lease_until IS NULL OR o.lease_until < ?)) "
            "ORDER BY o.id"
        )
        params = (*platforms, t_now, t_now)
        if db is not None:
            async with db.execute(sql, params) as cur:
                return [tuple(r) for r in await cur.fetchall()]  # type: ignore[misc]
        return [tuple(r) for r in await self._all(sql, params, "looking for due deliveries")]  # type: ignore[misc]

    async def renew_outbox_leases(self, owner: str, lease_until: datetime) -> int:
        """Extend every lease ``owner`` holds; returns how many rows it holds."""
        async with self._tx("renewing delivery leases") as db:
            cur = await db.execute(
                "UPDATE outbox SET lease_until = ? WHERE status = 'sending' AND lease_owner = ?",
                (to_db_time(lease_until), owner),
            )
            return cur.rowcount

    async def expire_outbox_leases(self) -> int:
        """At the start of the only process delivering from this database
        (SQLite): rows left ``sending`` by a process that died can be taken
        over now instead of when their lease runs out (they come back with
        ``outcome_unknown``). Returns how many there were."""
        async with self._tx("recovering the outbox") as db:
            cur = await db.execute(
                "UPDATE outbox SET lease_until = ? WHERE status = 'sending'", (_EPOCH,))
            return cur.rowcount

    async def record_deliveries(self, owner: str, results: Sequence[DeliveryResult]) -> list[int]:
        """Write what became of claimed rows, in one transaction.

        SENT is written whoever holds the row now (the platform has the post:
        that is the truth). Every other outcome is written only while
        ``owner`` still holds the row's lease; a row taken over since is the
        new holder's business. A result with ``break_route`` marks that
        route broken and, when this call broke it, queues ``alert`` for
        every other route that selects alerts. Idempotent: writing the same
        results twice changes nothing more. Returns the ids of routes this
        call broke."""
        if not results:
            return []
        broke: list[int] = []
        async with self._tx("recording deliveries") as db:
            for r in results:
                at = to_db_time(r.at)
                if r.outcome is DeliveryOutcome.SENT:
                    await db.execute(
                        "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?, last_error = NULL, "
                        "outcome_unknown = 0, lease_owner = NULL, lease_until = NULL, "
                        "attempts = attempts + ? WHERE id = ? AND status != 'sent'",
                        (r.message_id, at, int(r.attempted), r.outbox_id),
                    )
                    continue
                if r.outcome is DeliveryOutcome.FAILED and r.break_route is not None:
                    cur = await db.execute(
                        "UPDATE routes SET broken_reason = ? WHERE id = ? AND broken_reason IS NULL",
                        (r.error or "broken", r.break_route),
                    )
                    if cur.rowcount == 1:
                        broke.append(r.break_route)
                        if r.alert:
                            await _queue_alert(db, r.alert, r.at, skip_route=r.break_route)
                params: tuple[object, ...]
                if r.outcome is DeliveryOutcome.FAILED:
                    sql, params = (
                        "UPDATE outbox SET status = 'failed', last_error = ?, outcome_unknown = 0, "
                        "lease_owner = NULL, lease_until = NULL, attempts = attempts + ? ",
                        (r.error, int(r.attempted)),
                    )
                elif r.outcome is DeliveryOutcome.RETRY:
                    sql, params = (
                        "UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?, "
                        "outcome_unknown = ?, lease_owner = NULL, lease_until = NULL, attempts = attempts + ? ",
                        (r.error, to_db_time(r.next_attempt_at or r.at), int(r.outcome_unknown),
                         int(r.attempted)),
                    )
                else:  # RELEASED: untouched, only the claim goes (and maybe a later due time)
                    sql, params = (
                        "UPDATE outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL, "
                        "next_attempt_at = COALESCE(?, next_attempt_at) ",
                        (to_db_time(r.next_attempt_at),),
                    )
                await db.execute(sql + "WHERE id = ? AND status = 'sending' AND lease_owner = ?",
                                 (*params, r.outbox_id, owner))
        return broke

    async def events_by_id(self, event_ids: Sequence[int]) -> dict[int, Event]:
        out: dict[int, Event] = {}
        for start in range(0, len(event_ids), 500):
            chunk = list(event_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for row in await self._all(
                f"SELECT id, kind, title, url, created_at, item_id, payload FROM events WHERE id IN ({marks})",
                chunk,
            ):
                out[row[0]] = _event(row)
        return out

    async def items_by_id(self, item_ids: Sequence[int]) -> dict[int, StoredItem]:
        out: dict[int, StoredItem] = {}
        for start in range(0, len(item_ids), 500):
            chunk = list(item_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = await self._all(
                f"SELECT {_ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id "
                f"WHERE i.id IN ({marks})",
                chunk,
            )
            for stored in await self._with_chapters(rows):
                out[stored.id] = stored
        return out

    async def get_event(self, event_id: int) -> Event:
        row = await self._one(
            "SELECT id, kind, title, url, created_at, item_id, payload FROM events WHERE id = ?",
            (event_id,),
        )
        if row is None:
            raise NotFound(f"no event {event_id}")
        return _event(row)



@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A profile snapshot as stored: the columns /stats reads, plus the whole
    snapshot as JSON for the next diff."""

    taken_at: datetime
    followers: int | None
    following: int | None
    posts: int | None
    bio: str | None
    pinned_id: str | None
    pinned_text: str | None
    pinned_url: str | None
    raw_json: str


async def _insert_snapshot(db: aiosqlite.Connection, source_id: int, snap: SnapshotRow) -> None:
    await db.execute(
        "INSERT INTO profile_snapshots (source_id, taken_at, followers, following, posts, bio, "
        "pinned_id, pinned_text, pinned_url, raw_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (source_id, to_db_time(snap.taken_at), snap.followers, snap.following, snap.posts, snap.bio,
         snap.pinned_id, snap.pinned_text, snap.pinned_url, snap.raw_json),
    )


async def _recent_book_event(db: aiosqlite.Connection, now: datetime, window_s: float) -> int | None:
    """The first announced book event of the current window, if any."""
    since = to_db_time(now - timedelta(seconds=window_s))
    async with db.execute(
        "SELECT id FROM events WHERE kind = 'book' AND created_at >= ? "
        "AND json_extract(payload, '$.follow_up_of') IS NULL ORDER BY id LIMIT 1",
        (since,),
    ) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


async def _add_book_link(db: aiosqlite.Connection, event_id: int, url: str | None) -> bool:
    """Add ``url`` to the anchor book event's ``links``; True when it is new."""
    if not url:
        return False
    async with db.execute("SELECT url, payload FROM events WHERE id = ?", (event_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return False
    payload = json.loads(row[1] or "{}")
    links = list(payload.get("links") or ([row[0]] if row[0] else []))
    if url in links:
        return False
    links.append(url)
    payload["links"] = links
    await db.execute("UPDATE events SET payload = ? WHERE id = ?", (json.dumps(payload), event_id))
    return True


async def _queue_follow_up(
    db: aiosqlite.Connection, event_id: int, anchor_id: int, routes: Sequence[Route], now: datetime
) -> int:
    """Queue a follow-up for every channel the anchor was queued to (and not
    given up on); a route added since the anchor hears nothing of the old news."""
    async with db.execute(
        "SELECT DISTINCT route_id FROM outbox WHERE event_id = ? AND route_id IS NOT NULL "
        "AND status != 'failed'",
        (anchor_id,),
    ) as cur:
        anchor_routes = {r[0] for r in await cur.fetchall()}
    rows = 0
    for route in routes:
        if route.id in anchor_routes and not route.broken:
            rows += await _insert_outbox(db, event_id, _route_destination(route), now, route=route)
    return rows


async def _queue_alert(
    db: aiosqlite.Connection, title: str, now: datetime, *, skip_route: int | None = None
) -> int:
    cur = await db.execute(
        "INSERT INTO events (kind, title, created_at) VALUES ('alert', ?, ?)",
        (title, to_db_time(now)),
    )
    event_id = cur.lastrowid
    assert event_id is not None
    rows = 0
    for route in await _routes(db):
        if EventKind.ALERT in route.kinds and not route.broken and route.id != skip_route:
            rows += await _insert_outbox(db, event_id, _route_destination(route), now, route=route)
    return rows


@dataclass(frozen=True, slots=True)
class RouteSeed:
    platform: Platform
    channel: str
    kinds: frozenset[EventKind]
    mention: str | None = None
    thread: bool = False


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (none of ours contain ';' in literals)."""
    statements, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(buf).strip())
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        statements.append(rest)
    return [s for s in statements if s.strip(" ;\n")]


_INSERT_ITEM = (
    "INSERT INTO items (source_id, identity, guid, link, norm_link, title_key, content_hash, kind, "
    "title, summary, published_at, updated_at, first_seen_at, duration_s, episode_number, "
    "enclosure_url, image_url, video_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _insert_items(
    db: aiosqlite.Connection, source_id: int, kind: ContentKind, new_items: Sequence[NewItem],
    now: datetime,
) -> list[int]:
    """Insert a poll's new items with their chapters and FTS rows in a few
    batched statements (each await is a hop to aiosqlite's thread; 540 items
    one by one cost more than parsing them). Returns ids in input order."""
    if not new_items:
        return []
    seen = to_db_time(now)
    await db.executemany(_INSERT_ITEM, [
        (source_id, n.identity, n.item.guid, n.item.link, n.norm_link, n.title_key, n.content_hash,
         kind.value, n.item.title, n.item.summary, to_db_time(n.item.published_at),
         to_db_time(n.item.updated_at), seen, n.item.duration_s, n.item.episode_number,
         n.item.enclosure_url, n.item.image_url, n.item.video_id)
        for n in new_items
    ])
    async with db.execute("SELECT identity, id FROM items WHERE source_id = ?", (source_id,)) as cur:
        ids = {identity: item_id for identity, item_id in await cur.fetchall()}
    item_ids = [ids[n.identity] for n in new_items]
    await _insert_chapters(db, [(item_id, n.item) for item_id, n in zip(item_ids, new_items)])
    await db.executemany(
        "INSERT INTO catalog_fts (rowid, title, chapters, summary, kind) VALUES (?, ?, ?, ?, ?)",
        [(item_id, *_fts_columns(n.item), kind.value) for item_id, n in zip(item_ids, new_items)],
    )
    return item_ids


async def _insert_chapters(db: aiosqlite.Connection, items: Sequence[tuple[int, Item]]) -> None:
    """Chapters and their chapters_fts rows (rowid = item_id * 10000 + position),
    two batched statements: see migration 4 for why not an insert trigger."""
    rows = [(item_id, i, c.start_s, c.title) for item_id, item in items for i, c in enumerate(item.chapters)]
    if not rows:
        return
    await db.executemany("INSERT INTO chapters (item_id, position, start_s, title) VALUES (?, ?, ?, ?)", rows)
    await db.executemany(
        "INSERT INTO chapters_fts (rowid, title) VALUES (?, ?)",
        [(item_id * CHAPTER_ROWID_SPAN + i, title) for item_id, i, _, title in rows if i < CHAPTER_ROWID_SPAN],
    )


def _fts_columns(item: Item) -> tuple[str, str, str]:
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
        (item_id, *_fts_columns(item), item_id),
    )


async def _routes(db: aiosqlite.Connection) -> list[Route]:
    async with db.execute(
        "SELECT id, platform, channel, kinds, mention, broken_reason, thread FROM routes ORDER BY id"
    ) as cur:
        rows = await cur.fetchall()
    return [
        Route(
            id=r[0], platform=Platform(r[1]), channel=r[2],
            kinds=frozenset(EventKind(k) for k in r[3].split(",") if k),
            mention=r[4], broken_reason=r[5], thread=bool(r[6]),
        )
        for r in rows
    ]


def _route_destination(route: Route) -> Destination:
    return Destination(route.platform, DestinationKind.CHANNEL, route.channel)


async def _insert_outbox(
    db: aiosqlite.Connection, event_id: int, destination: Destination, now: datetime,
    *, route: Route | None = None,
) -> int:
    cur = await db.execute(
        "INSERT INTO outbox (event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key, "
        "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (event_id, route.id if route else None, destination.platform.value, destination.kind.value,
         destination.id, route.mention if route else None, uuid.uuid4().hex, to_db_time(now),
         to_db_time(now)),
    )
    return cur.rowcount


def _source(r: sqlite3.Row) -> Source:
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


def _stored_item(r: sqlite3.Row, chapters: tuple[Chapter, ...]) -> StoredItem:
    item = Item(
        title=r[6], link=r[5], guid=r[4], summary=r[7], published_at=from_db_time(r[8]),
        updated_at=from_db_time(r[9]), duration_s=r[10], episode_number=r[11],
        enclosure_url=r[12], image_url=r[13], video_id=r[14], chapters=chapters,
    )
    return StoredItem(id=r[0], source_name=r[1], kind=ContentKind(r[2]), identity=r[3], item=item,
                      first_seen_at=from_db_time(r[15]))  # type: ignore[arg-type]


# The columns _outbox reads, in its order.
_OUTBOX_COLUMNS = (
    "id, event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key, status, "
    "attempts, outcome_unknown, next_attempt_at, first_attempt_at, lease_owner, lease_until, "
    "last_error, message_id"
)
# A lease that has run out: rows left 'sending' by a dead process.
_EPOCH = "1970-01-01T00:00:00.000000+00:00"


def _event(row: sqlite3.Row) -> Event:
    return Event(row[0], EventKind(row[1]), row[2], row[3], from_db_time(row[4]),  # type: ignore[arg-type]
                 row[5], json.loads(row[6] or "{}"))


def _outbox(r: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=r[0], event_id=r[1], route_id=r[2],
        destination=Destination(Platform(r[3]), DestinationKind(r[4]), r[5]), mention=r[6],
        idempotency_key=r[7], status=OutboxStatus(r[8]), attempts=r[9], outcome_unknown=bool(r[10]),
        next_attempt_at=from_db_time(r[11]), first_attempt_at=from_db_time(r[12]),  # type: ignore[arg-type]
        lease_owner=r[13], lease_until=from_db_time(r[14]), last_error=r[15], message_id=r[16],
    )
