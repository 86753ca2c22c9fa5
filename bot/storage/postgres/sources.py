"""Sources: what is polled, its poll state, the claim on polling it, and
profile snapshots of x sources."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

from bot.errors import AlreadyExists, NotFound
from bot.models import Source, SourceSpec
from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase, lock, ts, ts_req
from bot.storage.postgres.routes import put_route_row
from bot.storage.postgres.schema import LOCK_SEED
from bot.storage.records import RouteSeed


class SourcesTable(PostgresBase):
    async def add_source(self, spec: SourceSpec, now: datetime) -> Source:
        async with self._tx("adding a source") as conn:
            try:
                # A savepoint, so the unique violation is ours to map.
                async with conn.transaction():
                    await _insert_source(conn, spec, now)
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"a source named {spec.name!r} already exists") from None
        return await self.get_source(spec.name)

    async def seed(self, sources: Iterable[SourceSpec], routes: Iterable[RouteSeed], now: datetime) -> None:
        ts(now)
        async with self._tx("seeding from config") as conn:
            # Instances starting together with the same config take turns:
            # each key is claimed once (config_seeds), and the lock keeps two
            # seeds in different orders from deadlocking on each other's keys.
            await lock(conn, LOCK_SEED)
            for spec in sources:
                if await _claim_seed(conn, f"source:{spec.name}", now):
                    await _insert_source(conn, spec, now, if_absent=True)
            for route in routes:
                if await _claim_seed(conn, f"route:{route.platform.value}:{route.channel}", now):
                    await put_route_row(conn, route, now)

    async def update_source(self, spec: SourceSpec) -> Source:
        async with self._tx("updating a source") as conn:
            found = await conn.fetchrow(
                "UPDATE sources SET kind = $1, url = $2, content = $3, every_s = $4, announce_on_first_poll = $5, "
                "max_age_s = $6, handle = $7, provider = $8, api_base_url = $9 WHERE name = $10 "
                f"RETURNING {rows.SOURCE_COLUMNS}",
                spec.kind, spec.url, spec.content.value, spec.every_s, spec.announce_on_first_poll,
                spec.max_age_s, spec.handle, spec.provider, spec.api_base_url, spec.name,
            )
            if found is None:
                raise NotFound(f"no source named {spec.name!r}")
        return rows.source(found)

    async def list_sources(self) -> list[Source]:
        return [rows.source(r) for r in await self._all(f"SELECT {rows.SOURCE_COLUMNS} FROM sources ORDER BY name COLLATE \"C\"")]

    async def find_source(self, name: str) -> Source | None:
        row = await self._one(f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE name = $1", (name,))
        return rows.source(row) if row else None

    async def get_source(self, name: str) -> Source:
        found = await self.find_source(name)
        if found is None:
            raise NotFound(f"no source named {name!r}")
        return found

    async def remove_source(self, name: str) -> None:
        async with self._tx("removing a source") as conn:
            if await conn.fetchval("DELETE FROM sources WHERE name = $1 RETURNING id", name) is None:
                raise NotFound(f"no source named {name!r}")
            # Its items went with it (a cascade): the catalogue's totals follow.
            await conn.execute(
                "UPDATE search_stats SET items = (SELECT count(*) FROM items), "
                "words = (SELECT coalesce(sum(search_len), 0) FROM items)")
        self._catalogue_changed()

    async def set_paused(self, name: str, paused: bool) -> None:
        async with self._tx("pausing a source") as conn:
            if await conn.fetchval("UPDATE sources SET paused = $1 WHERE name = $2 RETURNING id",
                                   paused, name) is None:
                raise NotFound(f"no source named {name!r}")

    async def record_unchanged(
        self, source_id: int, *, now: datetime, next_poll_at: datetime,
        etag: str | None, last_modified: str | None, release: str | None = None,
    ) -> None:
        async with self._tx("recording a poll") as conn:
            if release is not None:
                await conn.execute("DELETE FROM poll_claims WHERE source_id = $1 AND owner = $2", source_id, release)
            await conn.execute(
                "UPDATE sources SET last_polled_at = $1, last_success_at = $1, last_error = NULL, "
                "consecutive_failures = 0, next_poll_at = $2, "
                "etag = COALESCE($3, etag), last_modified = COALESCE($4, last_modified) WHERE id = $5",
                ts_req(now), ts_req(next_poll_at), etag, last_modified, source_id,
            )

    async def record_failure(self, source_id: int, error: str, *, now: datetime, next_poll_at: datetime,
                             release: str | None = None) -> int:
        # One UPDATE: the row lock makes concurrent increments queue, none lost.
        async with self._tx("recording a failed poll") as conn:
            if release is not None:
                await conn.execute("DELETE FROM poll_claims WHERE source_id = $1 AND owner = $2", source_id, release)
            count = await conn.fetchval(
                "UPDATE sources SET last_polled_at = $1, last_error = $2, last_error_at = $1, "
                "consecutive_failures = consecutive_failures + 1, next_poll_at = $3 WHERE id = $4 "
                "RETURNING consecutive_failures",
                ts_req(now), error, ts_req(next_poll_at), source_id,
            )
        return int(count) if count is not None else 0

    async def claim_poll(self, source_id: int, owner: str, now: datetime, lease_until: datetime) -> bool:
        # INSERT ... ON CONFLICT DO UPDATE ... WHERE is atomic: of two
        # processes racing for an expired claim, one updates it and the other
        # (re-checking the WHERE against the new row) gets no row back.
        async with self._tx("claiming a poll") as conn:
            got = await conn.fetchval(
                "INSERT INTO poll_claims (source_id, owner, lease_until) VALUES ($1, $2, $3) "
                "ON CONFLICT (source_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until "
                "WHERE poll_claims.owner = excluded.owner OR poll_claims.lease_until < $4 "
                "RETURNING owner",
                source_id, owner, ts_req(lease_until), ts_req(now),
            )
            return got is not None

    async def claim_lease(self, name: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        async with self._tx("claiming a lease") as conn:
            got = await conn.fetchval(
                "INSERT INTO leases (name, owner, lease_until) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until "
                "WHERE leases.owner = excluded.owner OR leases.lease_until < $4 "
                "RETURNING owner",
                name, owner, ts_req(lease_until), ts_req(now),
            )
            return got is not None

    async def release_lease(self, name: str, owner: str) -> None:
        async with self._tx("releasing a lease") as conn:
            await conn.execute("DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner)

    async def expire_leases(self) -> int:
        async with self._tx("expiring leases") as conn:
            status = await conn.execute("UPDATE leases SET lease_until = '-infinity'")
            return int(status.split()[-1])

    async def release_poll(self, source_id: int, owner: str) -> None:
        async with self._tx("releasing a poll claim") as conn:
            await conn.execute("DELETE FROM poll_claims WHERE source_id = $1 AND owner = $2", source_id, owner)

    async def latest_snapshot_json(self, source_id: int) -> bytes | None:
        row = await self._one(
            "SELECT raw_json FROM profile_snapshots WHERE source_id = $1 ORDER BY taken_at DESC LIMIT 1",
            (source_id,),
        )
        return row[0].encode() if row else None

    async def max_followers(self, source_id: int) -> int | None:
        row = await self._one("SELECT max(followers) FROM profile_snapshots WHERE source_id = $1", (source_id,))
        return row[0] if row else None


async def _insert_source(conn: asyncpg.Connection, spec: SourceSpec, now: datetime, *, if_absent: bool = False) -> None:
    await conn.execute(
        "INSERT INTO sources (name, kind, url, content, every_s, announce_on_first_poll, "
        "max_age_s, handle, provider, api_base_url, next_poll_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"
        + (" ON CONFLICT (name) DO NOTHING" if if_absent else ""),
        spec.name, spec.kind, spec.url, spec.content.value, spec.every_s,
        spec.announce_on_first_poll, spec.max_age_s, spec.handle, spec.provider,
        spec.api_base_url, ts_req(now),
    )


async def _claim_seed(conn: asyncpg.Connection, key: str, now: datetime) -> bool:
    got = await conn.fetchval(
        "INSERT INTO config_seeds (key, seeded_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        key, ts_req(now))
    return got is not None
