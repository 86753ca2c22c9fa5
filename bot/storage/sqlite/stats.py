"""The queries behind `book` and `stats`: read-only, over the tables of
this backend. Timestamps are compared as this backend writes them
(``to_db_time``: UTC ISO-8601 with microseconds, which sorts as text)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

from bot.storage.records import BookNews, Cadence, ProfileStats, Snapshot, month_starts
from bot.storage.sqlite.base import SqliteBase, from_db_time, to_db_time


class StatsTable(SqliteBase):
    async def book_news(self, limit: int = 5) -> list[BookNews]:
        """Events of kind ``book``, newest first, each with its link (the
        event's, else its item's)."""
        rows = await self._all(
            "SELECT e.title, coalesce(e.url, i.link, i.enclosure_url), "
            "coalesce(i.published_at, e.created_at) AS at, coalesce(s.name, ''), e.payload "
            "FROM events e LEFT JOIN items i ON i.id = e.item_id LEFT JOIN sources s ON s.id = e.source_id "
            "WHERE e.kind = 'book' AND e.purpose = 'announce' ORDER BY at DESC, e.id DESC LIMIT ?",
            (max(0, limit),), doing="reading book news",
        )
        out = []
        for r in rows:
            try:
                payload = json.loads(r[4]) if r[4] else {}
            except ValueError:
                payload = {}
            at = from_db_time(r[2])
            assert at is not None
            out.append(BookNews(r[0], r[1], at, r[3], payload if isinstance(payload, dict) else {}))
        return out


    # -- profile (X) -------------------------------------------------------------------


    @staticmethod
    def _snapshot(r: sqlite3.Row) -> Snapshot:
        taken = from_db_time(r[0])
        assert taken is not None
        return Snapshot(taken, r[1], r[2], r[3])


    async def profile_stats(self, now: datetime, windows: tuple[int, ...] = (7, 30),
                                history_days: int = 365) -> ProfileStats | None:
        """The latest snapshot of any ``x`` source (the one polled most recently),
        its baselines for each window, and its daily follower series.

        A baseline is the snapshot (with a follower count, older than the latest)
        closest to ``now - window``, accepted only within half a window of it: a
        profile watched for two days has no 7-day change, and one last seen 200
        days ago is not a 30-day baseline."""
        row = await self._one(
            "SELECT p.source_id, s.name, s.handle FROM profile_snapshots p JOIN sources s ON s.id = p.source_id "
            "WHERE s.kind = 'x' ORDER BY p.taken_at DESC, p.id DESC LIMIT 1",
            doing="reading profile snapshots",
        )
        if row is None:
            return None
        source_id, name, handle = row[0], row[1], row[2]
        cols = "taken_at, followers, following, posts"
        latest = self._snapshot(await self._one(
            f"SELECT {cols} FROM profile_snapshots WHERE source_id = ? ORDER BY taken_at DESC LIMIT 1",
            (source_id,)))
        latest_at = to_db_time(latest.taken_at)

        baselines: dict[int, Snapshot | None] = {}
        for days in windows:
            target = now - timedelta(days=days)
            slack = timedelta(days=days / 2)
            lo, hi = to_db_time(target - slack), to_db_time(target + slack)
            before = await self._one(
                f"SELECT {cols} FROM profile_snapshots WHERE source_id = ? AND followers IS NOT NULL "
                "AND taken_at <= ? AND taken_at >= ? AND taken_at < ? ORDER BY taken_at DESC LIMIT 1",
                (source_id, to_db_time(target), lo, latest_at))
            after = await self._one(
                f"SELECT {cols} FROM profile_snapshots WHERE source_id = ? AND followers IS NOT NULL "
                "AND taken_at > ? AND taken_at <= ? AND taken_at < ? ORDER BY taken_at ASC LIMIT 1",
                (source_id, to_db_time(target), hi, latest_at))
            candidates = [self._snapshot(r) for r in (before, after) if r is not None]
            baselines[days] = min(candidates, key=lambda s: abs(s.taken_at - target), default=None)

        # SQLite: with max(), the bare columns come from the row holding the maximum.
        rows = await self._all(
            "SELECT max(taken_at), followers FROM profile_snapshots "
            "WHERE source_id = ? AND followers IS NOT NULL AND taken_at >= ? "
            "GROUP BY substr(taken_at, 1, 10) ORDER BY 1",
            (source_id, to_db_time(now - timedelta(days=history_days))),
        )
        daily = [(at, int(r[1])) for r in rows if (at := from_db_time(r[0])) is not None]
        return ProfileStats(name, handle, latest, baselines, daily)


    # -- episodes and cadence -----------------------------------------------------------


    async def episodes_per_month(self, now: datetime, months: int = 12) -> list[tuple[str, int]]:
        """[('2025-07', 3), ...] for the last ``months`` months, zeros included."""
        keys = month_starts(now, months)
        rows = await self._all(
            "SELECT substr(published_at, 1, 7) AS month, count(*) FROM items "
            "WHERE kind = 'episode' AND published_at IS NOT NULL AND published_at >= ? AND published_at <= ? "
            "GROUP BY month",
            (keys[0] + "-01", to_db_time(now)), doing="counting episodes",
        )
        counts = {r[0]: int(r[1]) for r in rows}
        return [(k, counts.get(k, 0)) for k in keys]


    async def cadence(self, now: datetime, days: int = 90) -> list[Cadence]:
        """Per source: items per week over the last ``days`` days (by publication
        date, else first-seen date) and the date of its newest item."""
        since = to_db_time(now - timedelta(days=days))
        rows = await self._all(
            "SELECT s.name, s.content, s.paused, "
            "(SELECT count(*) FROM items i WHERE i.source_id = s.id "
            " AND coalesce(i.published_at, i.first_seen_at) >= ? AND coalesce(i.published_at, i.first_seen_at) <= ?), "
            "(SELECT max(coalesce(i.published_at, i.first_seen_at)) FROM items i WHERE i.source_id = s.id) "
            "FROM sources s ORDER BY s.name",
            (since, to_db_time(now)), doing="measuring posting cadence",
        )
        weeks = days / 7
        return [Cadence(r[0], r[1], bool(r[2]), int(r[3]), int(r[3]) / weeks, from_db_time(r[4])) for r in rows]
