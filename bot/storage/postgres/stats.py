"""The queries behind `book` and `stats`: read-only, over the tables of
this backend. Times are timestamptz; days and months are UTC ones, as on
SQLite (which groups by the text of its UTC timestamps)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg

from bot.storage.postgres.base import PostgresBase, ts_req
from bot.storage.records import BookNews, Cadence, ProfileStats, Snapshot, month_starts


def _snapshot(r: asyncpg.Record) -> Snapshot:
    return Snapshot(r[0], r[1], r[2], r[3])


class StatsTable(PostgresBase):
    async def book_news(self, limit: int = 5) -> list[BookNews]:
        found = await self._all(
            "SELECT e.title, coalesce(e.url, i.link, i.enclosure_url), "
            "coalesce(i.published_at, e.created_at) AS at, coalesce(s.name, ''), e.payload "
            "FROM events e LEFT JOIN items i ON i.id = e.item_id LEFT JOIN sources s ON s.id = e.source_id "
            "WHERE e.kind = 'book' AND e.purpose = 'announce' ORDER BY at DESC, e.id DESC LIMIT $1",
            (max(0, limit),), doing="reading book news",
        )
        return [BookNews(r[0], r[1], r[2], r[3], r[4] if isinstance(r[4], dict) else {}) for r in found]

    async def profile_stats(self, now: datetime, windows: tuple[int, ...] = (7, 30),
                            history_days: int = 365) -> ProfileStats | None:
        ts_req(now)
        cols = "taken_at, followers, following, posts"
        async with self._snapshot("reading profile snapshots") as conn:
            row = await conn.fetchrow(
                "SELECT p.source_id, s.name, s.handle FROM profile_snapshots p JOIN sources s ON s.id = p.source_id "
                "WHERE s.kind = 'x' ORDER BY p.taken_at DESC, p.id DESC LIMIT 1")
            if row is None:
                return None
            source_id, name, handle = row[0], row[1], row[2]
            latest = _snapshot(await conn.fetchrow(
                f"SELECT {cols} FROM profile_snapshots WHERE source_id = $1 ORDER BY taken_at DESC LIMIT 1",
                source_id))
            baselines: dict[int, Snapshot | None] = {}
            for days in windows:
                target = now - timedelta(days=days)
                slack = timedelta(days=days / 2)
                before = await conn.fetchrow(
                    f"SELECT {cols} FROM profile_snapshots WHERE source_id = $1 AND followers IS NOT NULL "
                    "AND taken_at <= $2 AND taken_at >= $3 AND taken_at < $4 ORDER BY taken_at DESC LIMIT 1",
                    source_id, target, target - slack, latest.taken_at)
                after = await conn.fetchrow(
                    f"SELECT {cols} FROM profile_snapshots WHERE source_id = $1 AND followers IS NOT NULL "
                    "AND taken_at > $2 AND taken_at <= $3 AND taken_at < $4 ORDER BY taken_at ASC LIMIT 1",
                    source_id, target, target + slack, latest.taken_at)
                candidates = [_snapshot(r) for r in (before, after) if r is not None]
                baselines[days] = min(candidates, key=lambda s: abs(s.taken_at - target), default=None)
            # One point per UTC day: that day's last snapshot with a follower count.
            daily = await conn.fetch(
                "SELECT DISTINCT ON ((taken_at AT TIME ZONE 'UTC')::date) taken_at, followers "
                "FROM profile_snapshots WHERE source_id = $1 AND followers IS NOT NULL AND taken_at >= $2 "
                "ORDER BY (taken_at AT TIME ZONE 'UTC')::date, taken_at DESC",
                source_id, now - timedelta(days=history_days))
        return ProfileStats(name, handle, latest, baselines, [(r[0], int(r[1])) for r in daily])

    async def episodes_per_month(self, now: datetime, months: int = 12) -> list[tuple[str, int]]:
        ts_req(now)
        keys = month_starts(now, months)
        first = datetime(int(keys[0][:4]), int(keys[0][5:7]), 1, tzinfo=timezone.utc)
        found = await self._all(
            "SELECT to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) FROM items "
            "WHERE kind = 'episode' AND published_at IS NOT NULL AND published_at >= $1 AND published_at <= $2 "
            "GROUP BY month",
            (first, now), doing="counting episodes",
        )
        counts = {r[0]: int(r[1]) for r in found}
        return [(k, counts.get(k, 0)) for k in keys]

    async def cadence(self, now: datetime, days: int = 90) -> list[Cadence]:
        ts_req(now)
        found = await self._all(
            "SELECT s.name, s.content, s.paused, "
            "(SELECT count(*) FROM items i WHERE i.source_id = s.id "
            " AND coalesce(i.published_at, i.first_seen_at) >= $1 AND coalesce(i.published_at, i.first_seen_at) <= $2), "
            "(SELECT max(coalesce(i.published_at, i.first_seen_at)) FROM items i WHERE i.source_id = s.id) "
            "FROM sources s ORDER BY s.name COLLATE \"C\"",
            (now - timedelta(days=days), now), doing="measuring posting cadence",
        )
        weeks = days / 7
        return [Cadence(r[0], r[1], r[2], int(r[3]), int(r[3]) / weeks, r[4]) for r in found]
