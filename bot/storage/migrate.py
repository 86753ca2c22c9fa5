"""``showbot migrate --to postgresql://...``: copy a SQLite database to PostgreSQL.

Every table the bot keeps is copied with its ids, parents first, in
batches of BATCH rows in key order, each batch in its own transaction, so
the target always holds a prefix of each table. Then the sequences move
past the copied ids and the search index is rebuilt on the target (its
vectors are PostgreSQL's own, not SQLite's FTS5 tables). Poll claims are not
copied: they are leases of processes that are gone.

Nothing is announced again: sources keep ``synced`` and their validators,
sent outbox rows stay sent, events keep their ids and payloads. A target
that already holds data is refused unless ``resume``, which continues an
interrupted copy: every insert skips a row whose key is already there.
The password in the URL is never printed (``bot.storage.url.redact``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from bot.errors import ShowbotError, StorageError
from bot.storage.url import check_url, redact

BATCH = 1000


class MigrationRefused(ShowbotError):
    """The target is not empty and ``--resume`` was not given."""


def _time(value: str | None) -> datetime | None:
    """SQLite keeps UTC ISO text; a date-only or naive value (from a very old
    showbot or a hand edit) is read as UTC rather than refused."""
    if value is None or value == "":
        return None
    found = datetime.fromisoformat(value)
    return found if found.tzinfo is not None else found.replace(tzinfo=timezone.utc)


def _bool(value: Any) -> bool:
    return bool(value)


def _kinds(value: str) -> list[str]:
    return [k for k in (value or "").split(",") if k]


def _payload(value: str | None) -> dict[str, Any]:
    try:
        found = json.loads(value or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the primary key: the copy's order, and what a resumed copy skips
    convert: dict[str, Callable[[Any], Any]]
    extra: str = ""  # more target columns computed from the row (chapters' search vector)
    search_from: int = 3  # with extra="search": the column whose text it is made of

    def select(self) -> str:
        after = " AND ".join(f"{k} IS NOT NULL" for k in self.key)
        if len(self.key) == 1:
            where = f"{self.key[0]} > ?"
        else:
            where = f"({', '.join(self.key)}) > ({', '.join('?' * len(self.key))})"
        return (f"SELECT {', '.join(self.columns)} FROM {self.name} WHERE {after} AND {where} "
                f"ORDER BY {', '.join(self.key)} LIMIT {BATCH}")

    def first_key(self) -> tuple[Any, ...]:
        return tuple(-(2**63) if k in ("id", "item_id", "position") else "" for k in self.key)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(self.convert.get(c, _same)(v) for c, v in zip(self.columns, raw))


T, B, K, P = _time, _bool, _kinds, _payload
TABLES: tuple[Table, ...] = (
    Table("sources", (
        "id", "name", "kind", "url", "content", "every_s", "announce_on_first_poll", "max_age_s", "handle",
        "provider", "api_base_url", "paused", "synced", "etag", "last_modified", "body_hash", "last_polled_at",
        "last_success_at", "last_error", "last_error_at", "consecutive_failures", "next_poll_at", "cursor",
        "created_at"), ("id",), {
        "paused": B, "synced": B, "last_polled_at": T, "last_success_at": T, "last_error_at": T,
        "next_poll_at": T, "created_at": T}),
    Table("items", (
        "id", "source_id", "identity", "guid", "link", "norm_link", "title_key", "content_hash", "kind", "title",
        "summary", "published_at", "updated_at", "first_seen_at", "duration_s", "episode_number",
        "enclosure_url", "image_url", "video_id", "decision"), ("id",), {
        "published_at": T, "updated_at": T, "first_seen_at": T}),
    Table("chapters", ("item_id", "position", "start_s", "title"), ("item_id", "position"), {}, extra="search"),
    Table("routes", ("id", "platform", "channel", "kinds", "mention", "broken_reason", "thread", "created_at",
                     "feeds", "template", "pace_s", "daily_cap", "digest"),
          ("id",), {"kinds": K, "thread": B, "created_at": T, "feeds": K}),
    Table("events", ("id", "source_id", "item_id", "kind", "title", "url", "payload", "created_at", "purpose",
                     "routing"),
          ("id",), {"payload": P, "created_at": T}),
    # Before the outbox: its digested rows name their digest (digest_id).
    Table("digests", ("id", "route_id", "period_end", "event_id", "created_at"), ("id",),
          {"period_end": T, "created_at": T}),
    Table("outbox", (
        "id", "event_id", "route_id", "platform", "dest_kind", "dest_id", "mention", "idempotency_key", "status",
        "outcome_unknown", "attempts", "next_attempt_at", "first_attempt_at", "lease_owner", "lease_until",
        "last_error", "message_id", "created_at", "sent_at", "message_url", "digest_id"), ("id",), {
        "outcome_unknown": B, "next_attempt_at": T, "first_attempt_at": T, "lease_until": T, "created_at": T,
        "sent_at": T}),
    Table("filters", ("id", "source_id", "mode", "pattern", "created_at"), ("id",), {"created_at": T}),
    Table("subscriptions", ("id", "platform", "user_id", "topic", "created_at"), ("id",), {"created_at": T}),
    Table("audit", ("id", "at", "platform", "user_id", "action", "detail"), ("id",), {"at": T}),
    Table("settings", ("key", "value"), ("key",), {}),
    Table("config_seeds", ("key", "seeded_at"), ("key",), {"seeded_at": T}),
    Table("profile_snapshots", (
        "id", "source_id", "taken_at", "followers", "following", "posts", "bio", "pinned_id", "pinned_text",
        "pinned_url", "raw_json"), ("id",), {"taken_at": T}),
    # Held announcements and tracked premieres: a held item must still be
    # announced, and a premiere still edited, after the move.
    Table("held_items", ("item_id", "source_id", "content_hash", "held_since_at", "steady_since_at",
                         "waiting_playable", "check_failed"), ("item_id",),
          {"held_since_at": T, "steady_since_at": T, "waiting_playable": B, "check_failed": B}),
    Table("live_videos", ("item_id", "source_id", "event_id", "video_id", "state", "scheduled_start_at",
                          "actual_start_at", "actual_end_at", "updated_at"), ("item_id",),
          {"scheduled_start_at": T, "actual_start_at": T, "actual_end_at": T, "updated_at": T}),
    # Documents an item links to (bot.documents): their state, JSON chapters
    # kept as content, and transcript passages with their search vectors.
    Table("item_documents", ("item_id", "kind", "url", "media_type", "fetched_url", "fetched_at", "content",
                             "attempts", "last_error", "retry_at"), ("item_id", "kind"),
          {"fetched_at": T, "retry_at": T}),
    Table("transcript_segments", ("id", "item_id", "start_s", "end_s", "text"), ("id",), {},
          extra="search", search_from=4),
)
SEQUENCED = [t.name for t in TABLES if t.key == ("id",)]


def _insert_sql(table: Table) -> str:
    from bot.storage.postgres.schema import TS_CONFIG

    columns = list(table.columns)
    values = [f"${n}" for n in range(1, len(columns) + 1)]
    if table.extra == "search":
        columns.append("search")
        values.append(f"to_tsvector('{TS_CONFIG}', ${len(values) + 1})")
    return (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(values)}) "
            "ON CONFLICT DO NOTHING")


async def _copy_table(source: Any, target: Any, table: Table, out: TextIO) -> int:
    """Copy one table in key order, one transaction per batch. Returns rows inserted."""
    from bot.storage.postgres.rows import search_text

    total = (await source._one(f"SELECT count(*) FROM {table.name}"))[0]
    insert = _insert_sql(table)
    after = table.first_key()
    done = inserted = 0
    print(f"{table.name}: 0/{total}", file=out, flush=True)
    while True:
        raw = await source._all(table.select(), after, doing=f"reading {table.name}")
        if not raw:
            break
        batch = [table.row(r) for r in raw]
        if table.extra == "search":
            batch = [(*r, search_text(r[table.search_from])) for r in batch]
        async with target._tx(f"copying {table.name}") as conn:
            before = await conn.fetchval(f"SELECT count(*) FROM {table.name}")
            await conn.executemany(insert, batch)
            inserted += await conn.fetchval(f"SELECT count(*) FROM {table.name}") - before
        done += len(raw)
        after = tuple(raw[-1][table.columns.index(k)] for k in table.key)
        print(f"{table.name}: {done}/{total}", file=out, flush=True)
    return inserted


async def _rebuild_search(target: Any, out: TextIO) -> int:
    """Every item's weighted vector and length, from its title, chapter
    titles and description, written the way the store writes new items."""
    from bot.models import Chapter, Item
    from bot.storage.postgres.polls import SEARCH_VECTOR, search_params

    total = (await target._one("SELECT count(*) FROM items"))[0]
    update = (
        f"UPDATE items i SET search = {SEARCH_VECTOR.format(title='u.t', chapters='u.c', summary='u.s')}, "
        "search_len = u.n FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[]) "
        "AS u(id, t, c, s, n) WHERE i.id = u.id"
    )
    after, done = -(2**63), 0
    while True:
        found = await target._all(
            "SELECT i.id, i.title, i.summary, coalesce((SELECT array_agg(c.title ORDER BY c.position) "
            "FROM chapters c WHERE c.item_id = i.id), '{}') FROM items i WHERE i.id > $1 ORDER BY i.id LIMIT $2",
            (after, BATCH), doing="reading items")
        if not found:
            break
        params = [search_params(Item(title=r[1], summary=r[2], chapters=tuple(Chapter(0, t) for t in r[3])))
                  for r in found]
        async with target._tx("rebuilding the search index") as conn:
            await conn.execute(update, [r[0] for r in found], [p[0] for p in params], [p[1] for p in params],
                               [p[2] for p in params], [p[3] for p in params])
        done += len(found)
        after = found[-1][0]
        print(f"search index: {done}/{total}", file=out, flush=True)
    async with target._tx("counting the catalogue") as conn:
        await conn.execute("UPDATE search_stats SET items = (SELECT count(*) FROM items), "
                           "words = (SELECT coalesce(sum(search_len), 0) FROM items)")
    return done


async def _target_rows(target: Any) -> dict[str, int]:
    found = {}
    for table in TABLES:
        found[table.name] = int((await target._one(f"SELECT count(*) FROM {table.name}"))[0])
    return found


async def migrate(
    sqlite_path: Path, url: str, *, resume: bool = False, out: TextIO,
    after_table: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Copy ``sqlite_path`` into the PostgreSQL database at ``url``; returns
    rows inserted per table. ``after_table`` is called after each table
    (tests interrupt a copy with it)."""
    from bot.storage.postgres import PostgresStorage
    from bot.storage.sqlite import SqliteStorage

    check_url(url, "--to")
    if not sqlite_path.exists():
        raise StorageError(f"no SQLite database at {str(sqlite_path)!r} to migrate")
    print(f"migrating {sqlite_path} -> {redact(url)}", file=out, flush=True)
    source = await SqliteStorage.open(sqlite_path)  # brings an older file to the current schema first
    try:
        target = await PostgresStorage.open(url)
        try:
            held = {k: v for k, v in (await _target_rows(target)).items() if v}
            if held and not resume:
                listed = ", ".join(f"{n} {t}" for t, n in held.items())
                raise MigrationRefused(
                    f"the target database {redact(url)} is not empty ({listed}); "
                    "use --resume to continue an interrupted copy into it")
            copied: dict[str, int] = {}
            for table in TABLES:
                copied[table.name] = await _copy_table(source, target, table, out)
                if after_table is not None:
                    after_table(table.name)
            async with target._tx("moving the id sequences past the copied rows") as conn:
                for name in SEQUENCED:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce(max(id), 1), "
                        f"max(id) IS NOT NULL) FROM {name}")
            await _rebuild_search(target, out)
        finally:
            await target.close()
    finally:
        await source.close()
    print("done: " + ", ".join(f"{t} {n}" for t, n in copied.items()), file=out, flush=True)
    return copied
