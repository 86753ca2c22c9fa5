"""Routes: which channel gets which kinds of announcements."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.errors import NotFound
from bot.models import EventKind, Platform, Route
from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase, ts_req


class RoutesTable(PostgresBase):
    async def list_routes(self) -> list[Route]:
        return [rows.route(r) for r in await self._all(rows.ROUTES_SQL, doing="reading routes")]

    async def upsert_route(
        self, platform: Platform, channel: str, kinds: frozenset[EventKind], mention: str | None,
        now: datetime, *, thread: bool = False,
    ) -> Route:
        async with self._tx("saving a route") as conn:
            await upsert_route_row(conn, platform, channel, kinds, mention, now, thread)
        return next(r for r in await self.list_routes() if r.platform == platform and r.channel == channel)

    async def remove_route(self, platform: Platform, channel: str) -> None:
        async with self._tx("removing a route") as conn:
            done = await conn.fetchval(
                "DELETE FROM routes WHERE platform = $1 AND channel = $2 RETURNING id", platform.value, channel)
            if done is None:
                raise NotFound(f"no announcements are routed to {channel!r}")

    async def mark_route_broken(self, route_id: int, reason: str) -> bool:
        async with self._tx("marking a route broken") as conn:
            done = await conn.fetchval(
                "UPDATE routes SET broken_reason = $1 WHERE id = $2 AND broken_reason IS NULL RETURNING id",
                reason, route_id)
            return done is not None


async def upsert_route_row(
    conn: asyncpg.Connection, platform: Platform, channel: str, kinds: frozenset[EventKind],
    mention: str | None, now: datetime, thread: bool = False,
) -> None:
    await conn.execute(
        "INSERT INTO routes (platform, channel, kinds, mention, thread, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (platform, channel) DO UPDATE SET kinds = excluded.kinds, "
        "mention = excluded.mention, thread = excluded.thread, broken_reason = NULL",
        platform.value, channel, sorted(k.value for k in kinds), mention, thread, ts_req(now),
    )
