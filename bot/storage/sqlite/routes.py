"""Routes: which channel gets which kinds of announcements."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from bot.errors import NotFound
from bot.models import EventKind, Platform, Route
from bot.storage.records import RouteSeed
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, to_db_time


class RoutesTable(SqliteBase):
    async def list_routes(self) -> list[Route]:
        async with self._errors("reading routes"):
            return await rows.routes(self._read)

    async def upsert_route(
        self, platform: Platform, channel: str, kinds: frozenset[EventKind], mention: str | None,
        now: datetime, *, thread: bool = False,
    ) -> Route:
        async with self._tx("saving a route") as db:
            await upsert_route_row(db, platform, channel, kinds, mention, now, thread)
        return next(r for r in await self.list_routes() if r.platform == platform and r.channel == channel)

    async def put_route(self, route: RouteSeed, now: datetime) -> Route:
        async with self._tx("saving a route") as db:
            await put_route_row(db, route, now)
        return next(r for r in await self.list_routes()
                    if r.platform == route.platform and r.channel == route.channel)

    async def remove_route(self, platform: Platform, channel: str) -> None:
        async with self._tx("removing a route") as db:
            # Rows it held for a digest can go nowhere now: failed, with why,
            # rather than held forever without a route.
            await db.execute(
                "UPDATE outbox SET status = 'failed', last_error = 'route removed' WHERE status = 'held' "
                "AND route_id = (SELECT id FROM routes WHERE platform = ? AND channel = ?)",
                (platform.value, channel))
            cur = await db.execute("DELETE FROM routes WHERE platform = ? AND channel = ?", (platform.value, channel))
            if cur.rowcount == 0:
                raise NotFound(f"no announcements are routed to {channel!r}")

    async def mark_route_broken(self, route_id: int, reason: str) -> bool:
        async with self._tx("marking a route broken") as db:
            cur = await db.execute(
                "UPDATE routes SET broken_reason = ? WHERE id = ? AND broken_reason IS NULL", (reason, route_id))
            return cur.rowcount == 1


async def put_route_row(db: aiosqlite.Connection, route: RouteSeed, now: datetime) -> None:
    """Every setting of the channel's route, created or replaced (broken
    cleared). Without a digest, what it held for one goes back to the queue,
    in its order, to be posted one by one."""
    await db.execute(
        "INSERT INTO routes (platform, channel, kinds, mention, thread, feeds, template, pace_s, daily_cap, "
        "digest, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(platform, channel) DO UPDATE SET kinds = excluded.kinds, mention = excluded.mention, "
        "thread = excluded.thread, feeds = excluded.feeds, template = excluded.template, "
        "pace_s = excluded.pace_s, daily_cap = excluded.daily_cap, digest = excluded.digest, "
        "broken_reason = NULL",
        (route.platform.value, route.channel, ",".join(sorted(k.value for k in route.kinds)), route.mention,
         int(route.thread), ",".join(sorted(route.feeds)), route.template, route.pace_s, route.daily_cap,
         route.digest.value if route.digest else None, to_db_time(now)),
    )
    if route.digest is None:
        await db.execute(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ? WHERE status = 'held' AND route_id = "
            "(SELECT id FROM routes WHERE platform = ? AND channel = ?)",
            (to_db_time(now), route.platform.value, route.channel))


async def upsert_route_row(
    db: aiosqlite.Connection, platform: Platform, channel: str, kinds: frozenset[EventKind],
    mention: str | None, now: datetime, thread: bool = False,
) -> None:
    await db.execute(
        "INSERT INTO routes (platform, channel, kinds, mention, thread, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(platform, channel) DO UPDATE SET kinds = excluded.kinds, "
        "mention = excluded.mention, thread = excluded.thread, broken_reason = NULL",
        (platform.value, channel, ",".join(sorted(k.value for k in kinds)), mention, int(thread), to_db_time(now)),
    )
