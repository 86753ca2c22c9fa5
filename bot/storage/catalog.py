"""The SQL behind chat commands: search, catalogue look-ups, audit,
subscriptions and filters. Functions over a Store (same package: they use its
``_tx``/``_all``/``_one`` so every write is one transaction under its lock).

Every statement is parameterized; the only text spliced into a MATCH is the
FTS string built by ``bot.search`` from quoted tokens, and it too is passed
as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from bot.errors import AlreadyExists, NotFound, UserError
from bot.models import Chapter, ContentKind, Platform, StoredItem
from bot.search import MAX_CANDIDATES, SUMMARY_FLOOR, WEIGHTS, Hit, Query, TitleMatcher
from bot.storage.schema import CHAPTER_ROWID_SPAN
from bot.storage.store import _ITEM_COLUMNS, Store, _stored_item, from_db_time, to_db_time


# -- search ------------------------------------------------------------------

async def _rows(store: Store, sql: str, params: Sequence[object] = (), doing: str = "reading") -> list[Any]:
    """``store._all`` in one hop to the database thread instead of three
    (execute, fetchall, close): a search is a few statements, and the hops,
    not SQLite, were most of its latency."""
    async with store._errors(doing):
        return list(await store._conn.execute_fetchall(sql, params))


async def _row(store: Store, sql: str, params: Sequence[object] = (), doing: str = "reading") -> Any:
    rows = await _rows(store, sql, params, doing)
    return rows[0] if rows else None


_W_TITLE, _W_CHAPTERS, _W_SUMMARY = WEIGHTS
# One statement per search: rank (the inner query, unchanged: it alone
# decides which MAX_CANDIDATES rows are kept), join each hit's publication
# date for the tie-break, and, only for hits below the score floor, their
# title and chapter titles for the ``strong`` check (a rowid look-up each).
_SEARCH_SQL = (
    "SELECT f.rowid, f.score, i.published_at, "
    "CASE WHEN f.score < ?1 THEN (SELECT t.title FROM catalog_fts t WHERE t.rowid = f.rowid) END, "
    "CASE WHEN f.score < ?1 THEN (SELECT t.chapters FROM catalog_fts t WHERE t.rowid = f.rowid) END "
    f"FROM (SELECT rowid, -bm25(catalog_fts, {_W_TITLE}, {_W_CHAPTERS}, {_W_SUMMARY}, 0.0) AS score "
    "FROM catalog_fts WHERE catalog_fts MATCH ?2 ORDER BY score DESC LIMIT ?3) f "
    "JOIN items i ON i.id = f.rowid"
)


async def search_items(
    store: Store, query: Query, kind: ContentKind | None = None, limit: int = MAX_CANDIDATES
) -> list[Hit]:
    """Ranked hits for a query: bm25 with WEIGHTS (title > chapters >
    description), recency breaking ties (scores rounded to two decimals so
    near-equal ones count as ties), at most ``limit`` of them.

    The member's terms are limited to the text columns and the kind is ANDed
    in as a token of catalog_fts's ``kind`` column, so "episodes on X" is an
    intersection inside FTS5 rather than ranking every post that mentions X.
    ``strong`` (a term in the title or a chapter title) only matters below
    the score floor, so it is decided in Python on those candidates' titles
    alone: a second MATCH restricted to their rowids costs more than the
    ranking itself. ``strong`` is True for every hit at or above the floor.
    One statement, one hop to the database thread (see _SEARCH_SQL)."""
    scope = f"{{title chapters summary}} : ({query.fts_all()})"
    if kind is not None:
        scope += f' AND kind : "{kind.value}"'  # an enum value, never member text
    rows = await _rows(store, _SEARCH_SQL, (SUMMARY_FLOOR, scope, limit), doing="searching")
    if not rows:
        return []
    matcher: TitleMatcher | None = None
    hits = []
    for item_id, raw_score, published_at, title, chapters in rows:
        score = float(raw_score)
        strong = score >= SUMMARY_FLOOR
        if not strong:
            matcher = matcher or TitleMatcher(query)
            strong = matcher(f"{title}\n{chapters}")
        hits.append((Hit(item_id, score, strong), published_at or ""))
    # Best score first; among (near-)equal scores the newest, then the newest id.
    hits.sort(key=lambda h: (round(h[0].score, 2), h[1], h[0].item_id), reverse=True)
    return [h for h, _ in hits]


async def matched_chapters(store: Store, item_id: int, fts: str, limit: int = 5) -> list[Chapter]:
    """Chapters of one item whose titles match, best first (ties: earlier)."""
    found = await page_items(store, [item_id], fts, limit)
    return found[0][1] if found else []


_ITEM_WIDTH = _ITEM_COLUMNS.count(",") + 1
_CHAPTER_PAD = ", NULL" * (_ITEM_WIDTH - 5)


async def page_items(
    store: Store, ids: Sequence[int], fts: str | None, limit: int = 5
) -> list[tuple[StoredItem, list[Chapter]]]:
    """A page of search hits in the order of ``ids``: each item with its
    chapters, and the chapters whose titles match ``fts`` (at most ``limit``,
    best bm25 first, ties: earlier; none when ``fts`` is None). One statement
    for the whole page: the items, and (tagged 1, padded to the items' width)
    every chapter of them with its chapter-title score from one chapters_fts
    MATCH over the page's rowid range, rather than a MATCH per item."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    if fts is None:
        chapters_sql = f"SELECT 1, c.item_id, c.position, c.start_s, c.title, NULL{_CHAPTER_PAD} FROM chapters c "
        chapter_params: tuple[object, ...] = ()
    else:
        chapters_sql = (
            f"SELECT 1, c.item_id, c.position, c.start_s, c.title, m.score{_CHAPTER_PAD} FROM chapters c "
            "LEFT JOIN (SELECT rowid AS r, bm25(chapters_fts) AS score FROM chapters_fts "
            "WHERE chapters_fts MATCH ? AND rowid >= ? AND rowid < ?) m "
            f"ON m.r = c.item_id * {CHAPTER_ROWID_SPAN} + c.position "
        )
        chapter_params = (fts, min(ids) * CHAPTER_ROWID_SPAN, (max(ids) + 1) * CHAPTER_ROWID_SPAN)
    rows = await _rows(
        store,
        f"SELECT 0, {_ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id "
        f"WHERE i.id IN ({marks}) UNION ALL {chapters_sql}WHERE c.item_id IN ({marks}) ORDER BY 1, 2, 3",
        (*ids, *chapter_params, *ids),
        doing="searching" if fts is not None else "reading",
    )
    items = []
    chapters: dict[int, list[Chapter]] = {}
    scored: dict[int, list[tuple[float, int, Chapter]]] = {}
    for r in rows:
        if r[0] == 0:
            items.append(r[1:])
            continue
        _, item_id, position, start_s, title, score = r[:6]
        chapter = Chapter(start_s, title)
        chapters.setdefault(item_id, []).append(chapter)
        if score is not None:
            scored.setdefault(item_id, []).append((score, position, chapter))
    by_id = {}
    for r in items:
        matched = sorted(scored.get(r[0], ()), key=lambda m: (m[0], m[1]))[:limit]
        by_id[r[0]] = (_stored_item(r, tuple(chapters.get(r[0], ()))), [c for _, _, c in matched])
    return [by_id[i] for i in ids if i in by_id]


async def items_by_ids(store: Store, ids: Sequence[int]) -> list[StoredItem]:
    """Items in the order of ``ids`` (a ranking), with their chapters."""
    return [stored for stored, _ in await page_items(store, ids, None)]


# -- catalogue ---------------------------------------------------------------

async def count_items(store: Store, kind: ContentKind | None = None) -> int:
    if kind is None:
        row = await _row(store, "SELECT count(*) FROM items")
    else:
        row = await _row(store, "SELECT count(*) FROM items WHERE kind = ?", (kind.value,))
    return int(row[0])


async def episode_by_number(store: Store, number: int) -> StoredItem | None:
    """The newest item carrying that episode number (a podcast and its
    re-uploads may share it; episodes first)."""
    if not 0 <= number < 2**62:
        return None
    row = await _row(
        store,
        "SELECT i.id FROM items i WHERE i.episode_number = ? "
        "ORDER BY i.kind != 'episode', i.published_at DESC LIMIT 1",
        (number,),
    )
    if row is None:
        return None
    found = await items_by_ids(store, [row[0]])
    return found[0] if found else None


async def episode_number_range(store: Store) -> tuple[int, int] | None:
    row = await _row(
        store,
        "SELECT min(episode_number), max(episode_number) FROM items WHERE episode_number IS NOT NULL")
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


async def item_at(store: Store, kind: ContentKind | None, offset: int) -> StoredItem | None:
    """The item at ``offset`` in publication order (for a random pick by a
    seeded RNG: ``ORDER BY random()`` could not be tested)."""
    where = "WHERE kind = ?" if kind else ""
    params: list[object] = [kind.value] if kind else []
    row = await _row(
        store,
        f"SELECT id FROM items {where} ORDER BY published_at, id LIMIT 1 OFFSET ?", (*params, offset))
    if row is None:
        return None
    found = await items_by_ids(store, [row[0]])
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class KindStats:
    kind: str
    count: int
    first: datetime | None
    last: datetime | None
    total_duration_s: int


async def stats(store: Store) -> list[KindStats]:
    rows = await store._all(
        "SELECT kind, count(*), min(published_at), max(published_at), coalesce(sum(duration_s), 0) "
        "FROM items GROUP BY kind ORDER BY count(*) DESC"
    )
    return [KindStats(r[0], r[1], from_db_time(r[2]), from_db_time(r[3]), r[4]) for r in rows]


async def title_words(store: Store) -> list[str]:
    rows = await store._all("SELECT title FROM items")
    return [r[0] for r in rows]


async def catalogue_version(store: Store) -> tuple[int, int]:
    """Changes whenever items are added or removed (cache key)."""
    row = await store._one("SELECT count(*), coalesce(max(id), 0) FROM items")
    return int(row[0]), int(row[1])


# -- status ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceFacts:
    items: int
    last_announced_at: datetime | None


async def source_facts(store: Store) -> dict[int, SourceFacts]:
    rows = await store._all(
        "SELECT s.id, (SELECT count(*) FROM items i WHERE i.source_id = s.id), "
        "(SELECT max(e.created_at) FROM events e WHERE e.source_id = s.id) FROM sources s"
    )
    return {r[0]: SourceFacts(r[1], from_db_time(r[2])) for r in rows}


# -- audit -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditRow:
    at: datetime
    platform: str
    user_id: str
    action: str
    detail: str


async def add_audit(store: Store, at: datetime, platform: Platform, user_id: str,
                    action: str, detail: str) -> None:
    async with store._tx("writing the audit log") as db:
        await db.execute(
            "INSERT INTO audit (at, platform, user_id, action, detail) VALUES (?, ?, ?, ?, ?)",
            (to_db_time(at), platform.value, user_id, action, detail),
        )


async def list_audit(store: Store, limit: int = 50) -> list[AuditRow]:
    rows = await store._all(
        "SELECT at, platform, user_id, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    return [AuditRow(from_db_time(r[0]), r[1], r[2], r[3], r[4]) for r in rows]  # type: ignore[arg-type]


# -- filters -----------------------------------------------------------------

async def load_filters(store: Store, source_id: int) -> list[tuple[str, str]]:
    """(mode, pattern) rules of a source, oldest first."""
    rows = await store._all(
        "SELECT mode, pattern FROM filters WHERE source_id = ? ORDER BY id", (source_id,))
    return [(r[0], r[1]) for r in rows]


async def add_filter(store: Store, source_id: int, mode: str, pattern: str, now: datetime,
                     audit: tuple[Platform, str] | None = None) -> None:
    """Save a rule (and its audit row, in the same transaction)."""
    if mode not in ("include", "exclude"):
        raise UserError("a filter is include or exclude")
    async with store._tx("saving a filter") as db:
        cur = await db.execute(
            "INSERT INTO filters (source_id, mode, pattern, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (source_id, mode, pattern, to_db_time(now)),
        )
        if cur.rowcount == 0:
            raise AlreadyExists("that filter is already set")
        if audit is not None:
            await db.execute(
                "INSERT INTO audit (at, platform, user_id, action, detail) VALUES (?, ?, ?, ?, ?)",
                (to_db_time(now), audit[0].value, audit[1], f"filter {mode}",
                 f"source_id={source_id} pattern={pattern}"),
            )


async def clear_filters(store: Store, source_id: int, now: datetime,
                        audit: tuple[Platform, str] | None = None) -> int:
    async with store._tx("clearing filters") as db:
        cur = await db.execute("DELETE FROM filters WHERE source_id = ?", (source_id,))
        if audit is not None:
            await db.execute(
                "INSERT INTO audit (at, platform, user_id, action, detail) VALUES (?, ?, ?, ?, ?)",
                (to_db_time(now), audit[0].value, audit[1], "filter clear", f"source_id={source_id}"),
            )
        return cur.rowcount


# -- subscriptions -----------------------------------------------------------

async def load_subscriptions(store: Store) -> list[tuple[Platform, str, str]]:
    """Every (platform, user id, topic)."""
    rows = await store._all("SELECT platform, user_id, topic FROM subscriptions ORDER BY id")
    return [(Platform(r[0]), r[1], r[2]) for r in rows]


async def member_subscriptions(store: Store, platform: Platform, user_id: str) -> list[str]:
    rows = await store._all(
        "SELECT topic FROM subscriptions WHERE platform = ? AND user_id = ? ORDER BY topic",
        (platform.value, user_id),
    )
    return [r[0] for r in rows]


async def add_subscription(store: Store, platform: Platform, user_id: str, topic: str,
                           now: datetime, max_per_member: int) -> bool:
    """False when the member already had it."""
    async with store._tx("subscribing") as db:
        row = await (await db.execute(
            "SELECT count(*) FROM subscriptions WHERE platform = ? AND user_id = ?",
            (platform.value, user_id))).fetchone()
        cur = await db.execute(
            "INSERT INTO subscriptions (platform, user_id, topic, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (platform.value, user_id, topic, to_db_time(now)),
        )
        if cur.rowcount == 1 and row is not None and row[0] >= max_per_member:
            raise UserError(f"you can follow at most {max_per_member} topics; unsubscribe one first")
        return cur.rowcount == 1


async def remove_subscription(store: Store, platform: Platform, user_id: str, topic: str) -> None:
    async with store._tx("unsubscribing") as db:
        cur = await db.execute(
            "DELETE FROM subscriptions WHERE platform = ? AND user_id = ? AND topic = ?",
            (platform.value, user_id, topic),
        )
        if cur.rowcount == 0:
            raise NotFound(f"you are not subscribed to {topic!r}")
