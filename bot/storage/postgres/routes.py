"""Routes: which channel gets which kinds of announcements, and how (feeds,
template, pace, daily cap, digest)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.errors import NotFound
from bot.models import EventKind, Platform, Route
from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase, ts_req
from bot.storage.records import RouteSeed

# A route's held rows, locked in id order (the order claims and
# record_deliveries take row locks in), so two writers of the same rows
# never wait on each other in a circle. $1 is the route's id.
_HELD_OF_ROUTE = "SELECT id FROM outbox WHERE status = 'held' AND route_id = $1 ORDER BY id FOR UPDATE"


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

    async def put_route(self, route: RouteSeed, now: datetime) -> Route:
        async with self._tx("saving a route") as conn:
            return await put_route_row(conn, route, now)

    async def remove_route(self, platform: Platform, channel: str) -> None:
        async with self._tx("removing a route") as conn:
            # Rows it held for a digest can go nowhere now: failed, with why,
            # rather than held forever without a route. Their row locks come
            # before the route's, as in build_digest (held rows, then the
            # digest's outbox row, which key-share locks the route): locking
            # the route first could deadlock against it.
            route_id = await conn.fetchval(
                "SELECT id FROM routes WHERE platform = $1 AND channel = $2", platform.value, channel)
            if route_id is not None:
                await conn.execute(
                    "UPDATE outbox SET status = 'failed', last_error = 'route removed' "
                    f"WHERE id IN ({_HELD_OF_ROUTE})", route_id)
            if await conn.fetchval("DELETE FROM routes WHERE platform = $1 AND channel = $2 RETURNING id",
                                   platform.value, channel) is None:
                raise NotFound(f"no announcements are routed to {channel!r}")

    async def mark_route_broken(self, route_id: int, reason: str) -> bool:
        async with self._tx("marking a route broken") as conn:
            done = await conn.fetchval(
                "UPDATE routes SET broken_reason = $1 WHERE id = $2 AND broken_reason IS NULL RETURNING id",
                reason, route_id)
            return done is not None


async def put_route_row(conn: asyncpg.Connection, route: RouteSeed, now: datetime) -> Route:
    """Every setting of the channel's route, created or replaced (broken
    cleared). Without a digest, what it held for one goes back to the queue,
    in its order, to be posted one by one."""
    at = ts_req(now)
    found = await conn.fetchrow(
        "INSERT INTO routes (platform, channel, kinds, mention, thread, feeds, template, pace_s, daily_cap, "
        "digest, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (platform, channel) DO UPDATE SET kinds = excluded.kinds, mention = excluded.mention, "
        "thread = excluded.thread, feeds = excluded.feeds, template = excluded.template, "
        "pace_s = excluded.pace_s, daily_cap = excluded.daily_cap, digest = excluded.digest, "
        f"broken_reason = NULL RETURNING {rows.ROUTE_COLUMNS}",
        route.platform.value, route.channel, sorted(k.value for k in route.kinds), route.mention, route.thread,
        sorted(route.feeds), route.template, route.pace_s, route.daily_cap,
        route.digest.value if route.digest else None, at,
    )
    saved = rows.route(found)
    if route.digest is None:
        await conn.execute(
            f"UPDATE outbox SET status = 'pending', next_attempt_at = $2 WHERE id IN ({_HELD_OF_ROUTE})",
            saved.id, at)
    return saved


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
