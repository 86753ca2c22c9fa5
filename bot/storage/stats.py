"""The SQL behind `book` and `stats`: read-only queries over the Store.

Every function takes the Store and uses its ``_all``/``_one`` readers, so
storage errors surface as StorageError like everywhere else. Timestamps are
compared as the store writes them (``to_db_time``: UTC ISO-8601 with
microseconds), which sorts lexicographically in time order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.storage.store import Store, from_db_time, to_db_time

# -- book news -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookNews:
    title: str
    url: str | None
    at: datetime  # the item's publication date when known, else when the news was detected
    source: str   # the source's name, "" when the source was removed
    payload: dict


async def book_news(store: Store, limit: int = 5) -> list[BookNews]:
    """Events of kind ``book``, newest first, each with its link (the
    event's, else its item's)."""
    rows = await store._all(
        "SELECT e.title, coalesce(e.url, i.link, i.enclosure_url), "
        "coalesce(i.published_at, e.created_at) AS at, coalesce(s.name, ''), e.payload "
        "FROM events e LEFT JOIN items i ON i.id = e.item_id LEFT JOIN sources s ON s.id = e.source_id "
        "WHERE e.kind = 'book' ORDER BY at DESC, e.id DESC LIMIT ?",
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


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: datetime
    followers: int | None
    following: int | None
    posts: int | None


@dataclass(frozen=True, slots=True)
class ProfileStats:
    source: str
    handle: str | None
    latest: Snapshot
    # window in days -> the snapshot closest to now - window, None: not enough history
    baselines: dict[int, Snapshot | None]
    # one point per UTC day (the day's last snapshot with a follower count), oldest first
    followers_daily: list[tuple[datetime, int]]


def _snapshot(r) -> Snapshot:  # type: ignore[no-untyped-def]
    taken = from_db_time(r[0])
    assert taken is not None
    return Snapshot(taken, r[1], r[2], r[3])


async def profile_stats(store: Store, now: datetime, windows: tuple[int, ...] = (7, 30),
                        history_days: int = 365) -> ProfileStats | None:
    """The latest snapshot of any ``x`` source (the one polled most recently),
    its baselines for each window, and its daily follower series.

    A baseline is the snapshot (with a follower count, older than the latest)
    closest to ``now - window``, accepted only within half a window of it: a
    profile watched for two days has no 7-day change, and one last seen 200
    days ago is not a 30-day baseline."""
    row = await store._one(
        "SELECT p.source_id, s.name, s.handle FROM profile_snapshots p JOIN sources s ON s.id = p.source_id "
        "WHERE s.kind = 'x' ORDER BY p.taken_at DESC, p.id DESC LIMIT 1",
        doing="reading profile snapshots",
    )
    if row is None:
        return None
    source_id, name, handle = row[0], row[1], row[2]
    cols = "taken_at, followers, following, posts"
    latest = _snapshot(await store._one(
        f"SELECT {cols} FROM profile_snapshots WHERE source_id = ? ORDER BY taken_at DESC LIMIT 1",
        (source_id,)))
    latest_at = to_db_time(latest.taken_at)

    baselines: dict[int, Snapshot | None] = {}
    for days in windows:
        target = now - timedelta(days=days)
        slack = timedelta(days=days / 2)
        lo, hi = to_db_time(target - slack), to_db_time(target + slack)
        before = await store._one(
            f"SELECT {cols} FROM profile_snapshots WHERE source_id = ? AND followers IS NOT NULL "
            "AND taken_at <= ? AND taken_at >= ? AND taken_at < ? ORDER BY taken_at DESC LIMIT 1",
            (source_id, to_db_time(target), lo, latest_at))
        after = await store._one(
            f"SELECT {cols} FROM profile_snapshots WHERE source_id = ? AND followers IS NOT NULL "
            "AND taken_at > ? AND taken_at <= ? AND taken_at < ? ORDER BY taken_at ASC LIMIT 1",
            (source_id, to_db_time(target), hi, latest_at))
        candidates = [_snapshot(r) for r in (before, after) if r is not None]
        baselines[days] = min(candidates, key=lambda s: abs(s.taken_at - target), default=None)

    # SQLite: with max(), the bare columns come from the row holding the maximum.
    rows = await store._all(
        "SELECT max(taken_at), followers FROM profile_snapshots "
        "WHERE source_id = ? AND followers IS NOT NULL AND taken_at >= ? "
        "GROUP BY substr(taken_at, 1, 10) ORDER BY 1",
        (source_id, to_db_time(now - timedelta(days=history_days))),
    )
    daily = [(at, int(r[1])) for r in rows if (at := from_db_time(r[0])) is not None]
    return ProfileStats(name, handle, latest, baselines, daily)


# -- episodes and cadence -----------------------------------------------------------


def month_starts(now: datetime, months: int = 12) -> list[str]:
    """The last ``months`` calendar months (UTC) ending with now's, as 'YYYY-MM', oldest first."""
    year, month = now.year, now.month
    out = []
    for _ in range(months):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


async def episodes_per_month(store: Store, now: datetime, months: int = 12) -> list[tuple[str, int]]:
    """[('2025-07', 3), ...] for the last ``months`` months, zeros included."""
    keys = month_starts(now, months)
    rows = await store._all(
        "SELECT substr(published_at, 1, 7) AS month, count(*) FROM items "
        "WHERE kind = 'episode' AND published_at IS NOT NULL AND published_at >= ? AND published_at <= ? "
        "GROUP BY month",
        (keys[0] + "-01", to_db_time(now)), doing="counting episodes",
    )
    counts = {r[0]: int(r[1]) for r in rows}
    return [(k, counts.get(k, 0)) for k in keys]


@dataclass(frozen=True, slots=True)
class Cadence:
    source: str
    kind: str          # the source's content kind
    paused: bool
    recent: int        # items dated within the window
    per_week: float    # recent / weeks in the window
    newest: datetime | None


async def cadence(store: Store, now: datetime, days: int = 90) -> list[Cadence]:
    """Per source: items per week over the last ``days`` days (by publication
    date, else first-seen date) and the date of its newest item."""
    since = to_db_time(now - timedelta(days=days))
    rows = await store._all(
        "SELECT s.name, s.content, s.paused, "
        "(SELECT count(*) FROM items i WHERE i.source_id = s.id "
        " AND coalesce(i.published_at, i.first_seen_at) >= ? AND coalesce(i.published_at, i.first_seen_at) <= ?), "
        "(SELECT max(coalesce(i.published_at, i.first_seen_at)) FROM items i WHERE i.source_id = s.id) "
        "FROM sources s ORDER BY s.name",
        (since, to_db_time(now)), doing="measuring posting cadence",
    )
    weeks = days / 7
    return [Cadence(r[0], r[1], bool(r[2]), int(r[3]), int(r[3]) / weeks, from_db_time(r[4])) for r in rows]
