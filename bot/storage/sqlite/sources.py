"""Sources: what is polled, its poll state, the claim on polling it, and
profile snapshots of x sources."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

import aiosqlite

from bot.errors import AlreadyExists, NotFound
from bot.models import Source, SourceSpec
from bot.storage.records import RouteSeed
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, to_db_time
from bot.storage.sqlite.routes import put_route_row


class SourcesTable(SqliteBase):
    async def add_source(self, spec: SourceSpec, now: datetime) -> Source:
        async with self._tx("adding a source") as db:
            await _insert_source(db, spec, now)
        return await self.get_source(spec.name)

    async def seed(self, sources: Iterable[SourceSpec], routes: Iterable[RouteSeed], now: datetime) -> None:
        async with self._tx("seeding from config") as db:
            for spec in sources:
                if await _claim_seed(db, f"source:{spec.name}", now):
                    async with db.execute("SELECT 1 FROM sources WHERE name = ?", (spec.name,)) as cur:
                        existing = await cur.fetchone()
                    if existing is None:
                        await _insert_source(db, spec, now)
            for route in routes:
                if await _claim_seed(db, f"route:{route.platform.value}:{route.channel}", now):
                    await put_route_row(db, route, now)

    async def update_source(self, spec: SourceSpec) -> Source:
        async with self._tx("updating a source") as db:
            cur = await db.execute(
                "UPDATE sources SET kind = ?, url = ?, content = ?, every_s = ?, announce_on_first_poll = ?, "
                "max_age_s = ?, handle = ?, provider = ?, api_base_url = ? WHERE name = ?",
                (spec.kind, spec.url, spec.content.value, spec.every_s, spec.announce_on_first_poll,
                 spec.max_age_s, spec.handle, spec.provider, spec.api_base_url, spec.name),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no source named {spec.name!r}")
        return await self.get_source(spec.name)

    async def list_sources(self) -> list[Source]:
        return [rows.source(r) for r in await self._all(f"SELECT {rows.SOURCE_COLUMNS} FROM sources ORDER BY name")]

    async def find_source(self, name: str) -> Source | None:
        row = await self._one(f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE name = ?", (name,))
        return rows.source(row) if row else None

    async def get_source(self, name: str) -> Source:
        found = await self.find_source(name)
        if found is None:
            raise NotFound(f"no source named {name!r}")
        return found

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

    async def record_unchanged(
        self, source_id: int, *, now: datetime, next_poll_at: datetime,
        etag: str | None, last_modified: str | None, release: str | None = None,
    ) -> None:
        async with self._tx("recording a poll") as db:
            if release is not None:
                await db.execute("DELETE FROM poll_claims WHERE source_id = ? AND owner = ?", (source_id, release))
            await db.execute(
                "UPDATE sources SET last_polled_at = ?, last_success_at = ?, last_error = NULL, "
                "consecutive_failures = 0, next_poll_at = ?, "
                "etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified) WHERE id = ?",
                (to_db_time(now), to_db_time(now), to_db_time(next_poll_at), etag, last_modified, source_id),
            )

    async def record_failure(self, source_id: int, error: str, *, now: datetime, next_poll_at: datetime,
                             release: str | None = None) -> int:
        async with self._tx("recording a failed poll") as db:
            if release is not None:
                await db.execute("DELETE FROM poll_claims WHERE source_id = ? AND owner = ?", (source_id, release))
            async with db.execute(
                "UPDATE sources SET last_polled_at = ?, last_error = ?, last_error_at = ?, "
                "consecutive_failures = consecutive_failures + 1, next_poll_at = ? WHERE id = ? "
                "RETURNING consecutive_failures",
                (to_db_time(now), error, to_db_time(now), to_db_time(next_poll_at), source_id),
            ) as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def claim_poll(self, source_id: int, owner: str, now: datetime, lease_until: datetime) -> bool:
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
        async with self._tx("releasing a poll claim") as db:
            await db.execute("DELETE FROM poll_claims WHERE source_id = ? AND owner = ?", (source_id, owner))

    async def claim_lease(self, name: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        async with self._tx("claiming a lease") as db:
            async with db.execute(
                "INSERT INTO leases (name, owner, lease_until) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until "
                "WHERE leases.owner = excluded.owner OR leases.lease_until < ? "
                "RETURNING owner",
                (name, owner, to_db_time(lease_until), to_db_time(now)),
            ) as cur:
                return await cur.fetchone() is not None

    async def expire_leases(self) -> int:
        async with self._tx("expiring leases") as db:
            cur = await db.execute("UPDATE leases SET lease_until = ?", (rows.EPOCH,))
            return cur.rowcount

    async def release_lease(self, name: str, owner: str) -> None:
        async with self._tx("releasing a lease") as db:
            await db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    async def latest_snapshot_json(self, source_id: int) -> bytes | None:
        row = await self._one(
            "SELECT raw_json FROM profile_snapshots WHERE source_id = ? ORDER BY taken_at DESC LIMIT 1",
            (source_id,),
        )
        return row[0].encode() if row else None

    async def max_followers(self, source_id: int) -> int | None:
        row = await self._one("SELECT max(followers) FROM profile_snapshots WHERE source_id = ?", (source_id,))
        return row[0] if row else None


async def _insert_source(db: aiosqlite.Connection, spec: SourceSpec, now: datetime) -> None:
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


async def _claim_seed(db: aiosqlite.Connection, key: str, now: datetime) -> bool:
    cur = await db.execute(
        "INSERT INTO config_seeds (key, seeded_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, to_db_time(now)))
    return cur.rowcount == 1
